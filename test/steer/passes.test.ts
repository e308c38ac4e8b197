// Perplexities with shared trace prefixes equal the ones computed example by example.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Model } from '../../src/engine/index.ts';
import { packedPasses, rangeMeans, targetPerplexities } from '../../src/steer/passes.ts';
import { tinyQwen2 } from '../helpers/models.ts';

let model: Model;
before(async () => {
  model = await Model.load(tinyQwen2());
});
after(() => model?.free());

const trace = [
  'Ben starts with 73 beads.',
  'Now take 29 from 73.',
  'Quick: 73 - 29 = 54.',
  'Check ones: 13 - 9 - 0 = 4, borrow 1.',
];
const prompt = 'Question: Ben has 73 beads.\n';
// Every sentence after its prefix, plus one example from another text.
const examples = [
  ...trace.map((s, i) => ({
    prompt:
      prompt +
      trace
        .slice(0, i)
        .map((x) => `${x}\n`)
        .join(''),
    target: s,
  })),
  { prompt: 'Another text entirely. ', target: 'It has its own words.' },
];

function crossEntropy(logits: Float32Array, next: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  return Math.log(sum) + max - logits[next];
}

test('shared-prefix perplexities match example-by-example ones', async () => {
  const got = await targetPerplexities(model, examples, { addSpecial: false });
  assert.equal(got.length, examples.length);
  for (const [i, e] of examples.entries()) {
    const tokens = model.tokenize(e.prompt + e.target);
    const p = model.tokenize(e.prompt).length;
    let sum = 0;
    let n = 0;
    await packedPasses(
      model,
      [{ tokens, logitRows: { start: p - 1, end: tokens.length - 1 } }],
      {},
      {
        logits: (_s, t, l) => {
          sum += crossEntropy(l, tokens[t + 1]);
          n++;
        },
      },
    );
    const want = Math.exp(sum / n);
    assert.ok(Math.abs(got[i] - want) <= 1e-4 * want, `example ${i}: ${got[i]} vs ${want}`);
    assert.ok(got[i] > 1, `example ${i}: perplexity ${got[i]}`);
  }
});

test('range means average the hooked residual over the requested rows', async () => {
  const tokens = model.tokenize('one two three four five');
  const [all] = await rangeMeans(model, [{ tokens, captureRows: { start: 0, end: tokens.length } }], {
    hook: 'blocks.1.hook_resid_post',
  });
  const rows: Float32Array[] = [];
  await packedPasses(
    model,
    [{ tokens, captureRows: { start: 0, end: tokens.length } }],
    { hook: 'blocks.1.hook_resid_post' },
    {
      capture: (_s, _t, h) => rows.push(Float32Array.from(h)),
    },
  );
  assert.equal(rows.length, tokens.length);
  for (let d = 0; d < 8; d++) {
    const mean = rows.reduce((s, r) => s + r[d], 0) / rows.length;
    assert.ok(Math.abs(all![d] - mean) < 1e-5);
  }
  const [none] = await rangeMeans(model, [{ tokens }], { hook: 'blocks.1.hook_resid_post' });
  assert.equal(none, null);
});
