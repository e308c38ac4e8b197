// The training graph's plumbing: quantised weights, transposed copies, accumulation, guards.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Model } from '../../src/engine/model.ts';
import { ThinkwhenError } from '../../src/errors.ts';
import { Rng } from '../../src/rng.ts';
import { exampleBatch, sequenceBatch } from '../../src/train/batch.ts';
import { checkBatch } from '../../src/train/gradcheck.ts';
import { trainAddon } from '../../src/train/native.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { f32Model, GgmlType, largestGradientByDifference, maxAbsDiff, relErr, typedModel } from './helpers.ts';

async function parity(path: string): Promise<number> {
  const tr = Trainer.open(path);
  const model = await Model.load(path, { gpuLayers: 0 });
  try {
    const b = exampleBatch([{ prompt: [10, 20, 30, 40], target: [50, 60, 70] }]);
    const ours = await tr.run({ ...b, steer: undefined, logits: true });
    const ref = await trainAddon().referenceForward(model.native, {
      tokens: b.tokens,
      seq: new Int32Array(7),
      pos: Int32Array.from({ length: 7 }, (_, i) => i),
      nThreads: 2,
    });
    return maxAbsDiff(ours.logits!, ref);
  } finally {
    tr.free();
    model.free();
  }
}

test('forward parity with llama.cpp on Q8_0 and F16 weights', async () => {
  const q8 = await parity(typedModel('qwen2', GgmlType.Q8_0));
  const f16 = await parity(typedModel('llama', GgmlType.F16));
  // Same kernels as llama.cpp; F16 rounds activations to F16, which amplifies 1-ulp differences.
  assert.ok(q8 <= 1e-3, `Q8_0 ${q8}`);
  assert.ok(f16 <= 1e-2, `F16 ${f16}`);
});

test('transposed-copy backward equals ggml out_prod backward (Q8_0 weights)', async () => {
  const path = typedModel('qwen2', GgmlType.Q8_0);
  const grads: Float32Array[] = [];
  for (const gradWeightType of ['none', 'f16', 'q8_0'] as const) {
    const tr = Trainer.open(path, { gradWeightType });
    const v = new Rng(4).normals(tr.nEmbd);
    tr.setVectors([{ layer: 1, data: v }]);
    const b = checkBatch(tr.nVocab, 2);
    await tr.run({ ...b, lossScale: 0.1, backward: true });
    grads.push(tr.grad(0));
    tr.free();
  }
  assert.ok(relErr(grads[1], grads[0]) < 1e-2, `f16 copies: ${relErr(grads[1], grads[0])}`);
  assert.ok(relErr(grads[2], grads[0]) < 5e-2, `q8_0 copies: ${relErr(grads[2], grads[0])}`);
});

test('gradient accumulation over micro-batches equals one batch', async () => {
  const tr = Trainer.open(f32Model('llama'));
  const v = new Rng(9).normals(tr.nEmbd);
  const ex = [
    { prompt: [5, 6, 7], target: [8, 9, 10, 11] },
    { prompt: [12, 13], target: [14, 15, 16] },
  ];
  tr.setVectors([{ layer: 2, data: v }]);
  await tr.run({ ...exampleBatch(ex), lossScale: 1 / 7, backward: true });
  const whole = tr.grad(0);
  tr.zeroGrad();
  await tr.run({ ...exampleBatch([ex[0]]), lossScale: 1 / 7, backward: true });
  await tr.run({ ...exampleBatch([ex[1]]), lossScale: 1 / 7, backward: true });
  const parts = tr.grad(0);
  assert.ok(relErr(parts, whole) < 1e-5, `${relErr(parts, whole)}`);
  // padding never leaks: the same sequence alone or padded next to a longer one scores the same
  const alone = await tr.run({ ...exampleBatch([ex[1]]) });
  const padded = await tr.run({
    ...exampleBatch([ex[1], ex[0]]),
    targets: exampleBatch([ex[1], ex[0]]).targets.map((t, i) => (i < 7 ? t : -1)),
  });
  assert.ok(Math.abs(alone.loss - padded.loss) < 1e-5);
  tr.free();
});

test('memory guard refuses an oversized graph with what to lower; estimate measures without allocating', () => {
  const path = f32Model('qwen2');
  const tr = Trainer.open(path, { memoryLimit: 3 * 1024 * 1024 });
  tr.setVectors([{ layer: 0 }]);
  const small = sequenceBatch([[1, 2, 3, 4]]);
  const big = sequenceBatch(Array.from({ length: 8 }, () => Array.from({ length: 256 }, (_, i) => 5 + (i % 50))));
  const e1 = tr.estimate({ ...small, steer: new Float32Array(4), backward: true });
  const e2 = tr.estimate({ ...big, steer: new Float32Array(8 * 256), backward: true });
  assert.ok(e1.computeBytes > 0 && e2.computeBytes > 10 * e1.computeBytes);
  return assert
    .rejects(
      tr.run({ ...big, steer: new Float32Array(8 * 256), backward: true }),
      (err: Error) =>
        err instanceof ThinkwhenError && /memory limit/.test(err.message) && /sequences per step/.test(err.message),
    )
    .finally(() => tr.free());
});

test('bad input is rejected with an exception, never an abort', async () => {
  const tr = Trainer.open(f32Model('llama'));
  const b = sequenceBatch([[1, 2, 3]]);
  await assert.rejects(async () => tr.run({ ...b, tokens: Int32Array.from([1, 2, 99999]) }), /token id out of range/);
  await assert.rejects(
    async () => tr.run({ ...b, lengths: Int32Array.from([2]), targets: Int32Array.from([2, 3, 4]) }),
    /padding position/,
  );
  await assert.rejects(async () => tr.run({ ...b, lengths: Int32Array.from([4]) }), /length/);
  await assert.rejects(async () => tr.run({ ...b, backward: true }), /nothing to train/);
  assert.throws(() => tr.setVectors([{ layer: 9 }]), /out of range/);
  assert.throws(() => Trainer.open('/nonexistent.gguf'), /not found/);
  tr.free();
});

test('weights mode: gradients of every kind of weight match finite differences', async () => {
  const tr = Trainer.open(f32Model('qwen2'), { mode: 'weights' });
  const b = exampleBatch([
    { prompt: [7, 8, 9, 10], target: [11, 12, 13, 14, 15] },
    { prompt: [20, 21], target: [22, 23, 24] },
  ]);
  const run = async (backward: boolean) => (await tr.run({ ...b, steer: undefined, lossScale: 1 / 8, backward })).loss;
  await run(true);
  const names = [
    'token_embd.weight',
    'blk.0.attn_q.weight',
    'blk.1.attn_k.bias',
    'blk.2.attn_v.weight',
    'blk.3.attn_output.weight',
  ];
  names.push(
    'blk.1.ffn_gate.weight',
    'blk.2.ffn_down.weight',
    'blk.0.attn_norm.weight',
    'output_norm.weight',
    'output.weight',
  );
  for (const name of names) {
    const { index: i, backprop, difference: fd } = await largestGradientByDifference(tr, name, () => run(false));
    assert.ok(
      Math.abs(fd - backprop) <= 1e-2 * Math.abs(backprop) + 1e-5,
      `${name}[${i}]: backprop ${backprop}, finite differences ${fd}`,
    );
  }
  tr.free();
});
