// Example extraction as the paper's code does it (method.md §2.6, §2.9).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  basePromptFrom,
  biasExamples,
  categoryExamples,
  type ExampleSource,
  endsAtBoundary,
  locateSegment,
  PAPER_BASE_PROMPT,
  parseAnnotatedThinking,
  selectCategoryExamples,
  type TextExample,
} from '../../src/steer/examples.ts';
import { majorityLabels } from '../../src/steer/sources.ts';

test('the annotation string parses into segments with latent ids and activations', () => {
  const s = parseAnnotatedThinking('["1.5:idx3"]First one.["end-section"]["-0.25:idx0"]Second\nline.["end-section"]');
  assert.deepEqual(s, [
    { value: 1.5, latent: 3, text: 'First one.' },
    { value: -0.25, latent: 0, text: 'Second\nline.' },
  ]);
});

test('the locator needs punctuation or a newline before the segment and takes the first match', () => {
  assert.equal(locateSegment('Go on. Then stop.', 'Then stop.'), 7);
  assert.equal(locateSegment('Then stop.', 'Then stop.'), -1); // no `^` alternative
  assert.equal(locateSegment('A.\nX y. B. X y.', 'X y.'), 3);
  assert.equal(locateSegment('a (b) c. d', '(b)'), -1);
  assert.equal(locateSegment('a. (b) c', '(b)'), 3); // regex characters are escaped
});

test('a prompt ends at a boundary when its last, second-last or last non-space char is one', () => {
  assert.ok(endsAtBoundary('Done.'));
  assert.ok(endsAtBoundary('Done. '));
  assert.ok(endsAtBoundary('Done.\n\n  '));
  assert.ok(endsAtBoundary('Line\n'));
  assert.ok(!endsAtBoundary('and then '));
  assert.ok(!endsAtBoundary(''));
});

const q = 'What is 2+3?';
const thinking = [
  'I need to add two numbers here.',
  'First I take two and add three to it.',
  'Short one.',
  'Wait, let me check that again carefully now.',
  'First I take two and add three to it.',
  'So the answer is five in the end.',
].join(' ');
const source: ExampleSource = {
  id: 't1',
  question: q,
  thinking,
  segments: [
    { text: 'I need to add two numbers here.', latent: 0, value: 1 },
    { text: 'First I take two and add three to it.', latent: 2, value: 2 },
    { text: 'Short one.', latent: 2, value: 3 },
    { text: 'Wait, let me check that again carefully now.', latent: 5, value: 4 },
    { text: 'First I take two and add three to it.', latent: 2, value: 5 },
    { text: 'So the answer is five in the end.', latent: 1, value: 6 },
  ],
};
const basePrompt = basePromptFrom(PAPER_BASE_PROMPT);

test('category examples: every segment but the last, ≥ min words, prompt = all text before it', () => {
  const ex = categoryExamples([source], { basePrompt, minWords: 7 });
  assert.deepEqual([...ex.keys()].sort(), [0, 2, 5]); // latent 1 is only the last segment
  const full = basePrompt(q) + thinking;
  const first = ex.get(0)![0];
  assert.equal(first.prompt, basePrompt(q));
  assert.equal(first.target, 'I need to add two numbers here.');
  const cats = ex.get(2)!;
  // "Short one." has 2 words; the repeated sentence finds its first occurrence twice (the paper's locator).
  assert.equal(cats.length, 2);
  assert.equal(cats[0].prompt, cats[1].prompt);
  assert.equal(cats[0].prompt, full.slice(0, full.indexOf('First I take')));
  assert.deepEqual(
    cats.map((c) => c.value),
    [2, 5],
  );
  assert.equal(categoryExamples([source], { basePrompt, minWords: 2 }).get(2)!.length, 3);
});

test('bias examples: annotated responses with ≥ 20 words, shuffled, first N', () => {
  const long = { ...source, id: 'long' };
  const short = { ...source, id: 'short', thinking: 'Too short to count here.' };
  const unannotated = { ...source, id: 'none', segments: [] };
  const ex = biasExamples([long, short, unannotated], {
    basePrompt,
    n: 5,
    shuffle: (n) => [...Array(n).keys()].reverse(),
  });
  assert.deepEqual(
    ex.map((e) => [e.traceId, e.latent, e.prompt, e.target]),
    [['long', -1, basePrompt(q), thinking]],
  );
  const many = Array.from({ length: 6 }, (_, i) => ({ ...source, id: `s${i}` }));
  const picked = biasExamples(many, { basePrompt, n: 2, shuffle: () => [4, 1, 0, 2, 3, 5] });
  assert.deepEqual(
    picked.map((e) => e.traceId),
    ['s4', 's1'],
  );
});

test('selection: top 4·(train+held out) by activation, then hardest first by perplexity', async () => {
  const ex: TextExample[] = Array.from({ length: 20 }, (_, i) => ({
    traceId: `t${i}`,
    latent: 3,
    value: i % 10, // ties: 0..9 twice
    prompt: `p${i}`,
    target: `x${i}`,
  }));
  let scored: string[] = [];
  const r = await selectCategoryExamples(ex, {
    nTrain: 2,
    nHeldout: 1,
    perplexity: async (xs) => {
      scored = xs.map((x) => x.traceId);
      return xs.map((x) => Number(x.traceId.slice(1))); // perplexity = index
    },
  });
  // 12 highest activations, ties in input order (stable sort).
  assert.deepEqual(scored, ['t9', 't19', 't8', 't18', 't7', 't17', 't6', 't16', 't5', 't15', 't4', 't14']);
  assert.deepEqual(
    r.train.map((x) => x.traceId),
    ['t19', 't18'],
  );
  assert.deepEqual(
    r.heldOut.map((x) => [x.traceId, x.perplexity]),
    [['t17', 17]],
  );
});

test('the type of a latent is the label most of its sentences have', () => {
  const m = majorityLabels([source], (s) =>
    s.startsWith('First') ? 'compute' : s.startsWith('Short') ? null : 'other',
  );
  assert.equal(m.get(2), 'compute');
  assert.equal(m.get(5), 'other');
  // Unlabelled sentences count: most of latent 2's have no label, so it gets none (not the minority's).
  const unread = majorityLabels([source], (s) =>
    s.startsWith('Short') ? 'setup' : s.startsWith('First') ? null : 'x',
  );
  assert.equal(unread.get(2), null);
  assert.equal(unread.get(0), 'x');
});
