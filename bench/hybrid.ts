// The hybrid model's speed, side by side in one run (docs/hybrid.md "Speed"):
//  1. equality and speed-up: the fast loop against the paper's algorithm taken literally
//     (reference.ts) on one problem, the paper's 1.5B grid (10 coefficients × 5 windows), on a
//     generated pair whose thinking model is the base model with perturbed weights (~10 % of the
//     tokens disagree); speed-up = reference time / fast time at 250, 500, 1,000 tokens (one run
//     of each, cumulative times), and the same ratio in token-rows decoded (machine-independent);
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
// The defaults finish in a few minutes on 2 cores (speed-up at 250 tokens; 500 and 1,000 print
// null; the lockstep over 128 tokens, 2 repetitions); --full measures the speed-up to 1,000 tokens
// and the lockstep over 256 tokens, 3 repetitions (most of an hour, nearly all of it the reference).
//
//   node --import tsx bench/hybrid.ts [--json] [--full] [--tokens N] [--qwen-layers 6] [--qwen-noise 0.019] [--spec-tokens N] [--reps N] [--speculate 4] [--ideas]
//
// Models are written once to ~/.cache/thinkwhen/bench/hybrid/. Run with THINKWHEN_THREADS=1.
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generate, Model } from '../src/engine/index.ts';
import { promptIds } from '../src/experiments/prompts.ts';
import { QWEN25_05B_SHAPE, type TinyModelSpec, writeTinyModel } from '../src/gguf/tiny-model.ts';
import {
  Bridge,
  compareStreams,
  type HybridEvent,
  type HybridOptions,
  type HybridPair,
  type HybridProblem,
  hybridRun,
  referenceGenerate,
  type TokenRecord,
} from '../src/hybrid/index.ts';
import {
  meanDifferenceVectors,
  randomSae,
  randomVectors,
  suppressTokens,
  writePerturbedModel,
} from '../src/hybrid/synthetic.ts';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    full: { type: 'boolean', default: false },
    tokens: { type: 'string' },
    'qwen-layers': { type: 'string', default: '6' },
    // weight noise of the thinking model: 0.019 made 14.8 % of 128 tokens disagree (0.016 and
    // 0.018: 8.6 %, 0.022: 17.2 %; disagreements cluster, so the rate of a short run is noisy)
    'qwen-noise': { type: 'string', default: '0.019' },
    'spec-tokens': { type: 'string' },
    speculate: { type: 'string', default: '4' },
    reps: { type: 'string' },
    ideas: { type: 'boolean', default: false },
  },
});
const TOKENS = Number(values.tokens ?? (values.full ? 1000 : 250));
const CHECKPOINTS = [250, 500, 1000].filter((n) => n <= TOKENS);
const SPEC_TOKENS = Number(values['spec-tokens'] ?? (values.full ? 256 : 128));
const K = Number(values.speculate);
const log = (s: string) => console.error(s);

const dir = join(homedir(), '.cache', 'thinkwhen', 'bench', 'hybrid');
mkdirSync(dir, { recursive: true });

/** A base model and its perturbed copy, written once. */
function pairFiles(
  name: string,
  spec: TinyModelSpec,
  scale: number,
  o: { suppress?: number[]; select?: (tensor: string) => boolean } = {},
): { base: string; thinking: string } {
  const base = join(dir, `${name}-base.gguf`);
  const thinking = join(dir, `${name}-thinking-${scale}.gguf`);
  if (!existsSync(base)) {
    log(`writing ${base}…`);
    writeTinyModel(`${base}.tmp`, spec);
    if (o.suppress) suppressTokens(`${base}.tmp`, o.suppress);
    renameSync(`${base}.tmp`, base);
  }
  if (!existsSync(thinking)) {
    log(`writing ${thinking}…`);
    writePerturbedModel(base, thinking, { scale, seed: 5, select: o.select });
  }
  return { base, thinking };
}

/** The speed-up pair: a random SAE and mean-difference vectors from the base model's own text. */
async function diffPair(files: { base: string; thinking: string }, layer: number): Promise<HybridPair> {
  const base = await Model.load(files.base);
  const thinking = await Model.load(files.thinking);
  const sae = randomSae(thinking.info.nEmbd, 15, 3);
  const ctx = base.createContext({ nCtx: 1024, nSeqMax: 1 });
  const ids = Array.from(base.tokenize(QUESTION, { addSpecial: true }));
  const out = await generate(ctx, [{ prompt: ids, maxTokens: 300, stopAtEog: false }]);
  ctx.free();
  const vectors = await meanDifferenceVectors(base, thinking, sae, layer, [[...ids, ...out[0].tokens]]);
  return { base, thinking, sae, saeLayer: layer, vectors };
}

/** Token-rows the reference decoded up to each step (both models, every candidate): its work. */
function referenceRows(pair: HybridPair, problem: HybridProblem, records: TokenRecord[]): number[] {
  const bridge = new Bridge(pair.base, pair.thinking, 'auto');
  let b = problem.prompt.base.length;
  let t = problem.prompt.thinking.length;
  let total = 0;
  return records.map((r) => {
    total += t + b * (1 + (r.candidates?.length ?? 0));
    const x = r.source === 'base' ? bridge.fromBase(r.token) : bridge.fromThinking(r.token);
    b += x.baseIds.length;
    t += x.thinkIds.length;
    return total;
  });
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

function freePair(p: HybridPair): void {
  p.base.free();
  p.thinking.free();
}

const QUESTION =
  'Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?';
/** The bench question, prompted with a template on both sides. */
const problem = (pair: Pick<HybridPair, 'base' | 'thinking'>, template: string): HybridProblem[] => [
  {
    id: 'bench',
    prompt: { base: promptIds(pair.base, template, QUESTION), thinking: promptIds(pair.thinking, template, QUESTION) },
  },
];
const PAPER_GRID = {
  coefficients: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
  windows: [0, -1, -15, -50, -100],
};

/**
 * Wall and process CPU ms since the clock started. The machine may be shared: CPU time (the decodes
 * run on one thread, THINKWHEN_THREADS=1) is the cost, wall time includes waiting for a core.
 */
function clock(): () => { wall: number; cpu: number } {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  return () => {
    const c = process.cpuUsage(c0);
    return { wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 };
  };
}

/**
 * Runs to completion; the time at which each token's event arrived (ms since the start), its CPU
 * time, and `snapshot()` at that moment.
 */
async function timed<S>(
  events: AsyncGenerator<HybridEvent>,
  snapshot?: () => S,
): Promise<{ records: TokenRecord[]; at: number[]; cpuAt: number[]; counters: S[] }> {
  const now = clock();
  const records: TokenRecord[] = [];
  const at: number[] = [];
  const cpuAt: number[] = [];
  const counters: S[] = [];
  for await (const ev of events) {
    if (ev.type !== 'token') continue;
    records.push(ev.record);
    const t = now();
    at.push(t.wall);
    cpuAt.push(t.cpu);
    if (snapshot) counters.push(snapshot());
  }
  return { records, at, cpuAt, counters };
}

/** Per-token CPU and wall time after the first token (prefill excluded). */
const perToken = (r: { at: number[]; cpuAt: number[] }) => {
  const n = r.at.length - 1;
  return { cpu: (r.cpuAt[n] - r.cpuAt[0]) / n, wall: (r.at[n] - r.at[0]) / n };
};

const disagreement = (r: TokenRecord[]) => r.filter((x) => x.gate === 'disagree').length / r.length;

// ---------------------------------------------------------------------------------------------
// 1. equality and speed-up against the reference
// A tiny pair whose reference run of 1,000 tokens stays within minutes: llama, 2 layers × 32, a
// small vocabulary whose byte pieces and special tokens are unreachable (no re-encoding blow-up, no
// EOS). The thinking model differs from the base in block 0 only (weight noise), so its residual
// at the steering layer (0) is where the two differ; the vectors are the mean residual differences
// per SAE category on the base model's own text (meanDifferenceVectors).
const tinySpec: TinyModelSpec = {
  arch: 'llama',
  nLayer: 2,
  nEmbd: 32,
  nHead: 2,
  nHeadKv: 1,
  nFf: 64,
  vocab: 'small',
  seed: 3,
  nCtx: 4096,
};
const speedFiles = pairFiles('tiny2x32', tinySpec, 0.08, {
  suppress: Array.from({ length: 261 }, (_, i) => i),
  select: (name) => name.startsWith('blk.0.'),
});
const speedPair = await diffPair(speedFiles, 0);
const common: HybridOptions = {
  grid: PAPER_GRID,
  maxTokens: TOKENS,
  batch: 1,
  missingVector: 'bias', // latents that never fired on the vectors' text steer with the bias alone
};
const PROBLEM = problem(speedPair, '{question}');
log(`reference, ${TOKENS} tokens…`);
const ref = await timed(referenceGenerate(speedPair, PROBLEM, common));
log(`fast, ${TOKENS} tokens…`);
const fastRun = hybridRun(speedPair, PROBLEM, { ...common, speculate: K });
const fast = await timed(fastRun.events, () => ({ ...fastRun.counters }));
const cmp = compareStreams([{ id: 'bench', records: ref.records }], [{ id: 'bench', records: fast.records }]);
const diff = cmp.details[0].firstDifference;
const refRows = referenceRows(speedPair, PROBLEM[0], ref.records);
const speedup: Record<string, number | null> = { 250: null, 500: null, 1000: null };
const rowRatio: Record<string, number | null> = { 250: null, 500: null, 1000: null };
const wallSpeedup: Record<string, number | null> = { 250: null, 500: null, 1000: null };
for (const n of CHECKPOINTS) {
  const ok = ref.at.length >= n && fast.at.length >= n && (diff < 0 || diff >= n);
  speedup[n] = ok ? ref.cpuAt[n - 1] / fast.cpuAt[n - 1] : null;
  wallSpeedup[n] = ok ? ref.at[n - 1] / fast.at[n - 1] : null;
  const c = fast.counters[n - 1];
  rowRatio[n] = ok && c ? refRows[n - 1] / (c.baseRows + c.thinkingRows + c.windowRows + c.steeredRows) : null;
}
const steered = ref.records.filter((r) => r.steered);
const speedDetails = {
  pair: 'llama 2 layers × 32, small vocabulary (bytes and specials unreachable); thinking = base + 8 % noise on block 0; SAE 15 random latents at layer 0; mean-difference vectors at layer 0; prompt = the question alone',
  tokens: ref.records.length,
  disagreement_rate: steered.length / ref.records.length,
  steered_reaching_thinking_token: steered.filter((r) => r.reachedThinking).length / Math.max(1, steered.length),
  compared_tokens: cmp.comparedTokens,
  first_difference: diff,
  speedup: 'reference CPU time / fast CPU time up to each length',
  wall_speedup: wallSpeedup,
  token_row_ratio: rowRatio,
  reference_ms: { cpu: ref.cpuAt[ref.at.length - 1], wall: ref.at[ref.at.length - 1] },
  fast_ms: { cpu: fast.cpuAt[fast.at.length - 1], wall: fast.at[fast.at.length - 1] },
  counters: fastRun.counters,
};

// Each speed-up idea switched off in turn (same stream, other cost).
const ideas: Record<string, { ms: number; rows: number }> = {};
if (values.ideas) {
  const variants: [string, HybridOptions][] = [
    ['all', { speculate: K }],
    ['no_speculation', { speculate: 1 }],
    ['no_early_exit', { speculate: K, earlyExit: false }],
    ['no_window0_pool', { speculate: K, steeredPool: 0 }],
  ];
  for (const [name, o] of variants) {
    log(`fast (${name})…`);
    const run = hybridRun(speedPair, PROBLEM, { ...common, ...o });
    const r = await timed(run.events);
    const c = run.counters;
    ideas[name] = { ms: r.at[r.at.length - 1], rows: c.baseRows + c.thinkingRows + c.windowRows + c.steeredRows };
  }
}
freePair(speedPair);

// ---------------------------------------------------------------------------------------------
// 2-3. unsteered lockstep step and speculative lockstep on a Qwen2.5-0.5B-shaped model
const qwenLayers = Number(values['qwen-layers']);
const QWEN_NOISE = Number(values['qwen-noise']);
// Untied output matrix: a random model whose logits are h·Eᵀ with its own input embedding E
// predicts the token it just read and repeats it forever (no disagreement to measure).
const qwenSpec: TinyModelSpec = { ...QWEN25_05B_SHAPE, nLayer: qwenLayers, nCtx: 4096, tiedOutput: false };
const qwenFiles = pairFiles(`qwen05b-${qwenLayers}l-untied`, qwenSpec, QWEN_NOISE);

const REPS = Number(values.reps ?? (values.full ? 3 : 2));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const qBase = await Model.load(qwenFiles.base);
const qThinking = await Model.load(qwenFiles.thinking);
const lockOpts: HybridOptions = {
  maxTokens: SPEC_TOKENS,
  batch: 1,
};
const QWEN_PROBLEM = problem({ base: qBase, thinking: qThinking }, 'Question: {question}\nAnswer:');

/** Per-token time of plain greedy generation (prefill excluded). */
async function generateStep(m: Model): Promise<{ cpu: number; wall: number }> {
  const ctx = m.createContext({ nCtx: 1024, nBatch: 512, nSeqMax: 1 });
  const ids = Array.from(m.tokenize(`Question: ${QUESTION}\nAnswer:`, { addSpecial: true }));
  const at: number[] = [];
  const cpuAt: number[] = [];
  const now = clock();
  await generate(ctx, [{ prompt: ids, maxTokens: SPEC_TOKENS, stopAtEog: false }], {
    onToken: () => {
      const t = now();
      at.push(t.wall);
      cpuAt.push(t.cpu);
    },
  });
  ctx.free();
  return perToken({ at, cpuAt });
}

/**
 * CPU ms of one decode of k rows after a 60-token prefix, logits on every row (the thinking model's
 * check of k drafts) or on the last row only (the output head's share): is a k-row decode cheaper
 * than k one-row decodes on this CPU? Medians over `reps`.
 */
async function decodeCurve(m: Model, ks: number[], reps: number) {
  const ctx = m.createContext({ nCtx: 1024, nBatch: 512, nSeqMax: 1 });
  const seq = ctx.sequence();
  await ctx.decode(Array.from({ length: 60 }, (_, i) => ({ token: 100 + i, seq })));
  const ms = new Map<string, number[]>();
  for (let r = 0; r < reps; r++) {
    for (const k of ks) {
      for (const logits of ['all', 'last']) {
        const now = clock();
        await ctx.decode(
          Array.from({ length: k }, (_, i) => ({ token: 200 + i, seq, logits: logits === 'all' || i === k - 1 })),
        );
        const key = `${k}:${logits}`;
        ms.set(key, [...(ms.get(key) ?? []), now().cpu]);
        seq.truncate(60);
      }
    }
  }
  ctx.free();
  const one = median(ms.get('1:all')!);
  return Object.fromEntries(
    ks.map((k) => [
      k,
      {
        ms_all_logits: median(ms.get(`${k}:all`)!),
        ms_last_logits: median(ms.get(`${k}:last`)!),
        per_row_vs_one_row: median(ms.get(`${k}:all`)!) / k / one,
      },
    ]),
  );
}

// Interleaved repetitions, medians: the machine is shared and noisy.
const norm = await residualNorm(qBase, 2, QUESTION);
const vecs = randomVectors(qBase.info.nEmbd, 2, 15, { biasNorm: 0.5 * norm, norm, seed: 11 });
const sae = randomSae(qThinking.info.nEmbd, 15, 3);
const same: HybridPair = { base: qBase, thinking: qBase, sae, saeLayer: 2, vectors: vecs };
const qpair: HybridPair = { base: qBase, thinking: qThinking, sae, saeLayer: 2, vectors: vecs };
type Cost = { cpu: number; wall: number };
const times = {
  base: [] as Cost[],
  thinking: [] as Cost[],
  unsteered: [] as Cost[],
  spec: [] as Cost[],
  plain: [] as Cost[],
};
let unsteered: { records: TokenRecord[] } = { records: [] };
let spec: { records: TokenRecord[] } = { records: [] };
let specCounters = {};
for (let r = 0; r < REPS; r++) {
  log(
    `Qwen2.5-0.5B-shaped (${qwenLayers} layers), repetition ${r + 1}/${REPS}: base, thinking, unsteered lockstep, speculative (k = ${K}), plain lockstep…`,
  );
  times.base.push(await generateStep(qBase));
  times.thinking.push(await generateStep(qThinking));
  // the thinking model is the base model itself: every step agrees
  const u = await timed(hybridRun(same, QWEN_PROBLEM, { ...lockOpts, speculate: 1 }).events);
  times.unsteered.push(perToken(u));
  unsteered = u;
  // oracle: a disagreement emits the thinking token, so only the lockstep is timed
  const run = hybridRun(qpair, QWEN_PROBLEM, { ...lockOpts, policy: 'oracle', speculate: K });
  const sp = await timed(run.events);
  times.spec.push(perToken(sp));
  spec = sp;
  specCounters = run.counters;
  const pl = await timed(hybridRun(qpair, QWEN_PROBLEM, { ...lockOpts, policy: 'oracle', speculate: 1 }).events);
  times.plain.push(perToken(pl));
}
log('k-row decode cost curve…');
const curve = await decodeCurve(qThinking, [1, 2, 4, 8], Math.max(3, REPS));
qBase.free();
qThinking.free();
// medians of CPU time (the cost) and of wall time (what a user waits on this shared machine)
const med = (xs: Cost[]) => ({ cpu: median(xs.map((x) => x.cpu)), wall: median(xs.map((x) => x.wall)) });
const baseStep = med(times.base);
const thinkStep = med(times.thinking);
const ratio = (xs: Cost[]) => med(xs).cpu / (baseStep.cpu + thinkStep.cpu);

const result = {
  equal: cmp.equal,
  margin_exceptions: cmp.marginExceptions,
  speedup,
  unsteered_step_ratio: ratio(times.unsteered),
  speculative_token_ratio: ratio(times.spec),
  details: {
    speedup: speedDetails,
    ideas_ms: values.ideas ? ideas : 'run with --ideas',
    qwen: {
      shape: `Qwen2.5-0.5B-shaped F16, ${qwenLayers} of 24 layers, random weights; thinking = base + ${100 * QWEN_NOISE} % weight noise`,
      tokens: SPEC_TOKENS,
      repetitions: REPS,
      ratios: 'CPU time per token / (base step + thinking step), medians; *_ms: {cpu, wall} medians',
      base_step_ms: baseStep,
      thinking_step_ms: thinkStep,
      unsteered_step_ms: med(times.unsteered),
      unsteered_agree_rate: 1 - disagreement(unsteered.records),
      speculate: K,
      speculative_token_ms: med(times.spec),
      plain_lockstep_token_ms: med(times.plain),
      plain_lockstep_ratio: ratio(times.plain),
      disagreement_rate: disagreement(spec.records),
      counters: specCounters,
      decode_cost_by_rows: curve,
      all_ms: times,
    },
    threads: process.env.THINKWHEN_THREADS ?? 'all cores',
  },
};

if (values.json) console.log(JSON.stringify(result));
else console.log(JSON.stringify(result, null, 2));
