// GRPO (group relative policy optimisation; Shao et al. 2024) on the project's own trainer, for any
// task with a verifiable reward. Each step: a batch of problems, `groupSize` samples of each from the
// current policy at temperature 1 (the engine decodes a GGUF of the current weights), reward = the
// task's verifiable reward − tokenCost × generated tokens, advantage = the reward minus its group's
// mean (divided by the group's standard deviation for 'std'), and one AdamW step on
//   loss = − Σ_i A_i Σ_t log π(y_it) / (tokens generated in the step)
// (the trainer's per-token loss weights carry A_i). The samples come from exactly the weights being
// trained, so the update is on-policy and needs no importance ratio or clipping. Optionally a KL
// penalty β · KL(π ‖ π_ref) to a frozen reference policy (default: the initial one), estimated per
// token as GRPO does (k3 = r − log r − 1, r = π_ref(y_t) / π(y_t)); its gradient (1 − r) ∇ log π(y_t)
// is one more per-token loss weight, β (r − 1), so it costs two forward passes per step and no new op.
//
// Seeded: the problems of step s and the seed of every sample depend only on (seed, s, problem,
// sample). Resumable: a checkpoint (weights, Adam moments, history) every `checkpointEvery` steps; a
// rerun with the same options continues from it, and a finished run (out + its record) returns at once.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { logProb } from '../engine/sampling.ts';
import { ThinkwhenError } from '../errors.ts';
import { type Example, exampleBatch } from '../train/batch.ts';
import { readCheckpoint, removeCheckpoint, restoreCheckpoint, saveCheckpoint } from '../train/checkpoint.ts';
import { scheduledLr } from '../train/loop.ts';
import { Trainer } from '../train/trainer.ts';
import { type Completion, sampleCompletions, sampleSeed } from './sample.ts';

export interface GrpoTask<P> {
  /** the problems of step `step` (0-based); must depend only on its arguments */
  problems(step: number, count: number): P[];
  prompt(problem: P): string;
  /** the verifiable reward of one completion (e.g. 1 = right answer, 0 = wrong) */
  reward(problem: P, completion: Completion): number;
  /** numbers to follow over the steps (not trained on), e.g. whether the answer is right: each step's mean is logged */
  metrics?(problem: P, completion: Completion): Record<string, number>;
}

export interface GrpoOptions {
  /** the initial policy (a GGUF the trainer and the engine load) */
  policy: string;
  /** where the trained policy is written (temp file + rename); its checkpoint and record lie beside it */
  out: string;
  steps: number;
  problemsPerStep: number;
  /** samples per problem (the group) */
  groupSize: number;
  temperature?: number;
  maxTokens: number;
  /** subtracted from the reward per generated token (default 0) */
  tokenCost?: number;
  /** 'std' (GRPO: (r − mean) / std) or 'mean' (Dr. GRPO: r − mean); default 'std' */
  advantage?: 'std' | 'mean';
  /** β of the KL penalty to the reference policy (default 0: no penalty, no reference model loaded) */
  klCoef?: number;
  /** the reference policy of the KL penalty (default: `policy`, the initial weights); given with klCoef 0,
   * the KL is measured (GrpoStepStats.kl) but not penalised */
  reference?: string;
  lr?: number;
  warmupSteps?: number;
  weightDecay?: number;
  /** sequences per graph run (gradient accumulation over the step's samples; default 16) */
  microBatch?: number;
  checkpointEvery?: number;
  seed?: number;
  threads?: number;
  /** anything else the caller's result depends on (task variant, problem set): part of the run's identity */
  tag?: string;
  onStep?: (s: GrpoStepStats) => void;
  /** rollout progress inside a step: samples done of the step's total */
  onRollout?: (done: number, total: number) => void;
}

export interface GrpoStepStats {
  /** steps done after this one (1-based) */
  step: number;
  /** mean verifiable reward of the step's samples (before the token cost) */
  reward: number;
  /** mean reward − token cost: what the policy maximises */
  score: number;
  /** mean generated tokens per sample */
  length: number;
  /** fraction of samples that ended themselves (the rest hit maxTokens) */
  stopped: number;
  /** groups whose samples all scored the same (no gradient from them) */
  flatGroups: number;
  /** the weighted loss Σ A·CE / tokens (its sign and size say little; it is logged for NaN checks) */
  loss: number;
  lr: number;
  seconds: number;
  /** with a reference: the mean per-token k3 estimate of KL(π ‖ π_ref) on the step's samples */
  kl?: number;
  /** the step's mean of each of the task's metrics (absent when the task has none) */
  metrics?: Record<string, number>;
}

export interface GrpoResult {
  out: string;
  history: GrpoStepStats[];
  /** steps restored from a checkpoint (0: a fresh run) */
  resumedFrom: number;
  /** the run had finished before: nothing was trained */
  cached: boolean;
  seconds: number;
}

interface RunState {
  identity: string;
  history: GrpoStepStats[];
}

const recordFile = (out: string) => `${out}.grpo.json`;

/** The options the result depends on, as one string (callbacks and thread count excluded). */
function identityOf(o: GrpoOptions): string {
  const { onStep: _a, onRollout: _b, threads: _c, out: _d, ...rest } = o;
  return JSON.stringify({ ...rest, temperature: o.temperature ?? 1, tokenCost: o.tokenCost ?? 0 });
}

/** Group-relative advantages of one group's scores. */
export function groupAdvantages(scores: number[], mode: 'std' | 'mean'): number[] {
  const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
  const centred = scores.map((s) => s - mean);
  if (mode === 'mean') return centred;
  const std = Math.sqrt(centred.reduce((a, c) => a + c * c, 0) / scores.length);
  return std < 1e-9 ? centred.map(() => 0) : centred.map((c) => c / std);
}

/** The mean of each metric over the samples (a metric a sample lacks counts as 0). */
function meanMetrics(rows: Record<string, number>[]): Record<string, number> {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))].sort();
  return Object.fromEntries(keys.map((k) => [k, rows.reduce((a, r) => a + (r[k] ?? 0), 0) / rows.length]));
}

function checkOptions(o: GrpoOptions): void {
  const positive: [string, number][] = [
    ['steps', o.steps],
    ['problemsPerStep', o.problemsPerStep],
    ['groupSize', o.groupSize],
    ['maxTokens', o.maxTokens],
  ];
  for (const [k, v] of positive) {
    if (!Number.isInteger(v) || v < 1)
      throw new ThinkwhenError('BAD_OPTIONS', `${k} must be a positive integer, got ${v}`);
  }
  if (o.groupSize < 2)
    throw new ThinkwhenError(
      'BAD_OPTIONS',
      'groupSize must be at least 2: the advantage compares samples of a problem',
    );
  if (!existsSync(o.policy)) throw new ThinkwhenError('MODEL_NOT_FOUND', `policy model not found: ${o.policy}`);
}

export async function trainGrpo<P>(task: GrpoTask<P>, o: GrpoOptions): Promise<GrpoResult> {
  checkOptions(o);
  const identity = identityOf(o);
  const t0 = performance.now();
  if (existsSync(o.out) && existsSync(recordFile(o.out))) {
    const rec = JSON.parse(readFileSync(recordFile(o.out), 'utf8')) as RunState;
    if (rec.identity === identity)
      return { out: o.out, history: rec.history, resumedFrom: o.steps, cached: true, seconds: 0 };
    throw new ThinkwhenError(
      'RL_RUN_MISMATCH',
      `${o.out} was trained with other settings than these`,
      `use another output folder, or delete ${o.out} and ${recordFile(o.out)} to train again`,
    );
  }
  if (existsSync(o.out))
    throw new ThinkwhenError(
      'RL_RUN_MISMATCH',
      `${o.out} exists but is not the output of a finished run (no ${recordFile(o.out)}): it is not overwritten`,
      'choose another output path, or delete the file',
    );
  mkdirSync(dirname(o.out), { recursive: true });
  const beta = o.klCoef ?? 0;
  const tr = Trainer.open(o.policy, { mode: 'weights', threads: o.threads });
  // the reference is frozen: opened for forward passes only (and only when there is a KL to penalise or measure)
  const ref =
    beta > 0 || o.reference ? Trainer.open(o.reference ?? o.policy, { mode: 'vectors', threads: o.threads }) : null;
  try {
    let state: RunState = { identity, history: [] };
    let start = 0;
    const ck = readCheckpoint<RunState>(o.out);
    if (ck) {
      if (ck.state.identity !== identity)
        throw new ThinkwhenError(
          'RL_RUN_MISMATCH',
          `the checkpoint of ${o.out} comes from a run with other settings`,
          `rerun with the same settings, or delete ${o.out}.ckpt.json to start over`,
        );
      restoreCheckpoint(tr, o.out);
      start = ck.step;
      state = ck.state;
    }
    const rolloutPath = join(dirname(o.out), 'rollout-policy.gguf');
    const mode = o.advantage ?? 'std';
    const micro = o.microBatch ?? 16;
    for (let step = start; step < o.steps; step++) {
      const ts = performance.now();
      const problems = task.problems(step, o.problemsPerStep);
      await tr.save(rolloutPath);
      const total = problems.length * o.groupSize;
      const completions = await sampleCompletions(
        rolloutPath,
        problems.flatMap((p, i) =>
          Array.from({ length: o.groupSize }, (_, g) => ({
            prompt: task.prompt(p),
            seed: sampleSeed(o.seed ?? 0, step, i, g),
          })),
        ),
        {
          temperature: o.temperature ?? 1,
          maxTokens: o.maxTokens,
          threads: o.threads,
          onBatch: (done) => o.onRollout?.(done, total),
        },
      );
      const rewards = completions.map((c, k) => task.reward(problems[Math.floor(k / o.groupSize)], c));
      const lengths = completions.map((c) => c.tokens.length);
      const scores = rewards.map((r, k) => r - (o.tokenCost ?? 0) * lengths[k]);
      const advantages: number[] = [];
      let flatGroups = 0;
      for (let i = 0; i < problems.length; i++) {
        const a = groupAdvantages(scores.slice(i * o.groupSize, (i + 1) * o.groupSize), mode);
        if (a.every((x) => x === 0)) flatGroups++;
        advantages.push(...a);
      }
      const sampled = completions
        .map((c, k) => ({ prompt: c.prompt, target: c.tokens, advantage: advantages[k] }))
        .filter((e) => e.target.length > 0);
      const kl = ref ? await klToReference(tr, ref, sampled, micro) : undefined;
      // without a KL penalty a sample of advantage 0 contributes nothing; with one, every sample does
      const examples: Example[] =
        kl && beta > 0
          ? sampled.map((e, i) => ({
              ...e,
              weight: kl.logRatios[i].map((lr) => e.advantage + beta * (Math.exp(lr) - 1)),
            }))
          : sampled.filter((e) => e.advantage !== 0).map((e) => ({ ...e, weight: e.advantage }));
      const tokens = lengths.reduce((a, b) => a + b, 0);
      const lr = scheduledLr(o.lr ?? 1e-4, step, o.steps, 'constant', o.warmupSteps ?? 0);
      let lossSum = 0;
      if (examples.length > 0) {
        for (let i = 0; i < examples.length; i += micro) {
          const { steer: _, ...b } = exampleBatch(examples.slice(i, i + micro));
          const r = await tr.run({ ...b, lossScale: 1 / tokens, backward: true });
          if (!Number.isFinite(r.loss))
            throw new ThinkwhenError(
              'RL_NON_FINITE_LOSS',
              `the policy-gradient loss is ${r.loss} at step ${step + 1}`,
              'lower the learning rate (--lr) and rerun: the last checkpoint is kept',
            );
          lossSum += r.loss * r.nTargets;
        }
        await tr.step({ lr, weightDecay: o.weightDecay ?? 0 });
      }
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const stats: GrpoStepStats = {
        step: step + 1,
        reward: mean(rewards),
        score: mean(scores),
        length: mean(lengths),
        stopped: completions.filter((c) => c.stopped).length / completions.length,
        flatGroups,
        loss: lossSum / tokens,
        lr,
        seconds: (performance.now() - ts) / 1000,
        ...(kl ? { kl: kl.meanK3 } : {}),
        ...(task.metrics
          ? { metrics: meanMetrics(completions.map((c, k) => task.metrics!(problems[Math.floor(k / o.groupSize)], c))) }
          : {}),
      };
      state.history.push(stats);
      o.onStep?.(stats);
      const every = o.checkpointEvery ?? 10;
      if ((step + 1) % every === 0 && step + 1 < o.steps) await saveCheckpoint(tr, o.out, step + 1, state);
    }
    await tr.save(`${o.out}.tmp`);
    renameSync(`${o.out}.tmp`, o.out);
    writeFileSync(`${recordFile(o.out)}.tmp`, JSON.stringify(state));
    renameSync(`${recordFile(o.out)}.tmp`, recordFile(o.out));
    removeCheckpoint(o.out);
    rmSync(rolloutPath, { force: true });
    return {
      out: o.out,
      history: state.history,
      resumedFrom: start,
      cached: false,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    tr.free();
    ref?.free();
  }
}

/** log π(y_t) of every target token of each example, under the trainer's current weights. */
async function targetLogProbs(tr: Trainer, examples: Example[], micro: number): Promise<Float64Array[]> {
  const out: Float64Array[] = [];
  for (let i = 0; i < examples.length; i += micro) {
    const chunk = examples.slice(i, i + micro).map((e) => ({ prompt: e.prompt, target: e.target }));
    const { steer: _, ...b } = exampleBatch(chunk);
    const r = await tr.run({ ...b, logits: true });
    const V = tr.nVocab;
    chunk.forEach((e, j) => {
      const lp = new Float64Array(e.target.length);
      for (let t = 0; t < e.target.length; t++) {
        const row = (j * b.seqLen + e.prompt.length - 1 + t) * V;
        lp[t] = logProb(r.logits!.subarray(row, row + V), e.target[t]);
      }
      out.push(lp);
    });
  }
  return out;
}

/** log r is clamped to ±10: a token the policy has all but ruled out (r = e^40, say) cannot blow up a step. */
const MAX_LOG_RATIO = 10;

/**
 * log r_t = log π_ref(y_t) − log π(y_t) of every sampled token (clamped), and the mean per-token k3
 * estimate of KL(π ‖ π_ref), r − log r − 1. The penalty's gradient β (1 − r) ∇ log π(y_t) is the
 * per-token loss weight β (r − 1) added to the advantage.
 */
async function klToReference(
  tr: Trainer,
  ref: Trainer,
  examples: Example[],
  micro: number,
): Promise<{ logRatios: Float64Array[]; meanK3: number }> {
  const pol = await targetLogProbs(tr, examples, micro);
  const base = await targetLogProbs(ref, examples, micro);
  let k3 = 0;
  let n = 0;
  const logRatios = base.map((b, i) =>
    b.map((lb, t) => {
      const logR = Math.min(MAX_LOG_RATIO, Math.max(-MAX_LOG_RATIO, lb - pol[i][t]));
      k3 += Math.exp(logR) - logR - 1;
      n++;
      return logR;
    }),
  );
  return { logRatios, meanK3: n ? k3 / n : 0 };
}
