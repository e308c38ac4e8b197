// Tiny models for the training tests, written once per spec into the OS temp folder.
import { GgmlType } from '../../src/gguf/types.ts';
import { gradcheckSpec } from '../../src/train/gradcheck.ts';
import type { Trainer } from '../../src/train/trainer.ts';
import { tinyModelPath } from '../helpers/models.ts';

export const f32Model = (arch: 'qwen2' | 'llama') => tinyModelPath(gradcheckSpec(arch));
export const typedModel = (arch: 'qwen2' | 'llama', t: GgmlType) => tinyModelPath(gradcheckSpec(arch, t));
/** ~100k parameters, 2 layers: quick to train from scratch in a test. */
export const smallLm = () =>
  tinyModelPath({ arch: 'llama', nLayer: 2, nEmbd: 32, nHead: 4, nHeadKv: 2, nFf: 64, vocab: 'small', seed: 11 });
export { GgmlType };

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/**
 * The backprop gradient of a weight's largest-|g| element next to its central finite difference
 * (step h) of `loss`, which must run the graph forward only; the weight is restored afterwards.
 */
export async function largestGradientByDifference(
  tr: Trainer,
  name: string,
  loss: () => Promise<number>,
  h = 1e-2,
): Promise<{ index: number; backprop: number; difference: number }> {
  const g = tr.grad(name);
  const p = tr.param(name);
  const i = Array.from(g.keys()).reduce((a, j) => (Math.abs(g[j]) > Math.abs(g[a]) ? j : a), 0);
  const orig = p[i];
  p[i] = orig + h;
  tr.setParam(name, p);
  const lp = await loss();
  p[i] = orig - h;
  tr.setParam(name, p);
  const lm = await loss();
  p[i] = orig;
  tr.setParam(name, p);
  return { index: i, backprop: g[i], difference: (lp - lm) / (2 * h) };
}
