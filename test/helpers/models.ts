// Tiny random models for tests, written once per spec into the OS temp folder and reused
// across test files (writes are atomic, so parallel test processes are safe).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TINY_LLAMA, TINY_QWEN2, type TinyModelSpec, writeTinyModel } from '../../src/gguf/tiny-model.ts';

export function tinyModelPath(spec: TinyModelSpec): string {
  const dir = join(tmpdir(), 'thinkwhen-test-models');
  mkdirSync(dir, { recursive: true });
  const key = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 12);
  const path = join(dir, `${spec.arch}-${key}.gguf`);
  if (!existsSync(path)) writeTinyModel(path, spec);
  return path;
}

export const tinyQwen2 = () => tinyModelPath(TINY_QWEN2);
export const tinyLlama = () => tinyModelPath(TINY_LLAMA);
