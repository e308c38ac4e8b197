// Training-graph speed, measured in one run next to llama.cpp's own forward pass on the same file:
//   1. vectors: a random Qwen2.5-1.5B-shaped model with Q8_0 weights, one F32 vector, one sequence
//      of SEQ tokens, forward+backward tokens/s vs llama.cpp's prompt-processing tokens/s (the
//      issue's target: >= 0.25x, ideal ~0.33x);
//   2. weights: a ~2M-parameter llama-shaped model, all weights in F32, forward+backward+AdamW
//      tokens/s (and the same ratio against llama.cpp's forward on that file).
// Effective GFLOP/s count the matrix products only (2 FLOPs per multiply-add): forward =
// 2 * (matrix params + output) + 4 * n_layer * T * n_embd per token, full attention square.
// Run: node --import tsx bench/train.ts [--threads 2] [--seq 512] [--reps 3] [--layer 0] [--skip-1p5b]
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Model } from '../src/engine/index.ts';
import { type TinyModelSpec, writeTinyModel } from '../src/gguf/tiny-model.ts';
import { GgmlType } from '../src/gguf/types.ts';
import { rng } from '../src/train/rng.ts';
import { Trainer } from '../src/train/trainer.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    seq: { type: 'string', default: '512' },
    reps: { type: 'string', default: '3' },
    layer: { type: 'string', default: '0' },
    'grad-weights': { type: 'string', default: 'auto' },
    device: { type: 'string', default: 'cpu' },
    'skip-1p5b': { type: 'boolean', default: false },
    'skip-small': { type: 'boolean', default: false },
  },
});
const THREADS = Number(values.threads);
const SEQ = Number(values.seq);
const REPS = Number(values.reps);
const now = () => performance.now() / 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const dir = join(homedir(), '.cache', 'thinkwhen', 'bench');
mkdirSync(dir, { recursive: true });

const QWEN25_15B_Q8: TinyModelSpec = {
  arch: 'qwen2',
  nLayer: 28,
  nEmbd: 1536,
  nHead: 12,
  nHeadKv: 2,
  nFf: 8960,
  nCtx: 32768,
  vocab: 'qwen2',
  weightType: GgmlType.Q8_0,
  tiedOutput: true,
};
const SMALL_2M: TinyModelSpec = {
  arch: 'llama',
  nLayer: 4,
  nEmbd: 192,
  nHead: 6,
  nHeadKv: 2,
  nFf: 512,
  vocab: 'small',
  seed: 7,
};

function modelFile(name: string, spec: TinyModelSpec): string {
  const p = join(dir, name);
  if (!existsSync(p)) {
    console.error(`writing ${p} (random weights)…`);
    writeTinyModel(p, spec);
  }
  return p;
}

function flopsPerToken(s: TinyModelSpec, nVocab: number, T: number): { weights: number; attention: number } {
  const hd = s.nEmbd / s.nHead;
  const perLayer = s.nEmbd * (s.nEmbd + 2 * hd * s.nHeadKv) + s.nEmbd * s.nEmbd + 3 * s.nEmbd * s.nFf;
  return { weights: 2 * (s.nLayer * perLayer + s.nEmbd * nVocab), attention: 4 * s.nLayer * T * s.nEmbd };
}

async function llamaForward(path: string, tokens: number[]): Promise<number> {
  const model = await Model.load(path, { gpuLayers: values.device === 'gpu' ? 999 : 0 });
  const ctx = model.createContext({
    nCtx: Math.max(1024, tokens.length * 2),
    nBatch: tokens.length,
    nSeqMax: 1,
    threads: THREADS,
  });
  const rates: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const seq = ctx.sequence();
    const t = now();
    await ctx.decode(tokens.map((token, i) => ({ token, seq, logits: i === tokens.length - 1 })));
    rates.push(tokens.length / (now() - t));
    seq.dispose();
  }
  ctx.free();
  model.free();
  return median(rates);
}

function tokensFor(nVocab: number, n: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => 5 + Math.floor(r() * Math.min(nVocab - 5, 30000)));
}

const lines: string[] = [];
const out = (s: string) => {
  lines.push(s);
  console.log(s);
};

if (!values['skip-1p5b']) {
  const path = modelFile('qwen2.5-1.5b-shape-q8_0.gguf', QWEN25_15B_Q8);
  const t0 = now();
  const tr = Trainer.open(path, {
    mode: 'vectors',
    threads: THREADS,
    device: values.device,
    gradWeightType: values['grad-weights'] as 'auto',
  });
  const loadS = now() - t0;
  const { nVocab, nEmbd } = tr.info;
  const toks = tokensFor(nVocab, SEQ, 1);
  const fwd = await llamaForward(path, toks);
  const layer = Number(values.layer);
  tr.setVectors([{ layer, data: new Float32Array(nEmbd).fill(0.01) }]);
  // the paper's layout: a short prompt, then target tokens (scored and steered) to the end
  const P = 32;
  const targets = new Int32Array(SEQ).fill(-1);
  const steer = new Float32Array(SEQ);
  for (let t = P - 1; t < SEQ - 1; t++) targets[t] = toks[t + 1];
  for (let t = P; t < SEQ; t++) steer[t] = 1;
  const batch = {
    nSeq: 1,
    seqLen: SEQ,
    tokens: Int32Array.from(toks),
    lengths: Int32Array.from([SEQ]),
    targets,
    steer,
  };
  const est = tr.estimate({ ...batch, backward: true });
  const rates: number[] = [];
  const fwdOnly: number[] = [];
  for (let r = 0; r < REPS; r++) {
    let t = now();
    await tr.run({ ...batch, logitScale: 0.7, lossScale: 1 / (SEQ - P), backward: true });
    rates.push(SEQ / (now() - t));
    t = now();
    await tr.run({ ...batch, logitScale: 0.7 });
    fwdOnly.push(SEQ / (now() - t));
  }
  tr.free();
  const f = flopsPerToken(QWEN25_15B_Q8, nVocab, SEQ);
  const trainFlops = 2 * f.weights + 3 * f.attention; // forward + dx of every product (no weight gradients)
  const rate = median(rates);
  out(
    `Qwen2.5-1.5B shape, Q8_0 weights, ${THREADS} threads, one sequence of ${SEQ} tokens, vector at layer ${layer} (${tr.info.backend})`,
  );
  out(
    `  load + transposed copies (${tr.info.gradWeightType}): ${loadS.toFixed(1)} s; graph ${(est.computeBytes / 2 ** 30).toFixed(2)} GiB + ${(est.persistentBytes / 2 ** 30).toFixed(2)} GiB weights`,
  );
  out(
    `  llama.cpp forward (prompt, last logits): ${fwd.toFixed(1)} tok/s, ${(((f.weights + f.attention) * fwd) / 1e9).toFixed(1)} GFLOP/s`,
  );
  out(`  training graph forward only (all target logits): ${median(fwdOnly).toFixed(1)} tok/s`);
  out(
    `  training graph forward+backward: ${rate.toFixed(1)} tok/s, ${((trainFlops * rate) / 1e9).toFixed(1)} effective GFLOP/s`,
  );
  out(`  ratio forward+backward / llama.cpp forward: ${(rate / fwd).toFixed(3)}x (target >= 0.25x, ideal ~0.33x)`);
}

if (!values['skip-small']) {
  const path = modelFile('llama-2m-f32.gguf', SMALL_2M);
  const tr = Trainer.open(path, { mode: 'weights', threads: THREADS, device: values.device });
  const nParams = tr.info.nTrainable;
  const T = 128;
  const B = 8;
  const seqs = Array.from({ length: B }, (_, i) => tokensFor(tr.nVocab, T, 10 + i));
  const fwd = await llamaForward(path, seqs[0]);
  const tokens = new Int32Array(B * T);
  const targets = new Int32Array(B * T).fill(-1);
  seqs.forEach((s, b) => {
    tokens.set(s, b * T);
    for (let t = 0; t < T - 1; t++) targets[b * T + t] = s[t + 1];
  });
  const batch = { nSeq: B, seqLen: T, tokens, lengths: new Int32Array(B).fill(T), targets };
  const rates: number[] = [];
  for (let r = 0; r < REPS + 2; r++) {
    const t = now();
    await tr.run({ ...batch, lossScale: 1 / (B * (T - 1)), backward: true });
    await tr.step({ lr: 1e-3 });
    if (r >= 2) rates.push((B * T) / (now() - t));
  }
  tr.free();
  const f = flopsPerToken(SMALL_2M, tr.info.nVocab, T);
  const rate = median(rates);
  out(
    `~2M-parameter llama (${(nParams / 1e6).toFixed(2)}M trained), F32, ${THREADS} threads, ${B} x ${T} tokens per step`,
  );
  out(`  llama.cpp forward: ${fwd.toFixed(0)} tok/s`);
  out(
    `  weight training (forward+backward+AdamW): ${rate.toFixed(0)} tok/s, ${((3 * (f.weights + f.attention) * rate) / 1e9).toFixed(1)} effective GFLOP/s`,
  );
  out(`  ratio / llama.cpp forward: ${(rate / fwd).toFixed(3)}x`);
}
