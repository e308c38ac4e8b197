import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ThinkwhenError } from '../../src/errors.ts';
import { f16ToF32, f32ToF16 } from '../../src/gguf/half.ts';
import {
  arr,
  bool,
  f32,
  GgmlType,
  GgufValueType,
  i32,
  metaValue,
  readControlVector,
  readGguf,
  readTensor,
  str,
  u32,
  writeControlVector,
  writeGguf,
} from '../../src/gguf/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'tw-gguf-'));

test('metadata of every type and tensors round-trip through write and read', () => {
  const path = join(dir, 'rt.gguf');
  const meta = new Map([
    ['a.string', str('héllo')],
    ['a.u32', u32(4000000000)],
    ['a.i32', i32(-5)],
    ['a.f32', f32(0.5)],
    ['a.bool', bool(true)],
    ['a.u64', { type: GgufValueType.UINT64 as const, value: 1n << 40n }],
    ['a.arr', arr(GgufValueType.STRING, ['x', 'yz'])],
    ['a.farr', arr(GgufValueType.FLOAT32, [1.5, -2])],
  ]);
  const data = Float32Array.from({ length: 64 * 3 }, (_, i) => Math.sin(i) * 3);
  writeGguf(path, meta, [
    { name: 't.f32', shape: [64, 3], type: GgmlType.F32, data },
    { name: 't.f16', shape: [64, 3], type: GgmlType.F16, data },
    { name: 't.q8', shape: [64, 3], type: GgmlType.Q8_0, data },
  ]);
  const f = readGguf(path);
  assert.equal(f.version, 3);
  assert.equal(metaValue(f, 'a.string'), 'héllo');
  assert.equal(metaValue(f, 'a.u32'), 4000000000);
  assert.equal(metaValue(f, 'a.i32'), -5);
  assert.equal(metaValue(f, 'a.f32'), 0.5);
  assert.equal(metaValue(f, 'a.bool'), true);
  assert.equal(metaValue(f, 'a.u64'), 1n << 40n);
  assert.deepEqual(metaValue(f, 'a.arr'), ['x', 'yz']);
  assert.deepEqual(metaValue(f, 'a.farr'), [1.5, -2]);
  assert.deepEqual(
    f.tensors.map((t) => [t.name, t.shape, t.type]),
    [
      ['t.f32', [64, 3], 0],
      ['t.f16', [64, 3], 1],
      ['t.q8', [64, 3], 8],
    ],
  );
  assert.deepEqual(readTensor(f, 't.f32'), data);
  const maxErr = (a: Float32Array) => Math.max(...a.map((x, i) => Math.abs(x - data[i])));
  assert.ok(maxErr(readTensor(f, 't.f16')) <= 3 * 2 ** -11, 'F16 within half an ulp');
  assert.ok(maxErr(readTensor(f, 't.q8')) <= 3 / 127, 'Q8_0 within one quantisation step');
  assert.ok(maxErr(readTensor(f, 't.q8')) > 0, 'Q8_0 is really quantised');
});

test('f16 conversion rounds to nearest even and handles specials', () => {
  assert.equal(f32ToF16(1), 0x3c00);
  assert.equal(f32ToF16(-2), 0xc000);
  assert.equal(f32ToF16(65504), 0x7bff);
  assert.equal(f32ToF16(1e6), 0x7c00);
  assert.equal(f32ToF16(Number.NaN) & 0x7c00, 0x7c00);
  assert.equal(f16ToF32(f32ToF16(2 ** -24)), 2 ** -24); // smallest subnormal
  assert.equal(f16ToF32(f32ToF16(1 + 2 ** -11)), 1); // tie rounds to even
  assert.equal(f16ToF32(f32ToF16(1 + 3 * 2 ** -11)), 1 + 2 ** -9);
});

test('control vectors in the llama.cpp layout round-trip', () => {
  const path = join(dir, 'cv.gguf');
  const directions = new Map([
    [1, Float32Array.from({ length: 8 }, (_, i) => i)],
    [3, Float32Array.from({ length: 8 }, (_, i) => -i)],
  ]);
  writeControlVector(path, { modelHint: 'qwen2', nEmbd: 8, directions });
  const f = readGguf(path);
  assert.equal(metaValue(f, 'general.architecture'), 'controlvector');
  assert.equal(metaValue(f, 'controlvector.layer_count'), 2);
  assert.deepEqual(
    f.tensors.map((t) => t.name),
    ['direction.1', 'direction.3'],
  );
  const cv = readControlVector(path);
  assert.equal(cv.modelHint, 'qwen2');
  assert.deepEqual(cv.directions.get(3), directions.get(3));
  assert.throws(
    () => writeControlVector(path, { modelHint: '', nEmbd: 8, directions: new Map([[0, new Float32Array(8)]]) }),
    /layer 0/,
  );
});

test('foreign and truncated files are refused with a named problem', () => {
  const txt = join(dir, 'x.txt');
  writeFileSync(txt, 'hello, not a model');
  assert.throws(
    () => readGguf(txt),
    (e: ThinkwhenError) => e.code === 'NOT_GGUF' && /not a GGUF/.test(e.message),
  );
  const good = readFileSync(join(dir, 'rt.gguf'));
  const cut = join(dir, 'cut.gguf');
  writeFileSync(cut, good.subarray(0, good.length - 100));
  assert.throws(
    () => readGguf(cut),
    (e: ThinkwhenError) => e.code === 'TRUNCATED_GGUF' && /truncated/.test(e.message),
  );
  writeFileSync(cut, good.subarray(0, 40));
  assert.throws(
    () => readGguf(cut),
    (e: ThinkwhenError) => e.code === 'TRUNCATED_GGUF',
  );
  assert.throws(
    () => readGguf(join(dir, 'missing.gguf')),
    (e: ThinkwhenError) => e.code === 'MODEL_NOT_FOUND',
  );
  assert.throws(
    () => readControlVector(join(dir, 'rt.gguf')),
    (e: ThinkwhenError) => e.code === 'NOT_CONTROL_VECTOR',
  );
});
