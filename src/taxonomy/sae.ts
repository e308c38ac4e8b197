/**
 * The paper's Top-K SAE ("sae_topk", a TinySAE port; docs/method.md §2.3), trained on centred, L2-normalised
 * sentence activations.
 *
 *  - init: encoder ~ U(−1/√d, 1/√d) (PyTorch Linear default), encoder bias 0, W_dec = copy of the encoder
 *    weight with rows scaled by 1/(‖row‖ + 1e-5), b_dec = 0;
 *  - encode z = W_enc(x − b_dec) + b_enc, keep the top-3 values (no ReLU); x̂ = Σ z_j W_dec[j] + b_dec;
 *  - loss per minibatch = Σ‖x̂ − x‖² / Σ‖x − mean_batch(x)‖² (fraction of variance unexplained);
 *  - Adam (β 0.9/0.999, ε 1e-8), lr = 2e-4/√(K/2¹⁴), batch min(512, N), reshuffled every epoch;
 *    decoder rows renormalised after every step;
 *  - up to 300 epochs; stop when the size-weighted epoch-mean loss has not strictly improved for 10
 *    epochs, restoring the best weights (the reference restores only on that early stop; at the epoch
 *    cap it keeps the last weights — `restoreBest: 'always'` changes that);
 *  - sentence category = argmax of the dense pre-activation z (not the top-k output).
 * Randomness (init, shuffles) comes from a seeded PRNG, so a run is reproducible for a given seed and
 * thread count (more threads change the floating-point summation order only).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ThinkwhenError } from '../errors.ts';
import {
  accumulateRows,
  allocGrads,
  allocScratch,
  finishBatch,
  type GradBuffers,
  type SaeParams,
  selectTopK as selectTopKLocal,
  zeroGrads,
} from './sae-kernel.ts';
import { readSafetensors, writeSafetensors } from './safetensors.ts';

/** Small, fast, seedable PRNG (sfc32) with uniform floats in [0, 1). */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  shuffle<T>(a: T[] | Int32Array): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }
}

export interface SaeTrainOptions {
  latents: number;
  topK?: number;
  seed?: number;
  /** Default 2e-4/√(K/2¹⁴). */
  lr?: number;
  batchSize?: number;
  maxEpochs?: number;
  patience?: number;
  restoreBest?: 'on-early-stop' | 'always';
  /** Threads to use (main + workers); default min(2, cores). */
  threads?: number;
  onEpoch?: (epoch: number, loss: number) => void;
}

export interface SaeConfig {
  dim: number;
  latents: number;
  topK: number;
  seed: number;
  lr: number;
  batchSize: number;
  maxEpochs: number;
  patience: number;
  epochs: number;
  bestLoss: number;
  stoppedEarly: boolean;
  samples: number;
  layer?: number;
  [key: string]: unknown;
}

export class TopKSae {
  constructor(
    readonly params: SaeParams,
    readonly config: SaeConfig,
  ) {}

  get dim(): number {
    return this.params.dim;
  }

  get latents(): number {
    return this.params.latents;
  }

  private checkWidth(x: Float32Array, what: string): number {
    if (x.length % this.dim !== 0) {
      throw new ThinkwhenError(
        'width-mismatch',
        `${what}: ${x.length} values are not rows of this SAE's width ${this.dim}`,
        'use activations from the model and layer the SAE was trained on',
      );
    }
    return x.length / this.dim;
  }

  /** Dense pre-activations z = W_enc(x − b_dec) + b_enc, row-major [n, K]. */
  encodeDense(x: Float32Array): Float32Array {
    const n = this.checkWidth(x, 'encodeDense');
    const { dim, latents, wEnc, bEnc, bDec } = this.params;
    const out = new Float32Array(n * latents);
    const xc = new Float64Array(dim);
    for (let r = 0; r < n; r++) {
      for (let d = 0; d < dim; d++) xc[d] = x[r * dim + d] - bDec[d];
      for (let j = 0; j < latents; j++) {
        let acc = 0;
        for (let d = 0; d < dim; d++) acc += wEnc[j * dim + d] * xc[d];
        out[r * latents + j] = acc + bEnc[j];
      }
    }
    return out;
  }

  /** Category of every row: argmax of the dense pre-activation (first index on ties). */
  assign(x: Float32Array): Int32Array {
    const z = this.encodeDense(x);
    return argmaxRows(z, this.latents);
  }

  /** Top-k reconstruction x̂, row-major [n, d]. */
  reconstruct(x: Float32Array): Float32Array {
    const z = this.encodeDense(x);
    const { dim, latents, topK, wDec, bDec } = this.params;
    const n = z.length / latents;
    const out = new Float32Array(n * dim);
    const zz = new Float64Array(latents);
    const idx = new Int32Array(topK);
    const val = new Float64Array(topK);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < latents; j++) zz[j] = z[r * latents + j];
      selectTopKLocal(zz, topK, idx, val);
      for (let d = 0; d < dim; d++) {
        let v = bDec[d];
        for (let t = 0; t < topK; t++) v += val[t] * wDec[idx[t] * dim + d];
        out[r * dim + d] = v;
      }
    }
    return out;
  }

  /** Decoder rows, L2-normalised (the reference's "cluster centres"). */
  centroids(): Float32Array {
    const { dim, latents, wDec } = this.params;
    const out = new Float32Array(wDec);
    for (let j = 0; j < latents; j++) {
      let sq = 0;
      for (let d = 0; d < dim; d++) sq += out[j * dim + d] ** 2;
      const inv = 1 / (Math.sqrt(sq) + 1e-8);
      for (let d = 0; d < dim; d++) out[j * dim + d] *= inv;
    }
    return out;
  }
}

export function argmaxRows(z: Float32Array, width: number): Int32Array {
  const n = z.length / width;
  const out = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    let best = 0;
    for (let j = 1; j < width; j++) if (z[r * width + j] > z[r * width + best]) best = j;
    out[r] = best;
  }
  return out;
}

export function defaultLr(latents: number): number {
  return 2e-4 / Math.sqrt(latents / 2 ** 14);
}

function sharedF32(n: number, shared: boolean): Float32Array {
  return shared ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n);
}

function initParams(dim: number, latents: number, topK: number, rng: Rng, shared: boolean): SaeParams {
  const bound = 1 / Math.sqrt(dim);
  const wEnc = sharedF32(latents * dim, shared);
  for (let i = 0; i < wEnc.length; i++) wEnc[i] = (rng.next() * 2 - 1) * bound;
  const wDec = sharedF32(latents * dim, shared);
  wDec.set(wEnc);
  const p: SaeParams = {
    latents,
    dim,
    topK,
    wEnc,
    bEnc: sharedF32(latents, shared),
    wDec,
    bDec: sharedF32(dim, shared),
  };
  normaliseDecoder(p);
  return p;
}

/** W_dec rows /= ‖row‖ + 1e-5 (the reference's set_decoder_norm_to_unit_norm). */
function normaliseDecoder(p: SaeParams): void {
  const { dim, latents, wDec } = p;
  for (let j = 0; j < latents; j++) {
    let sq = 0;
    for (let d = 0; d < dim; d++) sq += wDec[j * dim + d] ** 2;
    const inv = 1 / (Math.sqrt(sq) + 1e-5);
    for (let d = 0; d < dim; d++) wDec[j * dim + d] *= inv;
  }
}

/** PyTorch Adam (no weight decay) over one parameter array. */
class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;

  constructor(
    private readonly param: Float32Array,
    private readonly lr: number,
  ) {
    this.m = new Float64Array(param.length);
    this.v = new Float64Array(param.length);
  }

  step(grad: Float32Array | Float64Array, scale: number, t: number): void {
    const b1 = 0.9;
    const b2 = 0.999;
    const stepSize = this.lr / (1 - b1 ** t);
    const bc2 = Math.sqrt(1 - b2 ** t);
    const m = this.m;
    const v = this.v;
    const param = this.param;
    for (let i = 0; i < param.length; i++) {
      const g = grad[i] * scale;
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      param[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2 + 1e-8);
    }
  }
}

const CTRL_GEN = 0;
const CTRL_STOP = 1;
const CTRL_DONE = 2;
const CTRL_FAILED = 3;
const CTRL_RANGES = 4;

/**
 * Worker source that loads the TypeScript worker module. Node 20 does not pass tsx's loader hooks to
 * workers, so the worker registers tsx itself before importing the module.
 */
function workerBootstrap(url: URL): string {
  // Resolved here, so the worker finds tsx whatever the process's working directory is.
  const tsx = import.meta.resolve('tsx/esm/api');
  return `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
}

/** Runs batch slices on worker threads; the main thread takes the first slice itself. */
class ThreadPool {
  private readonly workers: Worker[] = [];
  readonly grads: GradBuffers[] = [];
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(4 * 32));

  private constructor(private readonly count: number) {}

  static async start(count: number, params: SaeParams, X: Float32Array, order: Int32Array): Promise<ThreadPool> {
    const pool = new ThreadPool(count);
    const url = new URL('./sae-worker.ts', import.meta.url);
    await Promise.all(
      Array.from({ length: count }, (_, slot) => {
        const grads = allocGrads(params.latents, params.dim, true);
        pool.grads.push(grads);
        const worker = new Worker(workerBootstrap(url), {
          eval: true,
          workerData: { params, X, order, grads, ctrl: pool.ctrl, slot },
        });
        pool.workers.push(worker);
        return new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve());
          worker.once('error', reject);
        });
      }),
    );
    return pool;
  }

  /** Give slot i the rows [ranges[2i], ranges[2i+1]) and wake the workers. */
  dispatch(ranges: number[]): void {
    for (let i = 0; i < ranges.length; i++) this.ctrl[CTRL_RANGES + i] = ranges[i];
    Atomics.store(this.ctrl, CTRL_DONE, 0);
    Atomics.add(this.ctrl, CTRL_GEN, 1);
    Atomics.notify(this.ctrl, CTRL_GEN);
  }

  join(): void {
    for (;;) {
      const done = Atomics.load(this.ctrl, CTRL_DONE);
      if (done >= this.count) break;
      Atomics.wait(this.ctrl, CTRL_DONE, done);
    }
    if (Atomics.load(this.ctrl, CTRL_FAILED) === 1) {
      throw new ThinkwhenError(
        'sae-worker-failed',
        'an SAE training worker thread failed',
        'rerun with threads: 1 to see the error',
      );
    }
  }

  async stop(): Promise<void> {
    Atomics.store(this.ctrl, CTRL_STOP, 1);
    Atomics.add(this.ctrl, CTRL_GEN, 1);
    Atomics.notify(this.ctrl, CTRL_GEN);
    await Promise.all(this.workers.map((w) => new Promise((resolve) => w.once('exit', resolve))));
  }
}

function addInto(dst: Float32Array | Float64Array, src: Float32Array | Float64Array): void {
  for (let i = 0; i < dst.length; i++) dst[i] += src[i];
}

/** Train one SAE on row-major data x [n, dim] (already centred and normalised). */
export async function trainTopKSae(x: Float32Array, dim: number, options: SaeTrainOptions): Promise<TopKSae> {
  const latents = options.latents;
  const topK = options.topK ?? 3;
  if (dim <= 0 || x.length === 0 || x.length % dim !== 0) {
    throw new ThinkwhenError(
      'no-activations',
      `cannot train an SAE on ${x.length} values of width ${dim}`,
      'capture sentence activations first (empty traces give no sentences)',
    );
  }
  if (topK > latents) {
    throw new ThinkwhenError('bad-sae', `top-k ${topK} exceeds the ${latents} latents`, 'use K ≥ top-k');
  }
  const n = x.length / dim;
  const seed = options.seed ?? 0;
  const lr = options.lr ?? defaultLr(latents);
  const batchSize = Math.min(options.batchSize ?? 512, n);
  const maxEpochs = options.maxEpochs ?? 300;
  const patience = options.patience ?? 10;
  // At most 8 threads (the control block holds 14 slices; more gains nothing at batch 512).
  const threads = Math.max(1, Math.min(options.threads ?? Math.min(2, availableParallelism()), batchSize, 8));
  const shared = threads > 1;
  const rng = new Rng(seed);
  const p = initParams(dim, latents, topK, rng, shared);
  let X = x;
  if (shared && !(x.buffer instanceof SharedArrayBuffer)) {
    X = new Float32Array(new SharedArrayBuffer(x.byteLength));
    X.set(x);
  }
  const order = shared ? new Int32Array(new SharedArrayBuffer(n * 4)) : new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;

  const g = allocGrads(latents, dim);
  const scratch = allocScratch(p);
  const optimisers = [new Adam(p.wEnc, lr), new Adam(p.bEnc, lr), new Adam(p.wDec, lr), new Adam(p.bDec, lr)];
  const pool = shared ? await ThreadPool.start(threads - 1, p, X, order) : null;

  let best = Number.POSITIVE_INFINITY;
  let bestState: Float32Array[] | null = null;
  let sinceBest = 0;
  let step = 0;
  let epochs = 0;
  let stoppedEarly = false;
  const snapshot = () => [p.wEnc, p.bEnc, p.wDec, p.bDec].map((a) => new Float32Array(a));
  try {
    for (let epoch = 0; epoch < maxEpochs; epoch++) {
      rng.shuffle(order);
      let total = 0;
      for (let start = 0; start < n; start += batchSize) {
        const end = Math.min(start + batchSize, n);
        const rows = end - start;
        zeroGrads(g);
        if (pool) {
          const per = Math.ceil(rows / threads);
          const ranges: number[] = [];
          for (let s = 1; s < threads; s++)
            ranges.push(Math.min(end, start + s * per), Math.min(end, start + (s + 1) * per));
          pool.dispatch(ranges);
          accumulateRows(p, X, order, start, Math.min(end, start + per), g, scratch);
          pool.join();
          for (const wg of pool.grads) {
            addInto(g.gWEnc, wg.gWEnc);
            addInto(g.gBEnc, wg.gBEnc);
            addInto(g.gWDec, wg.gWDec);
            addInto(g.gBDec, wg.gBDec);
            addInto(g.dzSum, wg.dzSum);
            addInto(g.colSum, wg.colSum);
            addInto(g.stats, wg.stats);
          }
        } else {
          accumulateRows(p, X, order, start, end, g, scratch);
        }
        const { loss: batchLoss, scale } = finishBatch(p, g, rows);
        total += batchLoss * rows;
        step++;
        optimisers[0].step(g.gWEnc, scale, step);
        optimisers[1].step(g.gBEnc, scale, step);
        optimisers[2].step(g.gWDec, scale, step);
        optimisers[3].step(g.gBDec, scale, step);
        normaliseDecoder(p);
      }
      const loss = total / n;
      epochs = epoch + 1;
      options.onEpoch?.(epochs, loss);
      if (loss < best) {
        best = loss;
        sinceBest = 0;
        bestState = snapshot();
      } else if (++sinceBest >= patience) {
        stoppedEarly = true;
        break;
      }
    }
  } finally {
    await pool?.stop();
  }
  if (bestState && (stoppedEarly || options.restoreBest === 'always')) {
    p.wEnc.set(bestState[0]);
    p.bEnc.set(bestState[1]);
    p.wDec.set(bestState[2]);
    p.bDec.set(bestState[3]);
  }
  // Hand back plain (non-shared) arrays.
  const params: SaeParams = {
    latents,
    dim,
    topK,
    wEnc: new Float32Array(p.wEnc),
    bEnc: new Float32Array(p.bEnc),
    wDec: new Float32Array(p.wDec),
    bDec: new Float32Array(p.bDec),
  };
  const config: SaeConfig = {
    dim,
    latents,
    topK,
    seed,
    lr,
    batchSize,
    maxEpochs,
    patience,
    epochs,
    bestLoss: best,
    stoppedEarly,
    samples: n,
  };
  return new TopKSae(params, config);
}

/** Default K list of the paper: 5, 10, …, 50. */
export const DEFAULT_LATENT_COUNTS = [5, 10, 15, 20, 25, 30, 35, 40, 45, 50];

export interface GridResult {
  layer: number;
  latents: number;
  sae: TopKSae;
  labels: Int32Array;
  path?: string;
}

/** Train an SAE for every layer × K; saves each under `outDir` when given. */
export async function trainSaeGrid(
  data: ReadonlyMap<number, { x: Float32Array; dim: number }>,
  options: Omit<SaeTrainOptions, 'latents'> & { latentCounts?: number[]; outDir?: string },
): Promise<GridResult[]> {
  const results: GridResult[] = [];
  for (const [layer, { x, dim }] of data) {
    for (const latents of options.latentCounts ?? DEFAULT_LATENT_COUNTS) {
      const sae = await trainTopKSae(x, dim, { ...options, latents });
      sae.config.layer = layer;
      const result: GridResult = { layer, latents, sae, labels: sae.assign(x) };
      if (options.outDir) result.path = await saveSae(join(options.outDir, `sae_layer${layer}_k${latents}`), sae);
      results.push(result);
    }
  }
  return results;
}

/** Save as `<base>.safetensors` (tensor names follow the reference checkpoint) + `<base>.json`. */
export async function saveSae(base: string, sae: TopKSae): Promise<string> {
  const { dim, latents, wEnc, bEnc, wDec, bDec } = sae.params;
  await mkdir(join(base, '..'), { recursive: true });
  const path = `${base}.safetensors`;
  await writeSafetensors(
    path,
    {
      encoder_weight: { dtype: 'F32', shape: [latents, dim], data: wEnc },
      encoder_bias: { dtype: 'F32', shape: [latents], data: bEnc },
      decoder_weight: { dtype: 'F32', shape: [latents, dim], data: wDec },
      b_dec: { dtype: 'F32', shape: [dim], data: bDec },
    },
    {
      format: 'thinkwhen-topk-sae/1',
      input_dim: String(dim),
      num_latents: String(latents),
      topk: String(sae.params.topK),
    },
  );
  await writeFile(`${base}.json`, `${JSON.stringify(sae.config, null, 2)}\n`);
  return path;
}

/** Load an SAE saved by `saveSae` (path with or without the extension). */
export async function loadSae(path: string): Promise<TopKSae> {
  const base = path.replace(/\.(safetensors|json)$/, '');
  const file = await readSafetensors(`${base}.safetensors`);
  const get = (name: string) => {
    const t = file.tensors[name];
    if (!t || t.dtype !== 'F32') {
      throw new ThinkwhenError(
        'bad-sae',
        `${base}.safetensors lacks an F32 tensor "${name}"`,
        'retrain or re-save the SAE',
      );
    }
    return t;
  };
  const wEnc = get('encoder_weight');
  const [latents, dim] = wEnc.shape;
  let config: SaeConfig;
  try {
    config = JSON.parse(await readFile(`${base}.json`, 'utf8')) as SaeConfig;
  } catch {
    config = { dim, latents, topK: Number(file.metadata.topk ?? 3) } as SaeConfig;
  }
  const params: SaeParams = {
    latents,
    dim,
    topK: config.topK ?? Number(file.metadata.topk ?? 3),
    wEnc: wEnc.data as Float32Array,
    bEnc: get('encoder_bias').data as Float32Array,
    wDec: get('decoder_weight').data as Float32Array,
    bDec: get('b_dec').data as Float32Array,
  };
  if (params.bDec.length !== dim || params.wDec.length !== latents * dim || params.bEnc.length !== latents) {
    throw new ThinkwhenError(
      'bad-sae',
      `${base}.safetensors has inconsistent tensor shapes`,
      'retrain or re-save the SAE',
    );
  }
  return new TopKSae(params, config);
}
