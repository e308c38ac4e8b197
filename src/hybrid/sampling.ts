// The hybrid's random draws at temperature > 0 (pass@k). The paper's rule draws where it would
// take an argmax of the base model: the token emitted at an agreement (`tok_u = sample(ℓ_B, T)`)
// and each steered candidate (`tok = sample(ℓ_S, T)`); the gate compares greedy tokens and the
// guardrail takes the best-scored candidate, as at T = 0 (docs/method.md §2.7).
//
// Every draw has its own seed, from (seed, problem id, sample index, step, slot): the fast loop
// skips candidates (early exit), runs ahead (speculation) and batches problems, so a shared random
// stream would be consumed in another order than the reference's. Keyed draws are the same whatever
// is computed around them, so the fast loop and the reference emit the same tokens, and sample i of
// a problem is the same in every run, batch and shard.
import { createSampler } from '../engine/sampling.ts';
import type { ResolvedOptions } from './options.ts';
import { hashString } from './policies.ts';
import { argmaxMargin } from './step.ts';

/** The slot of the base model's own token; grid cell i (coefficients outer, windows inner) is slot 1 + i. */
export const BASE_SLOT = 0;
export const cellSlot = (cell: number) => 1 + cell;

/** What keys a generation's draws: its problem id and sample index. */
export interface DrawKey {
  id: string;
  sample: number;
}

export class Draws {
  constructor(private readonly opts: Pick<ResolvedOptions, 'temperature' | 'topP' | 'seed'>) {}

  get greedy(): boolean {
    return this.opts.temperature === 0;
  }

  /** The token of (key, step, slot): the argmax at temperature 0 (first index on ties), else a keyed draw. */
  pick(logits: Float32Array, key: DrawKey, step: number, slot: number): number {
    if (this.greedy) return argmaxMargin(logits).id;
    const seed = hashString(`${this.opts.seed}\u0000${key.id}\u0000${key.sample}\u0000${step}\u0000${slot}`);
    return createSampler({ temperature: this.opts.temperature, topP: this.opts.topP, seed })(logits);
  }
}
