/**
 * From one extracted answer string to a structured `Value`: sets, tuples, intervals, unions, matrices,
 * relations, words, or a plain expression. Anything the parser cannot read becomes `raw` (string compare).
 */
import { expandPlusMinus, hasPlusMinus, type Node } from './ast.ts';
import { GradeLimitError } from './limits.ts';
import { parseMatrixAnswer } from './matrix.ts';
import { MAX_ANSWER_CHARS, normalizeAnswer } from './normalize.ts';
import { ExprParser } from './parse-expr.ts';
import { ParseError, type Token, tokenize } from './tokenize.ts';
import type { Value } from './value.ts';

export interface ParsedAnswer {
  /** The normalised string (what a string-equality grader would compare). */
  normalized: string;
  value: Value;
}

/** Lists longer than this are compared as strings: pairwise matching is quadratic. */
const MAX_LIST_ITEMS = 64;
const MAX_NESTING = 24;

/** Words the tokenizer reads as math (`pi`, `infinity`), so they are not word answers. */
const MATH_WORDS = new Set(['pi', 'inf', 'infty', 'infinity', 'sqrt', 'sin', 'cos', 'tan', 'ln', 'log', 'exp']);

const compact = (s: string): string => s.replace(/\s+/g, '');

/** Greek letter commands, which name a variable as a letter does (`\lambda \in (3, 4]`). */
const GREEK =
  /^(?:alpha|beta|gamma|delta|epsilon|varepsilon|zeta|eta|theta|vartheta|iota|kappa|lambda|mu|nu|xi|rho|sigma|tau|upsilon|phi|varphi|chi|psi|omega|Gamma|Delta|Theta|Lambda|Xi|Sigma|Phi|Psi|Omega)$/;

/**
 * The last side of a chain that did not parse as a whole: `(a,b) = (-2,1)`, `1 + 2 + \dots + 9 = 45`,
 * `n \equiv 24 \equiv 3 \pmod 7`. The chain's final value is its answer, as for a chain that parses.
 */
function lastSideOfChain(s: string): string | null {
  let depth = 0;
  let cut = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (depth === 0 && c === '=' && s[i - 1] !== '!' && s[i - 1] !== '<' && s[i - 1] !== '>') cut = i + 1;
    else if (depth === 0 && s.startsWith('\\equiv', i)) cut = i + 6;
  }
  if (cut < 0) return null;
  const last = s
    .slice(cut)
    .replace(/\\pmod\s*\{[^{}]*\}|\\pmod\s*\w+|\(\s*\\?mod\s*\w+\s*\)$/, '')
    .trim();
  return last === '' ? null : last;
}

/** A whole-word answer: letters (and spaces, hyphens, apostrophes) with a run of 3+ letters. */
function asText(s: string): Value | null {
  const choice = /^\(([A-Za-z])\)$/.exec(s);
  if (choice) return { kind: 'text', text: choice[1].toLowerCase() };
  if (!/^[A-Za-z][A-Za-z' -]*$/.test(s) || !/[A-Za-z]{3}/.test(s)) return null;
  const text = s.toLowerCase().replace(/\s+/g, ' ').trim();
  return MATH_WORDS.has(text) ? null : { kind: 'text', text };
}

const isCmd = (t: Token | undefined, v: string): boolean => t !== undefined && t.k === 'cmd' && t.v === v;
const OPENERS = new Set(['(', '[', '{', 'lbrace']);
const CLOSERS = new Set([')', ']', '}', 'rbrace']);

/** Indices in [s, e) of `sep` tokens at bracket depth 0 (brackets of any type nest alike: `(3,4]`). */
function topLevel(toks: Token[], s: number, e: number, test: (t: Token) => boolean): number[] {
  const at: number[] = [];
  let depth = 0;
  for (let i = s; i < e; i++) {
    const t = toks[i];
    if (t.k === 'op' && OPENERS.has(t.v)) depth++;
    else if (t.k === 'op' && CLOSERS.has(t.v)) depth--;
    else if (depth === 0 && test(t)) at.push(i);
  }
  return at;
}

/** Index of the bracket closing the one at s, or -1. */
function closingIndex(toks: Token[], s: number, e: number): number {
  let depth = 0;
  for (let i = s; i < e; i++) {
    const t = toks[i];
    if (t.k === 'op' && OPENERS.has(t.v)) depth++;
    else if (t.k === 'op' && CLOSERS.has(t.v) && --depth === 0) return i;
  }
  return -1;
}

function splitAt(s: number, e: number, at: number[]): [number, number][] {
  const ranges: [number, number][] = [];
  let from = s;
  for (const i of at) {
    ranges.push([from, i]);
    from = i + 1;
  }
  ranges.push([from, e]);
  return ranges;
}

/** An expression; `a \pm b` becomes the set of its two values. */
export function exprValue(node: Node): Value {
  if (!hasPlusMinus(node)) return { kind: 'expr', node };
  return { kind: 'set', braces: false, items: expandPlusMinus(node).map((n) => ({ kind: 'expr', node: n })) };
}

function parseRange(toks: Token[], s: number, e: number, nesting: number): Value {
  if (nesting > MAX_NESTING) throw new ParseError('answer nested too deeply');
  if (s >= e) throw new ParseError('empty element');
  const sub = (a: number, b: number): Value => parseRange(toks, a, b, nesting + 1);

  // `x \in [-2, 7]` is the set itself (Qwen drops the prefix too).
  const named = toks[s].k === 'sym' || (toks[s].k === 'cmd' && GREEK.test(toks[s].v));
  if (named && isCmd(toks[s + 1], 'in') && s + 2 < e) return sub(s + 2, e);

  const cups = topLevel(toks, s, e, (t) => t.k === 'cmd' && t.v === 'cup');
  if (cups.length > 0) return { kind: 'union', parts: splitAt(s, e, cups).map(([a, b]) => sub(a, b)) };

  const commas = topLevel(toks, s, e, (t) => t.k === 'op' && (t.v === ',' || t.v === ';'));
  if (commas.length > 0) {
    if (commas.length >= MAX_LIST_ITEMS) throw new ParseError('list too long');
    return { kind: 'set', braces: false, items: splitAt(s, e, commas).map(([a, b]) => sub(a, b)) };
  }

  if (e - s === 1 && (isCmd(toks[s], 'emptyset') || isCmd(toks[s], 'varnothing')))
    return { kind: 'set', braces: true, items: [] };
  // `\mathbb{R}`: all reals.
  if (e - s === 4 && isCmd(toks[s], 'mathbb') && toks[s + 2].v === 'R') {
    const inf: Node = { t: 'const', name: 'inf' };
    return {
      kind: 'seq',
      open: '(',
      close: ')',
      items: [
        { kind: 'expr', node: { t: 'neg', a: inf } },
        { kind: 'expr', node: inf },
      ],
    };
  }

  const first = toks[s];
  if (first.k === 'op' && OPENERS.has(first.v) && closingIndex(toks, s, e) === e - 1) {
    const last = toks[e - 1];
    const inner = topLevel(toks, s + 1, e - 1, (t) => t.k === 'op' && (t.v === ',' || t.v === ';'));
    if (first.v === 'lbrace' || (first.v === '{' && inner.length > 0 && last.v === '}')) {
      if (e - s === 2) return { kind: 'set', braces: true, items: [] };
      const items = splitAt(s + 1, e - 1, inner).map(([a, b]) => sub(a, b));
      return {
        kind: 'set',
        braces: true,
        items: items.flatMap((v) => (v.kind === 'set' && !v.braces ? v.items : [v])),
      };
    }
    if (inner.length > 0 && (first.v === '(' || first.v === '[') && (last.v === ')' || last.v === ']')) {
      if (inner.length >= MAX_LIST_ITEMS) throw new ParseError('tuple too long');
      return {
        kind: 'seq',
        open: first.v,
        close: last.v,
        items: splitAt(s + 1, e - 1, inner).map(([a, b]) => sub(a, b)),
      };
    }
  }

  const { sides, ops } = new ExprParser(toks, s, e).parseRelationChain();
  if (ops.length === 0) return exprValue(sides[0]);
  return { kind: 'relation', sides, ops };
}

/** Parses an already-normalised answer. Throws ParseError when the syntax is not understood. */
function parseNormalized(s: string): Value {
  const text = asText(s);
  if (text) return text;
  const matrix = parseMatrixAnswer(s, parseNormalized);
  if (matrix) return matrix;
  const toks = tokenize(s);
  return parseRange(toks, 0, toks.length, 0);
}

/** Parses one answer string; null when it is empty after normalisation (an empty answer is never right). */
export function parseAnswer(raw: string): ParsedAnswer | null {
  const normalized = normalizeAnswer(raw);
  if (normalized === '') return null;
  // Too long to be an answer: compared as written (even compacting 1 MB of prose costs a second).
  if (normalized.length > MAX_ANSWER_CHARS) return { normalized, value: { kind: 'raw', text: normalized } };
  const attempt = (text: string): Value | null => {
    try {
      return parseNormalized(text);
    } catch (err) {
      // A spent time budget ends the whole grading call; anything else unreadable (a number past the exact
      // size cap included) is compared as its string.
      if (err instanceof GradeLimitError && err.reason === 'time budget exceeded') throw err;
      if (err instanceof ParseError || err instanceof RangeError) return null;
      throw err;
    }
  };
  const last = lastSideOfChain(normalized);
  const value = attempt(normalized) ?? (last === null ? null : attempt(last));
  return { normalized, value: value ?? { kind: 'raw', text: compact(normalized) } };
}
