// The stored pass@k comparison of docs/rl.md (bench/results/rl-organism-compare/, a `thinkwhen report`
// of five run stores): base, distilled thinking, the RL model, and the hybrid with each of the two as
// controller, all on the same 16 held-out problems × 256 samples at temperature 1; the models are the
// shipped ones and the RL model of the stored controller demo; what the docs say holds.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { modelFingerprint } from '../../src/experiments/run.ts';
import { organismModelPaths } from '../../src/organism/index.ts';
import { fileSha256 } from '../../src/steer/vector-set.ts';

const file = new URL('../../bench/results/rl-organism-compare/report.json', import.meta.url);
const controllerDemo = new URL('../../bench/results/demo-organism-rl-controller.json', import.meta.url);
const SAMPLES = 256;
const NAMES = ['base', 'thinking', 'hybrid', 'rl', 'hybrid-rl'].map((s) => `${s}-n${SAMPLES}-t1`);
const [BASE, THINKING, HYBRID, , HYBRID_RL] = NAMES;

interface Run {
  name: string;
  config: {
    sampling: { temperature: number };
    /** a single-model run's file fingerprint; a hybrid's two models */
    model?: { sha256: string };
    base?: { sha256: string };
    thinking?: { sha256: string };
  };
  problems: number;
  samplesPerProblem: number;
  complete: boolean;
  steeredFraction: number | null;
  passAtK: { k: number; value: number }[];
}

function load(): Record<string, Run> {
  assert.ok(existsSync(file), `missing ${file.pathname}: the commands in docs/rl.md, "pass@k beside the hybrid"`);
  const runs: Run[] = JSON.parse(readFileSync(file, 'utf8')).runs;
  return Object.fromEntries(runs.map((r) => [r.name, r]));
}
const at = (r: Run, k: number) => r.passAtK.find((p) => p.k === k)!.value;

test(`stored pass@k comparison: five complete runs of 16 problems × ${SAMPLES} samples at T 1, of the right models`, async () => {
  const runs = load();
  assert.deepEqual(Object.keys(runs).sort(), [...NAMES].sort());
  for (const r of Object.values(runs)) {
    assert.ok(r.complete && r.problems === 16 && r.samplesPerProblem === SAMPLES, r.name);
    assert.equal(r.config.sampling.temperature, 1, r.name);
    for (let i = 1; i < r.passAtK.length; i++) assert.ok(r.passAtK[i].value >= r.passAtK[i - 1].value - 1e-12, r.name);
  }
  const m = organismModelPaths();
  assert.equal(runs[BASE].config.model?.sha256, modelFingerprint(m.base).sha256, 'another base model');
  assert.equal(runs[THINKING].config.model?.sha256, modelFingerprint(m.thinking).sha256);
  const baseSha = await fileSha256(m.base);
  for (const h of [HYBRID, HYBRID_RL]) assert.equal(runs[h].config.base?.sha256, baseSha, h);
  assert.equal(runs[HYBRID].config.thinking?.sha256, await fileSha256(m.thinking));
  // the RL controller is the model of the stored controller demo
  const demo = JSON.parse(readFileSync(controllerDemo, 'utf8'));
  assert.equal(runs[HYBRID_RL].config.thinking?.sha256, demo.models.thinking.sha256);
});

test('stored pass@k comparison: what docs/rl.md says of it', () => {
  const r = load();
  const [base, thinking, hybrid, rl, hybridRl] = NAMES.map((n) => r[n]);
  // RL sits on the base's curve; the distilled thinking model is near 1 from k = 1
  for (const k of [1, 4, 16]) assert.ok(Math.abs(at(rl, k) - at(base, k)) < 0.05, `RL vs base at k=${k}`);
  assert.ok(at(thinking, 1) > 0.95, `thinking pass@1 ${at(thinking, 1)}`);
  // the distilled controller lifts the hybrid above the base at every k ≤ 16, most at small k
  for (const k of [1, 2, 4, 8, 16]) assert.ok(at(hybrid, k) > at(base, k), `hybrid vs base at k=${k}`);
  assert.ok(at(hybrid, 4) > at(base, 4) + 0.1);
  // the RL controller almost never disagrees with the base: it steers (almost) nothing
  assert.ok(hybridRl.steeredFraction !== null && hybridRl.steeredFraction < 0.001, `${hybridRl.steeredFraction}`);
  assert.ok(hybrid.steeredFraction !== null && hybrid.steeredFraction > 10 * hybridRl.steeredFraction);
});
