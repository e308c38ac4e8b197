// Engine speed, side by side in one run: thinkwhen vs node-llama-cpp@3.21.1 on the same GGUF
// (a random-weight model of Qwen2.5-0.5B's shape, F16), same threads, batch and context sizes.
// Prints medians of REPS alternating runs and the ratios the engine issue targets:
//   plain generation ≥ 0.95× node-llama-cpp; capture + add at one layer on 4 sequences ≤ 5 % cost.
// Setup once: bash bench/ref/install.sh   Run: node --import tsx bench/engine.ts [--reps 3] [--threads 2]
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generate, Model } from '../src/engine/index.ts';
import { QWEN25_05B_SHAPE, writeTinyModel } from '../src/gguf/tiny-model.ts';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    model: { type: 'string' },
  },
});
const REPS = Number(values.reps);
const THREADS = Number(values.threads);
const PROMPT_TOKENS = 256;
const GEN_1 = 48;
const GEN_4 = 32;
const LAYER = 12;

const dir = join(homedir(), '.cache', 'thinkwhen', 'bench');
mkdirSync(dir, { recursive: true });
const modelPath = values.model ?? join(dir, 'qwen2.5-0.5b-shape-f16.gguf');
if (!existsSync(modelPath)) {
  console.error(`writing ${modelPath} (random weights, ~1 GB)…`);
  writeTinyModel(modelPath, QWEN25_05B_SHAPE);
}

const refPath = join(import.meta.dirname, 'ref', 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
if (!existsSync(refPath)) {
  console.error('node-llama-cpp is not installed for the bench: run `bash bench/ref/install.sh`');
  process.exit(2);
}
const nlc = await import(refPath);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => performance.now() / 1000;

// --- thinkwhen
const model = await Model.load(modelPath, { gpuLayers: 0 });
const ctx = model.createContext({ nCtx: 2048, nBatch: 512, nSeqMax: 4, threads: THREADS });
const text = 'The quick brown fox jumps over the lazy dog. '.repeat(40);
const prompt = Array.from(model.tokenize(text)).slice(0, PROMPT_TOKENS);
const prompts4 = [0, 1, 2, 3].map((i) => [...prompt.slice(0, 64 - i), 100 + i]);

async function twPrompt(): Promise<number> {
  const seq = ctx.sequence();
  const t = now();
  await ctx.decode(prompt.map((token, i) => ({ token, seq, logits: i === prompt.length - 1 })));
  const rate = PROMPT_TOKENS / (now() - t);
  seq.dispose();
  return rate;
}
async function twGen(n: number, nTokens: number, hook: boolean): Promise<number> {
  const v = new Float32Array(model.info.nEmbd).fill(0.01);
  let generated = 0;
  let t = 0;
  await generate(
    ctx,
    prompts4.slice(0, n).map((p) => ({ prompt: p, maxTokens: nTokens, stopAtEog: false })),
    {
      hooks: hook
        ? [
            {
              hook: `blocks.${LAYER}.hook_resid_post`,
              add: (r) => (r.phase === 'generated' ? v : undefined),
              capture: (r) => r.phase === 'generated',
            },
          ]
        : [],
      onCapture: () => {},
      // time generation only, from the first sampled token on
      onToken: () => {
        if (generated++ === n - 1) t = now();
      },
    },
  );
  return (generated - n) / (now() - t);
}

// --- node-llama-cpp
const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: 'error' });
const refModel = await llama.loadModel({ modelPath, gpuLayers: 0 });
const refCtx = await refModel.createContext({
  contextSize: 2048,
  batchSize: 512,
  sequences: 4,
  threads: THREADS,
  flashAttention: false,
});

async function refPrompt(): Promise<number> {
  const seq = refCtx.getSequence();
  const t = now();
  await seq.evaluateWithoutGeneratingNewTokens(prompt);
  const r = PROMPT_TOKENS / (now() - t);
  seq.dispose();
  return r;
}
async function refGen(n: number, nTokens: number): Promise<number> {
  const seqs = Array.from({ length: n }, () => refCtx.getSequence());
  let generated = 0;
  let t = 0;
  await Promise.all(
    seqs.map(async (seq, i) => {
      let k = 0;
      for await (const _tok of seq.evaluate(prompts4[i], { temperature: 0 })) {
        if (generated++ === n - 1) t = now();
        if (++k >= nTokens) break;
      }
    }),
  );
  const r = (generated - n) / (now() - t);
  for (const s of seqs) s.dispose();
  return r;
}

const rows: Record<string, { tw: number[]; ref: number[]; hook: number[]; plain: number[] }> = {
  'prompt (256 tokens)': { tw: [], ref: [], hook: [], plain: [] },
  'generate, 1 sequence': { tw: [], ref: [], hook: [], plain: [] },
  'generate, 4 sequences': { tw: [], ref: [], hook: [], plain: [] },
};
console.error(`model ${modelPath}, ${THREADS} threads, ${REPS} repetitions (alternating)`);
await twGen(1, 4, false); // warm-up both
await refGen(1, 4);
for (let r = 0; r < REPS; r++) {
  const order = r % 2 === 0;
  const pair = async (key: string, a: () => Promise<number>, b: () => Promise<number>) => {
    if (order) {
      rows[key].tw.push(await a());
      rows[key].ref.push(await b());
    } else {
      rows[key].ref.push(await b());
      rows[key].tw.push(await a());
    }
  };
  await pair('prompt (256 tokens)', twPrompt, refPrompt);
  await pair(
    'generate, 1 sequence',
    () => twGen(1, GEN_1, false),
    () => refGen(1, GEN_1),
  );
  await pair(
    'generate, 4 sequences',
    () => twGen(4, GEN_4, false),
    () => refGen(4, GEN_4),
  );
  // the hook cost: its own alternating pair, so drift between runs does not pose as cost
  const g4 = rows['generate, 4 sequences'];
  if (order) {
    g4.hook.push(await twGen(4, GEN_4, true));
    g4.plain.push(await twGen(4, GEN_4, false));
  } else {
    g4.plain.push(await twGen(4, GEN_4, false));
    g4.hook.push(await twGen(4, GEN_4, true));
  }
  console.error(`repetition ${r + 1}/${REPS} done`);
}

console.log(`\n| tokens/s (median of ${REPS}) | thinkwhen | node-llama-cpp | ratio |`);
console.log('|---|---|---|---|');
for (const [k, v] of Object.entries(rows)) {
  console.log(
    `| ${k} | ${median(v.tw).toFixed(1)} | ${median(v.ref).toFixed(1)} | ${(median(v.tw) / median(v.ref)).toFixed(3)} |`,
  );
}
const g4 = rows['generate, 4 sequences'];
const cost = 1 - median(g4.hook) / median(g4.plain);
console.log(
  `\ncapture + add at blocks.${LAYER}.hook_resid_post, 4 sequences: ${median(g4.hook).toFixed(1)} tok/s vs ${median(g4.plain).toFixed(1)} without: cost ${(cost * 100).toFixed(1)} %`,
);
await refCtx.dispose();
await refModel.dispose();
ctx.free();
model.free();
