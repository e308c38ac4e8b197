// Which file the fuzzer tries as its i-th: a base (a tiny model or a tokenizer-only GGUF) and a
// hostile edit, both drawn from (seed, i) alone, so any file can be written again from its job.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  archOf,
  cloneParts,
  encodeGgufParts,
  type GgufParts,
  headerLength,
  hostileMetadata,
  mutateBytes,
  NAMED_CASES,
  readGgufParts,
} from '../src/gguf/hostile.ts';
import { type TinyModelSpec, vocabFile, writeTinyModel } from '../src/gguf/tiny-model.ts';
import { GgufValueType, u32 } from '../src/gguf/types.ts';
import { Rng } from '../src/rng.ts';

export type BaseName = 'llama' | 'qwen2' | 'vocab-spm' | 'vocab-bpe';

export interface FuzzJob {
  index: number;
  seed: number;
  base: BaseName;
  basePath: string;
  vocabOnly: boolean;
  /** a key of NAMED_CASES, or a random hostile-metadata edit, or byte mutations */
  kind: { named: string } | 'metadata' | 'bytes';
}

const SMALL: Omit<TinyModelSpec, 'arch'> = { nLayer: 2, nEmbd: 32, nHead: 4, nHeadKv: 2, nFf: 64, vocab: 'small' };

/**
 * The base files, written once into the temp folder: two tiny models, and small tokenizer-only
 * GGUFs cut from the shipped SPM and BPE ones (their first tokens, with the merges among them):
 * the full 32,000- and 151,936-token files take seconds to load, too slow to load thousands.
 */
export function basePaths(): Record<BaseName, string> {
  const dir = join(tmpdir(), 'thinkwhen-fuzz-bases-v1');
  mkdirSync(dir, { recursive: true });
  const paths: Record<BaseName, string> = {
    llama: join(dir, 'llama.gguf'),
    qwen2: join(dir, 'qwen2.gguf'),
    'vocab-spm': join(dir, 'vocab-spm.gguf'),
    'vocab-bpe': join(dir, 'vocab-bpe.gguf'),
  };
  const once = (path: string, write: (tmp: string) => void) => {
    if (existsSync(path)) return;
    const tmp = `${path}.${process.pid}`;
    write(tmp);
    renameSync(tmp, path);
  };
  once(paths.llama, (p) => writeTinyModel(p, { ...SMALL, arch: 'llama' }));
  once(paths.qwen2, (p) => writeTinyModel(p, { ...SMALL, arch: 'qwen2', tiedOutput: true }));
  once(paths['vocab-spm'], (p) => writeFileSync(p, encodeGgufParts(cutVocab(vocabFile('llama-spm'), 3000))));
  once(paths['vocab-bpe'], (p) => writeFileSync(p, encodeGgufParts(cutVocab(vocabFile('qwen2'), 3000))));
  return paths;
}

/** The first `n` tokens of a tokenizer-only GGUF (plus an end-of-text token for BPE), still a valid tokenizer. */
function cutVocab(path: string, n: number): GgufParts {
  const p = readGgufParts(path);
  const m = p.metadata;
  const slice = (key: string) => {
    const v = m.get(key);
    if (v?.type === GgufValueType.ARRAY) m.set(key, { ...v, value: v.value.slice(0, n) });
  };
  for (const key of ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type']) slice(key);
  const tokens = m.get('tokenizer.ggml.tokens')!.value as string[];
  const merges = m.get('tokenizer.ggml.merges');
  if (merges?.type === GgufValueType.ARRAY) {
    const kept = new Set(tokens);
    const value = (merges.value as string[]).filter((pair) => {
      const [a, b] = pair.split(' ');
      return kept.has(a) && kept.has(b) && kept.has(a + b);
    });
    m.set('tokenizer.ggml.merges', { ...merges, value });
    tokens.push('<|endoftext|>');
    (m.get('tokenizer.ggml.token_type')!.value as number[]).push(3);
    for (const key of ['eos_token_id', 'bos_token_id', 'padding_token_id']) m.set(`tokenizer.ggml.${key}`, u32(n));
  }
  const arch = archOf(p);
  if (m.has(`${arch}.vocab_size`)) m.set(`${arch}.vocab_size`, u32(tokens.length));
  return p;
}

/** The i-th job of a run. Tiny models dominate: they exercise load, tokenizer and decode cheaply. */
export function planJob(seed: number, index: number, bases: Record<BaseName, string>): FuzzJob {
  const rng = new Rng(jobSeed(seed, index));
  const r = rng.next();
  const base: BaseName = r < 0.45 ? 'llama' : r < 0.85 ? 'qwen2' : r < 0.96 ? 'vocab-spm' : 'vocab-bpe';
  const names = Object.keys(NAMED_CASES);
  const k = rng.next();
  const kind = k < 0.05 ? { named: names[rng.int(names.length)] } : k < 0.6 ? 'metadata' : 'bytes';
  return { index, seed, base, basePath: bases[base], vocabOnly: base.startsWith('vocab'), kind };
}

function jobSeed(seed: number, index: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
}

const parsed = new Map<string, { parts: GgufParts; bytes: Buffer; headerLength: number }>();
function base(path: string) {
  let b = parsed.get(path);
  if (!b) {
    const parts = readGgufParts(path);
    b = { parts, bytes: encodeGgufParts(parts), headerLength: headerLength(parts) };
    parsed.set(path, b);
  }
  return b;
}

/** The bytes of a job's file, and a short description of the edit. */
export function variant(job: FuzzJob): { bytes: Buffer; what: string } {
  const b = base(job.basePath);
  const rng = new Rng(jobSeed(job.seed, job.index) ^ 0x5bd1e995);
  if (job.kind === 'bytes') return mutateBytes(b.bytes, b.headerLength, rng);
  const parts = cloneParts(b.parts);
  if (job.kind === 'metadata') {
    const what = hostileMetadata(parts, rng);
    return { bytes: encodeGgufParts(parts), what };
  }
  const edit = NAMED_CASES[job.kind.named];
  if (!edit || (job.vocabOnly && !parts.metadata.has('general.architecture'))) {
    return { bytes: b.bytes, what: 'unchanged' };
  }
  try {
    edit(parts);
  } catch {
    // a case that does not apply to this base (e.g. NaN weights in a tokenizer-only file)
    return { bytes: b.bytes, what: `unchanged (${job.kind.named} does not apply)` };
  }
  return { bytes: encodeGgufParts(parts), what: job.kind.named };
}

export function variantBytes(job: FuzzJob): Buffer {
  return variant(job).bytes;
}
