/**
 * Bounded grading through `thinkwhen grade` (issue: unbounded work; messages): slow exact arithmetic ends as
 * "not equivalent" with the reason, `--jsonl` has a per-line `--time-limit`, and empty input is a usage error.
 * Each run is a child process with a timeout and this file imports nothing from src/, so a grader without the
 * bounds fails here within a minute instead of hanging for minutes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { COMPLEX_POWER, PRODUCT, SUM } from './limits-inputs.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const tmp = mkdtempSync(path.join(tmpdir(), 'thinkwhen-limits-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function grade(args: string[], input?: string) {
  const r = spawnSync(process.execPath, ['bin/thinkwhen.js', 'grade', ...args], {
    cwd: repoRoot,
    input,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('CLI: products, sums and complex powers of large powers end quickly as not equivalent, with the reason', () => {
  const r = grade(['--gold', COMPLEX_POWER, '--pred', '1']);
  assert.equal(r.code, 0, `status ${r.code} (null: killed by the 60 s timeout) ${r.stderr}`);
  assert.equal(r.stdout, 'false\n');
  assert.match(r.stderr, /not equivalent: exact arithmetic too large/);
  const lines = [COMPLEX_POWER, PRODUCT, SUM].map((gold) => JSON.stringify({ gold, pred: '1' }));
  const jsonl = grade(['--jsonl', '-'], `${lines.join('\n')}\n${JSON.stringify({ gold: '2^{10}', pred: '1024' })}\n`);
  assert.equal(jsonl.code, 0, jsonl.stderr);
  const out = jsonl.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    out.map((o) => [o.equivalent, o.reason]),
    [
      [false, 'exact arithmetic too large'],
      [false, 'exact arithmetic too large'],
      [false, 'exact arithmetic too large'],
      [true, undefined],
    ],
  );
  assert.match(jsonl.stderr, /3 of 4 lines stopped at a size or time bound/);
});

test('CLI: --time-limit bounds each --jsonl line and records the reason per line; bad values are usage errors', () => {
  const lines = [
    JSON.stringify({ gold: '\\frac{1}{3}+\\frac{1}{7}', pred: '0.476190' }),
    JSON.stringify({ gold: '18', pred: '18' }), // equal strings need no arithmetic
  ];
  const r = grade(['--jsonl', '-', '--time-limit', '0.000001'], lines.join('\n'));
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(out[0], {
    equivalent: false,
    gold_parsed: '10/21',
    pred_parsed: '47619/100000',
    reason: 'time budget exceeded',
  });
  assert.deepEqual(out[1], { equivalent: true, gold_parsed: '18', pred_parsed: '18' });
  assert.match(r.stderr, /1 of 2 lines stopped at a size or time bound/);
  for (const bad of ['0', '-1', 'abc', '1e9']) {
    const u = grade(['--gold', '1', '--pred', '1', `--time-limit=${bad}`]);
    assert.equal(u.code, 2, bad);
    assert.match(u.stderr, /--time-limit expects a number from 0.000001 to 3600/);
  }
});

test('CLI: --jsonl on an empty file or empty stdin is a usage error, not a silent success', () => {
  const empty = path.join(tmp, 'empty.jsonl');
  writeFileSync(empty, '');
  const r = grade(['--jsonl', empty]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /empty\.jsonl has no lines to grade/);
  const stdin = grade(['--jsonl', '-'], '');
  assert.equal(stdin.code, 2);
  assert.match(stdin.stderr, /stdin has no lines to grade/);
});
