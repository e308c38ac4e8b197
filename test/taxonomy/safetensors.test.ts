import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ThinkwhenError } from '../../src/errors.ts';
import { loadSentenceActivations, SentenceActivationWriter } from '../../src/taxonomy/activation-store.ts';
import { centerAndNormalize, meanOfRows, RunningMean } from '../../src/taxonomy/preprocess.ts';
import {
  decodeSafetensors,
  encodeSafetensors,
  float16ToFloat32,
  float32ToFloat16,
  readSafetensors,
  writeSafetensors,
} from '../../src/taxonomy/safetensors.ts';

const isThinkwhen = (code: string, pattern: RegExp) => (e: unknown) => {
  assert.ok(e instanceof ThinkwhenError, String(e));
  assert.equal(e.code, code);
  assert.match(e.message, pattern);
  return true;
};

test('safetensors: F32/F16/I32/I64 round trip with metadata; header is 8-byte aligned JSON', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tw-st-'));
  try {
    const path = join(dir, 'a.safetensors');
    await writeSafetensors(
      path,
      {
        w: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-7, -1e30]) },
        h: { dtype: 'F16', shape: [4], data: Float32Array.from([1, -0.5, 65504, 1e-6]) },
        i: { dtype: 'I32', shape: [2], data: Int32Array.from([-7, 2 ** 31 - 1]) },
        l: { dtype: 'I64', shape: [1, 2], data: BigInt64Array.from([-(2n ** 40n), 5n]) },
      },
      { layer: '4', model: 'tiny' },
    );
    const bytes = await readFile(path);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    assert.equal((8 + headerLen) % 8, 0);
    const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString());
    assert.deepEqual(header.__metadata__, { layer: '4', model: 'tiny' });
    assert.deepEqual(header.w, { dtype: 'F32', shape: [2, 3], data_offsets: header.w.data_offsets });
    const back = await readSafetensors(path);
    assert.deepEqual([...(back.tensors.w.data as Float32Array)], [...Float32Array.from([1, -2, 3.5, 0, 1e-7, -1e30])]);
    assert.deepEqual(
      [...float16ToFloat32(back.tensors.h.data as Uint16Array)],
      [1, -0.5, 65504, float16ToFloat32(float32ToFloat16(Float32Array.from([1e-6])))[0]],
    );
    assert.deepEqual([...(back.tensors.i.data as Int32Array)], [-7, 2 ** 31 - 1]);
    assert.deepEqual([...(back.tensors.l.data as BigInt64Array)], [-(2n ** 40n), 5n]);
    assert.deepEqual(back.metadata, { layer: '4', model: 'tiny' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('float16 conversion rounds to nearest even and handles subnormals and overflow', () => {
  const h = float32ToFloat16(Float32Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -24, 1e6, Number.NaN, -0]));
  assert.equal(h[0], 0x3c00); // tie → even
  assert.equal(h[1], 0x3c02); // tie → even (up)
  assert.equal(h[2], 0x0001); // smallest subnormal
  assert.equal(h[3], 0x7c00); // overflow → Inf
  assert.ok(Number.isNaN(float16ToFloat32(h.subarray(4, 5))[0]));
  assert.equal(h[5], 0x8000);
});

test('corrupt or mislabelled safetensors data gives a clear error', () => {
  const good = encodeSafetensors({ x: { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) } });
  assert.throws(
    () => decodeSafetensors(good.subarray(0, good.length - 4)),
    isThinkwhen('SAFETENSORS_CORRUPT', /do not fit/),
  );
  assert.throws(() => decodeSafetensors(new Uint8Array(3)), isThinkwhen('SAFETENSORS_CORRUPT', /8-byte/));
  assert.throws(
    () => encodeSafetensors({ x: { dtype: 'F32', shape: [3], data: Float32Array.from([1, 2]) } }),
    isThinkwhen('SAFETENSORS_SHAPE', /shape \[3\]/),
  );
  // Misaligned input is copied, not rejected.
  const shifted = new Uint8Array(good.length + 1);
  shifted.set(good, 1);
  assert.deepEqual([...(decodeSafetensors(shifted.subarray(1)).tensors.x.data as Float32Array)], [1, 2]);
});

test('activation store: shards + JSONL index + thinking means round trip; width mismatches are named', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tw-acts-'));
  try {
    const writer = await SentenceActivationWriter.create(dir, { layers: [4, 8], dim: 3, shardRows: 2 });
    for (let i = 0; i < 5; i++) {
      await writer.add(
        { traceId: `t${i >> 1}`, sentence: `sentence ${i} here`, tokenStart: i, tokenEnd: i + 2 },
        new Map([
          [4, [i, i + 1, i + 2]],
          [8, [-i, 0, 1]],
        ]),
      );
    }
    writer.addThinkingVector(4, [1, 1, 1]);
    writer.addThinkingVector(4, [3, 5, 7]);
    await assert.rejects(
      writer.add(
        { traceId: 'x', sentence: 's', tokenStart: 0, tokenEnd: 1 },
        new Map([
          [4, [1, 2]],
          [8, [1, 2, 3]],
        ]),
      ),
      isThinkwhen('WIDTH_MISMATCH', /width 2 .* width 3/),
    );
    const manifest = await writer.close();
    assert.equal(manifest.shards.length, 3);
    const loaded = await loadSentenceActivations(dir, 4, { expectedDim: 3 });
    assert.equal(loaded.rows, 5);
    assert.deepEqual([...loaded.x.subarray(12, 15)], [4, 5, 6]);
    assert.deepEqual(loaded.records[3], {
      row: 3,
      shard: 1,
      traceId: 't1',
      sentence: 'sentence 3 here',
      tokenStart: 3,
      tokenEnd: 5,
    });
    assert.deepEqual([...loaded.thinkingMean!], [2, 3, 4]);
    assert.equal((await loadSentenceActivations(dir, 8)).thinkingMean, null);
    await assert.rejects(
      loadSentenceActivations(dir, 4, { expectedDim: 1536 }),
      isThinkwhen('WIDTH_MISMATCH', /width 3, but the model\/SAE expects width 1536/),
    );
    await assert.rejects(loadSentenceActivations(dir, 5), isThinkwhen('MISSING_LAYER', /layer 5/));
    await assert.rejects(loadSentenceActivations(join(dir, 'nope'), 4), isThinkwhen('NO_ACTIVATIONS', /manifest/));
    // A shard rewritten with another width is caught on load.
    await writeSafetensors(join(dir, manifest.shards[0].file), {
      'layer.4': { dtype: 'F32', shape: [2, 4], data: new Float32Array(8) },
    });
    await assert.rejects(loadSentenceActivations(dir, 4), isThinkwhen('WIDTH_MISMATCH', /width 4/));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('preprocessing: sentence means, the reference running mean, centring + L2 normalisation', () => {
  const acts = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]); // 4 tokens × 2 dims
  assert.deepEqual([...meanOfRows(acts, 2, { start: 1, end: 3 })], [4, 5]);
  assert.throws(() => meanOfRows(acts, 2, { start: 3, end: 5 }), isThinkwhen('ROWS_OUT_OF_RANGE', /4 rows/));
  const mean = new RunningMean(2);
  mean.update([2, 0]);
  mean.update([4, 2]);
  mean.update([0, 4]);
  assert.deepEqual([...mean.mean], [2, 2]);
  const x = Float32Array.from([5, 6, 2, 2, 2, 0]);
  centerAndNormalize(x, 2, mean.mean);
  assert.deepEqual(
    [...x].map((v) => Math.round(v * 1e6) / 1e6),
    [0.6, 0.8, 0, 0, 0, -1],
  );
  assert.throws(() => centerAndNormalize(new Float32Array(6), 3, [1, 2]), isThinkwhen('WIDTH_MISMATCH', /width 2/));
});

test('A2: SAE input for annotation is raw by default, centred + normalised on request', async () => {
  const { saeInputForLabelling } = await import('../../src/taxonomy/preprocess.ts');
  const a = Float32Array.from([3, 4, 1, 1]);
  assert.deepEqual([...saeInputForLabelling(a, 2)], [3, 4, 1, 1]);
  const centred = saeInputForLabelling(a, 2, { mode: 'centred', mean: [0, 0] });
  const expected = [0.6, 0.8, Math.SQRT1_2, Math.SQRT1_2];
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(centred[i] - expected[i]) < 1e-6);
  assert.deepEqual([...a], [3, 4, 1, 1], 'input untouched');
  assert.throws(() => saeInputForLabelling(a, 2, { mode: 'centred' }), isThinkwhen('NO_MEAN', /μ_L/));
});
