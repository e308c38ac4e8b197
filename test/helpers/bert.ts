// A tiny random BERT (encoder) GGUF: an architecture whose llama.cpp graph has no l_out tensors,
// used to test that hooks on such a model fail with a clear error.

import { smallVocabPieces } from '../../src/gguf/tiny-model.ts';
import { arr, f32, GgmlType, type GgufValue, GgufValueType, str, u32 } from '../../src/gguf/types.ts';
import { type TensorToWrite, writeGguf } from '../../src/gguf/write.ts';

export function writeTinyBert(path: string): void {
  const nEmbd = 32;
  const nFf = 64;
  const nLayer = 2;
  const { pieces, types } = smallVocabPieces();
  const meta = new Map<string, GgufValue>([
    ['general.architecture', str('bert')],
    ['bert.block_count', u32(nLayer)],
    ['bert.context_length', u32(128)],
    ['bert.embedding_length', u32(nEmbd)],
    ['bert.feed_forward_length', u32(nFf)],
    ['bert.attention.head_count', u32(4)],
    ['bert.attention.layer_norm_epsilon', f32(1e-12)],
    ['bert.attention.causal', { type: GgufValueType.BOOL, value: false }],
    ['tokenizer.ggml.token_type_count', u32(2)],
    ['tokenizer.ggml.model', str('llama')],
    ['tokenizer.ggml.tokens', arr(GgufValueType.STRING, pieces)],
    [
      'tokenizer.ggml.scores',
      arr(
        GgufValueType.FLOAT32,
        pieces.map(() => 0),
      ),
    ],
    ['tokenizer.ggml.token_type', arr(GgufValueType.INT32, types)],
  ]);
  let seed = 1;
  const t = (name: string, shape: number[], mean = 0, std = 0.1): TensorToWrite => ({
    name,
    shape,
    type: GgmlType.F32,
    data: { seed: seed++, std, mean },
  });
  const tensors: TensorToWrite[] = [
    t('token_embd.weight', [nEmbd, pieces.length]),
    t('position_embd.weight', [nEmbd, 128]),
    t('token_types.weight', [nEmbd, 2]),
    t('token_embd_norm.weight', [nEmbd], 1),
    t('token_embd_norm.bias', [nEmbd]),
  ];
  for (let i = 0; i < nLayer; i++) {
    tensors.push(
      t(`blk.${i}.attn_q.weight`, [nEmbd, nEmbd]),
      t(`blk.${i}.attn_k.weight`, [nEmbd, nEmbd]),
      t(`blk.${i}.attn_v.weight`, [nEmbd, nEmbd]),
      t(`blk.${i}.attn_output.weight`, [nEmbd, nEmbd]),
      t(`blk.${i}.attn_output_norm.weight`, [nEmbd], 1),
      t(`blk.${i}.attn_output_norm.bias`, [nEmbd]),
      t(`blk.${i}.ffn_up.weight`, [nEmbd, nFf]),
      t(`blk.${i}.ffn_down.weight`, [nFf, nEmbd]),
      t(`blk.${i}.layer_output_norm.weight`, [nEmbd], 1),
      t(`blk.${i}.layer_output_norm.bias`, [nEmbd]),
    );
  }
  writeGguf(path, meta, tensors);
}
