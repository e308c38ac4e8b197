/**
 * Bounded grading (issue: unbounded work), library side: exact arithmetic is capped on every intermediate and
 * in total, each grading call has a time budget, and a comparison stopped by a bound is "not equivalent" with
 * the reason recorded. The CLI side (per-line limit, reasons, empty input) is in limits-cli.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradeAnswer, gradeResponse, isEquivalent } from '../../../src/eval/answer/index.ts';
import { COMPLEX_POWER, PRODUCT, SUM } from './limits-inputs.ts';

/** Generous for a loaded 2-core machine; without the caps these took 10 s to over 120 s each. */
const LIMIT_MS = 3000;

test('library: the same inputs return within seconds with the reason; isEquivalent says false', () => {
  for (const gold of [COMPLEX_POWER, PRODUCT, SUM, '\\binom{2^{19000}}{900}']) {
    const start = performance.now();
    const r = gradeAnswer(gold, '1');
    const ms = performance.now() - start;
    assert.ok(ms < LIMIT_MS, `${gold.slice(0, 40)} took ${ms.toFixed(0)} ms`);
    assert.equal(r.correct, false);
    assert.equal(r.reason, 'exact arithmetic too large', gold.slice(0, 40));
    assert.equal(isEquivalent(gold, '1'), false);
  }
  // Under the caps, large exact values still compare exactly.
  assert.equal(gradeAnswer('2^{19999}', '2\\cdot 2^{19998}').correct, true);
  assert.equal(gradeAnswer('2^{19999}', '2^{19999}+1').correct, false);
  assert.equal(gradeAnswer('\\frac{100!}{2^{97}}', '\\frac{100!}{2^{96}} / 2').correct, true);
  assert.equal(gradeAnswer('1^{10^{9}}', '1').correct, true);
});

test('library: a spent time budget makes the call not equivalent with the reason; a normal budget decides', () => {
  const gold = '\\frac{1}{3}+\\frac{1}{7}';
  assert.deepEqual(gradeAnswer(gold, '0.476190'), {
    correct: true,
    extracted: null,
    rule: null,
    goldParsed: '10/21',
    predParsed: '47619/100000',
  });
  const spent = gradeAnswer(gold, '0.476190', { timeLimitMs: 0 });
  assert.equal(spent.correct, false);
  assert.equal(spent.reason, 'time budget exceeded');
  const response = gradeResponse(gold, 'So the answer is $0.476190$.', { timeLimitMs: 0 });
  assert.equal(response.reason, 'time budget exceeded');
  assert.equal(response.extracted, '0.476190');
});
