// Resumable weight training: a run that crashes and is called again continues from its last
// checkpoint (weights, Adam moments and step count, batch order) and ends with exactly the weights
// of an uninterrupted run; prompt tokens are context only.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readGguf, readTensor } from '../../src/gguf/read.ts';
import { Rng } from '../../src/rng.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { type TrainingItem, trainWeights, type WeightTrainOptions } from '../../src/train/weights.ts';
import { smallLm } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'thinkwhen-ckpt-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function corpus(n: number, seed: number): TrainingItem[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const a = 300 + rng.int(8);
    const len = 3 + rng.int(6);
    return { prompt: [5, a], target: Array.from({ length: len }, (_, i) => 300 + ((a + i) % 8)) };
  });
}

async function run(o: Omit<WeightTrainOptions, 'data' | 'steps'>, out: string) {
  const tr = Trainer.open(smallLm(), { mode: 'weights', threads: 1 });
  try {
    return await trainWeights(tr, {
      data: corpus(40, 3),
      steps: 12,
      batchSize: 4,
      adam: { lr: 1e-2, weightDecay: 0.01 },
      warmupSteps: 2,
      evalEvery: 2,
      seed: 5,
      out,
      ...o,
    });
  } finally {
    tr.free();
  }
}

test('a crashed run resumed from its checkpoint ends bit-identical to an uninterrupted one', async () => {
  const plain = join(dir, 'plain.gguf');
  const whole = await run({}, plain);
  assert.equal(whole.steps, 12);
  assert.ok(whole.evals.at(-1)!.trainLoss < whole.evals[0].trainLoss);

  const resumed = join(dir, 'resumed.gguf');
  const checkpoint = { path: resumed, every: 4 };
  await assert.rejects(
    run(
      {
        checkpoint,
        onEval: (e) => {
          if (e.step === 6) throw new Error('simulated crash');
        },
      },
      resumed,
    ),
    /simulated crash/,
  );
  assert.ok(!existsSync(resumed), 'no final file after a crash');
  assert.ok(existsSync(`${resumed}.ckpt.json`), 'the step-4 checkpoint is there');
  const again = await run({ checkpoint }, resumed);
  assert.equal(again.steps, 12);
  assert.deepEqual(
    again.evals.map((e) => e.step),
    [2, 4, 6, 8, 10, 12],
  );
  assert.deepEqual(
    again.evals.map((e) => e.trainLoss),
    whole.evals.map((e) => e.trainLoss),
  );
  const a = readGguf(plain);
  const b = readGguf(resumed);
  for (const t of a.tensors) assert.deepEqual(readTensor(b, t.name), readTensor(a, t.name), t.name);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes('ckpt')),
    [],
    'the checkpoint is removed once the final file is written',
  );
});

test('checkpoints refuse early stopping; the prompt is not scored', async () => {
  await assert.rejects(run({ checkpoint: { path: join(dir, 'x.gguf'), every: 2 }, patience: 2 }, join(dir, 'x.gguf')), {
    code: 'BAD_OPTIONS',
  });
  // a corpus whose prompts are noise and whose targets are constant: the loss goes to ~0 only
  // because the prompt is context, never a target
  const tr = Trainer.open(smallLm(), { mode: 'weights', threads: 1 });
  try {
    const rng = new Rng(9);
    const data = Array.from({ length: 32 }, () => ({
      prompt: Array.from({ length: 6 }, () => 300 + rng.int(60)),
      target: [310, 311, 312],
    }));
    const r = await trainWeights(tr, { data, steps: 40, batchSize: 8, adam: { lr: 2e-2 }, evalEvery: 10, seed: 1 });
    assert.ok(r.evals.at(-1)!.trainLoss < 0.1, `loss ${r.evals.at(-1)!.trainLoss}`);
  } finally {
    tr.free();
  }
});
