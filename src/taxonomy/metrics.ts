/**
 * Taxonomy metrics that need no LLM: agreement with ground-truth labels (adjusted Rand index, normalised
 * mutual information, purity), reconstruction quality (variance explained), the reference's centroid
 * orthogonality diagnostic (docs/method.md §2.4) and cluster balance.
 * Labels are non-negative integers; any ids work (they are re-indexed).
 */
import { ThinkwhenError } from '../errors.ts';

type Labels = ArrayLike<number>;

function contingency(truth: Labels, pred: Labels) {
  if (truth.length !== pred.length) {
    throw new ThinkwhenError(
      'length-mismatch',
      `${truth.length} ground-truth labels but ${pred.length} predicted labels`,
      'compare labels of the same sentences',
    );
  }
  const tIds = new Map<number, number>();
  const pIds = new Map<number, number>();
  for (let i = 0; i < truth.length; i++) {
    if (!tIds.has(truth[i])) tIds.set(truth[i], tIds.size);
    if (!pIds.has(pred[i])) pIds.set(pred[i], pIds.size);
  }
  const rows = tIds.size;
  const cols = pIds.size;
  const table = new Float64Array(rows * cols);
  for (let i = 0; i < truth.length; i++) table[tIds.get(truth[i])! * cols + pIds.get(pred[i])!]++;
  const a = new Float64Array(rows);
  const b = new Float64Array(cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      a[r] += table[r * cols + c];
      b[c] += table[r * cols + c];
    }
  return { table, rows, cols, a, b, n: truth.length };
}

const pairs = (m: number) => (m * (m - 1)) / 2;

/** Adjusted Rand index (Hubert & Arabie); 1 for identical partitions, ~0 for random ones. */
export function adjustedRandIndex(truth: Labels, pred: Labels): number {
  const { table, a, b, n } = contingency(truth, pred);
  if (n < 2) return 1;
  let sumIJ = 0;
  for (const v of table) sumIJ += pairs(v);
  let sumA = 0;
  for (const v of a) sumA += pairs(v);
  let sumB = 0;
  for (const v of b) sumB += pairs(v);
  const expected = (sumA * sumB) / pairs(n);
  const max = (sumA + sumB) / 2;
  if (max === expected) return 1;
  return (sumIJ - expected) / (max - expected);
}

/** Normalised mutual information, arithmetic-mean normalisation (scikit-learn's default). */
export function normalizedMutualInfo(truth: Labels, pred: Labels): number {
  const { table, rows, cols, a, b, n } = contingency(truth, pred);
  const entropy = (counts: Float64Array) => {
    let h = 0;
    for (const c of counts) if (c > 0) h -= (c / n) * Math.log(c / n);
    return h;
  };
  const hA = entropy(a);
  const hB = entropy(b);
  if (hA === 0 && hB === 0) return 1;
  let mi = 0;
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const v = table[r * cols + c];
      if (v > 0) mi += (v / n) * Math.log((v * n) / (a[r] * b[c]));
    }
  const denom = (hA + hB) / 2;
  return denom === 0 ? 0 : Math.max(0, mi / denom);
}

/** Purity: the share of sentences whose cluster's majority ground-truth label is their own. */
export function purity(truth: Labels, pred: Labels): number {
  const { table, rows, cols, n } = contingency(truth, pred);
  if (n === 0) return 1;
  let sum = 0;
  for (let c = 0; c < cols; c++) {
    let best = 0;
    for (let r = 0; r < rows; r++) best = Math.max(best, table[r * cols + c]);
    sum += best;
  }
  return sum / n;
}

/** 1 − Σ‖x − x̂‖² / Σ‖x − mean(x)‖² over all rows (row-major [n, dim]). */
export function varianceExplained(x: Float32Array, reconstruction: Float32Array, dim: number): number {
  if (x.length !== reconstruction.length || x.length % dim !== 0) {
    throw new ThinkwhenError('width-mismatch', 'reconstruction and data differ in shape', 'reconstruct the same rows');
  }
  const n = x.length / dim;
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) mean[d] += x[i * dim + d];
  for (let d = 0; d < dim; d++) mean[d] /= n;
  let err = 0;
  let total = 0;
  for (let i = 0; i < x.length; i++) {
    err += (x[i] - reconstruction[i]) ** 2;
    total += (x[i] - mean[i % dim]) ** 2;
  }
  return total === 0 ? 1 : 1 - err / total;
}

/** Mean over pairs i < j of 1 − |cos(c_i, c_j)| (the reference's centroid orthogonality). */
export function centroidOrthogonality(centroids: Float32Array, dim: number): number {
  const k = centroids.length / dim;
  if (k < 2) return 1;
  const norms = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    let sq = 0;
    for (let d = 0; d < dim; d++) sq += centroids[i * dim + d] ** 2;
    norms[i] = Math.sqrt(sq) || 1;
  }
  let sum = 0;
  for (let i = 0; i < k; i++)
    for (let j = i + 1; j < k; j++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += centroids[i * dim + d] * centroids[j * dim + d];
      sum += 1 - Math.abs(dot / (norms[i] * norms[j]));
    }
  return sum / pairs(k);
}

export interface ClusterBalance {
  sizes: number[];
  /** Entropy of the size distribution / ln(K): 1 = perfectly even, 0 = one cluster holds everything. */
  normalizedEntropy: number;
  /** Largest cluster's share of all sentences. */
  largestShare: number;
  /** Clusters no sentence is assigned to. */
  empty: number;
}

export function clusterBalance(labels: Labels, clusters: number): ClusterBalance {
  const sizes = new Array<number>(clusters).fill(0);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0 || labels[i] >= clusters) {
      throw new ThinkwhenError(
        'bad-label',
        `label ${labels[i]} is outside 0..${clusters - 1}`,
        'pass the SAE latent count',
      );
    }
    sizes[labels[i]]++;
  }
  const n = labels.length;
  let h = 0;
  for (const s of sizes) if (s > 0) h -= (s / n) * Math.log(s / n);
  return {
    sizes,
    normalizedEntropy: clusters > 1 && n > 0 ? h / Math.log(clusters) : 1,
    largestShare: n > 0 ? Math.max(...sizes) / n : 0,
    empty: sizes.filter((s) => s === 0).length,
  };
}
