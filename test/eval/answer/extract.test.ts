import assert from 'node:assert/strict';
import { test } from 'node:test';
import { extractAnswer, extractAnswerWithRule, gradeResponse } from '../../../src/eval/answer/index.ts';

test('the last \\boxed{} wins, with nested braces matched', () => {
  assert.equal(extractAnswer('First \\boxed{3}. Then $\\boxed{\\frac{1}{2}}$.'), '\\frac{1}{2}');
  assert.equal(extractAnswer('$\\boxed{\\{1, 2\\}}$'), '\\{1, 2\\}');
  assert.equal(extractAnswer('so \\boxed{x^{2^{3}}} done'), 'x^{2^{3}}');
});

test('\\fbox, \\boxed without braces, and an unclosed last box', () => {
  assert.equal(extractAnswer('the result is \\fbox{7}'), '7');
  assert.equal(extractAnswer('hence $\\boxed 5$.'), '5');
  // A truncated final box is skipped for the last complete one.
  assert.equal(extractAnswer('\\boxed{12} ... wait, \\boxed{1'), '12');
});

test('adjacent boxes form one list; boxes far apart do not', () => {
  assert.equal(extractAnswer('$\\boxed{1}$ and $\\boxed{-2}$'), '1, -2');
  assert.equal(
    extractAnswer('\\boxed{15\\frac{39}{40}},$ or $\\boxed{\\frac{639}{40}}$'),
    '15\\frac{39}{40}, \\frac{639}{40}',
  );
  assert.equal(extractAnswer('\\boxed{2}. We also could have noted that this is \\boxed{3}'), '3');
});

test('"the answer is" anchors, with decimals and Minerva phrasing', () => {
  assert.equal(extractAnswer('So the answer is 18. Check: 9*2 = 18'), '18');
  assert.equal(extractAnswer('The answer is 3.5.'), '3.5');
  assert.equal(
    extractAnswer('Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.'),
    '\\frac{1}{2}',
  );
  assert.equal(extractAnswer('**Answer:** 42'), '42');
  assert.deepEqual(extractAnswerWithRule('The answer is 7'), { answer: '7', rule: 'anchor' });
});

test('GSM8K: "####" first, then boxes and anchors, then the last number (flexible mode only)', () => {
  assert.deepEqual(extractAnswerWithRule('48/2 = 24\n#### 1,450,000', { mode: 'gsm8k' }), {
    answer: '1,450,000',
    rule: 'hashes',
  });
  assert.equal(extractAnswer('She pays $1,234.50 in total.', { mode: 'gsm8k' }), '1,234.50');
  assert.equal(extractAnswer('The temperature fell to -5 degrees', { mode: 'gsm8k' }), '-5');
  assert.equal(extractAnswer('so 3/4 of them', { mode: 'gsm8k' }), '3/4');
  assert.equal(extractAnswer('It is .5 now', { mode: 'gsm8k' }), '.5');
  assert.equal(extractAnswer('She pays 12 dollars.', { mode: 'gsm8k-strict' }), null);
  assert.equal(extractAnswer('She pays 12 dollars.', { mode: 'math' }), null);
});

test('boxed mode ignores anchors; nothing found gives null, never an empty answer', () => {
  assert.equal(extractAnswer('The answer is 5', { mode: 'boxed' }), null);
  assert.equal(extractAnswer('no answer here'), null);
  assert.equal(extractAnswer(''), null);
  assert.equal(extractAnswer('\\boxed{}', { mode: 'boxed' }), null);
  assert.equal(extractAnswer('\\boxed{   }'), null);
  assert.equal(extractAnswer('no digits at all', { mode: 'gsm8k' }), null);
});

test('gradeResponse: extraction plus equivalence, with parsed forms', () => {
  const r = gradeResponse('\\frac{1}{2}', 'We get $x = 0.50$, so \\boxed{0.5}.');
  assert.deepEqual(r, { correct: true, extracted: '0.5', rule: 'boxed', goldParsed: '1/2', predParsed: '1/2' });
  const gsm = gradeResponse('Janet sells 9 eggs.\n#### 18', 'She makes $18.00 every day.', { mode: 'gsm8k' });
  assert.equal(gsm.correct, true);
  assert.equal(gsm.rule, 'last-number');
  const none = gradeResponse('5', 'I do not know.');
  assert.deepEqual(none, { correct: false, extracted: null, rule: null, goldParsed: '5', predParsed: null });
  assert.equal(gradeResponse('5', 'The answer is 6').correct, false);
});
