// The addon's trainer errors carry codes (native/train.h), and TypeScript maps the code, never the
// message's wording, to a ThinkwhenError (issue 14, item 3).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ThinkwhenError } from '../../src/errors.ts';
import { archOf, encodeGgufParts, readGgufParts } from '../../src/gguf/hostile.ts';
import { u32 } from '../../src/gguf/types.ts';
import { sequenceBatch } from '../../src/train/batch.ts';
import { trainAddon } from '../../src/train/native.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { f32Model } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'thinkwhen-native-errors-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** The tiny llama with expert_count set: a mixture-of-experts model the training graph refuses. */
function moeModel(): string {
  const parts = readGgufParts(f32Model('llama'));
  parts.metadata.set(`${archOf(parts)}.expert_count`, u32(4));
  const path = join(dir, 'moe.gguf');
  writeFileSync(path, encodeGgufParts(parts));
  return path;
}

const nativeOptions = { mode: 'vectors', device: 'cpu', nThreads: 1, gradWeightType: 'auto', memoryLimit: 0 } as const;

test('an unsupported model: the native error has code UNSUPPORTED_MODEL; Trainer.open names the file', () => {
  const path = moeModel();
  assert.throws(
    () => new (trainAddon().Trainer)(path, nativeOptions),
    (e: Error & { code?: string }) => e.code === 'UNSUPPORTED_MODEL' && /mixture-of-experts/.test(e.message),
  );
  assert.throws(
    () => Trainer.open(path, { threads: 1 }),
    (e: unknown) =>
      e instanceof ThinkwhenError && e.code === 'UNSUPPORTED_MODEL' && e.message.startsWith(`${path}: mixture`),
  );
});

test('over the memory limit: code OUT_OF_MEMORY at load (sync) and from a run (async)', async () => {
  const path = f32Model('llama');
  assert.throws(
    () => new (trainAddon().Trainer)(path, { ...nativeOptions, memoryLimit: 1024 }),
    (e: Error & { code?: string }) => e.code === 'OUT_OF_MEMORY' && /memory limit/.test(e.message),
  );
  const tr = Trainer.open(f32Model('qwen2'), { threads: 1, memoryLimit: 3 * 1024 * 1024 });
  try {
    tr.setVectors([{ layer: 0 }]);
    const big = sequenceBatch(Array.from({ length: 8 }, () => Array.from({ length: 256 }, (_, i) => 5 + (i % 50))));
    await assert.rejects(
      tr.nat.run({ ...big, steer: new Float32Array(8 * 256), backward: true }),
      (e: Error & { code?: string }) => e.code === 'OUT_OF_MEMORY',
    );
    await assert.rejects(
      tr.run({ ...big, steer: new Float32Array(8 * 256), backward: true }),
      (e: unknown) => e instanceof ThinkwhenError && e.code === 'OUT_OF_MEMORY',
    );
  } finally {
    tr.free();
  }
});

test('a failure without a code stays a plain Error', async () => {
  const tr = Trainer.open(f32Model('llama'), { threads: 1 });
  try {
    await assert.rejects(tr.run({ ...sequenceBatch([[1, 2, 3]]), backward: true }), (e: Error & { code?: string }) => {
      return !(e instanceof ThinkwhenError) && e.code === undefined && /nothing to train/.test(e.message);
    });
  } finally {
    tr.free();
  }
});
