import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { tinyLlama } from '../helpers/models.ts';

const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/thinkwhen.js', ...args], { encoding: 'utf8' });

test('doctor --json on the generated default model passes every check', () => {
  const r = cli('doctor', '--json');
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.backend, 'cpu');
  assert.deepEqual(
    report.checks.map((c: { name: string }) => c.name),
    [
      'zero-vector parity',
      'isolation',
      'hook equals llama.cpp control vector',
      'captured state after steering = h + v',
      'known-direction logit shift',
    ],
  );
  for (const c of report.checks) assert.equal(c.pass, true, `${c.name}: ${c.detail}`);
});

test('doctor --model on a given file, and on a missing one', () => {
  const ok = cli('doctor', '--model', tinyLlama());
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /llama, 4 layers, n_embd 64/);
  assert.match(ok.stdout, /all checks passed/);
  const missing = cli('doctor', '--model', '/nonexistent/model.gguf');
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /model file not found: \/nonexistent\/model.gguf/);
  // A layer the model lacks, or not a layer at all, is a usage error (exit 2), not a failed check.
  const layer = cli('doctor', '--model', tinyLlama(), '--layer', '9', '--json');
  assert.equal(layer.status, 2);
  assert.match(layer.stderr, /--layer 9 is out of range: this model has 4 layers \(0\.\.3\) \(fix: use --layer 1\.\.3/);
});

test('help lists the commands; unknown commands and options are refused', () => {
  const help = cli('--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /doctor\s+report the backend/);
  assert.equal(cli('frobnicate').status, 2);
  const bad = cli('doctor', '--frob');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /Unknown option '--frob'/);
});
