/**
 * Is a predicted answer equivalent to the gold one? Always called as (gold, pred): the rules are
 * deliberately asymmetric where Math-Verify's are (assignments, sets vs relations).
 */

import { Rng } from '../../rng.ts';
import { bin, freeSymbols, hasDecimal, infinitySign, type Node, type RelationOp } from './ast.ts';
import { closeComplex, type Exact, evaluateExact, evaluateFloat, isFiniteComplex } from './evaluate.ts';
import { reduceGold, reduceToAnswer } from './extract.ts';
import { checkTime, DEFAULT_TIME_LIMIT_MS, GradeLimitError, type LimitReason, withinLimits } from './limits.ts';
import { MAX_ANSWER_CHARS } from './normalize.ts';
import { exprValue, type ParsedAnswer, parseAnswer } from './parse-answer.ts';
import * as Q from './rational.ts';
import type { Value } from './value.ts';

/**
 * Math-Verify's default `float_rounding=6`: with a decimal on either side, both round to 6 places. We also
 * require 6 equal significant digits, so small numbers are not all equal to 0.000000.
 */
const DECIMAL_PLACES = 6;
/** Relative tolerance for irrational constants and for sampled expressions (exact values skip it). */
const FLOAT_TOLERANCE = 1e-9;
const SAMPLE_TOLERANCE = 1e-8;
const SAMPLE_POINTS = 8;
const MIN_VALID_POINTS = 3;
/** Fixed seed: the same pair always gets the same verdict. */
const SAMPLE_SEED = 0x5eed1234;

/** Sample environments: each symbol gets a value in ±[0.25, 2.5], away from the usual poles at 0. */
function samplePoints(symbols: string[]): Map<string, number>[] {
  const rng = new Rng(SAMPLE_SEED);
  const points: Map<string, number>[] = [];
  for (let k = 0; k < SAMPLE_POINTS; k++) {
    const env = new Map<string, number>();
    for (const s of symbols) {
      const magnitude = 0.25 + 2.25 * rng.next();
      env.set(s, rng.next() < 0.5 ? -magnitude : magnitude);
    }
    points.push(env);
  }
  return points;
}

/** Same to 6 significant digits too: 6 decimal places alone would make 6.72e-5 equal 6.73e-5. */
function sameSignificant(a: number, b: number): boolean {
  if (Math.abs(a) < 1e-12 && Math.abs(b) < 1e-12) return true; // float noise around zero
  return a.toPrecision(DECIMAL_PLACES) === b.toPrecision(DECIMAL_PLACES);
}

function sameRounded(a: Exact, b: Exact): boolean {
  return (
    Q.roundScaled(a.re, DECIMAL_PLACES) === Q.roundScaled(b.re, DECIMAL_PLACES) &&
    Q.roundScaled(a.im, DECIMAL_PLACES) === Q.roundScaled(b.im, DECIMAL_PLACES) &&
    sameSignificant(Q.toNumber(a.re), Q.toNumber(b.re)) &&
    sameSignificant(Q.toNumber(a.im), Q.toNumber(b.im))
  );
}

function sameRoundedFloat(a: number, b: number): boolean {
  const scale = 10 ** DECIMAL_PLACES;
  return Math.round(a * scale) === Math.round(b * scale) && sameSignificant(a, b);
}

/** Numeric / symbolic equality of two expressions. */
export function expressionsEqual(gold: Node, pred: Node): boolean {
  const gInf = infinitySign(gold);
  const pInf = infinitySign(pred);
  if (gInf !== 0 || pInf !== 0) return gInf === pInf;

  const decimal = hasDecimal(gold) || hasDecimal(pred);
  const gExact = evaluateExact(gold);
  const pExact = evaluateExact(pred);
  if (gExact && pExact) {
    if (Q.equals(gExact.re, pExact.re) && Q.equals(gExact.im, pExact.im)) return true;
    return decimal && sameRounded(gExact, pExact);
  }

  const symbols = [...freeSymbols(pred, freeSymbols(gold))].sort();
  if (symbols.length === 0) {
    const g = evaluateFloat(gold, new Map());
    const p = evaluateFloat(pred, new Map());
    if (!isFiniteComplex(g) || !isFiniteComplex(p)) return false;
    if (decimal) return sameRoundedFloat(g.re, p.re) && sameRoundedFloat(g.im, p.im);
    return closeComplex(g, p, FLOAT_TOLERANCE);
  }
  let valid = 0;
  for (const env of samplePoints(symbols)) {
    checkTime();
    const g = evaluateFloat(gold, env);
    const p = evaluateFloat(pred, env);
    if (!isFiniteComplex(g) || !isFiniteComplex(p)) continue;
    if (!closeComplex(g, p, SAMPLE_TOLERANCE)) return false;
    valid++;
  }
  return valid >= MIN_VALID_POINTS;
}

/**
 * True when `a` = c·`b` for one constant c ≠ 0 (c > 0 if `positive`): the same equation or inequality
 * rearranged, e.g. `y = -2x` and `2x + y = 0`.
 */
function proportional(a: Node, b: Node, positive: boolean): boolean {
  const symbols = [...freeSymbols(b, freeSymbols(a))].sort();
  if (symbols.length === 0) return expressionsEqual(a, b);
  let ratio: number | null = null;
  let valid = 0;
  for (const env of samplePoints(symbols)) {
    const x = evaluateFloat(a, env);
    const y = evaluateFloat(b, env);
    if (!isFiniteComplex(x) || !isFiniteComplex(y) || Math.abs(x.im) > 1e-12 || Math.abs(y.im) > 1e-12) continue;
    if (Math.abs(y.re) < 1e-12) {
      if (Math.abs(x.re) > 1e-9) return false;
      continue;
    }
    const r = x.re / y.re;
    if (ratio === null) ratio = r;
    else if (Math.abs(r - ratio) > SAMPLE_TOLERANCE * Math.max(1, Math.abs(ratio))) return false;
    valid++;
  }
  if (ratio === null || valid < MIN_VALID_POINTS || Math.abs(ratio) < 1e-12) return false;
  return !positive || ratio > 0;
}

type Relation = Extract<Value, { kind: 'relation' }>;

const isAssignment = (r: Relation): boolean => r.ops.length === 1 && r.ops[0] === '=' && r.sides[0].t === 'sym';
/**
 * The sides a predicted `=` / `≈` chain answers with. `x = 5+5+1 = 11` answers 11 (Math-Verify). With `≈`,
 * both the exact side before the first `≈` and the final approximation count: `d = \sqrt{50} \approx 7.07`
 * answers a gold `5\sqrt2` and a gold `7.07` (asked to the nearest hundredth). Other relations answer nothing.
 */
function answerSides(r: Relation): Node[] {
  if (!r.ops.every((op) => op === '=' || op === '≈')) return [];
  // `36 - 7 - 2 - 10 = 17 = x` ends in the variable it names: the value before it answers.
  const sides = r.sides.length > 2 && r.sides.at(-1)?.t === 'sym' ? r.sides.slice(0, -1) : r.sides;
  const last = sides[sides.length - 1];
  const k = r.ops.indexOf('≈');
  if (k < 0) return [last];
  const exact = k > 0 || r.sides[0].t !== 'sym' ? r.sides[k] : null;
  return exact ? [exact, last] : [last];
}

/** `x < 3`, `-2 <= x <= 7`, `x != 1` over one variable with constant bounds, as an interval (or union). */
function relationAsSet(r: Relation): { variable: string; set: Value } | null {
  const constant = (n: Node): boolean => freeSymbols(n).size === 0;
  const expr = (node: Node): Value => ({ kind: 'expr', node });
  const inf: Node = { t: 'const', name: 'inf' };
  const negInf: Node = { t: 'neg', a: inf };
  const interval = (lo: Node, loClosed: boolean, hi: Node, hiClosed: boolean): Value => ({
    kind: 'seq',
    open: loClosed ? '[' : '(',
    close: hiClosed ? ']' : ')',
    items: [expr(lo), expr(hi)],
  });
  if (r.ops.length === 1) {
    let [lhs, rhs] = r.sides;
    let op: RelationOp = r.ops[0];
    if (lhs.t !== 'sym' && rhs.t === 'sym') {
      [lhs, rhs] = [rhs, lhs];
      op = ({ '<': '>', '<=': '>=', '>': '<', '>=': '<=', '=': '=', '!=': '!=', '≈': '≈' } as const)[op];
    }
    if (lhs.t !== 'sym' || !constant(rhs)) return null;
    const set =
      op === '<' || op === '<='
        ? interval(negInf, false, rhs, op === '<=')
        : op === '>' || op === '>='
          ? interval(rhs, op === '>=', inf, false)
          : op === '!='
            ? ({
                kind: 'union',
                parts: [interval(negInf, false, rhs, false), interval(rhs, false, inf, false)],
              } as Value)
            : null;
    return set && { variable: lhs.name, set };
  }
  if (r.ops.length === 2) {
    const [a, x, b] = r.sides;
    if (x.t !== 'sym' || !constant(a) || !constant(b)) return null;
    const [o1, o2] = r.ops;
    const up = (o: RelationOp): boolean => o === '<' || o === '<=';
    const down = (o: RelationOp): boolean => o === '>' || o === '>=';
    if (up(o1) && up(o2)) return { variable: x.name, set: interval(a, o1 === '<=', b, o2 === '<=') };
    if (down(o1) && down(o2)) return { variable: x.name, set: interval(b, o2 === '>=', a, o1 === '>=') };
  }
  return null;
}

/** `lhs op rhs` as `d op' 0` with op' in {=, !=, <, <=}. */
function towardsZero(lhs: Node, op: RelationOp, rhs: Node): { diff: Node; op: RelationOp } {
  if (op === '>' || op === '>=') return { diff: bin('-', rhs, lhs), op: op === '>' ? '<' : '<=' };
  return { diff: bin('-', lhs, rhs), op };
}

function relationsEqual(gold: Relation, pred: Relation): boolean {
  if (isAssignment(gold) && isAssignment(pred)) {
    const g = gold.sides[0] as Extract<Node, { t: 'sym' }>;
    const p = pred.sides[0] as Extract<Node, { t: 'sym' }>;
    if (g.name !== p.name) return false; // `k = 1` is not `y = 1`
    return valuesEqual(exprValue(gold.sides[1]), exprValue(pred.sides[1]));
  }
  const gSet = relationAsSet(gold);
  const pSet = relationAsSet(pred);
  if (gSet && pSet) return gSet.variable === pSet.variable && valuesEqual(gSet.set, pSet.set);
  if (gold.ops.length === 1 && pred.ops.length === 1) {
    const g = towardsZero(gold.sides[0], gold.ops[0], gold.sides[1]);
    const p = towardsZero(pred.sides[0], pred.ops[0], pred.sides[1]);
    if (g.op !== p.op) return false;
    return proportional(g.diff, p.diff, g.op === '<' || g.op === '<=');
  }
  if (gold.ops.length !== pred.ops.length || gold.ops.some((op, i) => op !== pred.ops[i])) return false;
  return gold.sides.every((s, i) => expressionsEqual(s, pred.sides[i]));
}

/** Letters of a product of single-letter symbols (`Evelyn` read as E·v·e·l·y·n), lower-cased; else null. */
function lettersOf(node: Node): string | null {
  if (node.t === 'sym') return node.name.length === 1 ? node.name.toLowerCase() : null;
  if (node.t === 'const' && (node.name === 'e' || node.name === 'i')) return node.name;
  if (node.t === 'bin' && node.op === '*') {
    const a = lettersOf(node.a);
    const b = lettersOf(node.b);
    return a !== null && b !== null ? a + b : null;
  }
  return null;
}

/** Order-free comparison with duplicates merged (`1 \pm 1, 2` has the two answers 0 and 2). */
function setsEqual(gold: Value[], pred: Value[]): boolean {
  const dedupe = (items: Value[]): Value[] => {
    const out: Value[] = [];
    for (const v of items) if (!out.some((u) => valuesEqual(u, v))) out.push(v);
    return out;
  };
  const flatten = (items: Value[]): Value[] => items.flatMap((v) => (v.kind === 'set' && !v.braces ? v.items : [v]));
  const g = dedupe(flatten(gold));
  const p = dedupe(flatten(pred));
  if (g.length !== p.length) return false;
  const used = new Array<boolean>(p.length).fill(false);
  return g.every((gv) => {
    const j = p.findIndex((pv, k) => !used[k] && valuesEqual(gv, pv));
    if (j < 0) return false;
    used[j] = true;
    return true;
  });
}

function orderedEqual(gold: Value[], pred: Value[]): boolean {
  return gold.length === pred.length && gold.every((g, i) => valuesEqual(g, pred[i]));
}

/** A two-item bracket list is an interval: its bracket types count, except next to ±∞. */
function bracketsMatch(gold: Extract<Value, { kind: 'seq' }>, pred: Extract<Value, { kind: 'seq' }>): boolean {
  if (gold.items.length !== 2) return true;
  const infiniteEnd = (v: Value): boolean => v.kind === 'expr' && infinitySign(v.node) !== 0;
  const openOk = gold.open === pred.open || (infiniteEnd(gold.items[0]) && infiniteEnd(pred.items[0]));
  const closeOk = gold.close === pred.close || (infiniteEnd(gold.items[1]) && infiniteEnd(pred.items[1]));
  return openOk && closeOk;
}

/** Structured equivalence of two parsed answers, gold first. */
export function valuesEqual(gold: Value, pred: Value): boolean {
  checkTime();
  if (gold.kind === 'raw' || pred.kind === 'raw') {
    return gold.kind === 'raw' && pred.kind === 'raw' && gold.text === pred.text;
  }
  if (gold.kind === 'relation') {
    if (pred.kind === 'relation') return relationsEqual(gold, pred);
    // Gold `x = 5` accepts a bare `5`; gold `-2 <= x <= 7` accepts `[-2, 7]`. (The reverse is not true.)
    if (isAssignment(gold)) return valuesEqual(exprValue(gold.sides[1]), pred);
    const asSet = relationAsSet(gold);
    return asSet !== null && valuesEqual(asSet.set, pred);
  }
  if (pred.kind === 'relation') {
    // A predicted `x = 5` or chain `x = 5+5+1 = 11` answers with its last side; a predicted inequality
    // never matches a gold set (models echo the inequality they were asked to solve).
    return answerSides(pred).some((side) => valuesEqual(gold, exprValue(side)));
  }
  switch (gold.kind) {
    case 'expr':
      if (pred.kind === 'expr') return expressionsEqual(gold.node, pred.node);
      // `\boxed{15\frac{39}{40}}, or \boxed{\frac{639}{40}}`: a list whose items are all the gold answer.
      if (pred.kind === 'set') return setsEqual([gold], pred.items);
      if (pred.kind === 'text') return lettersOf(gold.node) === pred.text.replace(/[\s'-]/g, '');
      return false;
    case 'text':
      if (pred.kind === 'text') return gold.text.replace(/\s/g, '') === pred.text.replace(/\s/g, '');
      if (pred.kind === 'expr') return lettersOf(pred.node) === gold.text.replace(/[\s'-]/g, '');
      return pred.kind === 'set' && setsEqual([gold], pred.items);
    case 'set':
      if (pred.kind === 'set') return setsEqual(gold.items, pred.items);
      if (pred.kind === 'seq' && pred.open === '(' && pred.close === ')') return setsEqual(gold.items, pred.items);
      return setsEqual(gold.items, [pred]);
    case 'seq':
      if (pred.kind === 'seq') return bracketsMatch(gold, pred) && orderedEqual(gold.items, pred.items);
      if (pred.kind === 'set' && gold.open === '(' && gold.close === ')') return orderedEqual(gold.items, pred.items);
      return false;
    case 'union':
      return pred.kind === 'union' && setsEqual(gold.parts, pred.parts);
    case 'matrix':
      return (
        pred.kind === 'matrix' &&
        pred.rows.length === gold.rows.length &&
        gold.rows.every((row, i) => orderedEqual(row, pred.rows[i]))
      );
  }
}

/** Compact normalised strings: equal strings are equivalent without parsing (both non-empty). */
const compact = (s: string): string => s.replace(/\s+/g, '');

/** Equal up to whitespace; answers too long to parse are compared as written. */
const sameText = (a: string, b: string): boolean =>
  a.length > MAX_ANSWER_CHARS || b.length > MAX_ANSWER_CHARS ? a === b : compact(a) === compact(b);

export interface Verdict {
  equivalent: boolean;
  /** Set when a bound of `limits.ts` ended the comparison: the answer is "not equivalent" for that reason. */
  reason?: LimitReason;
}

/**
 * Equivalence of two already-parsed answers, gold first, as one bounded grading call. A comparison past its
 * size or time bound is not equivalent, with the reason.
 */
export function compareParsedWithReason(
  gold: ParsedAnswer,
  pred: ParsedAnswer,
  timeLimitMs = DEFAULT_TIME_LIMIT_MS,
): Verdict {
  if (sameText(gold.normalized, pred.normalized)) return { equivalent: true };
  try {
    return {
      equivalent: withinLimits(timeLimitMs, () => {
        if (valuesEqual(gold.value, pred.value)) return true;
        const decimal = decimalCommaReading(gold, pred);
        return decimal !== null && valuesEqual(gold.value, decimal.value);
      }),
    };
  } catch (err) {
    if (err instanceof GradeLimitError) return { equivalent: false, reason: err.reason };
    // Too many `\pm` alternatives, a zero denominator: not an answer we can decide, so not equivalent.
    if (err instanceof RangeError) return { equivalent: false };
    throw err;
  }
}

/**
 * `1000,99`, `2,50`, `−7,25` as decimals, when the gold is one number: a comma not followed by exactly three
 * digits cannot group thousands, and a single number has no list to separate. (Math-Verify reads `1,5` as
 * 1.5 too; we only do it where the list reading cannot be what was meant.)
 */
function decimalCommaReading(gold: ParsedAnswer, pred: ParsedAnswer): ParsedAnswer | null {
  if (gold.value.kind !== 'expr' || pred.normalized.length > 40 || freeSymbols(gold.value.node).size > 0) return null;
  const m = /^([-\u2212]?\d+),(\d{1,2}|\d{4,})$/.exec(compact(pred.normalized));
  return m ? parseAnswer(`${m[1]}.${m[2]}`) : null;
}

/** Equivalence of two already-parsed answers, gold first. */
export function compareParsed(gold: ParsedAnswer, pred: ParsedAnswer): boolean {
  return compareParsedWithReason(gold, pred).equivalent;
}

/** Two answer strings, parsed (the gold leniently) and compared as one bounded grading call. */
export interface AnswerComparison extends Verdict {
  gold: ParsedAnswer | null;
  pred: ParsedAnswer | null;
}

/**
 * Parses and compares two answer strings (not whole responses), gold first. The gold is read leniently, as
 * Math-Verify does: it may be a whole `... #### 18` solution, a boxed solution, or LaTeX with escaped
 * backslashes (`\\frac{1}{2}`). The prediction is taken as written. Empty answers are never equivalent.
 */
export function compareAnswers(gold: string, pred: string, timeLimitMs = DEFAULT_TIME_LIMIT_MS): AnswerComparison {
  // Parsing is bounded by the answer length and the exact-size caps; the clock runs for the comparison only,
  // so a result cut off by time still shows both parsed answers.
  const [g, p] = withinLimits(Number.POSITIVE_INFINITY, () => [
    parseAnswer(reduceGold(gold)),
    parseAnswer(reduceToAnswer(pred)),
  ]);
  if (!g || !p) return { equivalent: false, gold: g, pred: p };
  // The same text is the same answer, even where the gold's lenient reading differs from the strict one.
  if (gold.trim() === pred.trim()) return { equivalent: true, gold: g, pred: p };
  const verdict = compareParsedWithReason(g, p, timeLimitMs);
  return { ...verdict, gold: g, pred: p };
}

/** Main entry for two answer strings: `compareAnswers(gold, pred).equivalent`. */
export function isEquivalent(gold: string, pred: string): boolean {
  return compareAnswers(gold, pred).equivalent;
}
