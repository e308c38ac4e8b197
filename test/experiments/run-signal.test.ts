// A job engine stops a task with SIGTERM (Kubernetes, Slurm): `thinkwhen run` must then stop like
// Ctrl-C — after the current decode, everything finished stored, exit 130 — and a rerun continues.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RunStore } from '../../src/eval/store.ts';
import { sigtermAndWait } from '../helpers/sigterm.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-run-signal-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const stored = (path: string) => {
  const s = RunStore.openReadonly(path);
  try {
    return [...s.generations()].length;
  } finally {
    s.close();
  }
};

test('thinkwhen run: SIGTERM stops after the current decode, keeps what is stored, exits 130', async () => {
  const out = join(tmp, 'base.sqlite');
  const args = ['bin/thinkwhen.js', 'run', '--system', 'base', '--dataset', 'organism', '--limit', '400'];
  const child = spawn(process.execPath, [...args, '--out', out, '--parallel', '2', '--threads', '1'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  // signal once generation has started (the start line names the store)
  const deadline = Date.now() + 60_000;
  while (!stderr.includes('generations,') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.ok(stderr.includes('generations,'), `the run did not start: ${stderr}`);
  // and once something is stored (on a loaded machine the first problems take a while)
  while (stored(out) === 0 && Date.now() < deadline + 60_000) await new Promise((r) => setTimeout(r, 200));
  const code = await sigtermAndWait(child, exited);
  assert.equal(code, 130, stderr);
  assert.match(stderr, /SIGTERM: stopping after the current decode/);
  assert.match(stderr, /interrupted: \d+ new generations stored/);
  const n = stored(out);
  assert.ok(n > 0 && n < 400, `stored ${n} of 400 before the signal`);
});
