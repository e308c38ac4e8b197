// NaN/Inf logits: a model that loads but computes garbage (NaN weights, hostile hyperparameters
// llama.cpp accepts, or an overflowing steering vector) says so instead of sampling noise.
import { ThinkwhenError } from '../errors.ts';

/**
 * Checks the logits of one decode (`rows` rows of `nVocab`). `full` scans every value (done on a
 * context's first decode with logits: a NaN in one row of the output matrix shows only there);
 * otherwise one value per row, which suffices because a NaN or Inf in the residual stream reaches
 * every logit of its row through the output projection.
 */
export function checkLogitsFinite(logits: Float32Array, nVocab: number, full: boolean, steered: boolean): void {
  const rows = logits.length / nVocab;
  for (let r = 0; r < rows; r++) {
    const start = r * nVocab;
    const end = full ? start + nVocab : start + 1;
    for (let i = start; i < end; i++) {
      const v = logits[i];
      if (v - v !== 0) throw nonFinite(r, i - start, v, steered); // NaN or ±Inf
    }
  }
}

function nonFinite(row: number, token: number, value: number, steered: boolean): ThinkwhenError {
  const cause = steered
    ? 'this decode added hook vectors: a vector too large for the residual stream overflows it; otherwise the model file'
    : 'the model file: NaN/Inf weights, or hyperparameters llama.cpp accepts but that compute NaN (e.g. a RoPE or norm setting)';
  return new ThinkwhenError(
    'NON_FINITE_LOGITS',
    `decode produced a non-finite logit (${value} for token ${token} in output row ${row}); likely cause: ${cause}`,
    steered
      ? 'scale the steering vectors down, or check the model with a plain decode'
      : 're-download or re-convert the model (its weights or metadata are corrupt)',
  );
}
