import assert from 'node:assert/strict';
import { test } from 'node:test';
import { extractAnswer, gradeResponse, isEquivalent } from '../../../src/eval/answer/index.ts';

const MB = 1 << 20;
/** Generous for a shared 2-core machine; a quadratic scan of 1 MB would take minutes, not seconds. */
const LIMIT_MS = 3000;

function timed<T>(label: string, fn: () => T): T {
  const start = performance.now();
  const result = fn();
  const ms = performance.now() - start;
  assert.ok(ms < LIMIT_MS, `${label} took ${ms.toFixed(0)} ms`);
  return result;
}

const repeat = (unit: string): string => unit.repeat(Math.ceil(MB / unit.length)).slice(0, MB);

// Inputs shaped against each scanner: unclosed boxes, deep braces, long digit runs, many anchors, etc.
const HOSTILE: Record<string, string> = {
  'unclosed boxes': repeat('\\boxed{'),
  'deep braces': `\\boxed{${'{'.repeat(MB / 2)}5${'}'.repeat(MB / 2)}}`,
  'one huge number': repeat('1234567890'),
  'thousands commas': `1${repeat(',000')}`,
  'many anchors': repeat('the answer is '),
  'many hashes': repeat('#### '),
  'nested fractions': repeat('\\frac{'),
  'tuple commas': `(${repeat('1,')}2)`,
  'plus-minus chain': repeat('1\\pm'),
  'spaces then text': `${' '.repeat(MB)}\\text{cm}`,
  backslashes: repeat('\\'),
  powers: repeat('9^{'),
  'currency dollars': repeat('$7 and '),
  'display dollars': repeat('$$'),
  'matrix openers': repeat('\\begin{pmatrix}'),
  'align openers': repeat('\\begin{align*} x &= '),
  'chat markers': repeat('<|im_start|>'),
  'next-turn lines': repeat('\nQuestion:'),
  'inline spans': repeat('$x$ and '),
  // Long runs where a careless trailing-space or optional-space regex turns quadratic.
  'answer then spaces': `x = ${' '.repeat(MB)}`,
  'next-turn word then spaces': `x\nProblem${' '.repeat(MB)}`,
  'display of dots': `$$${'.'.repeat(MB)}$$`,
};

test('extraction of 1 MB hostile responses runs in bounded time', () => {
  for (const [label, text] of Object.entries(HOSTILE)) {
    for (const mode of ['math', 'gsm8k'] as const) timed(`${label}/${mode}`, () => extractAnswer(text, { mode }));
  }
});

test('grading 1 MB hostile answers and responses runs in bounded time and never accepts junk', () => {
  for (const [label, text] of Object.entries(HOSTILE)) {
    assert.equal(
      timed(`isEquivalent(5, ${label})`, () => isEquivalent('5', text)),
      false,
      label,
    );
    assert.equal(
      timed(`isEquivalent(${label}, 5)`, () => isEquivalent(text, '5')),
      false,
      label,
    );
    assert.equal(
      timed(`gradeResponse(${label})`, () => gradeResponse('5', text, { mode: 'gsm8k' }).correct),
      false,
      label,
    );
  }
});

test('a correct answer at the end of a 1 MB response is still found', () => {
  const response = `${repeat('Let me think about this step by step. ')}\nSo the total is \\boxed{\\frac{3}{4}}.`;
  const r = timed('long response', () => gradeResponse('0.75', response));
  assert.equal(r.correct, true);
  assert.equal(r.extracted, '\\frac{3}{4}');
});

/** An n×n matrix of small integers. */
function matrix(n: number): string {
  const rows = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i * n + j) % 7).join('&'));
  return `\\begin{pmatrix}${rows.join('\\\\')}\\end{pmatrix}`;
}

test('answers that are small to write but huge to evaluate stay bounded', () => {
  const cases: [string, string][] = [
    ['10^{10^{10}}', '10^{10^{10}}+1'],
    ['9^{9^{9}}', '9^{9^{9}} + 1'],
    ['1000000!', '1000001!'],
    ['\\binom{1000000000}{500000000}', '0'],
    ['2^{100000}', '2^{100000}+1'],
    [`x^{${'9'.repeat(300)}}`, 'x'],
    [`${'\\sqrt{'.repeat(200)}2${'}'.repeat(200)}`, '1'],
    [`${'('.repeat(1500)}1${')'.repeat(1500)}`, '2'],
    // Matrix arithmetic: a 12x12 matrix to the 16th power, and a long product, stop at the cell-size cap.
    [`${matrix(12)}^{16}`, matrix(12)],
    [Array(30).fill(matrix(6)).join(''), matrix(6)],
  ];
  for (const [gold, pred] of cases)
    assert.equal(
      timed(gold.slice(0, 30), () => isEquivalent(gold, pred)),
      false,
      gold.slice(0, 40),
    );
});
