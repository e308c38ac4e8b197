// The organism command's options: bad values are usage errors that name the option; sample prints
// labelled traces for each policy; eval names a missing model and how to build it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli } from '../helpers/cli.ts';

test('organism eval: bad --base, --seed and --n are usage errors; a missing model names the fix', async () => {
  for (const [args, re] of [
    [['--base', 'nope'], /--base must be one of default, latent/],
    [['--seed', '2.5'], /--seed expects an integer/],
    [['--n', '0'], /--n expects an integer/],
  ] as const) {
    const r = await cli(['organism', 'eval', ...args]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, re);
  }
  const empty = mkdtempSync(join(tmpdir(), 'organism-cli-'));
  try {
    const r = await cli(['organism', 'eval', '--models', empty]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /organism model not found: .*base\.gguf/);
    assert.match(r.err, /organism build/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test('organism sample: every policy writes labelled sentences of its kind', async () => {
  const kinds = async (policy: string) => {
    const r = await cli(['organism', 'sample', '--count', '40', '--policy', policy, '--json']);
    assert.equal(r.code, 0, r.err);
    const lines = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 40);
    return new Set(lines.flatMap((l) => l.sentences.map((s: { type: string }) => s.type)));
  };
  assert.ok((await kinds('thinking')).has('backtrack'));
  assert.ok(!(await kinds('pretrain')).has('verify'));
  assert.ok((await kinds('base')).has('verify'));
  const bad = await cli(['organism', 'sample', '--policy', 'sometimes']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /--policy must be one of thinking, base, pretrain/);
});
