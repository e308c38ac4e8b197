// Training every weight of a small model (mode 'weights') on token sequences: next-token
// cross-entropy (natural log), AdamW, cosine schedule with warm-up, periodic evaluation with early
// stopping and best-state restore. Save the result with trainer.save(path): stock llama.cpp loads it.
import { ThinkwhenError } from '../errors.ts';
import { type BatchOptions, sequenceBatch } from './batch.ts';
import { type AdamOptions, accumulateAndStep, EarlyStopping, evaluate, type Schedule, scheduledLr } from './loop.ts';
import { rng } from './rng.ts';
import type { Trainer } from './trainer.ts';

export interface WeightTrainOptions {
  sequences: number[][];
  heldOut?: number[][];
  /** sequences per optimizer step (default 8) */
  batchSize?: number;
  /** sequences per graph run; smaller = gradient accumulation (default batchSize) */
  microBatch?: number;
  steps: number;
  adam?: Partial<AdamOptions>;
  schedule?: Schedule;
  warmupSteps?: number;
  /** evaluate every this many steps (default 50) */
  evalEvery?: number;
  /** evaluations without improvement before stopping (default: never stop) */
  patience?: number;
  minDelta?: number;
  seed?: number;
  batchOptions?: BatchOptions;
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
  tokens: number;
  seconds: number;
}

export async function trainWeights(tr: Trainer, o: WeightTrainOptions): Promise<WeightTrainResult> {
  if (tr.info.mode !== 'weights')
    throw new ThinkwhenError('WRONG_MODE', "weight training needs a trainer opened with mode 'weights'");
  if (o.sequences.length === 0) throw new ThinkwhenError('NO_EXAMPLES', 'no training sequences');
  const bs = o.batchSize ?? 8;
  const micro = Math.min(o.microBatch ?? bs, bs);
  const lr = o.adam?.lr ?? 1e-3;
  const loss = { logitScale: 1, base10: false };
  const rand = rng(o.seed ?? 0);
  const evalEvery = o.evalEvery ?? 50;
  const stop = new EarlyStopping(o.patience ?? Number.POSITIVE_INFINITY, o.minDelta ?? 0);
  const heldOut = o.heldOut?.length
    ? Array.from({ length: Math.ceil(o.heldOut.length / micro) }, (_, i) =>
        sequenceBatch(o.heldOut!.slice(i * micro, (i + 1) * micro), o.batchOptions),
      )
    : undefined;
  const snapshot = () => new Map(tr.info.tensors.map((n) => [n, tr.param(n)]));
  let best: Map<string, Float32Array> | undefined;
  const result: WeightTrainResult = {
    evals: [],
    bestStep: -1,
    bestLoss: Number.POSITIVE_INFINITY,
    steps: 0,
    tokens: 0,
    seconds: 0,
  };
  const t0 = performance.now();
  let window = 0;
  let windowN = 0;
  for (let step = 0; step < o.steps; step++) {
    const pick = Array.from({ length: bs }, () => o.sequences[Math.floor(rand() * o.sequences.length)]);
    const batches: ReturnType<typeof sequenceBatch>[] = [];
    for (let i = 0; i < pick.length; i += micro) batches.push(sequenceBatch(pick.slice(i, i + micro), o.batchOptions));
    const lrNow = scheduledLr(lr, step, o.steps, o.schedule ?? 'cosine', o.warmupSteps ?? 0);
    window += await accumulateAndStep(tr, batches, loss, { ...o.adam, lr: lrNow });
    windowN++;
    result.steps++;
    result.tokens += pick.reduce((n, s) => n + s.length, 0);
    if ((step + 1) % evalEvery === 0 || step === o.steps - 1) {
      const e: WeightEval = {
        step: step + 1,
        trainLoss: window / windowN,
        lr: lrNow,
        tokensPerSecond: result.tokens / ((performance.now() - t0) / 1000),
      };
      if (heldOut) e.heldOutLoss = await evaluate(tr, heldOut, loss);
      window = 0;
      windowN = 0;
      result.evals.push(e);
      o.onEval?.(e);
      const v = stop.update(e.heldOutLoss ?? e.trainLoss, e.step);
      if (v === 'improved' && o.patience !== undefined) best = snapshot();
      if (v === 'stop') break;
    }
  }
  if (best) for (const [n, d] of best) tr.setParam(n, d);
  result.bestStep = stop.bestEpoch;
  result.bestLoss = stop.best;
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}
