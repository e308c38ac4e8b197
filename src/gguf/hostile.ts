// Hostile GGUF files for fuzzing the loader: well-formed files with hostile metadata, and byte
// mutations of small valid models. Every variant is a pure function of (base file, seed), so a
// crash found by `bench/fuzz-gguf.ts` can be written out again and replayed.
import { readFileSync } from 'node:fs';
import type { Rng } from '../rng.ts';
import { readGguf } from './read.ts';
import { arr, f32, type GgufValue, GgufValueType, i32, str, u32 } from './types.ts';
import { encodeGgufHeader, type TensorEntry } from './write.ts';

/** A GGUF taken apart: metadata and tensor entries to edit, the data section kept as bytes. */
export interface GgufParts {
  metadata: Map<string, GgufValue>;
  tensors: TensorEntry[];
  data: Buffer;
}

export function readGgufParts(path: string): GgufParts {
  const file = readGguf(path);
  const bytes = readFileSync(path);
  return {
    metadata: file.metadata,
    tensors: file.tensors.map(({ name, shape, type, offset }) => ({ name, shape, type, offset })),
    data: bytes.subarray(file.dataOffset),
  };
}

/** Deep enough copy that edits of the metadata or tensor entries leave `p` as it was. */
export function cloneParts(p: GgufParts): GgufParts {
  const metadata = new Map<string, GgufValue>();
  for (const [k, v] of p.metadata) {
    metadata.set(k, v.type === GgufValueType.ARRAY ? { ...v, value: [...v.value] } : { ...v });
  }
  return { metadata, tensors: p.tensors.map((t) => ({ ...t, shape: [...t.shape] })), data: p.data };
}

/**
 * The file's bytes. The data section starts at the header padded to the declared
 * `general.alignment` (if it is a usable one), as llama.cpp's reader expects; tensor offsets
 * are kept, so the file stays well-formed when they are multiples of that alignment.
 */
export function encodeGgufParts(p: GgufParts): Buffer {
  const header = encodeGgufHeader(p.metadata, p.tensors);
  const a = p.metadata.get('general.alignment')?.value;
  const alignment = typeof a === 'number' && a > 0 && Number.isInteger(a) && a <= 1 << 16 ? a : 32;
  const start = Math.ceil(header.length / alignment) * alignment;
  return Buffer.concat([header, Buffer.alloc(start - header.length), p.data]);
}

export function archOf(p: GgufParts): string {
  return String(p.metadata.get('general.architecture')?.value ?? '');
}

function tokens(p: GgufParts): string[] {
  return p.metadata.get('tokenizer.ggml.tokens')!.value as string[];
}

/**
 * Named hostile cases (issue #14 and fuzzing). Before Model.load checked them each aborted the
 * Node process or, for freq_base and NaN weights, loaded and gave NaN logits; 'general.alignment
 * 48' was refused by llama.cpp, and is now refused with the key named.
 */
export const NAMED_CASES: Record<string, (p: GgufParts) => void> = {
  'block_count 0': (p) => p.metadata.set(`${archOf(p)}.block_count`, u32(0)),
  'block_count 513': (p) => p.metadata.set(`${archOf(p)}.block_count`, u32(513)),
  'block_count 2^31': (p) => p.metadata.set(`${archOf(p)}.block_count`, u32(2 ** 31)),
  'general.alignment 1': (p) => p.metadata.set('general.alignment', u32(1)),
  'general.alignment 48': (p) => p.metadata.set('general.alignment', u32(48)),
  'duplicate token strings': (p) => {
    const t = tokens(p);
    t[t.length - 1] = t[t.length - 2];
  },
  'all-empty token strings': (p) => tokens(p).fill(''),
  'tokenizer.ggml.model bert': (p) => p.metadata.set('tokenizer.ggml.model', str('bert')),
  'tokenizer.ggml.model none': (p) => p.metadata.set('tokenizer.ggml.model', str('none')),
  'tokenizer.ggml.model no_vocab': (p) => p.metadata.set('tokenizer.ggml.model', str('no_vocab')),
  'rms_eps -1': (p) => p.metadata.set(`${archOf(p)}.attention.layer_norm_rms_epsilon`, f32(-1)),
  'rms_eps NaN': (p) => p.metadata.set(`${archOf(p)}.attention.layer_norm_rms_epsilon`, f32(Number.NaN)),
  'rope freq_base 0': (p) => p.metadata.set(`${archOf(p)}.rope.freq_base`, f32(0)),
  'rope freq_base -1': (p) => p.metadata.set(`${archOf(p)}.rope.freq_base`, f32(-1)),
  'rope freq_base NaN': (p) => p.metadata.set(`${archOf(p)}.rope.freq_base`, f32(Number.NaN)),
  // Found by bench/fuzz-gguf.ts:
  'token cut at a NUL byte duplicates another': (p) => {
    const t = tokens(p);
    t[t.length - 1] = `${t[t.length - 2]}\u0000tail`;
  },
  'rope.dimension_count below the head size': (p) => p.metadata.set(`${archOf(p)}.rope.dimension_count`, u32(2)),
  'expert_used_count without experts': (p) => p.metadata.set(`${archOf(p)}.expert_used_count`, u32(2)),
  'nextn_predict_layers above block_count': (p) => p.metadata.set(`${archOf(p)}.nextn_predict_layers`, u32(9)),
  'an unknown rope.scaling.type': (p) => p.metadata.set(`${archOf(p)}.rope.scaling.type`, str('sideways')),
  'a one-token vocabulary that adds BOS': (p) => {
    for (const key of ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type']) {
      const v = p.metadata.get(key);
      if (v?.type === GgufValueType.ARRAY) v.value.splice(1);
    }
    p.metadata.set('tokenizer.ggml.add_bos_token', { type: GgufValueType.BOOL, value: true });
    p.metadata.delete('tokenizer.ggml.bos_token_id');
  },
  'NaN weights': (p) => {
    const t = p.tensors.find((e) => e.name === 'blk.0.attn_norm.weight')!;
    const data = Buffer.from(p.data);
    data.writeFloatLE(Number.NaN, t.offset);
    p.data = data;
  },
};

// Keys llama.cpp reads for decoder models ({a} = the architecture), to add with hostile values.
const KNOWN_KEYS = [
  '{a}.block_count',
  '{a}.context_length',
  '{a}.embedding_length',
  '{a}.embedding_length_out',
  '{a}.feed_forward_length',
  '{a}.attention.head_count',
  '{a}.attention.head_count_kv',
  '{a}.attention.key_length',
  '{a}.attention.value_length',
  '{a}.attention.layer_norm_rms_epsilon',
  '{a}.attention.layer_norm_epsilon',
  '{a}.attention.sliding_window',
  '{a}.attention.causal',
  '{a}.attention.clamp_kqv',
  '{a}.attention.max_alibi_bias',
  '{a}.rope.freq_base',
  '{a}.rope.dimension_count',
  '{a}.rope.scaling.type',
  '{a}.rope.scaling.factor',
  '{a}.rope.scaling.attn_factor',
  '{a}.rope.scaling.original_context_length',
  '{a}.rope.scaling.finetuned',
  '{a}.expert_count',
  '{a}.expert_used_count',
  '{a}.expert_group_count',
  '{a}.expert_group_used_count',
  '{a}.nextn_predict_layers',
  '{a}.pooling_type',
  '{a}.vocab_size',
  '{a}.logit_scale',
  'general.alignment',
  'general.architecture',
  'general.file_type',
  'tokenizer.ggml.model',
  'tokenizer.ggml.pre',
  'tokenizer.ggml.tokens',
  'tokenizer.ggml.scores',
  'tokenizer.ggml.token_type',
  'tokenizer.ggml.merges',
  'tokenizer.ggml.bos_token_id',
  'tokenizer.ggml.eos_token_id',
  'tokenizer.ggml.eot_token_id',
  'tokenizer.ggml.unknown_token_id',
  'tokenizer.ggml.seperator_token_id',
  'tokenizer.ggml.padding_token_id',
  'tokenizer.ggml.add_bos_token',
  'tokenizer.ggml.add_eos_token',
  'tokenizer.ggml.add_space_prefix',
  'tokenizer.ggml.token_type_count',
  'tokenizer.ggml.precompiled_charsmap',
  'tokenizer.chat_template',
];

const NUMBERS = [
  0,
  1,
  2,
  3,
  -1,
  -2,
  7,
  63,
  64,
  511,
  512,
  513,
  65535,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  0.5,
  1e-30,
  1e30,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -0,
];
const STRINGS = [
  '',
  'none',
  'no_vocab',
  'llama',
  'gpt2',
  'bert',
  't5',
  'rwkv',
  'plamo2',
  'gemma4',
  'qwen2',
  'default',
  'yarn',
  'linear',
  'longrope',
  '\u0000',
  '\uFFFD\uFFFD',
  'x'.repeat(5000),
];
const ARCHES = [
  'llama',
  'qwen2',
  'qwen3',
  'gemma2',
  'gemma3',
  'phi3',
  'mistral3',
  'bert',
  'gpt2',
  'starcoder2',
  'olmo',
];

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

/** A value of a random GGUF type, biased to the edges llama.cpp trips on. */
function hostileValue(rng: Rng, like?: GgufValue): GgufValue {
  const sameType = like !== undefined && rng.next() < 0.7;
  const type = sameType ? like.type : pick(rng, [4, 5, 6, 8, 9, 7, 10, 0] as GgufValueType[]);
  return valueOfType(rng, type, like);
}

/** A hostile value of the given GGUF type (mangling `like` when it is a string). */
function valueOfType(rng: Rng, type: GgufValueType, like?: GgufValue): GgufValue {
  const n = pick(rng, NUMBERS);
  switch (type) {
    case GgufValueType.UINT8:
    case GgufValueType.UINT16:
    case GgufValueType.UINT32: {
      const max = type === GgufValueType.UINT8 ? 255 : type === GgufValueType.UINT16 ? 65535 : 2 ** 32 - 1;
      const v = Number.isFinite(n) ? Math.min(max, Math.abs(Math.trunc(n))) : rng.int(max + 1);
      return { type, value: v };
    }
    case GgufValueType.INT8:
    case GgufValueType.INT16:
    case GgufValueType.INT32: {
      const v = Number.isFinite(n) ? Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.trunc(n))) : -1;
      return type === GgufValueType.INT32 ? i32(v) : { type, value: Math.max(-128, Math.min(127, v)) };
    }
    case GgufValueType.FLOAT32:
    case GgufValueType.FLOAT64:
      return { type, value: n };
    case GgufValueType.BOOL:
      return { type, value: rng.next() < 0.5 };
    case GgufValueType.UINT64:
    case GgufValueType.INT64:
      return { type, value: pick(rng, [0n, 1n, 2n ** 31n, 2n ** 32n, 2n ** 40n, 2n ** 63n - 1n]) };
    case GgufValueType.ARRAY:
      return hostileArray(rng, like?.type === GgufValueType.ARRAY ? like : undefined);
    default:
      return str(
        rng.next() < 0.5 && like?.type === GgufValueType.STRING ? mangle(rng, like.value) : pick(rng, STRINGS),
      );
  }
}

function mangle(rng: Rng, s: string): string {
  const i = rng.int(s.length + 1);
  return rng.next() < 0.5 ? s.slice(0, i) : s.slice(0, i) + pick(rng, STRINGS) + s.slice(i);
}

function hostileArray(rng: Rng, like?: Extract<GgufValue, { type: GgufValueType.ARRAY }>): GgufValue {
  if (like && rng.next() < 0.7) {
    const v = [...like.value];
    switch (rng.int(5)) {
      case 0:
        return { ...like, value: v.slice(0, rng.int(v.length + 1)) };
      case 1: {
        // duplicate an element (token strings must be unique)
        if (v.length > 1) v[rng.int(v.length)] = v[rng.int(v.length)];
        return { ...like, value: v };
      }
      case 2: {
        const k = rng.int(v.length);
        if (like.itemType !== GgufValueType.ARRAY) v[k] = valueOfType(rng, like.itemType).value;
        return { ...like, value: v };
      }
      case 3:
        return { ...like, value: [] };
      default:
        return { ...like, value: v.concat(v.slice(0, rng.int(v.length + 1))) };
    }
  }
  const itemType = pick(rng, [GgufValueType.INT32, GgufValueType.FLOAT32, GgufValueType.STRING, GgufValueType.UINT8]);
  const n = pick(rng, [0, 1, 2, 4, 64, 600]);
  const value: unknown[] = [];
  for (let i = 0; i < n; i++) {
    value.push(
      itemType === GgufValueType.STRING
        ? pick(rng, STRINGS)
        : itemType === GgufValueType.UINT8
          ? rng.int(256)
          : rng.int(7) - 1,
    );
  }
  return arr(itemType, value);
}

/** 1–3 edits of the metadata: hostile values for existing or known keys, deletions, swapped architectures. */
export function hostileMetadata(p: GgufParts, rng: Rng): string {
  const done: string[] = [];
  const nEdits = 1 + rng.int(3);
  for (let e = 0; e < nEdits; e++) {
    const arch = archOf(p);
    const keys = [...p.metadata.keys()];
    const r = rng.next();
    if (r < 0.45) {
      const key = pick(rng, keys);
      p.metadata.set(key, hostileValue(rng, p.metadata.get(key)));
      done.push(`set ${key}`);
    } else if (r < 0.75) {
      const key = pick(rng, KNOWN_KEYS).replace('{a}', arch);
      p.metadata.set(key, hostileValue(rng, p.metadata.get(key)));
      done.push(`set ${key}`);
    } else if (r < 0.9) {
      const key = pick(rng, keys);
      p.metadata.delete(key);
      done.push(`delete ${key}`);
    } else {
      // Claim another architecture: its keys are then read under the new prefix.
      const to = pick(rng, ARCHES);
      const renamed = new Map<string, GgufValue>();
      for (const [k, v] of p.metadata)
        renamed.set(k.startsWith(`${arch}.`) ? `${to}.${k.slice(arch.length + 1)}` : k, v);
      renamed.set('general.architecture', str(to));
      p.metadata = renamed;
      done.push(`arch ${to}`);
    }
  }
  return done.join(', ');
}

/** 1–8 byte edits, nine in ten inside the header (data bytes mostly change only the numbers). */
export function mutateBytes(bytes: Buffer, headerLength: number, rng: Rng): { bytes: Buffer; what: string } {
  const out = Buffer.from(bytes);
  const n = 1 + rng.int(8);
  const at: number[] = [];
  for (let i = 0; i < n; i++) {
    const pos = rng.next() < 0.9 ? rng.int(headerLength) : rng.int(out.length);
    switch (rng.int(4)) {
      case 0:
        out[pos] ^= 1 << rng.int(8);
        break;
      case 1:
        out[pos] = pick(rng, [0, 0xff, 0x7f, 0x80, 1]);
        break;
      case 2:
        out[pos] = rng.int(256);
        break;
      default:
        // a 32-bit edge value (counts, lengths, types)
        if (pos + 4 <= out.length)
          out.writeUInt32LE(pick(rng, [0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 512, 513]), pos);
    }
    at.push(pos);
  }
  return { bytes: out, what: `bytes at ${at.join(',')}` };
}

/** Length of the header (everything before the padded data section). */
export function headerLength(p: GgufParts): number {
  return encodeGgufHeader(p.metadata, p.tensors).length;
}
