import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ThinkwhenError } from '../../src/errors.ts';
import {
  adjustedRandIndex,
  centroidOrthogonality,
  clusterBalance,
  normalizedMutualInfo,
  purity,
  varianceExplained,
} from '../../src/taxonomy/metrics.ts';
import { offlineCategoryLabels } from '../../src/taxonomy/offline-labels.ts';

const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} vs ${b}`);

test('ARI: identical partitions (any ids) = 1, known value, ~0 for unrelated labels', () => {
  close(adjustedRandIndex([0, 0, 1, 1, 2, 2], [5, 5, 3, 3, 9, 9]), 1);
  // scikit-learn: adjusted_rand_score([0,0,1,1],[0,0,1,2]) = 0.5714285714285715
  close(adjustedRandIndex([0, 0, 1, 1], [0, 0, 1, 2]), 0.5714285714285715);
  // By hand: Σ C(n_ij,2) = 0, Σ C(a_i,2) = 6, Σ C(b_j,2) = 3, C(6,2) = 15 → (0 − 1.2)/(4.5 − 1.2).
  close(adjustedRandIndex([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2]), -1.2 / 3.3);
  // scikit-learn docs: adjusted_rand_score([0, 0, 0, 0], [0, 1, 2, 3]) = 0.0
  close(adjustedRandIndex([0, 0, 0, 0], [0, 1, 2, 3]), 0);
  assert.throws(() => adjustedRandIndex([0, 1], [0]), ThinkwhenError);
});

test('NMI (arithmetic normalisation) and purity', () => {
  close(normalizedMutualInfo([0, 0, 1, 1], [1, 1, 0, 0]), 1);
  // scikit-learn: normalized_mutual_info_score([0,0,1,1],[0,0,1,2]) = 0.8000000000000002
  close(normalizedMutualInfo([0, 0, 1, 1], [0, 0, 1, 2]), 0.8, 1e-12);
  close(normalizedMutualInfo([0, 0, 1, 1], [0, 1, 0, 1]), 0);
  close(purity([0, 0, 1, 1, 1], [0, 0, 0, 1, 1]), 4 / 5);
  close(purity([0, 1, 2], [0, 0, 0]), 1 / 3);
});

test('variance explained, centroid orthogonality, cluster balance', () => {
  const x = Float32Array.from([1, 0, -1, 0, 0, 2, 0, -2]);
  close(varianceExplained(x, x, 2), 1);
  close(varianceExplained(x, new Float32Array(8), 2), 0);
  close(centroidOrthogonality(Float32Array.from([1, 0, 0, 3]), 2), 1);
  close(centroidOrthogonality(Float32Array.from([1, 0, -2, 0]), 2), 0);
  close(centroidOrthogonality(Float32Array.from([1, 0, 1, 1, 0, 1]), 2), (3 - 2 * Math.SQRT1_2) / 3, 1e-7);
  const even = clusterBalance([0, 1, 2, 0, 1, 2], 3);
  close(even.normalizedEntropy, 1);
  assert.deepEqual(even.sizes, [2, 2, 2]);
  const skewed = clusterBalance([0, 0, 0, 0], 3);
  assert.equal(skewed.empty, 2);
  close(skewed.normalizedEntropy, 0);
  close(skewed.largestShare, 1);
  assert.throws(() => clusterBalance([3], 3), /outside/);
});

test('offline labels name each category by its distinctive words', () => {
  const sentences = [
    'Wait, let me verify the multiplication digit by digit.',
    'Let me verify this digit by digit again.',
    'I should verify the sum digit by digit.',
    'So the answer is 42.',
    'Therefore the answer is 17.',
    'So the final answer is 9.',
  ];
  const labels = [0, 0, 0, 1, 1, 1];
  const cats = offlineCategoryLabels(sentences, labels, 3);
  assert.equal(cats.length, 3);
  assert.ok(cats[0].topWords.map((w) => w.word).includes('verify'), cats[0].title);
  assert.ok(cats[0].topWords.map((w) => w.word).includes('digit'));
  assert.equal(cats[1].topWords[0].word, 'answer');
  assert.equal(cats[2].title, 'Unused');
  assert.equal(cats[0].size, 3);
  assert.match(cats[1].description, /3 sentences/);
  // Deterministic.
  assert.deepEqual(offlineCategoryLabels(sentences, labels, 3), cats);
});
