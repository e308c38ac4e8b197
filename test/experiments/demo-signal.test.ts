// SIGTERM during `thinkwhen demo` with two runs under way: both lanes stop after their current
// decode, no further run starts, the process exits 130 (a rerun continues: the run stores resume).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { sigtermAndWait } from '../helpers/sigterm.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-demo-signal-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('thinkwhen demo --lanes 2: SIGTERM stops both running runs and starts no other, exit 130', async () => {
  const out = join(tmp, 'demo');
  const runs = join(out, 'runs');
  const args = ['bin/thinkwhen.js', 'demo', '--problems', '200', '--pass-problems', '0', '--lanes', '2'];
  const child = spawn(process.execPath, [...args, '--threads', '1', '--out', out], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const stores = () =>
    existsSync(runs)
      ? readdirSync(runs)
          .filter((f) => f.endsWith('.sqlite'))
          .sort()
      : [];
  // signal once both lanes have opened their run store (the longest runs first: hybrid, only_bias)
  const deadline = Date.now() + 60_000;
  while (stores().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(stores(), ['hybrid.sqlite', 'only_bias.sqlite'], stderr);
  await new Promise((r) => setTimeout(r, 1500));
  const code = await sigtermAndWait(child, exited);
  assert.equal(code, 130, stderr);
  assert.match(stderr, /SIGTERM: stopping after the current decode/);
  // each lane's run ended with its own line; nothing else started
  assert.match(stderr, /^hybrid: \d+\/200 graded/m);
  assert.match(stderr, /^only_bias: \d+\/200 graded/m);
  assert.deepEqual(stores(), ['hybrid.sqlite', 'only_bias.sqlite']);
  assert.match(stderr, /interrupted: finished problems are stored/);
});
