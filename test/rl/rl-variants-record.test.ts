// The stored RL variants (bench/results/rl-organism-variants.json, written by
// bench/rl-organism-variants.ts, quoted in docs/rl.md): each measured on the shipped base model with
// the default settings but its one change, its fields consistent, and what the docs say about it.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { organismModelPaths } from '../../src/organism/index.ts';
import { type OrganismRlLine, RL_DEFAULT } from '../../src/organism/rl.ts';
import { fileSha256 } from '../../src/steer/vector-set.ts';

const file = new URL('../../bench/results/rl-organism-variants.json', import.meta.url);

/** What each variant changed: its flag in the command, and the line's reward / one_shot. */
const EXPECTED: Record<string, { flag: string; reward: string; oneShot: boolean; lr?: number; kl?: number }> = {
  random: { flag: '--reward random', reward: 'random', oneShot: false },
  format: { flag: '--reward format', reward: 'format', oneShot: false },
  one_shot: { flag: '--one-shot', reward: 'answer', oneShot: true },
  cost0: { flag: '--token-cost 0', reward: 'answer', oneShot: false },
  lr1e4: { flag: '--lr 1e-4', reward: 'answer', oneShot: false, lr: 1e-4 },
  lr1e4_kl: { flag: '--lr 1e-4 --kl 0.1', reward: 'answer', oneShot: false, lr: 1e-4, kl: 0.1 },
};

function load(): Record<string, { command: string; line: OrganismRlLine }> {
  assert.ok(existsSync(file), `missing ${file.pathname}: node --import tsx bench/rl-organism-variants.ts`);
  return JSON.parse(readFileSync(file, 'utf8')).variants;
}

test('stored RL variants: the shipped base model, the default settings but one change, every field', async () => {
  const v = load();
  assert.deepEqual(Object.keys(v).sort(), Object.keys(EXPECTED).sort());
  const sha = await fileSha256(organismModelPaths().base);
  for (const [name, { command, line }] of Object.entries(v)) {
    const e = EXPECTED[name];
    assert.ok(command.includes(e.flag) && command.includes('--pass-samples 64'), `${name}: ${command}`);
    assert.equal(line.base_sha256, sha, `${name}: another base model`);
    assert.equal(line.organism, 'v2');
    assert.equal(line.reward, e.reward, name);
    assert.equal(line.one_shot, e.oneShot, name);
    assert.equal(line.steps, RL_DEFAULT.steps, name);
    assert.equal(line.lr, e.lr ?? RL_DEFAULT.lr, name);
    assert.equal(line.kl_coef, e.kl ?? 0, name);
    // the KL to the base is measured exactly when it is penalised
    assert.equal(
      line.train_by_step.kl.every((x) => x !== null && x >= 0),
      e.kl !== undefined,
      `${name}: ${line.train_by_step.kl}`,
    );
    for (const curve of [line.train_by_step.reward, line.train_by_step.correct]) {
      assert.equal(curve.length, RL_DEFAULT.steps, name);
      assert.ok(
        curve.every((x) => x !== null && x >= 0 && x <= 1),
        `${name}: a training curve outside [0, 1]`,
      );
    }
    if (e.reward === 'answer') assert.deepEqual(line.train_by_step.correct, line.train_by_step.reward, name);
    for (const who of ['base', 'rl'] as const) {
      const curve = line.pass_at_k[who];
      assert.deepEqual(Object.keys(curve), ['1', '4', '16', '64'], name);
      const p = Object.values(curve);
      for (let i = 1; i < p.length; i++) assert.ok(p[i] >= p[i - 1], `${name} ${who}: pass@k rises`);
    }
  }
  // the base model is measured the same way in every variant
  const bases = Object.values(v).map(({ line }) => JSON.stringify(line.pass_at_k.base));
  assert.equal(new Set(bases).size, 1, 'the base pass@k differs between variants');
});

const pVerifyDown = (l: OrganismRlLine) =>
  l.p_verify_needed < l.base_p_verify_needed && l.p_verify_not_needed < l.base_p_verify_not_needed;

test('stored RL variants: what docs/rl.md says of them', () => {
  const v = load();
  // a coin-flip reward, a format-only reward and the true reward without a token cost all lower
  // P(verify), needed or not: the token cost is not what drives the default run's decrease
  for (const n of ['random', 'format', 'cost0']) assert.ok(pVerifyDown(v[n].line), `${n}: P(verify) fell`);
  // the format reward is 1 for nearly every sample: only the token cost is left, and pass@64 narrows
  const f = v.format.line;
  assert.ok(f.pass_at_k.rl['64'] < f.pass_at_k.base['64'] - 0.05, JSON.stringify(f.pass_at_k));
  // 1-shot: learns its problem, verifies more on held-out problems needed or not, widens pass@k
  const o = v.one_shot.line;
  const r = o.train_by_step.reward;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(r.slice(30)) > mean(r.slice(0, 10)) + 0.3, `1-shot reward ${r}`);
  assert.ok(o.p_verify_needed > 2 * o.base_p_verify_needed && o.p_verify_not_needed > 2 * o.base_p_verify_not_needed);
  assert.ok(o.pass_at_k.rl['16'] > o.pass_at_k.base['16'] + 0.05, JSON.stringify(o.pass_at_k));
  // the larger step moves P(verify) further down; the KL penalty holds it (and greedy accuracy) nearer the base
  const [big, held] = [v.lr1e4.line, v.lr1e4_kl.line];
  const stored: OrganismRlLine = JSON.parse(
    readFileSync(new URL('../../bench/results/rl-organism.json', import.meta.url), 'utf8'),
  );
  assert.ok(big.p_verify_needed < stored.p_verify_needed && big.p_verify_not_needed < stored.p_verify_not_needed);
  assert.ok(held.p_verify_needed > big.p_verify_needed && held.p_verify_not_needed > big.p_verify_not_needed);
  assert.ok(held.acc > big.acc, `greedy accuracy ${held.acc} with the penalty, ${big.acc} without`);
});
