// Forward parity with llama.cpp and exact gradients at every layer, both architectures.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FORWARD_BOUND, GRADIENT_BOUND, gradcheck } from '../../src/train/gradcheck.ts';
import { f32Model } from './helpers.ts';

for (const arch of ['qwen2', 'llama'] as const) {
  test(`${arch}: logits match llama.cpp and the vector gradient matches finite differences at every layer`, async () => {
    const r = await gradcheck(f32Model(arch));
    assert.equal(r.arch, arch);
    assert.equal(r.weightType, 'F32');
    assert.equal(r.layers.length, r.nLayer);
    assert.deepEqual(
      r.layers.map((l) => l.layer),
      [0, 1, 2, 3],
    );
    for (const l of r.layers) {
      assert.ok(
        l.forwardMaxDiff !== null && l.forwardMaxDiff <= FORWARD_BOUND,
        `layer ${l.layer} forward ${l.forwardMaxDiff}`,
      );
      assert.ok(l.gradNorm > 1e-3, `layer ${l.layer}: gradient should not vanish (${l.gradNorm})`);
      assert.ok(l.directionalRelErr <= GRADIENT_BOUND, `layer ${l.layer} directional ${l.directionalRelErr}`);
      assert.ok(l.coordRelErr <= GRADIENT_BOUND, `layer ${l.layer} coordinates ${l.coordRelErr}`);
    }
    // llama.cpp's default F16 KV cache differs by rounding only
    assert.ok(r.forwardMaxDiffKvF16 !== null && r.forwardMaxDiffKvF16 < 1e-2);
  });
}
