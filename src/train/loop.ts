// Optimisation policy shared by vector and weight training: Adam(W) settings, learning-rate
// schedules, early stopping with patience and best-state restore, gradient accumulation.
import { ThinkwhenError } from '../errors.ts';
import { countTargets } from './batch.ts';
import type { NativeRunBatch } from './native.ts';
import type { Trainer } from './trainer.ts';

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** decoupled weight decay (AdamW); 0 = Adam */
  weightDecay?: number;
}

export type Schedule = 'cosine' | 'constant';

/** Learning rate at optimizer step `step` (0-based) of `total`: cosine from lr to 0, after a linear warm-up. */
export function scheduledLr(lr: number, step: number, total: number, schedule: Schedule, warmup = 0): number {
  if (warmup > 0 && step < warmup) return (lr * (step + 1)) / warmup;
  if (schedule === 'constant') return lr;
  const span = Math.max(1, total - warmup);
  const t = Math.min(1, (step - warmup) / span);
  return 0.5 * lr * (1 + Math.cos(Math.PI * t));
}

/** Early stopping on a loss that should go down: improvement iff loss + minDelta < best. */
export class EarlyStopping {
  best = Number.POSITIVE_INFINITY;
  bestEpoch = -1;
  private bad = 0;

  constructor(
    readonly patience: number,
    readonly minDelta: number,
  ) {}

  /** Returns 'improved', 'wait' or 'stop'. */
  update(loss: number, epoch: number): 'improved' | 'wait' | 'stop' {
    if (loss + this.minDelta < this.best) {
      this.best = loss;
      this.bestEpoch = epoch;
      this.bad = 0;
      return 'improved';
    }
    this.bad++;
    return this.bad >= this.patience ? 'stop' : 'wait';
  }
}

export interface LossOptions {
  /** logits are multiplied by this before the softmax (the paper: 0.7) */
  logitScale: number;
  /** report and optimise the loss in base-10 units (divide by ln 10), as the paper does */
  base10: boolean;
}

/**
 * One optimizer step over a minibatch given as micro-batches (gradient accumulation): the loss is the
 * mean cross-entropy over every scored token of the whole minibatch. Returns that mean.
 */
export async function accumulateAndStep(
  tr: Trainer,
  micro: NativeRunBatch[],
  loss: LossOptions,
  adam: AdamOptions & { lr: number },
): Promise<number> {
  const total = micro.reduce((n, b) => n + countTargets(b), 0);
  if (total === 0) throw new ThinkwhenError('NO_TARGETS', 'minibatch has no target tokens');
  const unit = loss.base10 ? Math.LN10 : 1;
  let sum = 0;
  for (const b of micro) {
    const n = countTargets(b);
    if (n === 0) continue;
    const r = await tr.run({ ...b, logitScale: loss.logitScale, lossScale: 1 / (total * unit), backward: true });
    sum += r.loss * r.nTargets;
  }
  await tr.step(adam);
  return sum / total / unit;
}

/** Mean loss over batches (no gradients), in the same units as training. */
export async function evaluate(tr: Trainer, batches: NativeRunBatch[], loss: LossOptions): Promise<number> {
  let sum = 0;
  let n = 0;
  for (const b of batches) {
    if (countTargets(b) === 0) continue;
    const r = await tr.run({ ...b, logitScale: loss.logitScale, backward: false });
    sum += r.loss * r.nTargets;
    n += r.nTargets;
  }
  if (n === 0) throw new ThinkwhenError('NO_TARGETS', 'nothing to evaluate: no target tokens');
  return sum / n / (loss.base10 ? Math.LN10 : 1);
}
