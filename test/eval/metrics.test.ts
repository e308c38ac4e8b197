import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bootstrapInterval,
  cost,
  defaultKs,
  gapRecovered,
  mcnemarExact,
  meanPassAtK,
  pairedComparison,
  passAtK,
  passAtKCurve,
  tokenStats,
  wilson,
} from '../../src/eval/metrics.ts';

/** Fraction of all k-subsets of n samples (the first c correct) that contain a correct one. */
function enumeratePassAtK(n: number, c: number, k: number): number {
  let hit = 0;
  let total = 0;
  const walk = (start: number, left: number, any: boolean) => {
    if (left === 0) {
      total++;
      if (any) hit++;
      return;
    }
    for (let i = start; i <= n - left; i++) walk(i + 1, left - 1, any || i < c);
  };
  walk(0, k, false);
  return hit / total;
}

describe('pass@k', () => {
  it('equals exhaustive enumeration over all k-subsets', () => {
    let cases = 0;
    for (let n = 1; n <= 9; n++)
      for (let c = 0; c <= n; c++)
        for (let k = 1; k <= n; k++) {
          const want = enumeratePassAtK(n, c, k);
          assert.ok(Math.abs(passAtK(n, c, k) - want) < 1e-12, `n=${n} c=${c} k=${k}: ${passAtK(n, c, k)} vs ${want}`);
          cases++;
        }
    assert.equal(cases, 330);
  });

  it('k = 1 is c/n, c = 0 is 0, c = n is 1, and it is stable for large n', () => {
    assert.ok(Math.abs(passAtK(200, 37, 1) - 37 / 200) < 1e-15);
    assert.equal(passAtK(50, 0, 10), 0);
    assert.equal(passAtK(50, 50, 10), 1);
    assert.equal(passAtK(10, 8, 3), 1); // n − c < k
    const v = passAtK(5000, 3, 100);
    assert.ok(v > 0 && v < 1 && Number.isFinite(v));
    // 1 − C(4997,100)/C(5000,100) computed independently with logs.
    const lg = (a: number, b: number) => {
      let s = 0;
      for (let i = 0; i < b; i++) s += Math.log(a - i) - Math.log(b - i);
      return s;
    };
    assert.ok(Math.abs(v - (1 - Math.exp(lg(4997, 100) - lg(5000, 100)))) < 1e-12);
  });

  it('is not the biased 1 − (1 − c/n)^k', () => {
    assert.notEqual(passAtK(4, 1, 2), 1 - (1 - 1 / 4) ** 2);
    assert.equal(passAtK(4, 1, 2), 0.5);
  });

  it('rejects k > n and bad counts', () => {
    assert.throws(() => passAtK(3, 1, 4), RangeError);
    assert.throws(() => passAtK(3, 4, 1), RangeError);
    assert.throws(() => passAtK(3, 1, 0), RangeError);
  });

  it('averages over problems and builds a curve with a bootstrap band', () => {
    const probs = [
      { n: 4, c: 0 },
      { n: 4, c: 1 },
      { n: 4, c: 4 },
    ];
    assert.ok(Math.abs(meanPassAtK(probs, 1) - (0 + 0.25 + 1) / 3) < 1e-15);
    assert.deepEqual(defaultKs(probs), [1, 2, 4]);
    assert.deepEqual(defaultKs([{ n: 6, c: 1 }]), [1, 2, 4, 6]);
    const curve = passAtKCurve(probs, [1, 2, 4], { bootstrap: 200, seed: 3 });
    assert.equal(curve.length, 3);
    for (const pt of curve) assert.ok(pt.lo <= pt.value && pt.value <= pt.hi);
    assert.ok(curve[0].value < curve[1].value && curve[1].value < curve[2].value);
    assert.deepEqual(bootstrapInterval([1, 1, 1], 50, 1), [1, 1]);
  });
});

describe('Wilson interval', () => {
  const close = (a: number, b: number, tol = 5e-5) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);
  it('matches published values', () => {
    // Newcombe (1998), Table I, method 3 (Wilson score without continuity correction).
    let w = wilson(81, 263);
    close(w.lo, 0.2553);
    close(w.hi, 0.3662);
    w = wilson(15, 148);
    close(w.lo, 0.0624);
    close(w.hi, 0.1605);
    w = wilson(0, 20);
    close(w.lo, 0);
    close(w.hi, 0.1611);
    w = wilson(1, 29);
    close(w.lo, 0.0061);
    close(w.hi, 0.1718);
    w = wilson(5, 10);
    close(w.lo, 0.2366);
    close(w.hi, 0.7634);
  });
  it('endpoints solve (p̂ − p)² = z² p(1 − p)/n and stay in [0, 1]', () => {
    for (const [k, n] of [
      [3, 17],
      [40, 41],
      [250, 500],
    ]) {
      const w = wilson(k, n);
      const z = 1.959963984540054;
      for (const p of [w.lo, w.hi]) assert.ok(Math.abs((k / n - p) ** 2 - (z * z * p * (1 - p)) / n) < 1e-12);
    }
    assert.deepEqual(wilson(10, 10).hi, 1);
    assert.ok(Number.isNaN(wilson(0, 0).p));
    assert.throws(() => wilson(3, 2), RangeError);
  });
});

describe('McNemar exact test', () => {
  const near = (a: number, b: number) => assert.ok(Math.abs(a - b) <= 1e-14 * b, `${a} vs ${b}`);
  it('gives the binomial p-values of known tables', () => {
    near(mcnemarExact(1, 9).p, (2 * 11) / 1024);
    near(mcnemarExact(9, 1).p, (2 * 11) / 1024);
    near(mcnemarExact(0, 5).p, 2 / 32);
    near(mcnemarExact(2, 8).p, (2 * (1 + 10 + 45)) / 1024);
    assert.equal(mcnemarExact(5, 5).p, 1);
    assert.equal(mcnemarExact(0, 0).p, 1);
    // Large discordant counts: 2·P[Bin(2000, .5) ≤ 900] ≈ 8.3e-6 without overflow.
    const big = mcnemarExact(900, 1100).p;
    assert.ok(big > 1e-6 && big < 1e-5, String(big));
  });
  it('pairs problems by id and ignores problems only one system answered', () => {
    const a = new Map([
      ['p1', true],
      ['p2', true],
      ['p3', false],
      ['p4', false],
      ['only-a', true],
    ]);
    const b = new Map([
      ['p1', true],
      ['p2', false],
      ['p3', true],
      ['p4', true],
      ['only-b', false],
    ]);
    const r = pairedComparison(a, b);
    assert.equal(r.n, 4);
    assert.deepEqual([r.bothRight, r.bothWrong, r.onlyA, r.onlyB], [1, 0, 1, 2]);
    assert.equal(r.accuracyA, 0.5);
    assert.equal(r.accuracyB, 0.75);
    assert.equal(r.p, 1);
  });
});

describe('gap recovered', () => {
  it("reproduces the paper's formula (Llama-3.1-8B GSM8K row of docs/method.md §3: 51.5 %)", () => {
    const g = gapRecovered(0.394, 0.838, 0.623);
    assert.ok(Math.abs(g.recovered! - 0.5158) < 1e-3);
    assert.equal(g.signed, g.recovered);
    assert.ok(Math.abs(g.gap - 0.444) < 1e-12);
  });
  it('returns nulls with a reason when thinking equals base, never dividing by zero', () => {
    const g = gapRecovered(0.7, 0.7, 0.9);
    assert.equal(g.recovered, null);
    assert.equal(g.signed, null);
    assert.equal(g.towardThinking, null);
    assert.match(g.reason!, /equal/);
  });
  it('base above thinking: measured against the lower (thinking) model, with a caveat', () => {
    const g = gapRecovered(0.838, 0.808, 0.808);
    assert.equal(g.recovered, 0);
    assert.equal(g.signed, 0);
    assert.ok(Math.abs(g.towardThinking! - 1) < 1e-12);
    assert.match(g.reason!, /above/);
  });
  it('hybrid below both: clamped to 0, the signed version goes negative', () => {
    const g = gapRecovered(0.5, 0.7, 0.4);
    assert.equal(g.recovered, 0);
    assert.ok(Math.abs(g.signed! + 0.5) < 1e-12);
    assert.ok(Math.abs(g.towardThinking! + 0.5) < 1e-12);
  });
  it('hybrid above thinking exceeds 1', () => {
    assert.ok(Math.abs(gapRecovered(0.5, 0.7, 0.8).recovered! - 1.5) < 1e-12);
  });
  it('non-finite input gives nulls', () => {
    assert.equal(gapRecovered(Number.NaN, 0.7, 0.8).recovered, null);
  });
});

describe('tokens and cost', () => {
  it('summarises token counts and prices them', () => {
    const s = tokenStats([10, 30, 20, 40]);
    assert.deepEqual(s, { count: 4, total: 100, mean: 25, median: 20, p90: 40, max: 40 });
    assert.equal(tokenStats([]).count, 0);
    assert.equal(cost(1_000_000, 500_000, { inputPerMTok: 0.5, outputPerMTok: 2 }), 1.5);
  });
});
