import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cutAtNextTurn, unescapeBackslashes } from '../../../src/eval/answer/extract.ts';
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

test('free-form text: the last math span when there is no box or answer phrase', () => {
  assert.deepEqual(extractAnswerWithRule('The ordered pair that solves the system is $(7, 6)$.'), {
    answer: '(7, 6)',
    rule: 'math-span',
  });
  assert.equal(extractAnswer('Thus \\[\\frac{5}{12}\\] is the probability.'), '\\frac{5}{12}');
  assert.equal(extractAnswer('the sum equals \\(\\dfrac{91}{3}\\).'), '\\dfrac{91}{3}');
  assert.equal(extractAnswer('the area is\n$$\n24\\sqrt{3}.\n$$'), '24\\sqrt{3}.');
  assert.equal(extractAnswer('so the solutions are $x = 1$ and $x = -2$.'), 'x = 1, x = -2');
  assert.equal(extractAnswer('We know $a+b=10$, so $ab = 21$.'), 'ab = 21'); // not adjacent: not merged
  assert.equal(extractAnswer('\\begin{align*}\nx &= 3 + 4 \\\\\n&= 7.\n\\end{align*}'), '7.');
  assert.equal(
    extractAnswer('the matrix is \\left[ \\begin{array}{cc} 2 & 0 \\\\ 0 & 3 \\end{array} \\right]'),
    '\\begin{array}{cc} 2 & 0 \\\\ 0 & 3 \\end{array}',
  );
  // Dollar signs as currency (Pandoc's rule, no prose inside math) are not math delimiters.
  const currency = 'She earns $5 per hour and works 3 hours, so she earns $15 in total.';
  assert.equal(extractAnswer(currency), null);
  assert.deepEqual(extractAnswerWithRule(currency, { mode: 'gsm8k' }), { answer: '15', rule: 'last-number' });
  // gsm8k: a number after the last span wins; math keeps the span; gsm8k-strict takes neither.
  assert.equal(extractAnswer('We get $x^2 = 49$, so x = 7.', { mode: 'gsm8k' }), '7');
  assert.equal(extractAnswer('We get $x^2 = 49$, so x = 7.', { mode: 'math' }), 'x^2 = 49');
  assert.equal(extractAnswer('The ordered pair is $(7, 6)$.', { mode: 'gsm8k-strict' }), null);
  // gsm8k: the result after the last `=` of the final sentence beats a trailing context number.
  assert.equal(extractAnswer('They earn $30 + $12 = $42 from selling lemonade for 6 hours.', { mode: 'gsm8k' }), '42');
  assert.equal(extractAnswer('The net is $400 000 - $282 000 = $118 000.', { mode: 'gsm8k' }), '118 000');
  assert.equal(extractAnswer('So 18 = 9 * 2', { mode: 'gsm8k' }), '2'); // `9 * 2` is not a result: last number
  assert.equal(extractAnswer('So 3 + 4 = 7, and she needs 10 more.', { mode: 'gsm8k' }), '10'); // a new number
  assert.equal(
    extractAnswer('He paid 170*$65=$<<170*65=11050>>11050 to fill 170 balloons.', { mode: 'gsm8k' }),
    '11050',
  );
});

test('a next turn after the answer is cut off: chat-template tokens and few-shot continuations', () => {
  const chat =
    'The product is $12$.<|im_end|>\n<|im_start|>user\nWhat is 3+4?<|im_end|>\n<|im_start|>assistant\nThe answer is $7$.';
  assert.equal(extractAnswer(chat), '12');
  assert.equal(cutAtNextTurn('<|im_start|>assistant\nThe answer is 45.<|im_end|>'), 'assistant\nThe answer is 45.');
  assert.equal(extractAnswer('So the answer is 6.\n\nQuestion: Tom has 5 apples.\nAnswer: 10', { mode: 'gsm8k' }), '6');
  assert.equal(
    extractAnswer('The final answer is $3$. I hope it is correct.\n\nProblem:\nFind $x$.\nThe final answer is $5$.'),
    '3',
  );
  assert.equal(extractAnswer('So the answer is 17</s><s>[INST] next [/INST] The answer is 3'), '17');
  assert.equal(extractAnswer('So $\\boxed{6}$.\n\n### Problem 2\nThen $\\boxed{9}$.'), '6');
  assert.equal(
    extractAnswer('The probability is $\\frac{1}{6}$.<｜end▁of▁sentence｜><｜User｜>And $\\frac{1}{36}$?'),
    '\\frac{1}{6}',
  );
});

test('answer phrases: display math on the next line, prose after the answer, Markdown bold', () => {
  assert.equal(
    extractAnswer('Final Answer: The final answer is\n\\[\n\\frac{\\sqrt{3}}{2}\n\\]\nI hope it is correct.'),
    '\\frac{\\sqrt{3}}{2}',
  );
  assert.equal(extractAnswer('So the answer is 5 apples.'), '5');
  assert.equal(extractAnswer('So the answer is 5 because 2 times 5 is 10.'), '5');
  assert.equal(extractAnswer('The answer is $x = 4$, since the other root is negative.'), 'x = 4');
  assert.equal(extractAnswer('Therefore, the answer is **$1,000**.'), '1,000');
  assert.equal(extractAnswer('The answer is 18 dollars.'), '18 dollars'); // units are the normaliser's job
  assert.equal(extractAnswer('The answer is Evelyn and Ava.'), 'Evelyn and Ava'); // word answers stay whole
  assert.equal(extractAnswer('so the final answer is the larger of the two: $x=1$.'), 'x=1');
});

test('a gold copied with escaped backslashes is read as LaTeX; real LaTeX is left alone', () => {
  assert.equal(unescapeBackslashes('\\\\frac{1}{2}'), '\\frac{1}{2}');
  assert.equal(
    unescapeBackslashes('\\\\begin{pmatrix} 1 \\\\\\\\ 2 \\\\end{pmatrix}'),
    '\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}',
  );
  const matrix = '\\begin{pmatrix}a\\\\b\\end{pmatrix}';
  assert.equal(unescapeBackslashes(matrix), matrix);
  assert.equal(unescapeBackslashes('1\\\\2'), '1\\\\2');
});
