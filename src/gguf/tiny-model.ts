// Random-weight models of the llama.cpp `qwen2` and `llama` architectures, for tests, the doctor
// self-test and benchmarks. Shapes are free, so "Qwen2.5-0.5B-shaped" models can be made too.
import { join } from 'node:path';
import { ThinkwhenError } from '../errors.ts';
import { headersCacheDir } from '../llama-paths.mjs';
import { readGguf } from './read.ts';
import { arr, bool, f32, GgmlType, type GgufValue, GgufValueType, str, u32 } from './types.ts';
import { type TensorToWrite, writeGguf } from './write.ts';

export interface TinyModelSpec {
  arch: 'qwen2' | 'llama';
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  nCtx?: number;
  /** 'qwen2': the real Qwen2 BPE tokenizer (151,936 tokens); 'small': a byte-level SPM vocabulary of ours. */
  vocab: 'qwen2' | 'small';
  weightType?: GgmlType;
  tiedOutput?: boolean;
  seed?: number;
}

export const TINY_QWEN2: TinyModelSpec = {
  arch: 'qwen2',
  nLayer: 4,
  nEmbd: 64,
  nHead: 4,
  nHeadKv: 2,
  nFf: 128,
  vocab: 'qwen2',
  tiedOutput: true,
};
export const TINY_LLAMA: TinyModelSpec = {
  arch: 'llama',
  nLayer: 4,
  nEmbd: 64,
  nHead: 4,
  nHeadKv: 2,
  nFf: 128,
  vocab: 'small',
};
/** Qwen2.5-0.5B's shape (random weights), for benchmarks. */
export const QWEN25_05B_SHAPE: TinyModelSpec = {
  arch: 'qwen2',
  nLayer: 24,
  nEmbd: 896,
  nHead: 14,
  nHeadKv: 2,
  nFf: 4864,
  nCtx: 32768,
  vocab: 'qwen2',
  weightType: GgmlType.F16,
  tiedOutput: true,
};

export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Path of a tokenizer-only GGUF shipped in node-llama-cpp's llama.cpp bundle (fetched at build time). */
export function vocabFile(name: 'qwen2' | 'llama-spm'): string {
  return join(headersCacheDir(), 'models', `ggml-vocab-${name}.gguf`);
}

function qwen2Tokenizer(): Map<string, GgufValue> {
  const file = readGguf(vocabFile('qwen2'));
  const out = new Map<string, GgufValue>();
  for (const [k, v] of file.metadata) if (k.startsWith('tokenizer.')) out.set(k, v);
  return out;
}

/** Pieces of the small vocabulary: specials, 256 byte-fallback tokens, then characters and common words. */
export function smallVocabPieces(): { pieces: string[]; types: number[] } {
  const pieces = ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>'];
  const types = [2, 3, 3, 3, 3]; // unknown, control...
  for (let b = 0; b < 256; b++) {
    pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6); // byte
  }
  const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?()[]{}+-*/=<>\'"\\$%#&_^\n';
  for (const ch of ['▁', ...chars]) {
    pieces.push(ch);
    types.push(1);
  }
  const words = ['the', 'is', 'and', 'to', 'of', 'we', 'so', 'Let', 'answer', 'check', 'Wait', 'step', 'boxed'];
  for (const w of words) {
    pieces.push(`▁${w}`, w);
    types.push(1, 1);
  }
  return { pieces, types };
}

function smallTokenizer(): Map<string, GgufValue> {
  const { pieces, types } = smallVocabPieces();
  // Longer pieces score higher so SPM merges prefer whole words.
  const scores = pieces.map((p, i) => (types[i] === 1 ? [...p].length - i * 1e-4 : 0));
  return new Map<string, GgufValue>([
    ['tokenizer.ggml.model', str('llama')],
    ['tokenizer.ggml.tokens', arr(GgufValueType.STRING, pieces)],
    ['tokenizer.ggml.scores', arr(GgufValueType.FLOAT32, scores)],
    ['tokenizer.ggml.token_type', arr(GgufValueType.INT32, types)],
    ['tokenizer.ggml.unknown_token_id', u32(0)],
    ['tokenizer.ggml.bos_token_id', u32(1)],
    ['tokenizer.ggml.eos_token_id', u32(4)],
    ['tokenizer.ggml.add_bos_token', bool(false)],
    ['tokenizer.ggml.add_space_prefix', bool(false)],
    ['tokenizer.chat_template', str(CHATML_TEMPLATE)],
  ]);
}

function vocabSize(tokenizer: Map<string, GgufValue>): number {
  return (tokenizer.get('tokenizer.ggml.tokens')!.value as unknown[]).length;
}

/** Writes a random-weight model to `path` and returns its vocabulary size. */
export function writeTinyModel(path: string, spec: TinyModelSpec): { nVocab: number } {
  const { arch, nLayer, nEmbd, nHead, nHeadKv, nFf } = spec;
  if (nEmbd % nHead !== 0 || nHead % nHeadKv !== 0) {
    throw new ThinkwhenError(
      'BAD_SPEC',
      `n_embd ${nEmbd} must divide by n_head ${nHead}, and n_head by n_head_kv ${nHeadKv}`,
    );
  }
  const wtype = spec.weightType ?? GgmlType.F32;
  const tokenizer = spec.vocab === 'qwen2' ? qwen2Tokenizer() : smallTokenizer();
  const nVocab = vocabSize(tokenizer);
  const headDim = nEmbd / nHead;
  const nEmbdKv = headDim * nHeadKv;
  const meta = new Map<string, GgufValue>([
    ['general.architecture', str(arch)],
    ['general.name', str(`thinkwhen-random-${arch}`)],
    [`${arch}.block_count`, u32(nLayer)],
    [`${arch}.context_length`, u32(spec.nCtx ?? 4096)],
    [`${arch}.embedding_length`, u32(nEmbd)],
    [`${arch}.feed_forward_length`, u32(nFf)],
    [`${arch}.attention.head_count`, u32(nHead)],
    [`${arch}.attention.head_count_kv`, u32(nHeadKv)],
    [`${arch}.rope.freq_base`, f32(arch === 'qwen2' ? 1000000 : 10000)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(1e-6)],
    ...tokenizer,
  ]);
  if (arch === 'llama') meta.set('llama.rope.dimension_count', u32(headDim));
  let seed = (spec.seed ?? 1) * 1000;
  const rand = (std: number, mean = 0) => ({ seed: seed++, std, mean });
  const matrix = (name: string, nIn: number, nOut: number): TensorToWrite => ({
    name,
    shape: [nIn, nOut],
    type: wtype,
    data: rand(1 / Math.sqrt(nIn)),
  });
  const vector = (name: string, n: number, mean: number, std: number): TensorToWrite => ({
    name,
    shape: [n],
    type: GgmlType.F32,
    data: rand(std, mean),
  });
  const tensors: TensorToWrite[] = [{ name: 'token_embd.weight', shape: [nEmbd, nVocab], type: wtype, data: rand(1) }];
  for (let l = 0; l < nLayer; l++) {
    const p = `blk.${l}`;
    tensors.push(vector(`${p}.attn_norm.weight`, nEmbd, 1, 0.1));
    tensors.push(matrix(`${p}.attn_q.weight`, nEmbd, nEmbd));
    tensors.push(matrix(`${p}.attn_k.weight`, nEmbd, nEmbdKv));
    tensors.push(matrix(`${p}.attn_v.weight`, nEmbd, nEmbdKv));
    if (arch === 'qwen2') {
      tensors.push(vector(`${p}.attn_q.bias`, nEmbd, 0, 0.1));
      tensors.push(vector(`${p}.attn_k.bias`, nEmbdKv, 0, 0.1));
      tensors.push(vector(`${p}.attn_v.bias`, nEmbdKv, 0, 0.1));
    }
    tensors.push(matrix(`${p}.attn_output.weight`, nEmbd, nEmbd));
    tensors.push(vector(`${p}.ffn_norm.weight`, nEmbd, 1, 0.1));
    tensors.push(matrix(`${p}.ffn_gate.weight`, nEmbd, nFf));
    tensors.push(matrix(`${p}.ffn_up.weight`, nEmbd, nFf));
    tensors.push(matrix(`${p}.ffn_down.weight`, nFf, nEmbd));
  }
  tensors.push(vector('output_norm.weight', nEmbd, 1, 0.1));
  if (!spec.tiedOutput) tensors.push(matrix('output.weight', nEmbd, nVocab));
  writeGguf(path, meta, tensors);
  return { nVocab };
}
