// Synthetic hybrid pairs for tests, benchmarks and smoke runs: a "thinking" model made by
// perturbing a base model's weights (so the two disagree on a tunable fraction of tokens), a
// random SAE and random steering vectors. Nothing here is a trained artifact.
import { closeSync, copyFileSync, openSync, renameSync, writeSync } from 'node:fs';
import type { Model } from '../engine/index.ts';
import { encodeTensor } from '../gguf/quant.ts';
import { readGguf, readTensor } from '../gguf/read.ts';
import { Rng } from '../rng.ts';
import { TopKSae } from '../taxonomy/sae.ts';
import type { HybridVectors } from './options.ts';

export interface PerturbOptions {
  /** noise standard deviation relative to each tensor's own standard deviation */
  scale: number;
  seed?: number;
  /** which tensors to perturb (default: every tensor except the token embeddings) */
  select?: (name: string) => boolean;
}

/**
 * Copies a GGUF and adds Gaussian noise to the selected tensors, in place, one tensor at a time
 * (so a large model never sits in memory whole). Types and layout are unchanged.
 */
export function writePerturbedModel(src: string, dst: string, opts: PerturbOptions): void {
  const file = readGguf(src);
  const select = opts.select ?? ((name: string) => name !== 'token_embd.weight');
  const rng = new Rng(opts.seed ?? 1);
  const tmp = `${dst}.tmp-${process.pid}`;
  copyFileSync(src, tmp);
  const fd = openSync(tmp, 'r+');
  try {
    for (const t of file.tensors) {
      if (!select(t.name)) continue;
      const w = readTensor(file, t.name);
      let sum = 0;
      let sq = 0;
      for (let i = 0; i < w.length; i++) {
        sum += w[i];
        sq += w[i] * w[i];
      }
      const mean = sum / w.length;
      const std = Math.sqrt(Math.max(0, sq / w.length - mean * mean)) || Math.abs(mean) || 1;
      for (let i = 0; i < w.length; i++) w[i] += opts.scale * std * rng.normal();
      const bytes = encodeTensor(w, t.type, t.shape[0]);
      writeSync(fd, bytes, 0, bytes.length, file.dataOffset + t.offset);
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, dst);
}

/**
 * Makes tokens unreachable for greedy decoding: their rows of the (untied) output matrix become
 * zero, so their logit is 0 while some other token's is almost surely positive. Random models
 * then generate neither byte-fallback pieces (which re-encode to several tokens) nor EOS.
 */
export function suppressTokens(path: string, ids: number[]): void {
  const file = readGguf(path);
  const t = file.tensors.find((x) => x.name === 'output.weight');
  if (!t) throw new Error(`${path} has a tied output matrix: its rows are also the input embeddings`);
  const w = readTensor(file, t.name);
  const d = t.shape[0];
  for (const id of ids) w.fill(0, id * d, (id + 1) * d);
  const bytes = encodeTensor(w, t.type, d);
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, file.dataOffset + t.offset);
  } finally {
    closeSync(fd);
  }
}

/**
 * Steering vectors that move the base model's residual at `layer` towards the thinking model's:
 * over the given texts, bias = mean of (h_thinking − h_base), and the vector of latent k = the
 * mean difference over the positions the SAE assigns to k, minus the bias (so bias + v_k is that
 * mean). A difference-of-means stand-in for trained vectors; latents that never occur get none.
 */
export async function meanDifferenceVectors(
  base: Model,
  thinking: Model,
  sae: TopKSae,
  layer: number,
  texts: number[][],
): Promise<HybridVectors> {
  const hook = `blocks.${layer}.hook_resid_post`;
  const capture = async (m: Model, ids: number[]) => {
    const ctx = m.createContext({ nCtx: Math.max(512, ids.length), nBatch: Math.max(512, ids.length), nSeqMax: 1 });
    const seq = ctx.sequence();
    const out = await ctx.decode(
      ids.map((token) => ({ token, seq })),
      [{ hook, rows: 'all', capture: true }],
    );
    ctx.free();
    return out.captures[0]!;
  };
  const d = base.info.nEmbd;
  const sums = new Map<number, { sum: Float64Array; n: number }>();
  const all = new Float64Array(d);
  let n = 0;
  for (const ids of texts) {
    const hb = await capture(base, ids);
    const ht = await capture(thinking, ids);
    const k = sae.assign(new Float32Array(ht.flatMap((r) => Array.from(r))));
    for (let i = 0; i < ids.length; i++) {
      let e = sums.get(k[i]);
      if (!e) {
        e = { sum: new Float64Array(d), n: 0 };
        sums.set(k[i], e);
      }
      for (let j = 0; j < d; j++) {
        const diff = ht[i][j] - hb[i][j];
        e.sum[j] += diff;
        all[j] += diff;
      }
      e.n++;
      n++;
    }
  }
  const bias = Float32Array.from(all, (x) => x / n);
  const vectors = new Map<number, Float32Array>();
  const titles = new Map<number, string>();
  const skipped = new Map<number, string>();
  for (let k = 0; k < sae.latents; k++) {
    titles.set(k, `latent ${k}`);
    const e = sums.get(k);
    if (!e) skipped.set(k, 'never the argmax on the texts');
    else
      vectors.set(
        k,
        Float32Array.from(e.sum, (x, j) => x / e.n - bias[j]),
      );
  }
  return { layer, applyHook: `blocks.${layer}.hook_resid_post`, bias, vectors, titles, skipped };
}

/** A Top-K SAE with random encoder weights (for pairs without a trained taxonomy). */
export function randomSae(dim: number, latents: number, seed = 1): TopKSae {
  const rng = new Rng(seed);
  const g = (n: number, s: number) => Float32Array.from({ length: n }, () => s * rng.normal());
  const wEnc = g(latents * dim, 1 / Math.sqrt(dim));
  return new TopKSae(
    {
      latents,
      dim,
      topK: Math.min(3, latents),
      wEnc,
      bEnc: g(latents, 0.1),
      wDec: new Float32Array(wEnc),
      bDec: g(dim, 0.1),
    },
    {
      dim,
      latents,
      topK: Math.min(3, latents),
      seed,
      lr: 0,
      batchSize: 0,
      maxEpochs: 0,
      patience: 0,
      epochs: 0,
      bestLoss: 0,
      stoppedEarly: false,
      samples: 0,
    },
  );
}

/** Random steering vectors: a bias and one vector per latent, with the given norms. */
export function randomVectors(
  nEmbd: number,
  layer: number,
  latents: number,
  opts: { biasNorm: number; norm: number; seed?: number; skip?: number[] },
): HybridVectors {
  const rng = new Rng(opts.seed ?? 7);
  const vec = (norm: number) => {
    const v = Float32Array.from({ length: nEmbd }, () => rng.normal());
    let s = 0;
    for (const x of v) s += x * x;
    const k = norm / Math.sqrt(s);
    for (let i = 0; i < nEmbd; i++) v[i] *= k;
    return v;
  };
  const bias = vec(opts.biasNorm);
  const vectors = new Map<number, Float32Array>();
  const titles = new Map<number, string>();
  const skipped = new Map<number, string>();
  for (let k = 0; k < latents; k++) {
    titles.set(k, `random category ${k}`);
    if (opts.skip?.includes(k)) skipped.set(k, 'no examples (synthetic)');
    else vectors.set(k, vec(opts.norm));
  }
  return {
    layer,
    applyHook: `blocks.${layer}.hook_resid_post`,
    bias,
    vectors,
    titles,
    skipped,
    manifest: {
      bias: { file: 'bias.gguf' },
      categories: [...vectors.keys()].map((latent) => ({ latent, file: `latent-${latent}.gguf` })),
    },
  };
}
