// Checks the training graph against llama.cpp and against finite differences, layer by layer:
//   forward:  logits of the ggml training graph with a vector added at blocks.L.hook_resid_pre
//             vs llama.cpp's own decode with the same vector added through its eval callback;
//   backward: the vector's gradient vs central finite differences of the loss (Richardson-
//             extrapolated), along the gradient direction and along its largest coordinates.
import { Model } from '../engine/model.ts';
import { GgmlType, type TinyModelSpec, typeName, writeTinyModel } from '../gguf/index.ts';
import { readGguf } from '../gguf/read.ts';
import { Rng } from '../rng.ts';
import { exampleBatch } from './batch.ts';
import type { NativeRunBatch } from './native.ts';
import { trainAddon } from './native.ts';
import { Trainer, type TrainerOptions } from './trainer.ts';
import { norm } from './vectors.ts';

export interface GradcheckOptions {
  /** logit scale of the loss (the paper: 0.7) */
  logitScale?: number;
  /** finite-difference step along unit directions */
  step?: number;
  /** largest gradient coordinates checked one by one */
  topCoords?: number;
  seed?: number;
  threads?: number;
  device?: TrainerOptions['device'];
  /** layers to check (default all) */
  layers?: number[];
  /** compare logits with llama.cpp (needs the file to load in llama.cpp) */
  forward?: boolean;
  gradWeightType?: TrainerOptions['gradWeightType'];
}

/** Bounds `thinkwhen gradcheck` enforces on F32 models. */
export const FORWARD_BOUND = 1e-4;
export const GRADIENT_BOUND = 1e-2;

/** The default check models: small enough for finite differences in F32, both architectures. */
export function gradcheckSpec(arch: 'qwen2' | 'llama', weightType: GgmlType = GgmlType.F32): TinyModelSpec {
  return { arch, nLayer: 4, nEmbd: 64, nHead: 4, nHeadKv: 2, nFf: 128, vocab: 'small', weightType, seed: 3 };
}

export function writeGradcheckModel(
  path: string,
  arch: 'qwen2' | 'llama',
  weightType: GgmlType = GgmlType.F32,
): string {
  writeTinyModel(path, gradcheckSpec(arch, weightType));
  return path;
}

/** Type of the model's matrices (that of blk.0.ffn_down.weight). */
export function matrixType(path: string): string {
  const t = readGguf(path).tensors.find((x) => x.name === 'blk.0.ffn_down.weight');
  return t ? typeName(t.type) : 'unknown';
}

export interface LayerCheck {
  layer: number;
  /** max |logit difference| vs llama.cpp (F32 KV cache), vector added at resid_pre of this layer */
  forwardMaxDiff: number | null;
  gradNorm: number;
  /** |FD directional derivative - |g|| / |g| */
  directionalRelErr: number;
  /** worst |FD_i - g_i| / |g_i| over the top coordinates */
  coordRelErr: number;
}

export interface GradcheckReport {
  model: string;
  arch: string;
  backend: string;
  weightType: string;
  nLayer: number;
  layers: LayerCheck[];
  /** forward parity without any vector, against llama.cpp with its default F16 KV cache (informational) */
  forwardMaxDiffKvF16: number | null;
  worstForward: number | null;
  worstGradient: number;
}

/** A small fixed batch of two right-padded sequences (different lengths), paper layout. */
export function checkBatch(nVocab: number, seed: number): NativeRunBatch {
  const r = new Rng(seed);
  const tok = () => 5 + r.int(nVocab - 5);
  const mk = (p: number, t: number) => ({
    prompt: Array.from({ length: p }, tok),
    target: Array.from({ length: t }, tok),
  });
  return exampleBatch([mk(5, 9), mk(4, 6)]);
}

/** Rows of the batch that hold real tokens, and the compact batch llama.cpp decodes. */
function compact(b: NativeRunBatch) {
  const rows: number[] = [];
  const tokens: number[] = [];
  const seq: number[] = [];
  const pos: number[] = [];
  for (let s = 0; s < b.nSeq; s++) {
    for (let t = 0; t < b.lengths[s]; t++) {
      rows.push(s * b.seqLen + t);
      tokens.push(b.tokens[s * b.seqLen + t]);
      seq.push(s);
      pos.push(t);
    }
  }
  return { rows, tokens: Int32Array.from(tokens), seq: Int32Array.from(seq), pos: Int32Array.from(pos) };
}

function maxDiff(ours: Float32Array, ref: Float32Array, rows: number[], nVocab: number): number {
  let m = 0;
  rows.forEach((row, i) => {
    for (let v = 0; v < nVocab; v++) m = Math.max(m, Math.abs(ours[row * nVocab + v] - ref[i * nVocab + v]));
  });
  return m;
}

export async function gradcheck(path: string, opts: GradcheckOptions = {}): Promise<GradcheckReport> {
  const threads = opts.threads ?? 2;
  const logitScale = opts.logitScale ?? 0.7;
  const h = opts.step ?? 0.1;
  const topK = opts.topCoords ?? 3;
  const seed = opts.seed ?? 1;
  const tr = Trainer.open(path, { mode: 'vectors', threads, device: opts.device, gradWeightType: opts.gradWeightType });
  let model: Model | undefined;
  try {
    const { nLayer, nEmbd, nVocab } = tr.info;
    const batch = checkBatch(nVocab, seed);
    const nTargets = batch.targets.reduce((n, y) => n + (y >= 0 ? 1 : 0), 0);
    const c = compact(batch);
    const steerRows: number[] = [];
    c.rows.forEach((row, i) => {
      if (batch.steer![row] > 0) steerRows.push(i);
    });
    const doForward = opts.forward ?? true;
    if (doForward) model = await Model.load(path, { gpuLayers: opts.device === 'gpu' ? 999 : 0 });
    const ref = (kvType: 'f32' | 'f16', hook?: { tensor: string; add: Float32Array }) =>
      trainAddon().referenceForward(model!.native, {
        tokens: c.tokens,
        seq: c.seq,
        pos: c.pos,
        nThreads: threads,
        kvType,
        hook: hook && { tensor: hook.tensor, rows: Int32Array.from(steerRows), add: hook.add },
      });

    let forwardMaxDiffKvF16: number | null = null;
    if (doForward) {
      tr.setVectors([]);
      const ours = await tr.run({ ...batch, steer: undefined, logits: true });
      forwardMaxDiffKvF16 = maxDiff(ours.logits!, await ref('f16'), c.rows, nVocab);
    }

    const r = new Rng(seed + 17);
    const layers: LayerCheck[] = [];
    const wanted = opts.layers ?? Array.from({ length: nLayer }, (_, i) => i);
    for (const layer of wanted) {
      // A vector of the residual stream's order of magnitude, so the check runs off the origin.
      const v0 = r.normals(nEmbd);
      const lossAt = async (v: Float32Array): Promise<number> => {
        tr.setVectors([{ layer, data: v }]);
        const o = await tr.run({ ...batch, logitScale, lossScale: 1 / nTargets });
        return o.loss;
      };
      let forwardMaxDiff: number | null = null;
      if (doForward) {
        tr.setVectors([{ layer, data: v0, trainable: false }]);
        const ours = await tr.run({ ...batch, logits: true });
        const tensor = layer === 0 ? 'token_embd_rows' : `l_out-${layer - 1}`;
        forwardMaxDiff = maxDiff(ours.logits!, await ref('f32', { tensor, add: v0 }), c.rows, nVocab);
      }
      tr.setVectors([{ layer, data: v0 }]);
      await tr.run({ ...batch, logitScale, lossScale: 1 / nTargets, backward: true });
      const g = tr.grad(0);
      const gn = norm(g);
      const along = async (dir: Float32Array): Promise<number> => {
        const at = async (t: number) => {
          const v = new Float32Array(nEmbd);
          for (let i = 0; i < nEmbd; i++) v[i] = v0[i] + t * dir[i];
          return lossAt(v);
        };
        const d1 = ((await at(h)) - (await at(-h))) / (2 * h);
        const d2 = ((await at(h / 2)) - (await at(-h / 2))) / h;
        return (4 * d2 - d1) / 3; // Richardson: cancels the h^2 term
      };
      const unit = new Float32Array(nEmbd);
      for (let i = 0; i < nEmbd; i++) unit[i] = g[i] / gn;
      const dirFd = await along(unit);
      const directionalRelErr = Math.abs(dirFd - gn) / gn;
      const order = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]) - Math.abs(g[a]));
      let coordRelErr = 0;
      for (const i of order.slice(0, topK)) {
        const e = new Float32Array(nEmbd);
        e[i] = 1;
        const fd = await along(e);
        coordRelErr = Math.max(coordRelErr, Math.abs(fd - g[i]) / Math.abs(g[i]));
      }
      layers.push({ layer, forwardMaxDiff, gradNorm: gn, directionalRelErr, coordRelErr });
    }
    const fw = layers.map((l) => l.forwardMaxDiff).filter((x): x is number => x !== null);
    return {
      model: path,
      arch: tr.info.arch,
      backend: tr.info.backend,
      weightType: matrixType(path),
      nLayer,
      layers,
      forwardMaxDiffKvF16,
      worstForward: fw.length ? Math.max(...fw) : null,
      worstGradient: Math.max(...layers.map((l) => Math.max(l.directionalRelErr, l.coordRelErr))),
    };
  } finally {
    tr.free();
    model?.free();
  }
}
