// Token sampling on logits: greedy, or temperature with top-k, top-p and min-p, seeded.
import { Rng } from '../rng.ts';

export interface SamplerOptions {
  /** 0 (default) means greedy. */
  temperature?: number;
  /** keep the k most likely tokens (0 = off) */
  topK?: number;
  /** keep the smallest set whose probability reaches p (1 = off) */
  topP?: number;
  /** drop tokens whose probability is below minP × the best one (0 = off) */
  minP?: number;
  seed?: number;
}

export type Sampler = (logits: Float32Array) => number;

export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = logits[0];
  for (let i = 1; i < logits.length; i++) {
    if (logits[i] > bestValue) {
      bestValue = logits[i];
      best = i;
    }
  }
  return best;
}

/** log softmax(logits)[token], computed stably (max subtracted). */
export function logProb(logits: Float32Array, token: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[token] - (Math.log(sum) + max);
}

export function createSampler(opts: SamplerOptions = {}): Sampler {
  const temperature = opts.temperature ?? 0;
  if (temperature <= 0) return argmax;
  const rng = new Rng(opts.seed ?? 0);
  const topK = opts.topK ?? 0;
  const topP = opts.topP ?? 1;
  const minP = opts.minP ?? 0;
  return (logits) => {
    // Tokens more than 40 temperature units below the best carry < e^-40 of its probability:
    // dropping them before the sort changes nothing measurable and avoids sorting the vocabulary.
    let best = logits[0];
    for (let i = 1; i < logits.length; i++) if (logits[i] > best) best = logits[i];
    const floor = best - 40 * temperature;
    let ids: number[] = [];
    for (let i = 0; i < logits.length; i++) if (logits[i] >= floor) ids.push(i);
    ids.sort((a, b) => logits[b] - logits[a] || a - b);
    if (topK > 0) ids = ids.slice(0, topK);
    const max = logits[ids[0]] / temperature;
    let probs = ids.map((id) => Math.exp(logits[id] / temperature - max));
    let sum = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / sum);
    let keep = probs.length;
    if (minP > 0) keep = Math.max(1, probs.filter((p) => p >= minP * probs[0]).length);
    if (topP < 1) {
      let acc = 0;
      for (let i = 0; i < keep; i++) {
        acc += probs[i];
        if (acc >= topP) {
          keep = i + 1;
          break;
        }
      }
    }
    sum = 0;
    for (let i = 0; i < keep; i++) sum += probs[i];
    let r = rng.next() * sum;
    for (let i = 0; i < keep; i++) {
      r -= probs[i];
      if (r < 0) return ids[i];
    }
    return ids[keep - 1];
  };
}
