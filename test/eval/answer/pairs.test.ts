import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isEquivalent } from '../../../src/eval/answer/index.ts';
import { PAIRS } from './pairs.ts';

test('the pair table is large, two-sided and has no duplicate rows', () => {
  assert.ok(PAIRS.length >= 150, `only ${PAIRS.length} pairs`);
  const positives = PAIRS.filter((p) => p[2]).length;
  const negatives = PAIRS.length - positives;
  assert.ok(positives >= 50 && negatives >= 50, `positives ${positives}, negatives ${negatives}`);
  const keys = new Set(PAIRS.map(([g, p]) => `${g}\u0000${p}`));
  assert.equal(keys.size, PAIRS.length);
});

test('every gold/prediction pair gets the verdict its rule demands', (t) => {
  const wrong = PAIRS.filter(([gold, pred, expected]) => isEquivalent(gold, pred) !== expected).map(
    ([gold, pred, expected, rule]) =>
      `${JSON.stringify(gold)} vs ${JSON.stringify(pred)}: expected ${expected} (${rule})`,
  );
  t.diagnostic(`${PAIRS.length - wrong.length}/${PAIRS.length} pairs graded as expected`);
  assert.deepEqual(wrong, []);
});

test('a gold answer is always equivalent to itself, and never to an empty prediction', () => {
  for (const [gold] of PAIRS) {
    if (gold.trim() === '' || gold === '\\frac{1}{0}') continue;
    assert.equal(isEquivalent(gold, gold), true, gold);
    assert.equal(isEquivalent(gold, ''), false, gold);
    assert.equal(isEquivalent(gold, '\\boxed{}'), false, gold);
  }
});
