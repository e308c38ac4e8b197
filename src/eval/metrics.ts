// Evaluation statistics: accuracy with Wilson intervals, unbiased pass@k, the paper's gap recovered,
// exact McNemar for paired systems, token and cost summaries. Pure functions, no I/O.

/** Two-sided 95 % normal quantile. */
export const Z95 = 1.959963984540054;

export interface Interval {
  /** Point estimate k/n (NaN when n = 0). */
  p: number;
  lo: number;
  hi: number;
}

/** Wilson score interval for k successes in n trials (Wilson 1927). Stays inside [0, 1] and is sane at k = 0 or n. */
export function wilson(k: number, n: number, z = Z95): Interval {
  if (n < 0 || k < 0 || k > n) throw new RangeError(`wilson: need 0 ≤ k ≤ n, got k=${k}, n=${n}`);
  if (n === 0) return { p: Number.NaN, lo: 0, hi: 1 };
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // In exact arithmetic k = 0 gives lo = 0 and k = n gives hi = 1; floats miss by an ulp.
  return { p, lo: k === 0 ? 0 : Math.max(0, centre - half), hi: k === n ? 1 : Math.min(1, centre + half) };
}

/**
 * Unbiased pass@k for one problem with n samples of which c are correct (Chen et al. 2021):
 * 1 − C(n−c, k)/C(n, k), computed as 1 − ∏_{i=n−c+1}^{n} (1 − k/i) so no large binomial is formed.
 */
export function passAtK(n: number, c: number, k: number): number {
  if (!Number.isInteger(n) || !Number.isInteger(c) || !Number.isInteger(k))
    throw new RangeError('passAtK: integers only');
  if (k < 1) throw new RangeError(`passAtK: k must be ≥ 1, got ${k}`);
  if (c < 0 || c > n) throw new RangeError(`passAtK: need 0 ≤ c ≤ n, got c=${c}, n=${n}`);
  if (k > n) throw new RangeError(`passAtK: k=${k} exceeds the ${n} samples drawn`);
  if (n - c < k) return 1;
  let prod = 1;
  for (let i = n - c + 1; i <= n; i++) prod *= 1 - k / i;
  return 1 - prod;
}

export interface SampleCount {
  /** Samples drawn for the problem. */
  n: number;
  /** Of which correct. */
  c: number;
}

/** Mean pass@k over problems; problems with fewer than k samples are an error, not silently dropped. */
export function meanPassAtK(problems: SampleCount[], k: number): number {
  if (problems.length === 0) return Number.NaN;
  let sum = 0;
  for (const p of problems) sum += passAtK(p.n, p.c, k);
  return sum / problems.length;
}

/** Powers of two up to the smallest per-problem sample count, plus that count itself. */
export function defaultKs(problems: SampleCount[]): number[] {
  if (problems.length === 0) return [];
  const nMin = Math.min(...problems.map((p) => p.n));
  const ks: number[] = [];
  for (let k = 1; k <= nMin; k *= 2) ks.push(k);
  if (nMin >= 1 && ks[ks.length - 1] !== nMin) ks.push(nMin);
  return ks;
}

export interface PassAtKPoint {
  k: number;
  value: number;
  /** 95 % percentile bootstrap over problems. */
  lo: number;
  hi: number;
}

/** pass@k for each k with a seeded bootstrap over problems (eval-rules §7). */
export function passAtKCurve(problems: SampleCount[], ks: number[], opts: { bootstrap?: number; seed?: number } = {}) {
  const B = opts.bootstrap ?? 1000;
  const out: PassAtKPoint[] = [];
  for (const k of ks) {
    const per = problems.map((p) => passAtK(p.n, p.c, k));
    const value = mean(per);
    const [lo, hi] = bootstrapInterval(per, B, opts.seed ?? 1);
    out.push({ k, value, lo, hi });
  }
  return out;
}

function mean(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Small deterministic PRNG (mulberry32) so reports are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 95 % percentile bootstrap interval of the mean. */
export function bootstrapInterval(values: number[], iterations: number, seed: number): [number, number] {
  const n = values.length;
  if (n === 0) return [Number.NaN, Number.NaN];
  if (iterations <= 0) return [mean(values), mean(values)];
  const rand = prng(seed);
  const means = new Float64Array(iterations);
  for (let b = 0; b < iterations; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[Math.floor(rand() * n)];
    means[b] = s / n;
  }
  means.sort();
  const at = (q: number) => means[Math.min(iterations - 1, Math.max(0, Math.floor(q * iterations)))];
  return [at(0.025), at(0.975)];
}

export interface GapRecovered {
  /** The paper's number (docs/method.md §2.8): max(0, (hybrid − min(base, thinking)) / |thinking − base|); null when undefined. */
  recovered: number | null;
  /** The same without the clamp at 0: negative when the hybrid falls below both. */
  signed: number | null;
  /** (hybrid − base)/(thinking − base): how far the hybrid moved from base toward thinking; differs from `signed` when base > thinking. */
  towardThinking: number | null;
  /** |thinking − base|. */
  gap: number;
  /** Why the values are null, or a caveat (base above thinking). */
  reason?: string;
}

/** Gap recovered from three accuracies in [0, 1]. Never divides by zero: equal accuracies give nulls and a reason. */
export function gapRecovered(base: number, thinking: number, hybrid: number): GapRecovered {
  for (const [name, v] of [
    ['base', base],
    ['thinking', thinking],
    ['hybrid', hybrid],
  ] as const) {
    if (!Number.isFinite(v))
      return {
        recovered: null,
        signed: null,
        towardThinking: null,
        gap: Number.NaN,
        reason: `${name} accuracy is not a number`,
      };
  }
  const gap = Math.abs(thinking - base);
  if (gap < 1e-12) {
    return {
      recovered: null,
      signed: null,
      towardThinking: null,
      gap,
      reason: 'base and thinking accuracies are equal: there is no gap to recover',
    };
  }
  const signed = (hybrid - Math.min(base, thinking)) / gap;
  const out: GapRecovered = {
    recovered: Math.max(0, signed),
    signed,
    towardThinking: (hybrid - base) / (thinking - base),
    gap,
  };
  if (base > thinking)
    out.reason = 'base is above thinking: the formula measures the hybrid against the thinking model';
  return out;
}

export interface McNemar {
  /** Problems both systems got right / wrong. */
  bothRight: number;
  bothWrong: number;
  /** A right, B wrong. */
  onlyA: number;
  /** A wrong, B right. */
  onlyB: number;
  /** Exact two-sided binomial p-value on the discordant pairs (1 when there are none). */
  p: number;
}

/** log(n!) table, grown on demand. */
const logFact: number[] = [0];
function lf(n: number): number {
  for (let i = logFact.length; i <= n; i++) logFact[i] = logFact[i - 1] + Math.log(i);
  return logFact[n];
}

/** Exact McNemar test: under H0 the discordant pairs split Binomial(b + c, 1/2). p = min(1, 2·P[X ≤ min(b, c)]). */
export function mcnemarExact(onlyA: number, onlyB: number, bothRight = 0, bothWrong = 0): McNemar {
  const n = onlyA + onlyB;
  const m = Math.min(onlyA, onlyB);
  let tail = 0;
  // Sum in log space: exact enough for n in the tens of thousands, no overflow.
  for (let i = 0; i <= m; i++) tail += Math.exp(lf(n) - lf(i) - lf(n - i) - n * Math.LN2);
  return { bothRight, bothWrong, onlyA, onlyB, p: n === 0 ? 1 : Math.min(1, 2 * tail) };
}

export interface PairedComparison extends McNemar {
  /** Problems present in both. */
  n: number;
  accuracyA: number;
  accuracyB: number;
}

/** McNemar on the problems both systems answered; `a` and `b` map problem id → correct. */
export function pairedComparison(a: Map<string, boolean>, b: Map<string, boolean>): PairedComparison {
  let bothRight = 0;
  let bothWrong = 0;
  let onlyA = 0;
  let onlyB = 0;
  for (const [id, ra] of a) {
    const rb = b.get(id);
    if (rb === undefined) continue;
    if (ra && rb) bothRight++;
    else if (!ra && !rb) bothWrong++;
    else if (ra) onlyA++;
    else onlyB++;
  }
  const n = bothRight + bothWrong + onlyA + onlyB;
  return {
    ...mcnemarExact(onlyA, onlyB, bothRight, bothWrong),
    n,
    accuracyA: n ? (bothRight + onlyA) / n : Number.NaN,
    accuracyB: n ? (bothRight + onlyB) / n : Number.NaN,
  };
}

export interface TokenStats {
  count: number;
  total: number;
  mean: number;
  median: number;
  p90: number;
  max: number;
}

export function tokenStats(counts: number[]): TokenStats {
  if (counts.length === 0)
    return { count: 0, total: 0, mean: Number.NaN, median: Number.NaN, p90: Number.NaN, max: Number.NaN };
  const s = [...counts].sort((x, y) => x - y);
  const q = (f: number) => s[Math.min(s.length - 1, Math.ceil(f * s.length) - 1)];
  const total = s.reduce((x, y) => x + y, 0);
  return { count: s.length, total, mean: total / s.length, median: q(0.5), p90: q(0.9), max: s[s.length - 1] };
}

export interface Price {
  /** Currency units per million prompt tokens. */
  inputPerMTok: number;
  /** Currency units per million generated tokens. */
  outputPerMTok: number;
}

export function cost(promptTokens: number, completionTokens: number, price: Price): number {
  return (promptTokens * price.inputPerMTok + completionTokens * price.outputPerMTok) / 1e6;
}
