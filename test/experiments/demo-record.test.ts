// The demo's stored results (bench/results/demo-organism-*.json, the `thinkwhen demo --json` output
// quoted in docs/demo.md): measured on the shipped models, with the defaults' size, and the
// headline claims of the docs hold in them.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DEMO_SYSTEMS, type DemoResult } from '../../src/experiments/demo.ts';
import { organismModelPaths } from '../../src/organism/index.ts';
import { fileSha256 } from '../../src/steer/vector-set.ts';

const shipped = organismModelPaths();
const record = (pair: 'default' | 'latent'): DemoResult['json'] => {
  const file = new URL(`../../bench/results/demo-organism-${pair}.json`, import.meta.url);
  assert.ok(
    existsSync(file),
    `missing ${file.pathname}: \`thinkwhen demo --pair ${pair} --json > FILE\` (docs/demo.md)`,
  );
  return JSON.parse(readFileSync(file, 'utf8'));
};

for (const pair of ['default', 'latent'] as const) {
  test(`stored demo (${pair} pair): the shipped models, every system on ≥ 300 problems, consistent gaps`, async () => {
    const r = record(pair);
    assert.equal(r.pair, pair);
    assert.equal(
      r.models.base.sha256,
      await fileSha256(pair === 'latent' ? shipped.baseLatent : shipped.base),
      'another base model',
    );
    assert.equal(r.models.thinking.sha256, await fileSha256(shipped.thinking), 'another thinking model');
    assert.deepEqual(Object.keys(r.systems).sort(), [...DEMO_SYSTEMS].sort());
    const base = r.systems.base!;
    const thinking = r.systems.thinking!;
    for (const [name, row] of Object.entries(r.systems)) {
      assert.ok(row.n >= 300, `${name}: n ${row.n}`);
      if (name === 'base' || name === 'thinking') continue;
      const gap = (row.acc - base.acc) / (thinking.acc - base.acc);
      assert.ok(Math.abs((row.gap_recovered ?? Number.NaN) - Math.max(0, gap)) < 1e-9, `${name}: gap recovered`);
      assert.ok(row.steered_mean !== null && row.steered_mean >= 0 && row.steered_mean <= 1, name);
    }
    for (const system of ['base', 'thinking', 'hybrid'] as const) {
      const curve = r.pass_at_k[system];
      assert.ok(curve && Object.keys(curve).length >= 8, `pass@k of ${system}`);
      const ks = Object.keys(curve).map(Number);
      for (let i = 1; i < ks.length; i++)
        assert.ok(curve[ks[i]] >= curve[ks[i - 1]] - 1e-12, `${system}: pass@k rises`);
    }
    assert.ok(r.seconds > 0);
  });
}

test('stored demo (default pair): the hybrid recovers ≥ 80 % of the gap steering ≤ 15 % of tokens', () => {
  const h = record('default').systems.hybrid!;
  assert.ok(h.gap_recovered! >= 0.8, `gap recovered ${h.gap_recovered}`);
  assert.ok(h.steered_mean! <= 0.15, `steered ${h.steered_mean}`);
});

test('stored demo (base-latent pair): steering recovers the gap where selection among the base model’s own tokens cannot', () => {
  const s = record('latent').systems;
  assert.ok(s.hybrid!.gap_recovered! >= 0.8, `hybrid ${s.hybrid!.gap_recovered}`);
  assert.ok(s.selection_only!.gap_recovered! <= 0.1, `selection_only ${s.selection_only!.gap_recovered}`);
  assert.ok(s.oracle!.gap_recovered! >= 0.95, `oracle ${s.oracle!.gap_recovered}`);
});

test('stored demo with the RL model as controller (docs/rl.md): it never disagrees with the base, so the hybrid is the base', async () => {
  const file = new URL('../../bench/results/demo-organism-rl-controller.json', import.meta.url);
  assert.ok(existsSync(file), `missing ${file.pathname}: the commands in docs/rl.md, "The RL model as controller"`);
  const r: DemoResult['json'] = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(r.models.base.sha256, await fileSha256(shipped.base), 'another base model');
  assert.notEqual(r.models.thinking.sha256, await fileSha256(shipped.thinking), 'the controller is not the RL model');
  const distilled = record('default').systems;
  const s = r.systems;
  assert.equal(s.base!.acc, distilled.base!.acc, 'the same base model on the same problems');
  for (const name of DEMO_SYSTEMS) {
    assert.ok(s[name]!.n >= 300, name);
    assert.equal(s[name]!.acc, s.base!.acc, `${name} decodes exactly as the base`);
    if (name !== 'base' && name !== 'thinking') assert.equal(s[name]!.steered_mean, 0, name);
  }
});
