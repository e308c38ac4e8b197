// The hybrid model's speed, side by side in one run (docs/hybrid.md "Speed"):
//  1. equality and speed-up: the fast loop against the paper's algorithm taken literally
//     (reference.ts) on one problem, the paper's 1.5B grid (10 coefficients × 5 windows), on a
//     generated pair whose thinking model is the base model with perturbed weights (~12 % of the
//     tokens disagree); speed-up = reference time / fast time at 250, 500, 1,000 tokens (one run
//     of each, cumulative times);
//  2. unsteered step: plain lockstep on a pair that always agrees (the thinking model is the base
//     model's file) against generate() of each model alone: hybrid time per token / (base step +
//     thinking step);
//  3. speculative lockstep: the time per token with the base model drafting k tokens, on a pair
//     with ~12 % disagreement, against the same (base step + thinking step). Policy `oracle` (the
//     thinking token is emitted at a disagreement) so that only the lockstep is timed: the grid
//     search at a disagreement is the same with or without speculation.
// Steps 2-3 use a Qwen2.5-0.5B-shaped F16 model (random weights) scaled down to --qwen-layers
// layers (default 6 of 24: same width and vocabulary, so the same cost ratio of a k-row decode
// to a 1-row one; --qwen-layers 24 for the full shape).
//
//   node --import tsx bench/hybrid.ts [--json] [--tokens 1000] [--qwen-layers 6] [--spec-tokens 48] [--ideas]
//
// Models are written once to ~/.cache/thinkwhen/bench/hybrid/. Run with THINKWHEN_THREADS=1.
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generate, Model } from '../src/engine/index.ts';
import { QWEN25_05B_SHAPE, type TinyModelSpec, writeTinyModel } from '../src/gguf/tiny-model.ts';
import { hybridRun } from '../src/hybrid/hybrid.ts';
import type { HybridEvent, HybridOptions, HybridPair, TokenRecord } from '../src/hybrid/options.ts';
import { referenceGenerate } from '../src/hybrid/reference.ts';
import { randomSae, randomVectors, writePerturbedModel } from '../src/hybrid/synthetic.ts';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    tokens: { type: 'string', default: '1000' },
    'qwen-layers': { type: 'string', default: '6' },
    'spec-tokens': { type: 'string', default: '48' },
    speculate: { type: 'string', default: '4' },
    ideas: { type: 'boolean', default: false },
  },
});
const TOKENS = Number(values.tokens);
const CHECKPOINTS = [250, 500, 1000].filter((n) => n <= TOKENS);
const SPEC_TOKENS = Number(values['spec-tokens']);
const K = Number(values.speculate);
const log = (s: string) => console.error(s);

const dir = join(homedir(), '.cache', 'thinkwhen', 'bench', 'hybrid');
mkdirSync(dir, { recursive: true });

/** A base model and its perturbed copy, written once. */
function pairFiles(name: string, spec: TinyModelSpec, scale: number): { base: string; thinking: string } {
  const base = join(dir, `${name}-base.gguf`);
  const thinking = join(dir, `${name}-thinking-${scale}.gguf`);
  if (!existsSync(base)) {
    log(`writing ${base}…`);
    writeTinyModel(base, spec);
  }
  if (!existsSync(thinking)) {
    log(`writing ${thinking}…`);
    writePerturbedModel(base, thinking, { scale, seed: 5 });
  }
  return { base, thinking };
}

/** Mean residual norm at a layer over a prompt, to give random vectors a realistic size. */
async function residualNorm(model: Model, layer: number, text: string): Promise<number> {
  const ctx = model.createContext({ nCtx: 512, nBatch: 512, nSeqMax: 1 });
  const seq = ctx.sequence();
  const ids = Array.from(model.tokenize(text, { addSpecial: true }));
  const out = await ctx.decode(
    ids.map((token) => ({ token, seq })),
    [{ hook: `blocks.${layer}.hook_resid_post`, rows: 'all', capture: true }],
  );
  ctx.free();
  const rows = out.captures[0]!;
  return rows.reduce((s, r) => s + Math.hypot(...r), 0) / rows.length;
}

async function loadPair(
  files: { base: string; thinking: string },
  saeLayer: number,
  steerLayer: number,
): Promise<HybridPair> {
  const base = await Model.load(files.base);
  const thinking = await Model.load(files.thinking);
  const norm = await residualNorm(base, steerLayer, QUESTION);
  return {
    base,
    thinking,
    sae: randomSae(thinking.info.nEmbd, 15, 3),
    saeLayer,
    vectors: randomVectors(base.info.nEmbd, steerLayer, 15, { biasNorm: 0.5 * norm, norm, seed: 11 }),
  };
}

function freePair(p: HybridPair): void {
  p.base.free();
  p.thinking.free();
}

const QUESTION =
  'Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?';
const PROBLEM = [{ id: 'bench', question: QUESTION }];
const PAPER_GRID = {
  coefficients: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
  windows: [0, -1, -15, -50, -100],
};

/** Runs to completion; the time at which each token's event arrived (ms since the start). */
async function timed(events: AsyncGenerator<HybridEvent>): Promise<{ records: TokenRecord[]; at: number[] }> {
  const t0 = performance.now();
  const records: TokenRecord[] = [];
  const at: number[] = [];
  for await (const ev of events) {
    if (ev.type !== 'token') continue;
    records.push(ev.record);
    at.push(performance.now() - t0);
  }
  return { records, at };
}

/** Per-token time after the first token (prefill excluded). */
const perToken = (at: number[]) => (at[at.length - 1] - at[0]) / (at.length - 1);

/** First step where two streams differ, or -1. */
function firstDifference(a: TokenRecord[], b: TokenRecord[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (
      !x ||
      !y ||
      x.token !== y.token ||
      x.steered !== y.steered ||
      x.coefficient !== y.coefficient ||
      x.window !== y.window
    )
      return i;
  }
  return -1;
}

const disagreement = (r: TokenRecord[]) => r.filter((x) => x.gate === 'disagree').length / r.length;

// ---------------------------------------------------------------------------------------------
// 1. equality and speed-up against the reference
const tinySpec: TinyModelSpec = {
  arch: 'llama',
  nLayer: 4,
  nEmbd: 128,
  nHead: 4,
  nHeadKv: 2,
  nFf: 256,
  vocab: 'small',
  seed: 3,
  nCtx: 4096,
};
const speedPair = await loadPair(pairFiles('tiny4x128', tinySpec, 0.027), 1, 1);
const common: HybridOptions = { grid: PAPER_GRID, maxTokens: TOKENS, batch: 1 };
log(`reference, ${TOKENS} tokens…`);
const ref = await timed(referenceGenerate(speedPair, PROBLEM, common));
log(`fast, ${TOKENS} tokens…`);
const fastRun = hybridRun(speedPair, PROBLEM, { ...common, speculate: K });
const fast = await timed(fastRun.events);
const diff = firstDifference(ref.records, fast.records);
const marginException = diff >= 0 && (ref.records[diff]?.margin ?? 1) < 1e-4;
const equal = diff < 0 || marginException;
const compared = diff < 0 ? ref.records.length : diff;
const speedup: Record<string, number | null> = {};
for (const n of CHECKPOINTS) {
  speedup[n] =
    ref.at.length >= n && fast.at.length >= n && (diff < 0 || diff >= n) ? ref.at[n - 1] / fast.at[n - 1] : null;
}
const speedDetails = {
  pair: 'llama 4 layers × 128, small vocabulary; thinking = base + 2.7 % weight noise; SAE 15 random latents at layer 1; random vectors at layer 1',
  tokens: ref.records.length,
  disagreement_rate: disagreement(ref.records),
  compared_tokens: compared,
  first_difference: diff,
  reference_ms: ref.at[ref.at.length - 1],
  fast_ms: fast.at[fast.at.length - 1],
  counters: fastRun.counters,
};

// Each speed-up idea switched off in turn (same stream, other cost).
const ideas: Record<string, number> = {};
if (values.ideas) {
  const variants: [string, HybridOptions][] = [
    ['all', { speculate: K }],
    ['no_speculation', { speculate: 1 }],
    ['no_early_exit', { speculate: K, earlyExit: false }],
    ['no_window0_pool', { speculate: K, steeredPool: 0 }],
  ];
  for (const [name, o] of variants) {
    log(`fast (${name})…`);
    const r = await timed(hybridRun(speedPair, PROBLEM, { ...common, ...o }).events);
    ideas[name] = r.at[r.at.length - 1];
  }
}
freePair(speedPair);

// ---------------------------------------------------------------------------------------------
// 2-3. unsteered lockstep step and speculative lockstep on a Qwen2.5-0.5B-shaped model
const qwenLayers = Number(values['qwen-layers']);
const qwenSpec: TinyModelSpec = { ...QWEN25_05B_SHAPE, nLayer: qwenLayers, nCtx: 4096 };
const qwenFiles = pairFiles(`qwen05b-${qwenLayers}l`, qwenSpec, 0.025);

async function generateStep(path: string): Promise<number> {
  const m = await Model.load(path);
  const ctx = m.createContext({ nCtx: 1024, nBatch: 512, nSeqMax: 1 });
  const ids = Array.from(m.tokenize(`Question: ${QUESTION}\nAnswer:`, { addSpecial: true }));
  const at: number[] = [];
  const t0 = performance.now();
  await generate(ctx, [{ prompt: ids, maxTokens: SPEC_TOKENS, stopAtEog: false }], {
    onToken: () => {
      at.push(performance.now() - t0);
    },
  });
  ctx.free();
  m.free();
  return perToken(at);
}

log(`Qwen2.5-0.5B-shaped (${qwenLayers} layers): base and thinking steps…`);
const baseStep = await generateStep(qwenFiles.base);
const thinkStep = await generateStep(qwenFiles.thinking);
const lockOpts: HybridOptions = {
  maxTokens: SPEC_TOKENS,
  batch: 1,
  basePrompt: 'Question: {question}\nAnswer:',
  thinkingPrompt: 'Question: {question}\nAnswer:',
};

log('unsteered lockstep (thinking = base file)…');
const same = await loadPair({ base: qwenFiles.base, thinking: qwenFiles.base }, 2, 2);
const unsteered = await timed(hybridRun(same, PROBLEM, { ...lockOpts, speculate: 1 }).events);
freePair(same);
const unsteeredStep = perToken(unsteered.at);

log(`speculative lockstep (k = ${K}) and plain lockstep, oracle policy…`);
const qpair = await loadPair(qwenFiles, 2, 2);
const specRun = hybridRun(qpair, PROBLEM, { ...lockOpts, policy: 'oracle', speculate: K });
const spec = await timed(specRun.events);
const plain = await timed(hybridRun(qpair, PROBLEM, { ...lockOpts, policy: 'oracle', speculate: 1 }).events);
freePair(qpair);

const result = {
  equal,
  margin_exceptions: marginException ? 1 : 0,
  speedup,
  unsteered_step_ratio: unsteeredStep / (baseStep + thinkStep),
  speculative_token_ratio: perToken(spec.at) / (baseStep + thinkStep),
  details: {
    speedup: speedDetails,
    ideas_ms: values.ideas ? ideas : 'run with --ideas',
    qwen: {
      shape: `Qwen2.5-0.5B-shaped F16, ${qwenLayers} of 24 layers, random weights; thinking = base + 2.5 % weight noise`,
      tokens: SPEC_TOKENS,
      base_step_ms: baseStep,
      thinking_step_ms: thinkStep,
      unsteered_step_ms: perToken(unsteered.at),
      unsteered_agree_rate: 1 - disagreement(unsteered.records),
      speculate: K,
      speculative_token_ms: perToken(spec.at),
      plain_lockstep_token_ms: perToken(plain.at),
      disagreement_rate: disagreement(spec.records),
      counters: specRun.counters,
    },
    threads: process.env.THINKWHEN_THREADS ?? 'all cores',
  },
};

if (values.json) console.log(JSON.stringify(result));
else console.log(JSON.stringify(result, null, 2));
