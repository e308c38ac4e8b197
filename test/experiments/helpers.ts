// Models of the paper pairs' real architecture, depth and tokenizer (the real Qwen2 BPE vocabulary),
// scaled down in width so they are small; and copies with edited metadata (another pre-tokenizer,
// a renamed token) for the tokenizer checks.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readGguf, readTensor } from '../../src/gguf/read.ts';
import type { TinyModelSpec } from '../../src/gguf/tiny-model.ts';
import { GgmlType, type GgufValue } from '../../src/gguf/types.ts';
import { writeGguf } from '../../src/gguf/write.ts';
import { tinyModelPath } from '../helpers/models.ts';

/** Qwen2.5-Math-1.5B's architecture, depth (28) and tokenizer; width 64 instead of 1536. */
export const QWEN_1_5B_SCALED: TinyModelSpec = {
  arch: 'qwen2',
  nLayer: 28,
  nEmbd: 64,
  nHead: 4,
  nHeadKv: 2,
  nFf: 128,
  vocab: 'qwen2',
  weightType: GgmlType.F16,
  tiedOutput: true,
};

export const scaledQwen = () => tinyModelPath(QWEN_1_5B_SCALED);

/** A copy of `src` with metadata changed (cached next to it under `tag`). */
export function withMetadata(src: string, tag: string, edit: (m: Map<string, GgufValue>) => void): string {
  const dst = join(dirname(src), `${tag}-${src.split('/').pop()}`);
  if (existsSync(dst)) return dst;
  const file = readGguf(src);
  const meta = new Map(file.metadata);
  edit(meta);
  const tensors = file.tensors.map((t) => ({
    name: t.name,
    shape: t.shape.map(Number),
    type: t.type as GgmlType,
    data: readTensor(file, t.name),
  }));
  writeGguf(dst, meta, tensors); // atomic: parallel test files never see half a file
  return dst;
}
