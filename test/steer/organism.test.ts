// The vector stages end to end on the shipped model organism, at a small size: a taxonomy
// workspace (taxonomy CLI, one layer, K = 5), then `vectors eval --organism` for both methods
// (which trains first), a resumed rerun, and the set loading for the hybrid. The headline numbers
// (full size) are checked in organism-record.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Model } from '../../src/engine/index.ts';
import { organismModelPaths } from '../../src/organism/index.ts';
import { latentLabel, saeLabeller } from '../../src/steer/sae-label.ts';
import { readSelectionFile } from '../../src/steer/sources.ts';
import { readExamples } from '../../src/steer/train.ts';
import { loadVectorSet } from '../../src/steer/vector-set.ts';
import { readTraces } from '../../src/traces/generate.ts';
import { cli } from '../helpers/cli.ts';
import { VECTOR_EVAL_COLUMNS } from '../helpers/vector-eval.ts';

const dir = mkdtempSync(join(tmpdir(), 'tw-organism-vectors-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const small = [
  '--dir',
  dir,
  '--threads',
  '1',
  '--n-train',
  '8',
  '--n-heldout',
  '6',
  '--n-bias',
  '6',
  '--min-examples',
  '8',
  '--epochs',
  '2',
  '--json',
];
/** eval's own option (train refuses it) */
const coefs = ['--coefs', '1,4'];

test('vectors eval --organism: trains, evaluates with controls, resumes, loads', async () => {
  const tax = await cli([
    'taxonomy',
    'score',
    '--organism',
    '--dir',
    dir,
    '--problems',
    '24',
    '--k',
    '5',
    '--layers',
    '1',
  ]);
  assert.equal(tax.code, 0, tax.err);

  const r = await cli(['vectors', 'eval', '--organism', ...small, ...coefs]);
  assert.equal(r.code, 0, r.err);
  const out = JSON.parse(r.out);
  assert.equal(out.method, 'optimised');
  assert.ok(out.categories.length >= 1, r.err);
  for (const c of out.categories) {
    assert.deepEqual(Object.keys(c).slice(0, VECTOR_EVAL_COLUMNS.length), [...VECTOR_EVAL_COLUMNS]);
    assert.ok(c.n >= 1 && c.n <= 6);
    assert.ok([1, 4].includes(c.best_coef));
    for (const k of VECTOR_EVAL_COLUMNS.filter((col) => col.startsWith('rate_')))
      assert.ok(c[k] >= 0 && c[k] <= 1, `${k} = ${c[k]}`);
    // null: most of the latent's sentences are not sentences of the parser's language
    assert.ok(c.type === null || ['setup', 'plan', 'compute', 'verify', 'backtrack', 'conclude'].includes(c.type));
    assert.equal(c.sweep.length, 2);
  }
  // Every latent of the taxonomy is either a category or a recorded skip.
  assert.equal(out.categories.length + out.skipped.length, 5);
  assert.match(r.err, /tokens per epoch in all × ≤ 2 epochs = .* tok\/s → ≤ /);

  const setDir = join(dir, 'vectors-optimised');
  const again = await cli(['vectors', 'train', '--organism', ...small]);
  assert.equal(again.code, 0, again.err);
  assert.match(again.err, /already complete/);

  const model = await Model.load(organismModelPaths().base);
  let set0: Awaited<ReturnType<typeof loadVectorSet>>;
  try {
    const set = await loadVectorSet(setDir, model);
    set0 = set;
    assert.equal(set.applyHook, 'blocks.1.hook_resid_post');
    assert.equal(set.manifest.train_site, 'blocks.1.hook_resid_pre');
    assert.ok(set.bias && set.bias.length === 128);
    assert.equal(set.vectors.size, out.categories.length);
    for (const c of set.manifest.categories) assert.equal(c.loss_curve.length, 2);
  } finally {
    model.free();
  }

  // The SAE labeller (real models' eval) reads a held-out example's own target sentence after its
  // prompt exactly as the annotation read it in the trace: it must give back the annotated latent.
  const selection = readSelectionFile(join(dir, 'taxonomy'));
  const thinking = await Model.load(organismModelPaths().thinking);
  try {
    const label = await saeLabeller({
      thinkingModel: thinking,
      sae: selection.sae,
      layer: selection.layer,
      traces: (await readTraces(join(dir, 'traces.jsonl'))).records,
      basePrompt: (set0.manifest.settings as { base_prompt: string }).base_prompt,
      thinking: 'generated',
      threads: 1,
    });
    const held = readExamples(setDir).filter((e) => e.split === 'heldout');
    const labels = await label(held.map((example) => ({ example, sentence: example.target })));
    const agree = labels.filter((l, i) => l === latentLabel(held[i].latent)).length;
    assert.ok(agree >= 0.9 * held.length, `SAE labels agree with the annotation on ${agree}/${held.length}`);
  } finally {
    thinking.free();
  }

  const dm = await cli(['vectors', 'eval', '--organism', '--method', 'diffmean', ...small, ...coefs]);
  assert.equal(dm.code, 0, dm.err);
  const d = JSON.parse(dm.out);
  assert.equal(d.method, 'diffmean');
  assert.ok(
    d.categories.every(
      (c: { rate_bias: null; rate_random_bias: null }) => c.rate_bias === null && c.rate_random_bias === null,
    ),
  );
  const dset = await loadVectorSet(join(dir, 'vectors-diffmean'));
  assert.equal(dset.bias, null);
  assert.equal(dset.manifest.train_site, dset.applyHook);
});

test('another set in the same --out is refused, not overwritten', async () => {
  const r = await cli(['vectors', 'train', '--organism', ...small, '--epochs', '3']);
  assert.equal(r.code, 2);
  assert.match(r.err, /holds a vector set made from other inputs or settings; it is not overwritten/);
});
