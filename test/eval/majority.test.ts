import assert from 'node:assert/strict';
import { test } from 'node:test';
import { majorityAtK, majorityVote, majorityVoteResponses } from '../../src/eval/majority.ts';

const boxed = (a: string): string => `Some reasoning.\n\nSo the answer is $\\boxed{${a}}$.`;

test('equivalent answers vote together: 18, 18.0 and \\$18 outvote two 17s (string votes would pick 17)', () => {
  const v = majorityVote(['17', '18', '17', '18.0', '\\$18']);
  assert.equal(v.answer, '18');
  assert.equal(v.votes, 3);
  assert.deepEqual(v.classes, [
    { answer: '17', samples: [0, 2] },
    { answer: '18', samples: [1, 3, 4] },
  ]);
  assert.deepEqual(v.abstained, []);
  // Fractions, decimals and order-free lists group as the grader reads them.
  assert.deepEqual(majorityVote(['0.5', '3', '\\frac{1}{2}', '3', '\\dfrac12']).classes, [
    { answer: '0.5', samples: [0, 2, 4] },
    { answer: '3', samples: [1, 3] },
  ]);
  assert.equal(majorityVote(['1, -2', '2', '-2, 1', 'x = -2 \\text{ or } x = 1']).votes, 3);
});

test('grouping is symmetric: an inequality and its interval vote together whichever comes first', () => {
  assert.equal(majorityVote(['[-2, 7]', '(0, 1)', '-2 \\le x \\le 7']).votes, 2);
  assert.equal(majorityVote(['-2 \\le x \\le 7', '(0, 1)', '[-2, 7]']).votes, 2);
  // ... but open and closed intervals stay apart.
  assert.equal(majorityVote(['[-2, 7]', '(-2, 7)']).votes, 1);
});

test('ties go to the class whose first member came first', () => {
  assert.equal(majorityVote(['5', '7', '7', '5']).answer, '5');
  assert.equal(majorityVote(['7', '5', '5', '7']).answer, '7');
  // Its first member decides, not its last: 9 appears first, 4 completes its pair first.
  assert.equal(majorityVote(['9', '4', '4', '9']).answer, '9');
  // A strictly larger later class still wins.
  assert.equal(majorityVote(['9', '4', '4', '9', '4']).answer, '4');
});

test('samples without an answer abstain and never win', () => {
  const v = majorityVote([null, null, '\\$', '3']);
  assert.equal(v.answer, '3');
  assert.equal(v.votes, 1);
  assert.deepEqual(v.abstained, [0, 1, 2]);
  const none = majorityVote([null, '  ', null]);
  assert.deepEqual([none.answer, none.votes, none.classes], [null, 0, []]);
  // From responses: an empty box and a response without an answer abstain.
  const r = majorityVoteResponses(['I am not sure.', boxed(''), boxed('12'), 'The answer is 12.0.'], { mode: 'math' });
  assert.deepEqual([r.answer, r.votes, r.abstained], ['12', 2, [0, 1]]);
});

test('extraction mode is applied before voting (gsm8k: last number fallback)', () => {
  const responses = ['So she makes $18.00 a day.', '#### 18', 'She makes 9 + 9 = 17 dollars.', 'Total: 18'];
  assert.deepEqual(majorityVoteResponses(responses, { mode: 'gsm8k' }).classes, [
    { answer: '18.00', samples: [0, 1, 3] },
    { answer: '17', samples: [2] },
  ]);
  // Math mode has no `####` or last-number rule: nothing is extracted, nothing wins.
  assert.equal(majorityVoteResponses(responses, { mode: 'math' }).answer, null);
});

test('maj@k votes over the first k samples and grades the winner against the gold', () => {
  const problems = [
    // majority 18 among the first 3, majority 3 among all 5
    { gold: 'She makes 9 * 2 = 18.\n#### 18', responses: ['18', '18.0', '3', '3', '3'].map(boxed) },
    // first sample wrong, majority right from k = 3
    { gold: '\\frac{1}{2}', responses: ['2', '0.5', '1/2', '2', '\\frac12'].map(boxed) },
    // always wrong
    { gold: '7', responses: ['8', '8', '8', '7', '7'].map(boxed) },
  ];
  const at1 = majorityAtK(problems, 1);
  assert.deepEqual(
    at1.perProblem.map((p) => p.correct),
    [true, false, false],
  );
  assert.equal(at1.accuracy, 1 / 3);
  const at3 = majorityAtK(problems, 3);
  assert.deepEqual(
    at3.perProblem.map((p) => [p.answer, p.votes, p.correct]),
    [
      ['18', 2, true],
      ['0.5', 2, true],
      ['8', 3, false],
    ],
  );
  assert.deepEqual([at3.correct, at3.n, at3.accuracy], [2, 3, 2 / 3]);
  const at5 = majorityAtK(problems, 5);
  assert.deepEqual(
    at5.perProblem.map((p) => p.answer),
    ['3', '0.5', '8'],
  );
  assert.equal(at5.accuracy, 1 / 3);
  // k = 2 on problem 2: one vote each for 2 and 0.5, the tie goes to the earlier 2.
  assert.equal(majorityAtK(problems, 2).perProblem[1].answer, '2');
});

test('maj@k rejects a bad k or too few samples; no problems gives NaN; all-abstaining is wrong', () => {
  const problems = [{ gold: '1', responses: [boxed('1'), boxed('1')] }];
  assert.throws(() => majorityAtK(problems, 3), /problem 0 has 2 samples, fewer than k=3/);
  assert.throws(() => majorityAtK(problems, 0), RangeError);
  assert.throws(() => majorityAtK(problems, 1.5), RangeError);
  assert.ok(Number.isNaN(majorityAtK([], 1).accuracy));
  const silent = majorityAtK([{ gold: '1', responses: ['no idea', 'none'] }], 2);
  assert.deepEqual(silent.perProblem, [{ answer: null, votes: 0, correct: false }]);
});
