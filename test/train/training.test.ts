// Training works: a vector lowers held-out loss on a toy target; all weights of a small model learn a
// synthetic corpus down to its entropy; the saved GGUF gives llama.cpp the training graph's logits.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Model } from '../../src/engine/model.ts';
import { sequenceBatch } from '../../src/train/batch.ts';
import { trainAddon } from '../../src/train/native.ts';
import { rng } from '../../src/train/rng.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { trainVector } from '../../src/train/vectors.ts';
import { trainWeights } from '../../src/train/weights.ts';
import { f32Model, maxAbsDiff, smallLm } from './helpers.ts';

test('a steering vector trained on a toy target lowers held-out loss', async () => {
  const tr = Trainer.open(f32Model('qwen2'));
  const r = rng(1);
  const target = [100, 101, 102, 103, 104];
  const ex = (n: number) =>
    Array.from({ length: n }, () => ({
      prompt: Array.from({ length: 3 + Math.floor(r() * 4) }, () => 5 + Math.floor(r() * 300)),
      target,
    }));
  const res = await trainVector(tr, {
    layer: 1,
    train: ex(12),
    heldOut: ex(6),
    epochs: 8,
    batchSize: 4,
    microBatch: 2,
    adam: { lr: 0.2 },
    seed: 3,
  });
  assert.ok(res.heldOutBefore !== undefined && res.heldOutAfter !== undefined);
  assert.ok(res.heldOutAfter < res.heldOutBefore - 0.3, `held-out ${res.heldOutBefore} -> ${res.heldOutAfter}`);
  assert.ok(res.epochs.at(-1)!.trainLoss < res.epochs[0].trainLoss);
  assert.equal(res.steps, res.epochs.length * 3);
  assert.ok(res.bestEpoch >= 0 && res.vector.length === tr.nEmbd);
  tr.free();
});

/** A first-order Markov chain over 16 tokens with 1.5 bits of entropy per step. */
function markovCorpus(n: number, len: number, seed: number): { seqs: number[][]; entropy: number } {
  const r = rng(seed);
  const base = 300;
  const next = (s: number) => {
    const u = r();
    return u < 0.5 ? (s + 1) % 16 : u < 0.75 ? (s + 3) % 16 : (s * 5 + 7) % 16;
  };
  const seqs = Array.from({ length: n }, () => {
    let s = Math.floor(r() * 16);
    const out = [base + s];
    for (let i = 1; i < len; i++) {
      s = next(s);
      out.push(base + s);
    }
    return out;
  });
  // the three successors are distinct for every state, so H = -(.5 ln .5 + 2 * .25 ln .25)
  return { seqs, entropy: -(0.5 * Math.log(0.5) + 0.5 * Math.log(0.25)) };
}

test('training all weights learns a synthetic corpus to near its entropy; the saved GGUF matches', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'thinkwhen-train-'));
  const tr = Trainer.open(smallLm(), { mode: 'weights' });
  try {
    const { seqs, entropy } = markovCorpus(64, 24, 5);
    const heldOut = markovCorpus(8, 24, 6).seqs;
    const res = await trainWeights(tr, {
      sequences: seqs,
      heldOut,
      batchSize: 8,
      steps: 120,
      evalEvery: 40,
      warmupSteps: 10,
      adam: { lr: 1e-2, weightDecay: 0 },
      seed: 1,
    });
    const last = res.evals.at(-1)!;
    // The first token of each sequence is unpredictable (uniform over 16): allow for it.
    const floor = entropy + Math.log(16) / 23;
    assert.ok(res.evals[0].trainLoss > 2, `starts near ln(vocab): ${res.evals[0].trainLoss}`);
    assert.ok(last.heldOutLoss! < floor + 0.15, `held-out ${last.heldOutLoss} vs floor ${floor}`);
    assert.ok(last.tokensPerSecond > 0);

    const out = join(dir, 'trained.gguf');
    await tr.save(out);
    const b = sequenceBatch([heldOut[0]]);
    const ours = await tr.run({ ...b, logits: true });
    const model = await Model.load(out, { gpuLayers: 0 });
    const n = heldOut[0].length;
    const ref = await trainAddon().referenceForward(model.native, {
      tokens: Int32Array.from(heldOut[0]),
      seq: new Int32Array(n),
      pos: Int32Array.from({ length: n }, (_, i) => i),
    });
    assert.ok(
      maxAbsDiff(ours.logits!, ref) < 1e-4,
      `llama.cpp (F32 KV) vs training graph ${maxAbsDiff(ours.logits!, ref)}`,
    );
    // the inference engine as used everywhere else (default F16 KV cache)
    const ctx = model.createContext({ nCtx: 64, nBatch: 32, nSeqMax: 1, threads: 2 });
    const seq = ctx.sequence();
    const dec = await ctx.decode(heldOut[0].map((token) => ({ token, seq, logits: true })));
    const flat = new Float32Array(n * model.info.nVocab);
    for (const [i, l] of dec.logits.entries()) flat.set(l, i * model.info.nVocab);
    assert.ok(maxAbsDiff(ours.logits!, flat) < 1e-2, `engine vs training graph ${maxAbsDiff(ours.logits!, flat)}`);
    ctx.free();
    model.free();
  } finally {
    tr.free();
    rmSync(dir, { recursive: true, force: true });
  }
});
