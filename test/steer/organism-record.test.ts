// The headline numbers of docs/vectors.md: the stored `vectors eval --organism --json` tables
// (docs/results/vectors-organism-*.json) were measured on the shipped organism models, and the
// category whose sentences are verifications reaches the bars with the optimised vectors.
// When the shipped models change, this fails until the tables are measured again (docs/vectors.md
// gives the commands).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { requireOrganismModels } from '../../src/organism/index.ts';
import { fileSha256 } from '../../src/steer/vector-set.ts';

interface Row {
  latent: number;
  type: string | null;
  n: number;
  rate_vector: number;
  rate_bias: number | null;
  rate_random: number;
  rate_random_bias: number | null;
  rate_unsteered: number;
  sweep: Array<{ coef: number; vector: number; random: number }>;
}

const read = (method: string) =>
  JSON.parse(readFileSync(`docs/results/vectors-organism-${method}.json`, 'utf8')) as {
    method: string;
    categories: Row[];
    skipped: unknown[];
    model: { sha256: string };
    taxonomy: { k: number };
  };

test('the stored tables were measured on the shipped base model', async () => {
  const base = await fileSha256(requireOrganismModels().base);
  for (const method of ['optimised', 'diffmean']) {
    const r = read(method);
    assert.equal(r.method, method);
    assert.equal(r.model.sha256, base, `${method}: measured on another base.gguf; rerun the eval (docs/vectors.md)`);
    assert.equal(r.categories.length + r.skipped.length, r.taxonomy.k);
    for (const c of r.categories) {
      const best = Math.max(...c.sweep.map((p) => p.vector));
      assert.equal(c.rate_vector, best, `latent ${c.latent}: rate_vector is the sweep's best`);
    }
  }
});

test('optimised: a verification category steers to verification, controls do not', () => {
  const verify = read('optimised').categories.filter((c) => c.type === 'verify');
  assert.ok(verify.length >= 1, 'no category of type verify');
  const best = verify.find((c) => c.rate_vector >= 0.9 && c.rate_unsteered <= 0.1 && c.rate_random <= 0.2);
  assert.ok(
    best,
    `no verify category with rate_vector ≥ 0.9, unsteered ≤ 0.1, random ≤ 0.2: ${JSON.stringify(verify)}`,
  );
  assert.ok(best.n >= 20, `only ${best.n} held-out prompts`);
});
