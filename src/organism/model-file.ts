// GGUF files of the organism: a `llama`-architecture model with the organism's vocabulary.
// writeInitialModel writes the randomly initialised model that pre-training starts from.
import { ThinkwhenError } from '../errors.ts';
import { metaValue, readGguf, readTensor } from '../gguf/read.ts';
import { f32, GgmlType, type GgufValue, str, u32 } from '../gguf/types.ts';
import { type TensorToWrite, writeGguf } from '../gguf/write.ts';
import { organismVocab, tokenizerMetadata } from './vocab.ts';

export interface OrganismModelSpec {
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nFf: number;
  nCtx: number;
}

export const FULL_SPEC: OrganismModelSpec = { nLayer: 4, nEmbd: 128, nHead: 4, nFf: 512, nCtx: 512 };
export const QUICK_SPEC: OrganismModelSpec = { nLayer: 2, nEmbd: 64, nHead: 2, nFf: 256, nCtx: 512 };

export function initialMetadata(spec: OrganismModelSpec, name: string): Map<string, GgufValue> {
  const headDim = spec.nEmbd / spec.nHead;
  return new Map<string, GgufValue>([
    ['general.architecture', str('llama')],
    ['general.name', str(name)],
    ['llama.block_count', u32(spec.nLayer)],
    ['llama.context_length', u32(spec.nCtx)],
    ['llama.embedding_length', u32(spec.nEmbd)],
    ['llama.feed_forward_length', u32(spec.nFf)],
    ['llama.attention.head_count', u32(spec.nHead)],
    ['llama.attention.head_count_kv', u32(spec.nHead)],
    ['llama.rope.dimension_count', u32(headDim)],
    ['llama.rope.freq_base', f32(10000)],
    ['llama.attention.layer_norm_rms_epsilon', f32(1e-5)],
    ['llama.vocab_size', u32(organismVocab().pieces.length)],
    ...tokenizerMetadata(),
  ]);
}

/** Random initial weights (GPT-2-style scales: residual outputs shrunk by 1/sqrt(2 n_layer)). */
export function writeInitialModel(path: string, spec: OrganismModelSpec, seed: number): void {
  const { nLayer, nEmbd, nHead, nFf } = spec;
  if (nEmbd % nHead !== 0) throw new ThinkwhenError('BAD_SPEC', `n_embd ${nEmbd} must divide by n_head ${nHead}`);
  const nVocab = organismVocab().pieces.length;
  let s = seed * 1000;
  const std = 0.02 * Math.sqrt(768 / nEmbd) * 0.5;
  const resid = std / Math.sqrt(2 * nLayer);
  const matrix = (name: string, nIn: number, nOut: number, sd = std): TensorToWrite => ({
    name,
    shape: [nIn, nOut],
    type: GgmlType.F32,
    data: { seed: s++, std: sd },
  });
  const ones = (name: string): TensorToWrite => ({
    name,
    shape: [nEmbd],
    type: GgmlType.F32,
    data: new Float32Array(nEmbd).fill(1),
  });
  const tensors: TensorToWrite[] = [matrix('token_embd.weight', nEmbd, nVocab)];
  for (let l = 0; l < nLayer; l++) {
    const p = `blk.${l}`;
    tensors.push(ones(`${p}.attn_norm.weight`));
    tensors.push(matrix(`${p}.attn_q.weight`, nEmbd, nEmbd));
    tensors.push(matrix(`${p}.attn_k.weight`, nEmbd, nEmbd));
    tensors.push(matrix(`${p}.attn_v.weight`, nEmbd, nEmbd));
    tensors.push(matrix(`${p}.attn_output.weight`, nEmbd, nEmbd, resid));
    tensors.push(ones(`${p}.ffn_norm.weight`));
    tensors.push(matrix(`${p}.ffn_gate.weight`, nEmbd, nFf));
    tensors.push(matrix(`${p}.ffn_up.weight`, nEmbd, nFf));
    tensors.push(matrix(`${p}.ffn_down.weight`, nFf, nEmbd, resid));
  }
  tensors.push(ones('output_norm.weight'));
  tensors.push(matrix('output.weight', nEmbd, nVocab));
  writeGguf(path, initialMetadata(spec, 'thinkwhen-organism-init'), tensors);
}

/**
 * Rewrites a trained model with a new name and description, matrices in F16 when `f16` (the
 * shipped files), norms in F32. Returns the number of bytes written.
 */
export function finalizeModel(src: string, dst: string, o: { name: string; description: string; f16?: boolean }): void {
  const file = readGguf(src);
  const meta = new Map(file.metadata);
  meta.set('general.name', str(o.name));
  meta.set('general.description', str(o.description));
  const tensors: TensorToWrite[] = file.tensors.map((t) => ({
    name: t.name,
    shape: t.shape.map(Number),
    type: o.f16 && t.shape.length === 2 ? GgmlType.F16 : GgmlType.F32,
    data: readTensor(file, t.name),
  }));
  if (o.f16) meta.set('general.file_type', u32(1));
  writeGguf(dst, meta, tensors);
}

/**
 * Refuses a model whose tokenizer is not the organism's vocabulary: token ids from encodeText would
 * mean other tokens in it (a model of an older organism build, e.g. one token per digit, or another model).
 */
export function requireOrganismVocab(path: string): void {
  const tokens = metaValue(readGguf(path), 'tokenizer.ggml.tokens');
  const pieces = organismVocab().pieces;
  const same = Array.isArray(tokens) && tokens.length === pieces.length && tokens.every((t, i) => t === pieces[i]);
  if (!same) {
    throw new ThinkwhenError(
      'ORGANISM_VOCAB',
      `${path} does not have the organism's vocabulary (${Array.isArray(tokens) ? tokens.length : 0} tokens; the organism's has ${pieces.length}): a model of an older organism build, or not an organism model`,
      'rebuild the organism with `thinkwhen organism build`, or pass a model it built',
    );
  }
}
