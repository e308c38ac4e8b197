// Training every weight of a small model (mode 'weights'): next-token cross-entropy (natural log)
// on the scored tokens only (a prompt is context, its tokens are not scored), AdamW, cosine schedule
// with warm-up, batches of similar length drawn epoch by epoch, periodic evaluation with early
// stopping and best-state restore, and resumable checkpoints (weights, Adam moments, loop state):
// a run resumed from a checkpoint takes exactly the steps the uninterrupted run would have taken.
import { renameSync } from 'node:fs';
import { ThinkwhenError } from '../errors.ts';
import { Rng } from '../rng.ts';
import { type BatchOptions, type Example, exampleBatch } from './batch.ts';
import { readCheckpoint, removeCheckpoint, restoreCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { type AdamOptions, accumulateAndStep, EarlyStopping, evaluate, type Schedule, scheduledLr } from './loop.ts';
import type { NativeRunBatch } from './native.ts';
import type { Trainer } from './trainer.ts';

/** A language-model sequence (every token after the first is scored) or a prompt + scored target. */
export type TrainingItem = ArrayLike<number> | Example;

export interface WeightTrainOptions {
  /** training data: plain sequences, or examples whose prompt is context only */
  data: TrainingItem[];
  heldOut?: TrainingItem[];
  /** sequences per optimizer step (default 8) */
  batchSize?: number;
  /** sequences per graph run; smaller = gradient accumulation (default batchSize) */
  microBatch?: number;
  steps: number;
  adam?: Partial<AdamOptions>;
  schedule?: Schedule;
  warmupSteps?: number;
  /** evaluate (and call onEval) every this many steps (default 50) */
  evalEvery?: number;
  /** evaluations without improvement before stopping (default: never stop) */
  patience?: number;
  minDelta?: number;
  seed?: number;
  batchOptions?: BatchOptions;
  /**
   * Resumable run: a checkpoint next to `path` every `every` steps; a call with the same options
   * continues from the last one. Not with `patience` (the best state is not checkpointed).
   */
  checkpoint?: { path: string; every: number };
  /** write the trained weights here (temp file + rename), then delete the checkpoint */
  out?: string;
  onEval?: (e: WeightEval) => void;
}

export interface WeightEval {
  step: number;
  trainLoss: number;
  heldOutLoss?: number;
  lr: number;
  tokensPerSecond: number;
}

export interface WeightTrainResult {
  evals: WeightEval[];
  bestStep: number;
  bestLoss: number;
  steps: number;
  /** tokens in the batches (padding excluded), over all resumed runs */
  tokens: number;
  /** training time over all resumed runs */
  seconds: number;
}

/** What a checkpoint keeps of the loop besides weights and optimizer. */
interface LoopState {
  evals: WeightEval[];
  tokens: number;
  seconds: number;
  window: number;
  windowN: number;
}

const asExample = (x: TrainingItem): Example =>
  'prompt' in x ? x : { prompt: Array.prototype.slice.call(x, 0, 1), target: Array.prototype.slice.call(x, 1) };
const lengthOf = (e: Example) => e.prompt.length + e.target.length;

/**
 * Batch after batch, forever: each epoch a seeded shuffle, then inside windows of 8 batches the
 * examples are sorted by length (less padding) and the batches of a window shuffled again.
 */
export function* lengthGroupedBatches(examples: Example[], batchSize: number, rng: Rng): Generator<Example[]> {
  if (examples.length < batchSize)
    throw new ThinkwhenError('NO_EXAMPLES', `${examples.length} examples cannot fill a batch of ${batchSize}`);
  for (;;) {
    const order = rng.permutation(examples.length);
    const w = batchSize * 8;
    for (let s = 0; s + batchSize <= order.length; s += w) {
      const win = order.slice(s, s + w).sort((a, b) => lengthOf(examples[a]) - lengthOf(examples[b]));
      const group: Example[][] = [];
      for (let k = 0; k + batchSize <= win.length; k += batchSize)
        group.push(win.slice(k, k + batchSize).map((i) => examples[i]));
      yield* rng.shuffle(group);
    }
  }
}

/** The graph batches of one optimizer step: micro-batches of the examples, no steering mask. */
function stepBatches(examples: Example[], micro: number, opts: BatchOptions): NativeRunBatch[] {
  const out: NativeRunBatch[] = [];
  for (let i = 0; i < examples.length; i += micro) {
    const { steer: _, ...b } = exampleBatch(examples.slice(i, i + micro), opts);
    out.push(b);
  }
  return out;
}

export async function trainWeights(tr: Trainer, o: WeightTrainOptions): Promise<WeightTrainResult> {
  if (tr.info.mode !== 'weights')
    throw new ThinkwhenError('WRONG_MODE', "weight training needs a trainer opened with mode 'weights'");
  if (o.data.length === 0) throw new ThinkwhenError('NO_EXAMPLES', 'no training data');
  if (o.checkpoint && o.patience !== undefined)
    throw new ThinkwhenError(
      'BAD_OPTIONS',
      'checkpoints do not keep the best state of early stopping',
      'use either checkpoint or patience',
    );
  const bs = o.batchSize ?? 8;
  const micro = Math.min(o.microBatch ?? bs, bs);
  const lr = o.adam?.lr ?? 1e-3;
  const loss = { logitScale: 1, base10: false };
  const evalEvery = o.evalEvery ?? 50;
  const bopts = o.batchOptions ?? {};
  const examples = o.data.map(asExample);
  const stop = new EarlyStopping(o.patience ?? Number.POSITIVE_INFINITY, o.minDelta ?? 0);
  const heldOut = o.heldOut?.length ? stepBatches(o.heldOut.map(asExample), micro, bopts) : undefined;
  const snapshot = () => new Map(tr.info.tensors.map((n) => [n, tr.param(n)]));
  let best: Map<string, Float32Array> | undefined;

  let start = 0;
  let st: LoopState = { evals: [], tokens: 0, seconds: 0, window: 0, windowN: 0 };
  const ck = o.checkpoint ? readCheckpoint<LoopState>(o.checkpoint.path) : null;
  if (o.checkpoint && ck) {
    restoreCheckpoint(tr, o.checkpoint.path);
    start = ck.step;
    st = ck.state;
  }
  const it = lengthGroupedBatches(examples, bs, new Rng(o.seed ?? 0));
  for (let s = 0; s < start; s++) it.next(); // the batches the checkpointed steps took

  let t0 = performance.now();
  let windowTokens = 0;
  let windowSeconds = 0;
  let stepsDone = start;
  for (let step = start; step < o.steps; step++) {
    const pick = it.next().value as Example[];
    const lrNow = scheduledLr(lr, step, o.steps, o.schedule ?? 'cosine', o.warmupSteps ?? 0);
    st.window += await accumulateAndStep(tr, stepBatches(pick, micro, bopts), loss, { ...o.adam, lr: lrNow });
    st.windowN++;
    stepsDone = step + 1;
    const n = pick.reduce((a, e) => a + lengthOf(e), 0);
    st.tokens += n;
    windowTokens += n;
    const now = performance.now();
    st.seconds += (now - t0) / 1000;
    windowSeconds += (now - t0) / 1000;
    t0 = now;
    if (stepsDone % evalEvery === 0 || stepsDone === o.steps) {
      const e: WeightEval = {
        step: stepsDone,
        trainLoss: st.window / st.windowN,
        lr: lrNow,
        tokensPerSecond: windowTokens / Math.max(windowSeconds, 1e-9),
      };
      if (heldOut) e.heldOutLoss = await evaluate(tr, heldOut, loss);
      st.window = 0;
      st.windowN = 0;
      st.evals.push(e);
      o.onEval?.(e);
      windowTokens = 0;
      windowSeconds = 0;
      const v = stop.update(e.heldOutLoss ?? e.trainLoss, e.step);
      if (v === 'improved' && o.patience !== undefined) best = snapshot();
      if (v === 'stop') break;
    }
    if (o.checkpoint && stepsDone % o.checkpoint.every === 0 && stepsDone < o.steps) {
      await saveCheckpoint(tr, o.checkpoint.path, stepsDone, st);
      t0 = performance.now();
    }
  }
  if (best) for (const [n, d] of best) tr.setParam(n, d);
  if (o.out) {
    await tr.save(`${o.out}.tmp`);
    renameSync(`${o.out}.tmp`, o.out);
  }
  if (o.checkpoint) removeCheckpoint(o.checkpoint.path);
  return {
    evals: st.evals,
    bestStep: stop.bestEpoch,
    bestLoss: stop.best,
    steps: stepsDone,
    tokens: st.tokens,
    seconds: st.seconds,
  };
}

/** Seconds per optimizer step on this machine (median of `n` steps after one warm-up); the weights change. */
export async function secondsPerStep(tr: Trainer, data: TrainingItem[], batchSize: number, n = 5): Promise<number> {
  const it = lengthGroupedBatches(data.map(asExample), batchSize, new Rng(99));
  const times: number[] = [];
  for (let i = 0; i <= n; i++) {
    const b = stepBatches(it.next().value as Example[], batchSize, {});
    const t0 = performance.now();
    await accumulateAndStep(tr, b, { logitScale: 1, base10: false }, { lr: 0 });
    if (i > 0) times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
