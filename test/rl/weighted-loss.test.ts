// Per-token loss weights in the training graph (the policy-gradient loss of RL): the gradient of
// sum_r w_r · CE_r matches finite differences for mixed and negative weights, weight 1 everywhere is
// the plain cross-entropy, and weight 0 is the same as not scoring the token.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Example, exampleBatch } from '../../src/train/batch.ts';
import type { NativeRunBatch } from '../../src/train/native.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { f32Model, largestGradientByDifference, relErr } from '../train/helpers.ts';

const noSteer = (b: NativeRunBatch): NativeRunBatch => ({ ...b, steer: undefined });

const examples: Example[] = [
  { prompt: [7, 8, 9, 10], target: [11, 12, 13, 14, 15], weight: 1.5 },
  { prompt: [20, 21], target: [22, 23, 24], weight: -0.7 },
  { prompt: [30], target: [31, 32, 33, 34], weight: [0.3, -2, 0, 1] },
];

test('weighted loss: gradient of mixed and negative weights matches finite differences', async () => {
  const tr = Trainer.open(f32Model('qwen2'), { mode: 'weights', threads: 1 });
  try {
    const b = noSteer(exampleBatch(examples));
    assert.ok(b.weights, 'the batch carries weights');
    const nR = 12;
    // loss = sum w·CE / nR; lossScale 1/nR makes the backprop gradient that of the reported loss
    const run = async (backward: boolean) => (await tr.run({ ...b, lossScale: 1 / nR, backward })).loss;
    await run(true);
    for (const name of ['token_embd.weight', 'blk.0.attn_q.weight', 'blk.2.ffn_down.weight', 'output.weight']) {
      const { index: i, backprop, difference: fd } = await largestGradientByDifference(tr, name, () => run(false));
      assert.ok(Math.abs(backprop) > 1e-4, `${name}: a gradient to check (${backprop})`);
      assert.ok(
        Math.abs(fd - backprop) <= 1e-2 * Math.abs(backprop) + 1e-5,
        `${name}[${i}]: backprop ${backprop}, finite differences ${fd}`,
      );
    }
  } finally {
    tr.free();
  }
});

test('weighted loss: the reported loss is sum w·CE / n, and weight 1 is the plain cross-entropy', async () => {
  const tr = Trainer.open(f32Model('llama'), { mode: 'weights', threads: 1 });
  try {
    const plain = examples.map(({ weight: _, ...e }) => e);
    // per-token cross-entropies from the unweighted loss (ggml's own), one scored token at a time
    const ce: number[][] = [];
    for (const e of plain) {
      const row: number[] = [];
      for (let k = 0; k < e.target.length; k++) {
        const b = noSteer(exampleBatch([e]));
        const P = e.prompt.length;
        b.targets.forEach((_, j) => {
          if (j !== P - 1 + k) b.targets[j] = -1;
        });
        row.push((await tr.run(b)).loss);
      }
      ce.push(row);
    }
    let sum = 0;
    examples.forEach((e, i) => {
      ce[i].forEach((c, k) => {
        const w = typeof e.weight === 'number' ? e.weight : (e.weight as number[])[k];
        sum += w * c;
      });
    });
    const weighted = (await tr.run(noSteer(exampleBatch(examples)))).loss;
    assert.ok(Math.abs(weighted - sum / 12) < 1e-4, `weighted ${weighted} vs sum of parts ${sum / 12}`);

    const ones = plain.map((e) => ({ ...e, weight: 1 }));
    const a = await tr.run({ ...noSteer(exampleBatch(plain)), lossScale: 0.1, backward: true });
    const ga = tr.grad('blk.1.attn_k.weight');
    tr.zeroGrad();
    const b = await tr.run({ ...noSteer(exampleBatch(ones)), lossScale: 0.1, backward: true });
    const gb = tr.grad('blk.1.attn_k.weight');
    tr.zeroGrad();
    assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `loss ${a.loss} vs ${b.loss}`);
    assert.ok(relErr(gb, ga) < 1e-4, `gradient relative difference ${relErr(gb, ga)}`);
  } finally {
    tr.free();
  }
});

test('weighted loss: weight 0 on a token is the same gradient as not scoring it', async () => {
  const tr = Trainer.open(f32Model('llama'), { mode: 'weights', threads: 1 });
  try {
    const zeroed = noSteer(exampleBatch([{ prompt: [3, 4], target: [5, 6, 7, 8], weight: [1, 0, 0, 2] }]));
    const masked = noSteer(exampleBatch([{ prompt: [3, 4], target: [5, 6, 7, 8], weight: [1, 1, 1, 2] }]));
    // masked: the two middle tokens are not scored at all
    masked.targets[2] = -1;
    masked.targets[3] = -1;
    await tr.run({ ...zeroed, lossScale: 0.5, backward: true });
    const gz = tr.grad('blk.0.ffn_up.weight');
    tr.zeroGrad();
    await tr.run({ ...masked, lossScale: 0.5, backward: true });
    const gm = tr.grad('blk.0.ffn_up.weight');
    tr.zeroGrad();
    assert.ok(relErr(gz, gm) < 1e-4, `gradient relative difference ${relErr(gz, gm)}`);
  } finally {
    tr.free();
  }
});

test('weighted loss: bad weights are refused with a message', async () => {
  const tr = Trainer.open(f32Model('llama'), { threads: 1 });
  try {
    assert.throws(() => exampleBatch([{ prompt: [1], target: [2, 3], weight: [1] }]), /1 weights for 2 target tokens/);
    assert.throws(() => exampleBatch([{ prompt: [1], target: [2, 3], weight: Number.NaN }]), /non-finite weight/);
    const b = noSteer(exampleBatch([{ prompt: [1], target: [2, 3], weight: 1 }]));
    await assert.rejects(async () => tr.run({ ...b, weights: new Float32Array(1) }), /weights must be a Float32Array/);
    const w = b.weights!.slice();
    w[0] = Number.POSITIVE_INFINITY;
    await assert.rejects(async () => tr.run({ ...b, weights: w }), /not finite/);
  } finally {
    tr.free();
  }
});
