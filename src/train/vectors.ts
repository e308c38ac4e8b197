// Steering-vector training (docs/method.md §2.6): one free F32 vector added to the residual stream at
// the target positions, trained by Adam to raise the model's likelihood of the target text. The
// defaults are the paper's: logits x 0.7, loss in base-10 units, lr 1e-2 with a cosine schedule
// to 0, 50 epochs, early stopping on the epoch's mean training loss (min delta 0.001, patience 10)
// with the best epoch's vector restored, initialisation randn / ||randn|| (norm 1).
import { ThinkwhenError } from '../errors.ts';
import { type BatchOptions, type Example, exampleBatch } from './batch.ts';
import { type AdamOptions, accumulateAndStep, EarlyStopping, evaluate, type Schedule, scheduledLr } from './loop.ts';
import { norm, permutation, randn, rng } from './rng.ts';
import type { HookSite, Trainer } from './trainer.ts';

export interface VectorTrainOptions {
  layer: number;
  /** default 'resid_pre' (the paper's forward pre-hook on block L) */
  site?: HookSite;
  train: Example[];
  /** held-out examples, scored before and after (and each epoch when evalEachEpoch) */
  heldOut?: Example[];
  /** frozen vectors added at the same positions (the paper's bias vector for category vectors) */
  frozen?: Float32Array[];
  /** initial vector (default randn normalised to initNorm) */
  init?: Float32Array;
  initNorm?: number;
  /** examples per optimizer step (default 2) */
  batchSize?: number;
  /** examples per graph run; smaller than batchSize = gradient accumulation (default batchSize) */
  microBatch?: number;
  epochs?: number;
  adam?: Partial<AdamOptions>;
  schedule?: Schedule;
  warmupSteps?: number;
  logitScale?: number;
  base10?: boolean;
  patience?: number;
  minDelta?: number;
  seed?: number;
  evalEachEpoch?: boolean;
  batchOptions?: BatchOptions;
  onEpoch?: (e: VectorEpoch) => void;
}

export interface VectorEpoch {
  epoch: number;
  trainLoss: number;
  heldOutLoss?: number;
  lr: number;
  vectorNorm: number;
}

export interface VectorTrainResult {
  vector: Float32Array;
  bestEpoch: number;
  bestLoss: number;
  epochs: VectorEpoch[];
  steps: number;
  heldOutBefore?: number;
  heldOutAfter?: number;
  stoppedEarly: boolean;
}

export const PAPER_VECTOR_DEFAULTS = {
  lr: 1e-2,
  epochs: 50,
  logitScale: 0.7,
  base10: true,
  patience: 10,
  minDelta: 0.001,
  initNorm: 1,
  schedule: 'cosine' as Schedule,
};

function chunks<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

export async function trainVector(tr: Trainer, o: VectorTrainOptions): Promise<VectorTrainResult> {
  if (tr.info.mode !== 'vectors')
    throw new ThinkwhenError('WRONG_MODE', "vector training needs a trainer opened with mode 'vectors'");
  if (o.train.length === 0) throw new ThinkwhenError('NO_EXAMPLES', 'no training examples');
  const d = PAPER_VECTOR_DEFAULTS;
  const site = o.site ?? 'resid_pre';
  const bs = o.batchSize ?? 2;
  const micro = Math.min(o.microBatch ?? bs, bs);
  const epochs = o.epochs ?? d.epochs;
  const lr = o.adam?.lr ?? d.lr;
  const schedule = o.schedule ?? d.schedule;
  const loss = { logitScale: o.logitScale ?? d.logitScale, base10: o.base10 ?? d.base10 };
  const seed = o.seed ?? 0;
  const rand = rng(seed);
  let init = o.init;
  if (!init) {
    init = randn(tr.nEmbd, rand);
    const s = (o.initNorm ?? d.initNorm) / norm(init);
    for (let i = 0; i < init.length; i++) init[i] *= s;
  }
  tr.setVectors([
    { layer: o.layer, site, data: Float32Array.from(init) },
    ...(o.frozen ?? []).map((f) => ({ layer: o.layer, site, data: f, trainable: false })),
  ]);
  const bopts = o.batchOptions ?? {};
  const heldOut =
    o.heldOut && o.heldOut.length > 0 ? chunks(o.heldOut, micro).map((c) => exampleBatch(c, bopts)) : undefined;
  const result: VectorTrainResult = {
    vector: tr.vector(0),
    bestEpoch: -1,
    bestLoss: Number.POSITIVE_INFINITY,
    epochs: [],
    steps: 0,
    stoppedEarly: false,
  };
  if (heldOut) result.heldOutBefore = await evaluate(tr, heldOut, loss);
  const stepsPerEpoch = Math.ceil(o.train.length / bs);
  const total = epochs * stepsPerEpoch;
  const stop = new EarlyStopping(o.patience ?? d.patience, o.minDelta ?? d.minDelta);
  let best = tr.vector(0);
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = permutation(o.train.length, rand);
    let sum = 0;
    let lrNow = lr;
    for (const mb of chunks(order, bs)) {
      lrNow = scheduledLr(lr, result.steps, total, schedule, o.warmupSteps ?? 0);
      const batches = chunks(mb, micro).map((c) =>
        exampleBatch(
          c.map((i) => o.train[i]),
          bopts,
        ),
      );
      sum += await accumulateAndStep(tr, batches, loss, { ...o.adam, lr: lrNow });
      result.steps++;
    }
    const e: VectorEpoch = { epoch, trainLoss: sum / stepsPerEpoch, lr: lrNow, vectorNorm: norm(tr.vector(0)) };
    if (heldOut && o.evalEachEpoch) e.heldOutLoss = await evaluate(tr, heldOut, loss);
    result.epochs.push(e);
    o.onEpoch?.(e);
    const verdict = stop.update(e.trainLoss, epoch);
    if (verdict === 'improved') best = tr.vector(0);
    if (verdict === 'stop') {
      result.stoppedEarly = true;
      break;
    }
  }
  // Restore the best epoch's vector.
  tr.setVectors([
    { layer: o.layer, site, data: best },
    ...(o.frozen ?? []).map((f) => ({ layer: o.layer, site, data: f, trainable: false })),
  ]);
  result.vector = best;
  result.bestEpoch = stop.bestEpoch;
  result.bestLoss = stop.best;
  if (heldOut) result.heldOutAfter = await evaluate(tr, heldOut, loss);
  return result;
}
