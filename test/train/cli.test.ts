import assert from 'node:assert/strict';
import { test } from 'node:test';
import { command } from '../../src/cli/gradcheck.ts';

test('thinkwhen gradcheck --json reports every requested layer and passes', async () => {
  const logs: string[] = [];
  const orig = console.log;
  console.log = (s: string) => logs.push(s);
  let rc: number;
  try {
    rc = await command.run(['--json', '--arch', 'llama', '--layers', '3']);
  } finally {
    console.log = orig;
  }
  assert.equal(rc, 0);
  const r = JSON.parse(logs.join('\n'));
  assert.equal(r.pass, true);
  assert.equal(r.reports.length, 1);
  assert.deepEqual(
    r.reports[0].layers.map((l: { layer: number }) => l.layer),
    [3],
  );
  assert.ok(r.reports[0].worstGradient < r.bounds.gradient);
  await assert.rejects(command.run(['--arch', 'gpt2']), /--arch/);
});
