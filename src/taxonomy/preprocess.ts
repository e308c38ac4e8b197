/**
 * Preprocessing of stored sentence activations (docs/method.md §2.2): sentence means over activation rows,
 * the running mean μ_L of the thinking-span vectors, and the final features x = (a − μ_L)/‖a − μ_L‖₂.
 * Accumulation is in float64; results are float32 like the reference's fp32 tensors.
 */
import { ThinkwhenError } from '../errors.ts';
import type { RowRange } from '../traces/spans.ts';

/** Mean of rows `[range.start, range.end)` of a row-major (tokens × dim) activation matrix. */
export function meanOfRows(acts: Float32Array, dim: number, range: RowRange): Float32Array {
  const rows = acts.length / dim;
  if (range.start < 0 || range.end > rows || range.start >= range.end) {
    throw new ThinkwhenError(
      'rows-out-of-range',
      `row range [${range.start}, ${range.end}) is empty or outside an activation matrix of ${rows} rows`,
      'locate sentences with locateSentence() on the same text the activations were captured from',
    );
  }
  const acc = new Float64Array(dim);
  for (let r = range.start; r < range.end; r++) {
    const base = r * dim;
    for (let d = 0; d < dim; d++) acc[d] += acts[base + d];
  }
  const out = new Float32Array(dim);
  const n = range.end - range.start;
  for (let d = 0; d < dim; d++) out[d] = acc[d] / n;
  return out;
}

/** The reference's running mean: mean ← mean + (v − mean)/(count + 1), one vector per response. */
export class RunningMean {
  readonly mean: Float64Array;
  count = 0;

  constructor(readonly dim: number) {
    this.mean = new Float64Array(dim);
  }

  update(v: ArrayLike<number>): void {
    if (v.length !== this.dim) {
      throw new ThinkwhenError(
        'width-mismatch',
        `vector of width ${v.length} added to a running mean of width ${this.dim}`,
        'use activations from one model and layer per running mean',
      );
    }
    const k = this.count + 1;
    for (let d = 0; d < this.dim; d++) this.mean[d] += (v[d] - this.mean[d]) / k;
    this.count = k;
  }

  toFloat32(): Float32Array {
    return Float32Array.from(this.mean);
  }
}

/**
 * In place: every row x ← (x − μ)/‖x − μ‖₂. A row equal to μ has no direction; it is left at zero
 * (the reference would divide by zero and produce NaN).
 */
export function centerAndNormalize(x: Float32Array, dim: number, mean: ArrayLike<number>): Float32Array {
  if (mean.length !== dim || x.length % dim !== 0) {
    throw new ThinkwhenError(
      'width-mismatch',
      `activations of width ${dim} (${x.length} values) cannot be centred with a mean of width ${mean.length}`,
      'centre with the thinking-span mean saved with the same layer of the same model',
    );
  }
  const rows = x.length / dim;
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let sq = 0;
    for (let d = 0; d < dim; d++) {
      const v = x[base + d] - mean[d];
      x[base + d] = v;
      sq += v * v;
    }
    const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    for (let d = 0; d < dim; d++) x[base + d] *= inv;
  }
  return x;
}

/**
 * Ambiguity A2 (docs/method.md §7): the SAE is trained on centred, normalised sentence means, but the
 * reference annotates traces (§2.5) and steers the hybrid (§2.7) with RAW activations.
 * 'raw' (default, the paper's code) passes activations through; 'centred' applies the training-time
 * centring and normalisation first (the later code's "saefix"). Returns a new array.
 */
export function saeInputForLabelling(
  activations: Float32Array,
  dim: number,
  options: { mode?: 'raw' | 'centred'; mean?: ArrayLike<number> } = {},
): Float32Array {
  const out = new Float32Array(activations);
  if ((options.mode ?? 'raw') === 'raw') return out;
  if (!options.mean) {
    throw new ThinkwhenError(
      'no-mean',
      'centred SAE input needs the thinking-span mean μ_L used in training',
      'load it from the activation store (thinkingMean) or use mode "raw"',
    );
  }
  return centerAndNormalize(out, dim, options.mean);
}
