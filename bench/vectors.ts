// Steering-vector training throughput next to llama.cpp's forward pass, measured in one run on a
// random Qwen2.5-1.5B-shaped model with Q8_0 weights (the file bench/train.ts also uses):
//   llama.cpp  prompt processing of SEQ tokens (logits of the last one), tokens/s;
//   layer-0    one vector at layer 0, 32 prompt + SEQ−32 target tokens (bench/train.ts's case:
//              the backward runs through all 28 blocks);
//   bias       the paper's bias example at its layer for this pair (10): a 64-token prompt, the
//              rest is thinking text to score;
//   category   the paper's category example at layer 10: a long prompt (all thinking before the
//              sentence) and a 32-token target sentence.
// Each training row is one forward+backward over the SEQ tokens of one sequence (tokens/s) and its
// ratio to llama.cpp's forward (the target: ≥ 0.25×), the median over repetitions of the
// ratio within each repetition. The machine may be shared: compare ratios, not absolute rates.
// Run: node --import tsx bench/vectors.ts [--threads 2] [--seq 512] [--reps 3] [--grad-weights auto|q8_0]
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Model } from '../src/engine/index.ts';
import { type TinyModelSpec, writeTinyModel } from '../src/gguf/tiny-model.ts';
import { GgmlType } from '../src/gguf/types.ts';
import { Rng } from '../src/rng.ts';
import { Trainer } from '../src/train/trainer.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    seq: { type: 'string', default: '512' },
    reps: { type: 'string', default: '3' },
    'grad-weights': { type: 'string', default: 'auto' },
  },
});
const THREADS = Number(values.threads);
const SEQ = Number(values.seq);
const REPS = Number(values.reps);
const now = () => performance.now() / 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

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

const dir = join(homedir(), '.cache', 'thinkwhen', 'bench');
mkdirSync(dir, { recursive: true });
const path = join(dir, 'qwen2.5-1.5b-shape-q8_0.gguf');
if (!existsSync(path)) {
  console.error(`writing ${path} (random weights)…`);
  writeTinyModel(path, QWEN25_15B_Q8);
}

const rng = new Rng(1);
const tokens = Array.from({ length: SEQ }, () => 5 + Math.floor(rng.next() * 30000));

// Both loaded at once, and the measurements interleaved per repetition, so that a change in the
// machine's load hits every series alike.
const model = await Model.load(path, { gpuLayers: 0 });
const ctx = model.createContext({ nCtx: 2 * SEQ, nBatch: SEQ, nSeqMax: 1, threads: THREADS });
const seq = ctx.sequence();
const t0 = now();
const tr = Trainer.open(path, { mode: 'vectors', threads: THREADS, gradWeightType: values['grad-weights'] as 'auto' });
const loadS = now() - t0;

async function forwardRate(): Promise<number> {
  seq.clear();
  const t = now();
  await ctx.decode(tokens.map((token, i) => ({ token, seq, logits: i === SEQ - 1 })));
  return SEQ / (now() - t);
}

function batchFor(prompt: number) {
  const targets = new Int32Array(SEQ).fill(-1);
  const steer = new Float32Array(SEQ);
  for (let t = prompt - 1; t < SEQ - 1; t++) targets[t] = tokens[t + 1];
  for (let t = prompt; t < SEQ; t++) steer[t] = 1;
  return { nSeq: 1, seqLen: SEQ, tokens: Int32Array.from(tokens), lengths: Int32Array.from([SEQ]), targets, steer };
}

async function trainingRate(layer: number, prompt: number): Promise<number> {
  tr.setVectors([{ layer, data: new Float32Array(tr.nEmbd).fill(0.01) }]);
  const t = now();
  await tr.run({ ...batchFor(prompt), logitScale: 0.7, lossScale: 1 / (SEQ - prompt), backward: true });
  const rate = SEQ / (now() - t);
  tr.zeroGrad();
  return rate;
}

const cases: Array<[string, number, number]> = [
  ['layer-0 (bench/train.ts)', 0, 32],
  ['bias, layer 10', 10, 64],
  ['category, layer 10', 10, SEQ - 32],
];
// One untimed pass of every shape first: the first run of a graph shape allocates it.
await forwardRate();
for (const [, layer, prompt] of cases) await trainingRate(layer, prompt);
const fwd: number[] = [];
const rates = cases.map(() => [] as number[]);
for (let r = 0; r < REPS; r++) {
  fwd.push(await forwardRate());
  for (const [i, [, layer, prompt]] of cases.entries()) rates[i].push(await trainingRate(layer, prompt));
  console.error(`repetition ${r + 1}/${REPS} done`);
}
ctx.free();
model.free();
tr.free();

console.log(
  `Qwen2.5-1.5B shape, Q8_0, ${THREADS} threads, one sequence of ${SEQ} tokens, medians of ${REPS}; transposed copies ${tr.info.gradWeightType}, load ${loadS.toFixed(1)} s`,
);
console.log(`  llama.cpp forward: ${median(fwd).toFixed(1)} tok/s`);
for (const [i, [name, , prompt]] of cases.entries()) {
  const rate = median(rates[i]);
  const ratio = median(rates[i].map((x, r) => x / fwd[r])); // each repetition's pair measured back to back
  console.log(
    `  ${name.padEnd(26)} prompt ${String(prompt).padStart(4)}, target ${String(SEQ - prompt).padStart(4)}: fwd+bwd ${rate.toFixed(1)} tok/s, ratio ${ratio.toFixed(3)}x`,
  );
}
