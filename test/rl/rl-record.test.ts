// The stored result of the default `thinkwhen organism rl --json` run (bench/results/rl-organism.json,
// quoted in docs/rl.md): measured on the shipped base model with the default settings, its fields
// consistent, and what the docs say about it.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { organismModelPaths } from '../../src/organism/index.ts';
import { type OrganismRlLine, RL_DEFAULT } from '../../src/organism/rl.ts';
import { fileSha256 } from '../../src/steer/vector-set.ts';

const file = new URL('../../bench/results/rl-organism.json', import.meta.url);

test('stored RL run: the shipped base model, the default settings, every field', async () => {
  assert.ok(existsSync(file), `missing ${file.pathname}: \`thinkwhen organism rl --json\` (docs/rl.md)`);
  const r: OrganismRlLine = JSON.parse(readFileSync(file, 'utf8'));
  const base = organismModelPaths().base;
  assert.equal(r.base_sha256, await fileSha256(base), 'another base model');
  assert.equal(r.organism, 'v2');
  assert.equal(r.steps, RL_DEFAULT.steps);
  assert.equal(r.lr, RL_DEFAULT.lr);
  assert.equal(r.reward, 'answer');
  assert.equal(r.one_shot, false);
  for (const who of ['base', 'rl'] as const) {
    const curve = r.pass_at_k[who];
    assert.deepEqual(Object.keys(curve), ['1', '4', '16', '64', '256']);
    const v = Object.values(curve);
    for (let i = 1; i < v.length; i++) assert.ok(v[i] >= v[i - 1], `${who}: pass@k rises`);
  }
  for (const x of [r.acc, r.base_acc, r.p_verify_needed, r.p_verify_not_needed]) assert.ok(x >= 0 && x <= 1);
  assert.equal(r.kl_coef, 0);
  assert.equal(r.train_by_step.reward.length, RL_DEFAULT.steps);
  // the answer reward: the reward of a step is its share of right answers
  assert.deepEqual(r.train_by_step.correct, r.train_by_step.reward);
});

test('stored RL run: RL beats the base at pass@1 (barely), and lowers P(verify) needed or not (docs/rl.md)', () => {
  const r: OrganismRlLine = JSON.parse(readFileSync(file, 'utf8'));
  assert.ok(r.pass_at_k.rl['1'] > r.pass_at_k.base['1'], `${r.pass_at_k.rl['1']} vs ${r.pass_at_k.base['1']}`);
  assert.ok(r.p_verify_needed < r.base_p_verify_needed && r.p_verify_not_needed < r.base_p_verify_not_needed);
});
