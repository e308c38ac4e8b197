// GRPO's KL penalty to a reference policy: zero where the policy is the reference, and it keeps a
// policy that a reward pushes away close to its reference (the same run without it drifts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateProblems, organismModelPaths, type Problem, promptText } from '../../src/organism/index.ts';
import { trainGrpo } from '../../src/rl/grpo.ts';

test('grpo KL penalty: 0 at the start, and a penalised run stays closer to its reference', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-grpo-kl-'));
  // no reward at all: only the token cost moves the policy (towards shorter samples), fast at lr 1e-3
  const task = {
    problems: (step: number, count: number) => generateProblems('train', count, 200 + step),
    prompt: (p: Problem) => promptText(p.question),
    reward: () => 0,
  };
  const base = organismModelPaths().base;
  const opts = {
    policy: base,
    reference: base,
    steps: 5,
    problemsPerStep: 2,
    groupSize: 4,
    maxTokens: 200,
    tokenCost: 0.01,
    advantage: 'mean' as const,
    lr: 1e-3,
    seed: 1,
    threads: 1,
  };
  try {
    // klCoef 0 with a reference: the KL is measured, not penalised
    const free = await trainGrpo(task, { ...opts, klCoef: 0, out: join(dir, 'free.gguf') });
    const held = await trainGrpo(task, { ...opts, klCoef: 0.3, out: join(dir, 'held.gguf') });
    const kl = (h: typeof free.history) => h.map((s) => s.kl as number);
    const [f, h] = [kl(free.history), kl(held.history)];
    assert.ok(f.every(Number.isFinite) && h.every(Number.isFinite), `${f} / ${h}`);
    // step 1 samples the reference itself
    assert.ok(f[0] < 1e-6 && h[0] < 1e-6, `${f[0]}, ${h[0]}`);
    // step 1's update has no KL gradient yet (r = 1), so step 2 is the same in both runs
    assert.ok(Math.abs(f[1] - h[1]) < 1e-9, `${f[1]} vs ${h[1]}`);
    assert.ok(f[4] > 0.2, `the unpenalised policy drifted: KL ${f[4]}`);
    assert.ok(h[4] < f[4] / 3, `the penalty held the policy: KL ${h[4]} against ${f[4]} without it`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
