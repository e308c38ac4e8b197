// Right-padded batches for the training graph.
import { ThinkwhenError } from '../errors.ts';
import type { NativeRunBatch } from './native.ts';

/** A prompt and the continuation to score (the paper: question prompt + one thinking sentence). */
export interface Example {
  prompt: ArrayLike<number>;
  target: ArrayLike<number>;
  /**
   * Loss weight of the target tokens: one number for all of them (a per-sequence weight such as a
   * policy-gradient advantage; negative pushes the sequence's probability down, 0 = not scored) or
   * one per target token. Default 1 (plain cross-entropy).
   */
  weight?: number | ArrayLike<number>;
}

export interface BatchOptions {
  /** token written into padding (never read by real positions); default 0 */
  padToken?: number;
  /** round the padded length up to a multiple of this (fewer distinct graph shapes); default 1 */
  padMultiple?: number;
  /**
   * where exampleBatch adds the vectors: 'target' (default, the paper) at the target tokens
   * P … P+T−1; 'predictors' at the rows whose outputs predict them, P−1 … P+T−2, so that the
   * first target token (predicted from the last prompt row) also gets a gradient
   */
  steerRows?: 'target' | 'predictors';
}

function shape(lengths: number[], opts: BatchOptions) {
  const m = opts.padMultiple ?? 1;
  const T = Math.ceil(Math.max(...lengths) / m) * m;
  return { B: lengths.length, T };
}

/**
 * The paper's layout: tokens = prompt ++ target; positions prompt_len-1 .. len-2 predict the target
 * tokens; vectors are added at the target positions prompt_len .. len-1 (never at prompt positions),
 * or one row earlier with `steerRows: 'predictors'`.
 */
export function exampleBatch(examples: Example[], opts: BatchOptions = {}): NativeRunBatch {
  if (examples.length === 0) throw new ThinkwhenError('EMPTY_BATCH', 'no examples in the batch');
  const lengths = examples.map((e) => e.prompt.length + e.target.length);
  const { B, T } = shape(lengths, opts);
  const tokens = new Int32Array(B * T).fill(opts.padToken ?? 0);
  const targets = new Int32Array(B * T).fill(-1);
  const steer = new Float32Array(B * T);
  const weighted = examples.some((e) => e.weight !== undefined);
  const weights = weighted ? new Float32Array(B * T) : undefined;
  const shift = opts.steerRows === 'predictors' ? 1 : 0;
  examples.forEach((e, b) => {
    const P = e.prompt.length;
    if (P < 1 || e.target.length < 1) {
      throw new ThinkwhenError('BAD_EXAMPLE', `example ${b} needs a non-empty prompt and target`);
    }
    const w = e.weight ?? 1;
    if (typeof w !== 'number' && w.length !== e.target.length)
      throw new ThinkwhenError(
        'BAD_EXAMPLE',
        `example ${b} has ${w.length} weights for ${e.target.length} target tokens`,
        'give one weight per target token, or one number for all of them',
      );
    const row = b * T;
    for (let i = 0; i < P; i++) tokens[row + i] = e.prompt[i];
    for (let i = 0; i < e.target.length; i++) {
      tokens[row + P + i] = e.target[i];
      targets[row + P - 1 + i] = e.target[i];
      steer[row + P + i - shift] = 1;
      if (weights) {
        const wi = typeof w === 'number' ? w : w[i];
        if (!Number.isFinite(wi))
          throw new ThinkwhenError('BAD_EXAMPLE', `example ${b} has a non-finite weight (${wi}) at target token ${i}`);
        weights[row + P - 1 + i] = wi;
      }
    }
  });
  const batch: NativeRunBatch = { nSeq: B, seqLen: T, tokens, lengths: Int32Array.from(lengths), targets, steer };
  if (weights) batch.weights = weights;
  return batch;
}

/** Language-model batches: every position but the last predicts the next token. */
export function sequenceBatch(seqs: ArrayLike<number>[], opts: BatchOptions = {}): NativeRunBatch {
  if (seqs.length === 0) throw new ThinkwhenError('EMPTY_BATCH', 'no sequences in the batch');
  const lengths = seqs.map((s) => s.length);
  if (lengths.some((n) => n < 2)) throw new ThinkwhenError('BAD_EXAMPLE', 'sequences need at least 2 tokens');
  const { B, T } = shape(lengths, opts);
  const tokens = new Int32Array(B * T).fill(opts.padToken ?? 0);
  const targets = new Int32Array(B * T).fill(-1);
  seqs.forEach((s, b) => {
    for (let i = 0; i < s.length; i++) tokens[b * T + i] = s[i];
    for (let i = 0; i + 1 < s.length; i++) targets[b * T + i] = s[i + 1];
  });
  return { nSeq: B, seqLen: T, tokens, lengths: Int32Array.from(lengths), targets };
}

export function countTargets(b: NativeRunBatch): number {
  let n = 0;
  for (let i = 0; i < b.targets.length; i++) if (b.targets[i] >= 0) n++;
  return n;
}
