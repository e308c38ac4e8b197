// The headline numbers of docs/vectors.md: the stored `vectors eval --organism --json` tables
// (bench/results/vectors-organism.json, written by bench/vectors-organism.ts) have the issue's
// shape, were measured on the shipped organism's base model, reach the bars for the
// verification category with the optimised vectors, and are the numbers the docs print. When the
// shipped models change, this fails until the tables are measured again (docs/vectors.md gives the
// commands); a missing record fails too.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  type EvalTable,
  methodTable,
  type OrganismRecord,
  RECORD_FORMAT,
  RECORD_PATH,
  summaryTable,
} from '../../bench/vectors-organism-record.ts';
import { organismModelPaths } from '../../src/organism/index.ts';
import { fileSha256 } from '../../src/steer/vector-set.ts';
import { VECTOR_EVAL_COLUMNS } from '../helpers/vector-eval.ts';

const record = (): OrganismRecord => JSON.parse(readFileSync(RECORD_PATH, 'utf8'));
const METHODS = ['optimised', 'diffmean'] as const;
const isRate = (x: unknown) => typeof x === 'number' && x >= 0 && x <= 1;

function checkShape(t: EvalTable, method: string): void {
  assert.equal(t.method, method);
  assert.ok(t.coefs.length >= 2, `${method}: a sweep of coefficients`);
  assert.equal(t.categories.length + t.skipped.length, t.taxonomy.k, `${method}: every latent has a row or a reason`);
  for (const r of t.categories) {
    const at = `${method} latent ${r.latent}`;
    assert.deepEqual(Object.keys(r).slice(0, VECTOR_EVAL_COLUMNS.length), [...VECTOR_EVAL_COLUMNS]);
    assert.ok(Number.isInteger(r.latent) && r.latent >= 0 && r.latent < t.taxonomy.k, at);
    assert.equal(typeof r.title, 'string', at);
    assert.ok(Number.isInteger(r.n) && r.n > 0, at);
    assert.deepEqual(
      r.sweep.map((p) => p.coef),
      t.coefs,
      at,
    );
    for (const x of [r.rate_vector, r.rate_random, r.rate_unsteered]) assert.ok(isRate(x), `${at}: ${x}`);
    // rate_vector is the sweep's best, the smallest such c, and the controls are read at that c
    const best = r.sweep.find((p) => p.vector === Math.max(...r.sweep.map((q) => q.vector)));
    assert.equal(r.best_coef, best?.coef, at);
    assert.equal(r.rate_vector, best?.vector, at);
    assert.equal(r.rate_bias, best?.bias, at);
    assert.equal(r.rate_random, best?.random, at);
    assert.equal(r.rate_random_bias, best?.random_bias, at);
    // rates are counts out of n
    for (const p of r.sweep) assert.ok(Number.isInteger(Math.round(p.vector * r.n * 1e6) / 1e6), at);
    if (method === 'optimised') {
      assert.ok(isRate(r.rate_bias) && isRate(r.rate_random_bias), `${at}: the bias controls`);
      assert.ok((r.heldout_loss_before ?? 0) > 0 && (r.heldout_loss_after ?? 0) > 0, `${at}: held-out losses`);
    } else {
      assert.equal(r.rate_bias, null, `${at}: difference of means has no bias`);
    }
  }
}

test('the stored record has the issue’s shape and was measured on the shipped base model', async () => {
  assert.ok(
    existsSync(RECORD_PATH),
    `${RECORD_PATH} is missing: THINKWHEN_THREADS=1 node --import tsx bench/vectors-organism.ts`,
  );
  const rec = record();
  assert.equal(rec.format, RECORD_FORMAT);
  const base = organismModelPaths().base;
  assert.ok(existsSync(base), `the shipped organism model ${base} is missing`);
  assert.equal(
    rec.organism.base.sha256,
    await fileSha256(base),
    'measured on another base.gguf: run bench/vectors-organism.ts again (docs/vectors.md)',
  );
  for (const m of METHODS) {
    checkShape(rec[m], m);
    assert.equal(rec[m].model.sha256, rec.organism.base.sha256, `${m}: another base model`);
    assert.equal(
      rec.commands[m],
      `thinkwhen vectors eval --organism${m === 'diffmean' ? ' --method diffmean' : ''} --json`,
    );
  }
});

test('optimised: the verification category steers to verification, the controls do not', () => {
  const verify = record().optimised.categories.filter((c) => c.type === 'verify');
  assert.ok(verify.length >= 1, 'no category of type verify');
  const hit = verify.find((c) => c.rate_vector >= 0.9 && c.rate_unsteered <= 0.1 && c.rate_random <= 0.2);
  assert.ok(hit, `no verify category with rate_vector ≥ 0.9, unsteered ≤ 0.1, random ≤ 0.2: ${JSON.stringify(verify)}`);
  assert.ok(hit.n >= 20, `only ${hit.n} held-out prompts`);
});

test('docs/vectors.md prints exactly the stored numbers', () => {
  const rec = record();
  const docs = readFileSync('docs/vectors.md', 'utf8');
  assert.ok(
    docs.includes(summaryTable(rec)),
    'the must-show table differs from the record: bench/vectors-organism.ts --tables',
  );
  for (const m of METHODS) {
    assert.ok(
      docs.includes(methodTable(rec[m])),
      `the ${m} table differs from the record: bench/vectors-organism.ts --tables`,
    );
    assert.ok(docs.includes(rec.commands[m]), `the ${m} command is not in the docs`);
  }
  assert.ok(docs.includes(rec.organism.base.sha256.slice(0, 12)), 'the docs name the base model the numbers are from');
});
