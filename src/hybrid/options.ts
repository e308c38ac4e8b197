// The hybrid model's inputs, options and per-token record, shared by the fast loop (hybrid.ts)
// and the literal reference (reference.ts). docs/hybrid.md describes each field.
import type { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import type { VectorSet } from '../steer/vector-set.ts';
import type { TopKSae } from '../taxonomy/sae.ts';

/**
 * Steering vectors as the hybrid needs them: the fields of a loaded vector set
 * (`loadVectorSet()`, src/steer/vector-set.ts) it reads; tests build one in memory. Category
 * vectors are keyed by latent id, never by position among the present categories; vectors are
 * added at `applyHook` = blocks.{layer}.hook_resid_post of the base model.
 */
export type HybridVectors = Pick<VectorSet, 'layer' | 'applyHook' | 'bias' | 'vectors' | 'titles' | 'skipped'> & {
  /** where the set came from (records name its files) */
  dir?: string;
  /** the set's manifest: file names of the bias and of each latent's vector, when known */
  manifest?: { bias?: { file: string } | null; categories?: { latent: number; file: string }[] };
};

/** A vector set with no vectors, for the policies that steer nothing (selection_only, oracle). */
export function noVectors(): HybridVectors {
  return {
    layer: 0,
    applyHook: 'blocks.0.hook_resid_post',
    bias: null,
    vectors: new Map(),
    titles: new Map(),
    skipped: new Map(),
  };
}

/** Everything the hybrid runs on: two models, the thinking model's SAE and the base model's vectors. */
export interface HybridPair {
  base: Model;
  thinking: Model;
  sae: TopKSae;
  /** thinking-model layer whose raw last-token resid_post the SAE reads */
  saeLayer: number;
  vectors: HybridVectors;
}

/**
 * One generation to run: a problem's prompts, already encoded for each model (the prompts are the
 * caller's: `promptIds` of src/experiments/prompts.ts builds the paper's), and which sample of the
 * problem it is.
 */
export interface HybridProblem {
  /** the problem's id: names the events, and keys the random draws with `sample` */
  id: string;
  /** prompt token ids: the base model's and the thinking model's (each non-empty) */
  prompt: { base: number[]; thinking: number[] };
  /** sample index (default 0): the draws of sample i of a problem are the same in every run (pass@k) */
  sample?: number;
}

export const POLICIES = [
  'paper',
  'only_bias',
  'random_firing',
  'random_vectors',
  'norm_random',
  'selection_only',
  'pure_steering',
  'oracle',
] as const;
export type PolicyName = (typeof POLICIES)[number];

/** 'auto': ids when the two vocabularies are proven identical, decoded token bytes otherwise. */
export type GateMode = 'auto' | 'ids' | 'strings';

export interface Grid {
  /** outer loop */
  coefficients: number[];
  /** inner loop; 0 = every position (prompt and BOS included), −n = the last n positions */
  windows: number[];
}

/** The grid of the Qwen2.5-Math-1.5B, Llama-3.1-8B and Qwen2.5-14B pairs (docs/method.md §2.7). */
export const PAPER_GRID: Grid = {
  coefficients: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
  windows: [0, -1, -15, -50, -100],
};
/** The grid of the Qwen2.5-32B pairs. */
export const PAPER_GRID_32B: Grid = { coefficients: [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], windows: [0] };

export interface HybridOptions {
  policy?: PolicyName;
  grid?: Grid;
  /** generated-token cap (default 2000, the paper's) */
  maxTokens?: number;
  gate?: GateMode;
  /**
   * 0 (default): greedy, the paper's setting. T > 0: the token the base model emits at an agreement
   * and every steered candidate are drawn from softmax(logits / T) (the paper's `sample(ℓ, T)`);
   * the gate still compares greedy tokens and the guardrail still takes the best-scored candidate.
   */
  temperature?: number;
  /** nucleus sampling of those draws (1 = off, the default) */
  topP?: number;
  /**
   * A latent the SAE can pick but the vector set lacks: 'error' (default) refuses to start;
   * 'bias' steers with c·bias and marks those tokens (the paper's silent fallback, made visible).
   */
  missingVector?: 'error' | 'bias';
  /** seed of the draws (temperature > 0) and of random_firing, random_vectors and norm_random */
  seed?: number;
  /** pure_steering: the one coefficient and window (default: the grid's largest coefficient, window 0) */
  pureCoefficient?: number;
  pureWindow?: number;
  /**
   * fast path: most tokens the base model runs ahead before the thinking model checks them (1 = plain
   * lockstep); per problem the draft halves at a disagreement and doubles after a round without one
   */
  speculate?: number;
  /** fast path: problems decoded together (each group shares one base and one thinking context) */
  batch?: number;
  /**
   * fast path: window-0 steered sequences kept (least recently used evicted). Default: as many as
   * fit in 1 GiB of KV cache and attention buffers, at most one per (problem, coefficient, vector).
   * 0 keeps none, so every window-0 candidate re-decodes the whole text (the paper's cost; for benchmarks).
   */
  steeredPool?: number;
  /** fast path: stop a grid search once a candidate scores the top log-prob (default true; off for benchmarks) */
  earlyExit?: boolean;
  /** CPU threads per context (default: THINKWHEN_THREADS or all cores) */
  threads?: number;
  signal?: AbortSignal;
}

export interface Candidate {
  coefficient: number;
  window: number;
  /** candidate token (base vocabulary) */
  token: number;
  /** thinking log-probability of the first token of its re-encoding (−Infinity when empty; null in JSON) */
  logp: number;
}

/** One generated token and how it was chosen. */
export interface TokenRecord {
  step: number;
  /** emitted token: base vocabulary, except for the oracle policy (thinking vocabulary, source 'thinking') */
  token: number;
  source: 'base' | 'thinking';
  /** decoded text appended to the output */
  text: string;
  /** greedy tokens of the two models on the same prefix */
  baseGreedy: number;
  thinkingGreedy: number;
  gate: 'agree' | 'disagree';
  steered: boolean;
  /** SAE category (argmax of the dense encoder) or the random category; null when not computed */
  latent: number | null;
  title: string | null;
  /** the winning latent's pre-activation */
  activation: number | null;
  /** chosen grid cell (steered tokens) */
  coefficient?: number;
  window?: number;
  /** the vector file applied: the latent's file, 'bias' (only_bias / missing vector), a random vector, or 'none' */
  vector?: string;
  /** the latent has no vector: c·bias was applied alone (missingVector 'bias') */
  missingVector?: true;
  /** candidates evaluated, in grid order (later ones cannot win after an early exit) */
  candidates?: Candidate[];
  /** index of the emitted candidate in `candidates` */
  chosen?: number;
  /** steered tokens: the emitted token scores the thinking model's top log-prob (it is, or starts with, its greedy token) */
  reachedThinking?: boolean;
  /** reference only: the smallest top-2 margin of any decision this step made */
  margin?: number;
}

export type FinishReason = 'eos' | 'length' | 'aborted';

export interface HybridResult {
  /** index into the problems given */
  problem: number;
  id: string;
  sample: number;
  /** token ids fed to the base model after the prompt (the base-side re-encodings, in order) */
  tokens: number[];
  text: string;
  records: TokenRecord[];
  promptTokens: { base: number; thinking: number };
  finishReason: FinishReason;
  startedAt: number;
  finishedAt: number;
}

export type HybridEvent =
  | { type: 'token'; problem: number; id: string; record: TokenRecord }
  | { type: 'done'; problem: number; id: string; result: HybridResult };

/** Options with every default filled in and checked. */
export interface ResolvedOptions {
  policy: PolicyName;
  grid: Grid;
  maxTokens: number;
  gate: GateMode;
  temperature: number;
  topP: number;
  missingVector: 'error' | 'bias';
  seed: number;
  pureCoefficient: number;
  pureWindow: number;
  speculate: number;
  batch: number;
  steeredPool: number | 'auto';
  earlyExit: boolean;
  threads?: number;
  signal?: AbortSignal;
}

const badOption = (msg: string, fix?: string) => new ThinkwhenError('BAD_HYBRID_OPTION', msg, fix);

function positiveInt(v: number, name: string, max: number): number {
  if (!Number.isInteger(v) || v < 1 || v > max) throw badOption(`${name} must be an integer in 1..${max}, got ${v}`);
  return v;
}

export function resolveOptions(o: HybridOptions = {}): ResolvedOptions {
  const policy = o.policy ?? 'paper';
  if (!POLICIES.includes(policy)) throw badOption(`unknown policy '${policy}'`, `use one of ${POLICIES.join(', ')}`);
  const grid = o.grid ?? PAPER_GRID;
  if (!grid.coefficients.length || !grid.windows.length)
    throw badOption('the grid needs ≥ 1 coefficient and ≥ 1 window');
  for (const c of grid.coefficients)
    if (!Number.isFinite(c)) throw badOption(`coefficient ${c} is not a finite number`);
  for (const w of grid.windows) {
    if (!Number.isInteger(w) || w > 0) {
      throw badOption(`window ${w} is not 0 or a negative integer`, '0 = every position, −n = the last n positions');
    }
  }
  const gate = o.gate ?? 'auto';
  if (!['auto', 'ids', 'strings'].includes(gate)) throw badOption(`gate must be auto, ids or strings, got '${gate}'`);
  const missingVector = o.missingVector ?? 'error';
  if (missingVector !== 'error' && missingVector !== 'bias') throw badOption(`missingVector must be error or bias`);
  const temperature = o.temperature ?? 0;
  if (!(Number.isFinite(temperature) && temperature >= 0 && temperature <= 100)) {
    throw badOption(`temperature must be a number from 0 to 100, got ${temperature}`, '0 = greedy (the paper)');
  }
  const topP = o.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) throw badOption(`topP must be in (0, 1], got ${topP}`, '1 = off');
  const seed = o.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw badOption(`seed must be an integer from 0 to 4294967295, got ${seed}`);
  }
  const pureWindow = o.pureWindow ?? 0;
  if (!Number.isInteger(pureWindow) || pureWindow > 0) throw badOption(`pureWindow ${pureWindow} is not 0 or −n`);
  const pureCoefficient = o.pureCoefficient ?? Math.max(...grid.coefficients);
  if (!Number.isFinite(pureCoefficient)) throw badOption(`pureCoefficient ${pureCoefficient} is not finite`);
  return {
    policy,
    grid: { coefficients: [...grid.coefficients], windows: [...grid.windows] },
    maxTokens: positiveInt(o.maxTokens ?? 2000, 'maxTokens', 1 << 20),
    gate,
    temperature,
    topP,
    missingVector,
    seed,
    pureCoefficient,
    pureWindow,
    speculate: positiveInt(o.speculate ?? 4, 'speculate', 64),
    batch: positiveInt(o.batch ?? 8, 'batch', 64),
    steeredPool:
      o.steeredPool === undefined ? 'auto' : o.steeredPool === 0 ? 0 : positiveInt(o.steeredPool, 'steeredPool', 4096),
    earlyExit: o.earlyExit ?? true,
    threads: o.threads,
    signal: o.signal,
  };
}

/** Refuses prompts a model cannot read (empty, or ids outside its vocabulary) before any decode. */
export function checkProblems(pair: Pick<HybridPair, 'base' | 'thinking'>, problems: HybridProblem[]): void {
  for (const p of problems) {
    const sample = p.sample ?? 0;
    if (!Number.isInteger(sample) || sample < 0) {
      throw badOption(`problem ${p.id}: sample must be an integer ≥ 0, got ${sample}`);
    }
    for (const side of ['base', 'thinking'] as const) {
      const ids = p.prompt?.[side];
      const nVocab = pair[side].info.nVocab;
      if (!Array.isArray(ids) || ids.length === 0) {
        throw new ThinkwhenError(
          'EMPTY_PROMPT',
          `problem ${p.id}: the ${side} prompt has no tokens`,
          'encode it with promptIds (src/experiments/prompts.ts)',
        );
      }
      const wrong = ids.find((t) => !Number.isInteger(t) || t < 0 || t >= nVocab);
      if (wrong !== undefined) {
        throw badOption(
          `problem ${p.id}: the ${side} prompt holds token ${wrong}, outside the ${side} model's vocabulary of ${nVocab}`,
          `encode the ${side} prompt with the ${side} model's tokenizer`,
        );
      }
    }
  }
}
