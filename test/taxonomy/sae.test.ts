import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ThinkwhenError } from '../../src/errors.ts';
import { Rng } from '../../src/rng.ts';
import { adjustedRandIndex } from '../../src/taxonomy/metrics.ts';
import { centerAndNormalize } from '../../src/taxonomy/preprocess.ts';
import { defaultLr, loadSae, saveSae, trainSaeGrid, trainTopKSae } from '../../src/taxonomy/sae.ts';
import {
  accumulateRows,
  allocGrads,
  allocScratch,
  finishBatch,
  type SaeParams,
  selectTopK,
} from '../../src/taxonomy/sae-kernel.ts';

/** Planted clusters: direction × scale + noise, centred and normalised like real features. */
function planted(n: number, dim: number, clusters: number, noise: number, seed: number) {
  const rng = new Rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const centres = Float32Array.from({ length: clusters * dim }, gauss);
  const truth = new Int32Array(n);
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = i % clusters;
    truth[i] = c;
    const s = 0.5 + rng.next();
    for (let d = 0; d < dim; d++) x[i * dim + d] = s * centres[c * dim + d] + noise * gauss();
  }
  const mean = new Float64Array(dim);
  for (let i = 0; i < n * dim; i++) mean[i % dim] += x[i] / n;
  centerAndNormalize(x, dim, mean);
  return { x, truth };
}

test('learning rate follows 2e-4/sqrt(K/2^14)', () => {
  assert.ok(Math.abs(defaultLr(5) - 1.1449e-2) < 1e-5);
  assert.ok(Math.abs(defaultLr(15) - 6.61e-3) < 1e-5);
});

test('top-k selection keeps the largest values, first index on ties', () => {
  const idx = new Int32Array(3);
  const val = new Float64Array(3);
  selectTopK(Float64Array.from([0.5, -2, 3, 0.5, 7, -1]), 3, idx, val);
  assert.deepEqual([...idx], [4, 2, 0]);
  assert.deepEqual([...val], [7, 3, 0.5]);
});

for (const topK of [2, 3])
  test(`analytic gradients match finite differences of the FVU loss (top-${topK})`, () => {
    const dim = 6;
    const latents = 4;
    const rows = 5;
    const rng = new Rng(3);
    const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
    const p: SaeParams = {
      latents,
      dim,
      topK,
      wEnc: rand(latents * dim),
      bEnc: rand(latents),
      wDec: rand(latents * dim),
      bDec: rand(dim),
    };
    const x = rand(rows * dim);
    const order = Int32Array.from({ length: rows }, (_, i) => i);
    const loss = () => {
      const g = allocGrads(latents, dim);
      accumulateRows(p, x, order, 0, rows, g, allocScratch(p));
      return finishBatch(p, g, rows).loss;
    };
    const g = allocGrads(latents, dim);
    accumulateRows(p, x, order, 0, rows, g, allocScratch(p));
    const { scale } = finishBatch(p, g, rows);
    const checks: Array<[Float32Array, Float32Array | Float64Array]> = [
      [p.wEnc, g.gWEnc],
      [p.bEnc, g.gBEnc],
      [p.wDec, g.gWDec],
      [p.bDec, g.gBDec],
    ];
    const h = 1e-3;
    for (const [param, grad] of checks) {
      for (let i = 0; i < param.length; i++) {
        const keep = param[i];
        param[i] = keep + h;
        const up = loss();
        param[i] = keep - h;
        const down = loss();
        param[i] = keep;
        const numeric = (up - down) / (2 * h);
        assert.ok(
          Math.abs(numeric - grad[i] * scale) < 2e-3 * Math.max(1, Math.abs(numeric)),
          `param ${i}: numeric ${numeric} analytic ${grad[i] * scale}`,
        );
      }
    }
  });

test('the SAE recovers planted clusters (ARI >= 0.9), decoder rows stay unit norm', async () => {
  // 5 planted categories, K = 8 latents (the paper sweeps K above the number of behaviours).
  const dim = 64;
  const latents = 8;
  const { x, truth } = planted(1500, dim, 5, 0.3, 13);
  const sae = await trainTopKSae(x, dim, { latents, seed: 3, threads: 1 });
  const ari = adjustedRandIndex(truth, sae.assign(x));
  assert.ok(ari >= 0.9, `ARI ${ari}`);
  assert.equal(sae.config.stoppedEarly, true);
  for (let j = 0; j < latents; j++) {
    let sq = 0;
    for (let d = 0; d < dim; d++) sq += sae.params.wDec[j * dim + d] ** 2;
    assert.ok(Math.abs(Math.sqrt(sq) - 1) < 1e-3);
  }
  // The same seed gives the same model.
  const again = await trainTopKSae(x, dim, { latents, seed: 3, maxEpochs: 5, threads: 1 });
  const first = await trainTopKSae(x, dim, { latents, seed: 3, maxEpochs: 5, threads: 1 });
  assert.deepEqual(again.params.wEnc, first.params.wEnc);
});

test('early stopping restores the best weights and stops after `patience` epochs without improvement', async () => {
  const { x } = planted(600, 16, 3, 0.3, 5);
  const losses: number[] = [];
  // A huge learning rate makes the loss bounce, so the early stop triggers.
  const sae = await trainTopKSae(x, 16, {
    latents: 5,
    lr: 0.5,
    patience: 3,
    seed: 2,
    threads: 1,
    onEpoch: (_, l) => losses.push(l),
  });
  assert.equal(sae.config.stoppedEarly, true);
  const best = Math.min(...losses);
  const bestAt = losses.indexOf(best);
  assert.equal(losses.length, bestAt + 1 + 3);
  assert.equal(sae.config.bestLoss, best);
});

test('two threads train the same model as one, up to float rounding', async () => {
  const { x, truth } = planted(1200, 24, 4, 0.3, 9);
  const one = await trainTopKSae(x, 24, { latents: 4, seed: 4, maxEpochs: 8, threads: 1 });
  const two = await trainTopKSae(x, 24, { latents: 4, seed: 4, maxEpochs: 8, threads: 2 });
  assert.ok(Math.abs(one.config.bestLoss - two.config.bestLoss) < 1e-4);
  assert.ok(adjustedRandIndex(one.assign(x), two.assign(x)) > 0.99);
  assert.ok(adjustedRandIndex(truth, two.assign(x)) > 0.9);
});

test('save/load round trip and the grid over layers × K', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tw-sae-'));
  try {
    const { x } = planted(400, 8, 3, 0.3, 1);
    const grid = await trainSaeGrid(new Map([[4, { x, dim: 8 }]]), {
      latentCounts: [3, 5],
      maxEpochs: 3,
      threads: 1,
      outDir: dir,
    });
    assert.deepEqual(
      grid.map((g) => [g.layer, g.latents]),
      [
        [4, 3],
        [4, 5],
      ],
    );
    const loaded = await loadSae(grid[1].path!);
    assert.equal(loaded.config.layer, 4);
    assert.deepEqual(loaded.params.wDec, grid[1].sae.params.wDec);
    assert.deepEqual(loaded.assign(x), grid[1].labels);
    const again = await saveSae(join(dir, 'copy'), loaded);
    assert.deepEqual((await loadSae(again)).params.bDec, loaded.params.bDec);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('bad input: empty activations and width mismatches name the problem', async () => {
  await assert.rejects(trainTopKSae(new Float32Array(0), 8, { latents: 5 }), (e: unknown) => {
    assert.ok(e instanceof ThinkwhenError);
    assert.match(e.message, /empty traces|capture sentence activations/);
    return true;
  });
  const { x } = planted(100, 8, 2, 0.3, 1);
  const sae = await trainTopKSae(x, 8, { latents: 3, maxEpochs: 1, threads: 1 });
  assert.throws(
    () => sae.assign(new Float32Array(12)),
    (e: unknown) => {
      assert.ok(e instanceof ThinkwhenError);
      assert.equal(e.code, 'WIDTH_MISMATCH');
      assert.match(e.message, /width 8/);
      return true;
    },
  );
});
