// Metadata checks run before llama.cpp sees a file. llama.cpp answers most bad files with an
// error, but some values reach a GGML_ASSERT (or an uncaught C++ exception) and abort the whole
// process, and some load fine and compute NaN. Each rule below names the llama.cpp check it
// stands in for (pinned release, see scripts/build-native.mjs), so it can be re-read on upgrade.
import { type ErrorCode, ThinkwhenError } from '../errors.ts';
import type { GgufFile } from '../gguf/read.ts';
import { GgufValueType } from '../gguf/types.ts';

/** llama-hparams.h */
const LLAMA_MAX_LAYERS = 512;
const LLAMA_MAX_EXPERTS = 1024;
/** ggml-backend.cpp: every tensor's data pointer must be aligned to this (TENSOR_ALIGNMENT). */
const TENSOR_ALIGNMENT = 32;
/** llama-model.cpp LLAMA_ROPE_SCALING_TYPES; any other string fails a GGML_ASSERT. */
const ROPE_SCALING_TYPES = ['none', 'linear', 'yarn', 'longrope'];
/** llama-vocab.cpp: tokenizer models with a tokenizer; 'none'/'no_vocab' have none. */
const NO_TOKENIZER = ['none', 'no_vocab'];

class Meta {
  readonly arch: string;
  constructor(private file: GgufFile) {
    const a = file.metadata.get('general.architecture')?.value;
    this.arch = typeof a === 'string' ? a : '';
  }

  has(key: string): boolean {
    return this.file.metadata.has(key);
  }

  /** A numeric scalar (64-bit integers as numbers), undefined when absent or of another type (llama.cpp rejects those itself). */
  num(key: string): number | undefined {
    const v = this.file.metadata.get(key);
    if (!v || v.type === GgufValueType.ARRAY || v.type === GgufValueType.STRING || v.type === GgufValueType.BOOL) {
      return undefined;
    }
    return Number(v.value);
  }

  /** A number or a per-layer array of numbers (llama.cpp's get_key_or_arr). */
  nums(key: string): number[] | undefined {
    const v = this.file.metadata.get(key);
    if (v?.type === GgufValueType.ARRAY) {
      return v.value.every((x) => typeof x === 'number' || typeof x === 'bigint') ? v.value.map(Number) : undefined;
    }
    const n = this.num(key);
    return n === undefined ? undefined : [n];
  }

  str(key: string): string | undefined {
    const v = this.file.metadata.get(key);
    return v?.type === GgufValueType.STRING ? v.value : undefined;
  }

  strings(key: string): string[] | undefined {
    const v = this.file.metadata.get(key);
    return v?.type === GgufValueType.ARRAY && v.itemType === GgufValueType.STRING ? (v.value as string[]) : undefined;
  }

  ints(key: string): number[] | undefined {
    const v = this.file.metadata.get(key);
    return v?.type === GgufValueType.ARRAY && v.itemType === GgufValueType.INT32 ? (v.value as number[]) : undefined;
  }

  keys(): string[] {
    return [...this.file.metadata.keys()];
  }
}

/**
 * Throws a ThinkwhenError for metadata that would abort the process in llama.cpp or make every
 * logit NaN. `vocabOnly` loads read only the tokenizer, so only its rules apply then.
 */
export function preflight(file: GgufFile, opts: { vocabOnly: boolean }): void {
  const m = new Meta(file);
  const bad = (code: ErrorCode, key: string, problem: string, fix: string): never => {
    throw new ThinkwhenError(code, `${file.path}: ${key} ${problem}`, fix);
  };
  checkVocab(m, bad);
  if (!opts.vocabOnly) checkHparams(m, bad, file);
}

type Bad = (code: ErrorCode, key: string, problem: string, fix: string) => never;

/** llama.h enum llama_vocab_type */
const VOCAB_WPM = 3;

/** The special tokens llama.cpp settled on at load (from the native model). */
export interface LoadedVocab {
  vocabType: number;
  bos: number;
  eos: number;
  sep: number;
  addBos: boolean;
  addEos: boolean;
}

/**
 * Special tokens tokenize() will add must exist: llama.cpp drops an out-of-range id to "none"
 * at load, then asserts on the first tokenize with special tokens (llama-vocab.cpp, tokenize).
 */
export function checkSpecialTokens(path: string, v: LoadedVocab): void {
  const wpm = v.vocabType === VOCAB_WPM;
  const need: Array<[boolean, number, string, string]> = [
    [v.addBos || wpm, v.bos, 'bos_token_id', 'add_bos_token'],
    [v.addEos, v.eos, 'eos_token_id', 'add_eos_token'],
    [wpm, v.sep, 'seperator_token_id', 'add_sep_token'],
  ];
  for (const [used, id, key, flag] of need) {
    if (used && id < 0) {
      throw new ThinkwhenError(
        'BAD_VOCAB',
        `${path}: tokenizer.ggml.${key} is missing or outside the vocabulary, but the tokenizer adds that token (llama.cpp would abort on the first tokenize)`,
        `set tokenizer.ggml.${key} to a token id of the vocabulary${wpm ? '' : `, or tokenizer.ggml.${flag} to false`}`,
      );
    }
  }
}

const REWRITE = 'the file is corrupt or hand-made: re-download or re-convert it (llama.cpp convert_hf_to_gguf.py)';

function checkVocab(m: Meta, bad: Bad): void {
  const model = m.str('tokenizer.ggml.model');
  if (model !== undefined && NO_TOKENIZER.includes(model)) {
    bad(
      'NO_TOKENIZER',
      'tokenizer.ggml.model',
      `is '${model}': the file has no tokenizer, and llama.cpp aborts on the first tokenize`,
      'use a GGUF that includes its tokenizer',
    );
  }
  const tokens = m.strings('tokenizer.ggml.tokens');
  if (!tokens) return; // missing or of another type: llama.cpp refuses the file itself
  if (tokens.length > 0 && tokens.every((t) => t === '' || t.startsWith('\0'))) {
    bad('BAD_VOCAB', 'tokenizer.ggml.tokens', `holds ${tokens.length} empty token strings and nothing else`, REWRITE);
  }
  // llama.cpp reads each token as a C string (cut at a NUL byte), renames an empty one to
  // "[EMPTY_<id>]", then asserts that every string is unique.
  const seen = new Map<string, number>();
  for (let id = 0; id < tokens.length; id++) {
    const nul = tokens[id].indexOf('\0');
    const cut = nul >= 0 ? tokens[id].slice(0, nul) : tokens[id];
    const text = cut === '' ? `[EMPTY_${id}]` : cut;
    const first = seen.get(text);
    if (first !== undefined) {
      bad(
        'BAD_VOCAB',
        'tokenizer.ggml.tokens',
        `holds the token string ${JSON.stringify(text.slice(0, 40))} twice (ids ${first} and ${id}); llama.cpp asserts that token strings are unique`,
        REWRITE,
      );
    }
    seen.set(text, id);
  }
  // A BYTE token (type 6) is decoded from its text "<0xHH>"; a WordPiece ('bert') vocabulary has
  // no byte decoding at all. Either mismatch aborts in llama_vocab::token_to_byte.
  const types = m.ints('tokenizer.ggml.token_type');
  if (types) {
    for (let id = 0; id < Math.min(types.length, tokens.length); id++) {
      if (types[id] !== 6) continue;
      if (model === 'bert') {
        bad(
          'BAD_VOCAB',
          'tokenizer.ggml.token_type',
          `marks token ${id} as a byte token, which a WordPiece ('bert') tokenizer cannot decode`,
          `check tokenizer.ggml.model (is '${model}' right?); ${REWRITE}`,
        );
      }
      if (!/^<0x[0-9A-Fa-f]{2}>$/.test(tokens[id])) {
        bad(
          'BAD_VOCAB',
          'tokenizer.ggml.token_type',
          `marks token ${id} (${JSON.stringify(tokens[id].slice(0, 40))}) as a byte token, but its text is not of the form <0xHH>`,
          REWRITE,
        );
      }
    }
  }
}

function checkHparams(m: Meta, bad: Bad, file: GgufFile): void {
  const a = m.arch;
  const nLayer = m.num(`${a}.block_count`);
  if (nLayer !== undefined && !(Number.isInteger(nLayer) && nLayer >= 1 && nLayer <= LLAMA_MAX_LAYERS)) {
    bad(
      'BAD_METADATA',
      `${a}.block_count`,
      `is ${nLayer}; llama.cpp asserts 1 ≤ block_count ≤ ${LLAMA_MAX_LAYERS}`,
      `set ${a}.block_count to the number of blk.N tensor groups in the file`,
    );
  }
  const layers = nLayer ?? 0;
  const nextn = m.num(`${a}.nextn_predict_layers`);
  if (nextn !== undefined && nextn > layers) {
    bad('BAD_METADATA', `${a}.nextn_predict_layers`, `is ${nextn}, more than block_count ${layers}`, REWRITE);
  }
  checkExperts(m, bad, layers);

  const scaling = m.str(`${a}.rope.scaling.type`);
  if (scaling !== undefined && !ROPE_SCALING_TYPES.includes(scaling)) {
    bad(
      'BAD_METADATA',
      `${a}.rope.scaling.type`,
      `is ${JSON.stringify(scaling.slice(0, 40))}; llama.cpp asserts one of ${ROPE_SCALING_TYPES.join(', ')}`,
      REWRITE,
    );
  }
  // ggml_norm / ggml_rms_norm assert eps ≥ 0 at the first decode (NaN fails it too).
  for (const key of m.keys()) {
    if (!key.startsWith(`${a}.`) || !/epsilon$/.test(key)) continue;
    const eps = m.num(key);
    if (eps !== undefined && !(Number.isFinite(eps) && eps >= 0)) {
      bad('BAD_METADATA', key, `is ${eps}; a norm epsilon must be finite and ≥ 0 (llama.cpp asserts eps ≥ 0)`, REWRITE);
    }
  }
  // These load, then every logit is NaN.
  for (const suffix of ['rope.freq_base', 'rope.freq_base_swa']) {
    const base = m.num(`${a}.${suffix}`);
    if (base !== undefined && !(Number.isFinite(base) && base > 0)) {
      bad(
        'BAD_METADATA',
        `${a}.${suffix}`,
        `is ${base}; a RoPE base must be finite and > 0 (otherwise every logit is NaN)`,
        `set it to the model's rope_theta from its config.json (often 10000 or 1000000); ${REWRITE}`,
      );
    }
  }
  for (const suffix of ['rope.scaling.factor', 'rope.scale_linear']) {
    const f = m.num(`${a}.${suffix}`);
    if (f !== undefined && !(Number.isFinite(f) && f >= 0)) {
      bad('BAD_METADATA', `${a}.${suffix}`, `is ${f}; a RoPE scaling factor must be finite and ≥ 0`, REWRITE);
    }
  }
  checkHeadDims(m, bad);
  // Grouped-query attention broadcasts K/V heads over query heads: ggml_mul_mat asserts that
  // head_count is a multiple of head_count_kv.
  const heads = m.nums(`${a}.attention.head_count`);
  const kvHeads = m.nums(`${a}.attention.head_count_kv`);
  if (heads && kvHeads) {
    for (let l = 0; l < Math.max(heads.length, kvHeads.length); l++) {
      const h = heads[heads.length === 1 ? 0 : l];
      const kv = kvHeads[kvHeads.length === 1 ? 0 : l];
      if (h > 0 && kv > 0 && h % kv !== 0) {
        bad(
          'BAD_METADATA',
          `${a}.attention.head_count_kv`,
          `is ${kv}, which does not divide head_count ${h}${heads.length > 1 ? ` (layer ${l})` : ''}`,
          REWRITE,
        );
      }
    }
  }
  // llama.cpp maps the file and points tensors into it; a data pointer off the 32-byte grid
  // fails an assert in ggml_backend_tensor_alloc (general.alignment below 32 makes this likely).
  for (const t of file.tensors) {
    const at = file.dataOffset + t.offset;
    if (at % TENSOR_ALIGNMENT !== 0) {
      bad(
        'BAD_GGUF',
        m.has('general.alignment') ? 'general.alignment' : `tensor ${t.name}`,
        `puts tensor ${t.name}'s data at byte ${at}, not a multiple of ${TENSOR_ALIGNMENT} as llama.cpp requires`,
        `rewrite the file with general.alignment ${TENSOR_ALIGNMENT} (the default), e.g. with gguf-py`,
      );
    }
  }
}

/** Architectures whose graph asserts head size (K and V) == RoPE dimensions: the files of
 * src/models/ holding `GGML_ASSERT(n_embd_head == n_rot)` at the pinned release. */
const FULL_ROPE_ARCHES = new Set(
  (
    'apertus arcee arctic baichuan chameleon codeshell cogvlm cohere2moe dbrx deci deepseek dots1 dream ernie4_5 ' +
    'exaone-moe exaone exaone4 falcon granite_swa granite grok grovemoe hunyuan-moe hunyuan_vl hy_v3 internlm2 ' +
    'jais2 llada-moe llada llama llama4 maincoder mellum minimax-01 minimax-m2 mistral3 nemotron olmo olmo2 olmoe ' +
    'orion paddleocr plamo pockettts qwen2 qwen2moe qwen2vl qwen3 qwen3moe qwen3vl qwen3vlmoe rnd1 seed_oss ' +
    'smallthinker smollm3 starcoder2 talkie xverse'
  ).split(' '),
);

/** Head sizes as llama_model_base::load_hparams derives them (key_length, value_length, rope.dimension_count). */
function checkHeadDims(m: Meta, bad: Bad): void {
  const a = m.arch;
  if (!FULL_ROPE_ARCHES.has(a)) return;
  const nHead = m.nums(`${a}.attention.head_count`)?.[0];
  const nEmbd = m.num(`${a}.embedding_length`);
  if (!nHead || nHead <= 0 || nEmbd === undefined) return;
  const k = m.num(`${a}.attention.key_length`) ?? Math.floor(nEmbd / nHead);
  const v = m.num(`${a}.attention.value_length`) ?? Math.floor(nEmbd / nHead);
  const rot = m.num(`${a}.rope.dimension_count`) ?? k;
  if (k !== v || v !== rot) {
    bad(
      'BAD_METADATA',
      m.has(`${a}.rope.dimension_count`) ? `${a}.rope.dimension_count` : `${a}.attention.key_length`,
      `gives head sizes K ${k}, V ${v} and RoPE dimensions ${rot}; llama.cpp's ${a} graph asserts they are equal`,
      REWRITE,
    );
  }
}

/** llama_model_base::load_hparams asserts on the expert counts. */
function checkExperts(m: Meta, bad: Bad, nLayer: number): void {
  const a = m.arch;
  const nExpert = m.num(`${a}.expert_count`) ?? 0;
  const used = m.nums(`${a}.expert_used_count`) ?? [0];
  const usedMax = Math.max(0, ...used.slice(0, Math.max(1, nLayer)));
  const groups = m.num(`${a}.expert_group_count`) ?? 0;
  const groupUsed = m.num(`${a}.expert_group_used_count`) ?? 0;
  const fail = (key: string, problem: string) => bad('BAD_METADATA', `${a}.${key}`, problem, REWRITE);
  if (nExpert > LLAMA_MAX_EXPERTS) fail('expert_count', `is ${nExpert}, more than llama.cpp's ${LLAMA_MAX_EXPERTS}`);
  if (usedMax > nExpert) fail('expert_used_count', `is ${usedMax}, more than expert_count ${nExpert}`);
  if (nExpert > 0) {
    if (usedMax === 0) fail('expert_used_count', `is 0 although expert_count is ${nExpert}`);
    if (groups >= nExpert) fail('expert_group_count', `is ${groups}, not below expert_count ${nExpert}`);
    if (groups > 1) {
      if (nExpert % groups !== 0)
        fail('expert_group_count', `is ${groups}, which does not divide expert_count ${nExpert}`);
      if (!(groupUsed > 0 && groupUsed < groups)) {
        fail(
          'expert_group_used_count',
          `is ${groupUsed}; it must be between 1 and expert_group_count − 1 (${groups - 1})`,
        );
      }
    }
  } else if (groups !== 0) {
    fail('expert_group_count', `is ${groups} in a model without experts`);
  }
}
