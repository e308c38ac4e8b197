// Model-pair presets: the paper's five base/thinking pairs (docs/method.md §4, §5, §2.7) and the
// shipped organism pairs. A preset names the models a user downloads, the settings every stage
// takes from the pair (SAE layer, K, steering layer, grid, vector minibatches, prompts, token cap)
// and the shape of each GGUF, which `checkModelFile` compares against the file a user points at.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ThinkwhenError } from '../errors.ts';
import { readGguf } from '../gguf/read.ts';
import { ORGANISM_COEFS } from '../organism/artifacts.ts';
import { FULL_SPEC, organismModelPaths, organismVocab } from '../organism/index.ts';
import { PAPER_PRESETS } from '../taxonomy/layers.ts';

/** The SAE (layer, K) the paper chose for a thinking model: one table, src/taxonomy/layers.ts. */
function paperSae(name: string): { saeLayer: number; k: number } {
  const p = PAPER_PRESETS.find((x) => x.name === name);
  if (!p) throw new Error(`no taxonomy preset ${name}`); // a typo in this file, caught by any test loading it
  return { saeLayer: p.saeLayer, k: p.k };
}

/** What a GGUF of one model must look like (read from its header, no weights loaded). */
export interface ModelSpec {
  /** The Hugging Face repository the weights come from. */
  repo: string;
  /** The file name the preset looks for in the models folder (convert or download it under this name). */
  file: string;
  /** llama.cpp architecture (`general.architecture`). */
  arch: string;
  nLayer: number;
  nEmbd: number;
  /** Tokens in the vocabulary (llama.cpp's converter pads the list to the config's vocab_size). */
  nVocab: number;
  /** `tokenizer.ggml.model`. */
  tokenizer: string;
  /** Accepted `tokenizer.ggml.pre` values (empty: the key is absent, as in SentencePiece files). */
  pre: string[];
}

/** How a prompt is built (the hybrid's PromptSpec): 'paper' = the paper's base prompt, 'chat' = the model's chat template. */
export type PromptKind = 'paper' | 'chat';

export interface Grid {
  /** outer loop */
  coefficients: number[];
  /** inner loop; 0 = every position, −n = the last n positions */
  windows: number[];
}

export interface PairPreset {
  name: string;
  summary: string;
  base: ModelSpec;
  thinking: ModelSpec;
  /** Thinking-model layer the taxonomy SAE reads (null: chosen by the taxonomy stage). */
  saeLayer: number | null;
  /** SAE latents = categories (null: chosen by the taxonomy stage). */
  k: number | null;
  /** Base-model layer the steering vectors act at (blocks.S.hook_resid_post). */
  steerLayer: number;
  grid: Grid;
  /** Steering-vector training minibatches (bias / category). */
  batchBias: number;
  batchCategory: number;
  basePrompt: PromptKind;
  thinkingPrompt: PromptKind;
  /** Generated-token cap of every system (the paper: 2,000). */
  maxTokens: number;
  /** Where the model files are when no folder is given: the shipped organism's folder, else null. */
  modelsDir: string | null;
}

/** The grid of the Qwen2.5-Math-1.5B, Llama-3.1-8B and Qwen2.5-14B pairs (docs/method.md §2.7). */
export const PAPER_GRID: Grid = {
  coefficients: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
  windows: [0, -1, -15, -50, -100],
};
/** The grid of the two Qwen2.5-32B pairs. */
export const PAPER_GRID_32B: Grid = { coefficients: [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], windows: [0] };

/** The paper's token cap for every system (docs/method.md §2.8). */
export const PAPER_MAX_TOKENS = 2000;

// Shapes: layers and width from docs/method.md §4; vocabulary sizes are the models' config.json
// vocab_size. Pre-tokenizer names are llama.cpp's (R1-Distill-Qwen conversions made before
// llama.cpp knew that tokenizer say `qwen2`).
const qwen = (repo: string, file: string, nLayer: number, nEmbd: number, nVocab: number, pre: string[]): ModelSpec => ({
  repo,
  file,
  arch: 'qwen2',
  nLayer,
  nEmbd,
  nVocab,
  tokenizer: 'gpt2',
  pre,
});
const QWEN_PRE = ['qwen2'];
const R1_QWEN_PRE = ['deepseek-r1-qwen', 'qwen2'];
const LLAMA3_PRE = ['llama-bpe', 'llama3', 'llama-v3'];

const paperPair = (p: Omit<PairPreset, 'basePrompt' | 'thinkingPrompt' | 'maxTokens' | 'modelsDir'>) =>
  ({
    ...p,
    basePrompt: 'paper',
    thinkingPrompt: 'chat',
    maxTokens: PAPER_MAX_TOKENS,
    modelsDir: null,
  }) satisfies PairPreset;

function organismPair(name: string, baseFile: string, summary: string): PairPreset {
  const dir = join(organismModelPaths().base, '..');
  const spec = (repo: string, file: string): ModelSpec => ({
    repo,
    file,
    arch: 'llama',
    nLayer: FULL_SPEC.nLayer,
    nEmbd: FULL_SPEC.nEmbd,
    nVocab: organismVocab().pieces.length,
    tokenizer: 'llama',
    pre: [],
  });
  return {
    name,
    summary,
    base: spec('(shipped: src/organism/models)', baseFile),
    thinking: spec('(shipped: src/organism/models)', 'thinking.gguf'),
    saeLayer: null,
    k: null,
    // floor(0.375 · 4): the paper's depth fraction (docs/method.md A16).
    steerLayer: 1,
    // Its vectors act from c ≈ 4 (docs/vectors.md), where the paper's 0.1 … 1.0 would steer nothing.
    grid: { coefficients: ORGANISM_COEFS, windows: PAPER_GRID.windows },
    batchBias: 4,
    batchCategory: 4,
    // The organism's models were trained on its chat prompt, the base model included.
    basePrompt: 'chat',
    thinkingPrompt: 'chat',
    maxTokens: 320,
    modelsDir: dir,
  };
}

export const PRESETS: readonly PairPreset[] = [
  paperPair({
    name: 'qwen2.5-math-1.5b',
    summary: 'Qwen2.5-Math-1.5B + DeepSeek-R1-Distill-Qwen-1.5B',
    base: qwen('Qwen/Qwen2.5-Math-1.5B', 'Qwen2.5-Math-1.5B.gguf', 28, 1536, 151936, QWEN_PRE),
    thinking: qwen(
      'deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B',
      'DeepSeek-R1-Distill-Qwen-1.5B.gguf',
      28,
      1536,
      151936,
      R1_QWEN_PRE,
    ),
    ...paperSae('r1-qwen-1.5b'),
    steerLayer: 10,
    grid: PAPER_GRID,
    batchBias: 3,
    batchCategory: 3,
  }),
  paperPair({
    name: 'llama-3.1-8b',
    summary: 'Llama-3.1-8B + DeepSeek-R1-Distill-Llama-8B',
    base: {
      repo: 'meta-llama/Llama-3.1-8B',
      file: 'Llama-3.1-8B.gguf',
      arch: 'llama',
      nLayer: 32,
      nEmbd: 4096,
      nVocab: 128256,
      tokenizer: 'gpt2',
      pre: LLAMA3_PRE,
    },
    thinking: {
      repo: 'deepseek-ai/DeepSeek-R1-Distill-Llama-8B',
      file: 'DeepSeek-R1-Distill-Llama-8B.gguf',
      arch: 'llama',
      nLayer: 32,
      nEmbd: 4096,
      nVocab: 128256,
      tokenizer: 'gpt2',
      pre: LLAMA3_PRE,
    },
    ...paperSae('r1-llama-8b'),
    steerLayer: 12,
    grid: PAPER_GRID,
    batchBias: 4,
    batchCategory: 4,
  }),
  paperPair({
    name: 'qwen2.5-14b',
    summary: 'Qwen2.5-14B + DeepSeek-R1-Distill-Qwen-14B',
    base: qwen('Qwen/Qwen2.5-14B', 'Qwen2.5-14B.gguf', 48, 5120, 152064, QWEN_PRE),
    thinking: qwen(
      'deepseek-ai/DeepSeek-R1-Distill-Qwen-14B',
      'DeepSeek-R1-Distill-Qwen-14B.gguf',
      48,
      5120,
      152064,
      R1_QWEN_PRE,
    ),
    ...paperSae('r1-qwen-14b'),
    steerLayer: 18,
    grid: PAPER_GRID,
    batchBias: 2,
    batchCategory: 4,
  }),
  paperPair({
    name: 'qwen2.5-32b',
    summary: 'Qwen2.5-32B + DeepSeek-R1-Distill-Qwen-32B',
    base: qwen('Qwen/Qwen2.5-32B', 'Qwen2.5-32B.gguf', 64, 5120, 152064, QWEN_PRE),
    thinking: qwen(
      'deepseek-ai/DeepSeek-R1-Distill-Qwen-32B',
      'DeepSeek-R1-Distill-Qwen-32B.gguf',
      64,
      5120,
      152064,
      R1_QWEN_PRE,
    ),
    ...paperSae('r1-qwen-32b'),
    steerLayer: 24,
    grid: PAPER_GRID_32B,
    // The run's hyperparameter JSON (2 / 1); the run script says 4 / 4 (docs/method.md A9).
    batchBias: 2,
    batchCategory: 1,
  }),
  paperPair({
    name: 'qwen2.5-32b-qwq',
    summary: 'Qwen2.5-32B + QwQ-32B',
    base: qwen('Qwen/Qwen2.5-32B', 'Qwen2.5-32B.gguf', 64, 5120, 152064, QWEN_PRE),
    thinking: qwen('Qwen/QwQ-32B', 'QwQ-32B.gguf', 64, 5120, 152064, QWEN_PRE),
    ...paperSae('qwq-32b'),
    steerLayer: 24,
    grid: PAPER_GRID_32B,
    batchBias: 1,
    batchCategory: 1,
  }),
  organismPair('organism', 'base.gguf', 'the shipped model organism: base + thinking (src/organism/models)'),
  organismPair(
    'organism-latent',
    'base-latent.gguf',
    "the organism's base-latent model (verifies only when pushed there) + the thinking model",
  ),
];

export const PRESET_NAMES = PRESETS.map((p) => p.name);

export function getPreset(name: string): PairPreset {
  const p = PRESETS.find((x) => x.name === name);
  if (!p) {
    throw new ThinkwhenError(
      'UNKNOWN_PRESET',
      `no pair preset named '${name}'`,
      `use one of ${PRESET_NAMES.join(', ')}`,
    );
  }
  return p;
}

/** What a GGUF header says about the model, for the preset check and the run config. */
export interface ModelHeader {
  path: string;
  name: string;
  arch: string;
  nLayer: number;
  nEmbd: number;
  nVocab: number;
  tokenizer: string;
  pre: string | null;
  /** Token strings and types, for comparing the two tokenizers of a pair. */
  tokens: string[];
  tokenTypes: number[] | null;
}

export function readModelHeader(path: string): ModelHeader {
  const file = readGguf(path);
  const get = (k: string) => file.metadata.get(k)?.value;
  const arch = String(get('general.architecture') ?? '');
  const num = (k: string) => {
    const v = get(`${arch}.${k}`);
    return typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : Number.NaN;
  };
  const tokens = get('tokenizer.ggml.tokens');
  const types = get('tokenizer.ggml.token_type');
  return {
    path,
    name: String(get('general.name') ?? ''),
    arch,
    nLayer: num('block_count'),
    nEmbd: num('embedding_length'),
    nVocab: Array.isArray(tokens) ? tokens.length : 0,
    tokenizer: String(get('tokenizer.ggml.model') ?? ''),
    pre: typeof get('tokenizer.ggml.pre') === 'string' ? (get('tokenizer.ggml.pre') as string) : null,
    tokens: Array.isArray(tokens) ? (tokens as string[]) : [],
    tokenTypes: Array.isArray(types) ? (types as number[]) : null,
  };
}

/** Every way `header` differs from `spec`, as readable phrases (empty: it matches). */
export function specMismatches(header: ModelHeader, spec: ModelSpec): string[] {
  const out: string[] = [];
  if (header.arch !== spec.arch) out.push(`architecture '${header.arch}' (expected '${spec.arch}')`);
  if (header.nLayer !== spec.nLayer) out.push(`${header.nLayer} layers (expected ${spec.nLayer})`);
  if (header.nEmbd !== spec.nEmbd) out.push(`width ${header.nEmbd} (expected ${spec.nEmbd})`);
  if (header.tokenizer !== spec.tokenizer) {
    out.push(`tokenizer model '${header.tokenizer}' (expected '${spec.tokenizer}')`);
  } else if (spec.pre.length ? !spec.pre.includes(header.pre ?? '') : header.pre !== null) {
    out.push(
      `pre-tokenizer '${header.pre ?? 'none'}' (expected ${spec.pre.length ? spec.pre.map((p) => `'${p}'`).join(' or ') : 'none'})`,
    );
  }
  if (header.nVocab !== spec.nVocab) out.push(`${header.nVocab} vocabulary tokens (expected ${spec.nVocab})`);
  return out;
}

/** Reads a model's header and throws, naming every mismatch, when it is not the preset's `role` model. */
export function checkModelFile(preset: PairPreset, role: 'base' | 'thinking', path: string): ModelHeader {
  const spec = preset[role];
  const header = readModelHeader(path);
  const wrong = specMismatches(header, spec);
  if (wrong.length) {
    const other = role === 'base' ? 'thinking' : 'base';
    const swapped = specMismatches(header, preset[other]).length === 0 && wrong.length > 0;
    throw new ThinkwhenError(
      'MODEL_PRESET_MISMATCH',
      `${path} is not the ${role} model of preset '${preset.name}' (${spec.repo}): it has ${wrong.join(', ')}`,
      swapped
        ? `it looks like the ${other} model: swap --base and --thinking`
        : `pass the GGUF of ${spec.repo} as --${role}, or choose the preset that matches the file`,
    );
  }
  return header;
}

/**
 * The two tokenizers of a pair must spell their ordinary tokens alike: the hybrid hands text from
 * one model to the other, and the paper's pairs share one vocabulary family (special tokens may
 * differ: R1 distills rename Qwen's). Throws naming the first difference.
 */
export function checkPairTokenizers(base: ModelHeader, thinking: ModelHeader): void {
  const n = Math.min(base.tokens.length, thinking.tokens.length);
  const normal = (h: ModelHeader, i: number) => (h.tokenTypes ? h.tokenTypes[i] === 1 : true);
  let differ = 0;
  let first = -1;
  for (let i = 0; i < n; i++) {
    if (normal(base, i) && normal(thinking, i) && base.tokens[i] !== thinking.tokens[i]) {
      differ++;
      if (first < 0) first = i;
    }
  }
  if (base.tokenizer !== thinking.tokenizer || differ > 0) {
    throw new ThinkwhenError(
      'PAIR_TOKENIZER_MISMATCH',
      base.tokenizer !== thinking.tokenizer
        ? `the base model's tokenizer is '${base.tokenizer}' and the thinking model's '${thinking.tokenizer}'`
        : `the two tokenizers differ on ${differ} ordinary tokens, first at id ${first}: ${JSON.stringify(base.tokens[first])} (base) vs ${JSON.stringify(thinking.tokens[first])} (thinking)`,
      'use a base and a thinking model of the same tokenizer family (see the presets)',
    );
  }
}

/**
 * The files of a pair: explicit paths win; otherwise the preset's file names in `modelsDir`
 * (default: the preset's own folder, then `$THINKWHEN_MODELS_DIR`, then ./models).
 */
export function presetModelPath(
  preset: PairPreset,
  role: 'base' | 'thinking',
  explicit?: string,
  modelsDir?: string,
): string {
  if (explicit) {
    if (!existsSync(explicit)) {
      throw new ThinkwhenError('MODEL_NOT_FOUND', `--${role} ${explicit}: no such file`, 'check the path');
    }
    return explicit;
  }
  const dir = modelsDir ?? preset.modelsDir ?? process.env.THINKWHEN_MODELS_DIR ?? 'models';
  const path = join(dir, preset[role].file);
  if (!existsSync(path)) {
    throw new ThinkwhenError(
      'MODEL_NOT_FOUND',
      `the ${role} model of preset '${preset.name}' is not at ${path}`,
      preset.modelsDir
        ? `build it (thinkwhen organism build) or pass --${role} FILE`
        : `convert ${preset[role].repo} to GGUF (llama.cpp's convert_hf_to_gguf.py) and save it as ${path}, or pass --${role} FILE (docs/experiments.md)`,
    );
  }
  return path;
}

/** A preset scaled to other shapes (tests and custom conversions keep everything else). */
export function withShapes(
  preset: PairPreset,
  shapes: { base?: Partial<ModelSpec>; thinking?: Partial<ModelSpec> },
): PairPreset {
  return {
    ...preset,
    base: { ...preset.base, ...shapes.base },
    thinking: { ...preset.thinking, ...shapes.thinking },
  };
}
