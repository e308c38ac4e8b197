import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradeResponse } from '../../src/eval/answer/index.ts';
import { makeExercise, makeTrace, verifySentences } from '../../src/organism/language.ts';
import { analyzeTrace, parseSentence, parseTrace } from '../../src/organism/parser.ts';
import { generateProblems, quickIsWrong, quickResult, splitOf, trueResult } from '../../src/organism/task.ts';
import { Rng } from '../../src/rng.ts';

const key = (p: { start: number; ops: { kind: string; n: number }[] }) =>
  `${p.start}|${p.ops.map((o) => o.kind + o.n).join(',')}`;

test('problems: deterministic, disjoint splits, answers and ranges', () => {
  const a = generateProblems('test', 500, 1);
  const b = generateProblems('test', 500, 1);
  assert.deepEqual(a, b);
  assert.notDeepEqual(generateProblems('test', 5, 2), a.slice(0, 5));
  const train = generateProblems('train', 4000, 1);
  const testKeys = new Set(a.map(key));
  assert.equal(train.filter((p) => testKeys.has(key(p))).length, 0);
  for (const p of [...a, ...train]) {
    assert.equal(splitOf(p.start, p.ops), p.split);
    assert.ok(p.ops.length >= 2 && p.ops.length <= 3);
    let v = p.start;
    for (const op of p.ops) {
      assert.ok(op.kind === 'add' || v >= op.n);
      v = trueResult(v, op);
      assert.ok(v >= 10 && v <= 99);
    }
    assert.equal(v, p.answer);
    assert.ok(p.question.includes(String(p.start)) && p.question.endsWith('now?'));
  }
  // difficulty knob: 3-digit operands, 5 steps
  const hard = generateProblems('test', 50, 1, {
    minSteps: 5,
    maxSteps: 5,
    minDigits: 3,
    maxDigits: 3,
    minValue: 0,
    maxValue: 9999,
  });
  assert.ok(hard.every((p) => p.ops.length === 5 && p.ops.every((o) => o.n >= 100)));
});

test('quick computation drops carries and borrows', () => {
  assert.equal(quickResult(47, { kind: 'add', n: 38 }), 75);
  assert.equal(quickResult(85, { kind: 'add', n: 38 }), 113);
  assert.equal(quickResult(42, { kind: 'add', n: 60 }), 102);
  assert.equal(quickResult(53, { kind: 'sub', n: 27 }), 36);
  assert.equal(quickResult(105, { kind: 'sub', n: 7 }), 108);
  assert.equal(quickResult(59, { kind: 'sub', n: 23 }), 36);
  assert.equal(quickIsWrong(59, { kind: 'sub', n: 23 }), false);
  // about 45 % of random 2-digit steps are wrong
  const rng = new Rng(3);
  let wrong = 0;
  for (let i = 0; i < 4000; i++) {
    const v = 10 + rng.int(90);
    const n = 10 + rng.int(90);
    if (quickIsWrong(Math.max(v, n), { kind: i % 2 ? 'add' : 'sub', n: Math.min(v, n) })) wrong++;
  }
  assert.ok(wrong / 4000 > 0.35 && wrong / 4000 < 0.55, `${wrong / 4000}`);
});

test('careful verification is column by column and correct', () => {
  assert.deepEqual(verifySentences(47, { kind: 'add', n: 38 }), [
    'Check ones: 7 + 8 + 0 = 15, carry 1.',
    'Check tens: 4 + 3 + 1 = 8, carry 0.',
    'So 47 + 38 = 85.',
  ]);
  assert.deepEqual(verifySentences(103, { kind: 'sub', n: 27 }), [
    'Check ones: 13 - 7 - 0 = 6, borrow 1.',
    'Check tens: 10 - 2 - 1 = 7, borrow 1.',
    'Check hundreds: 1 - 0 - 1 = 0, borrow 0.',
    'So 103 - 27 = 76.',
  ]);
});

test('traces: thinking policy always right, every sentence labelled with its type', () => {
  const rng = new Rng(1);
  const problems = generateProblems('test', 300, 4);
  let baseRight = 0;
  for (const p of problems) {
    const t = makeTrace(p, { kind: 'always' }, rng);
    assert.ok(t.correct, t.text);
    assert.ok(gradeResponse(String(p.answer), t.text).correct);
    const base = makeTrace(p, { kind: 'never' }, rng);
    if (base.correct) baseRight++;
    assert.equal(gradeResponse(String(p.answer), base.text).correct, base.correct);
    for (const tr of [t, base, makeTrace(p, { kind: 'random', p: 0.3 }, rng)]) {
      const parsed = parseTrace(tr.text);
      assert.equal(parsed.length, tr.sentences.length);
      for (const [i, s] of parsed.entries()) assert.equal(s.type, tr.sentences[i].type, s.text);
      const an = analyzeTrace(tr.text);
      assert.equal(an.answer, tr.final);
      assert.equal(an.steps.length, p.ops.length);
      for (const st of an.steps) {
        if (st.verified) {
          assert.equal(st.verifyCorrect, true);
          assert.equal(st.followup, st.quickWrong ? 'backtrack' : 'agree');
          if (st.quickWrong) assert.equal(st.backtrackValue, trueResult(st.v, st));
        }
      }
    }
  }
  // the base policy is wrong whenever some step needs a carry: far from perfect
  assert.ok(baseRight / problems.length < 0.6 && baseRight / problems.length > 0.05, `${baseRight}`);
});

test('parser: rejects what is not the language, catches wrong verifications', () => {
  assert.equal(parseSentence('Check ones: 7 + 8 + 0 = 15, carry 1').type, null);
  assert.equal(parseSentence('Quick: 47 + 38 = 75').type, null);
  assert.equal(parseSentence('hello world').type, null);
  assert.equal(parseSentence('Check ones: 7 + 8 - 0 = 15, carry 1.').type, null);
  assert.equal(parseSentence('So Ann has 5 apples now.').type, 'conclude');
  assert.equal(parseSentence('So 4 + 5 = 9.').type, 'verify');
  assert.equal(parseSentence('Wait, 75 was wrong, so use 85.').type, 'backtrack');
  const good = [
    'Quick: 47 + 38 = 75.',
    ...verifySentences(47, { kind: 'add', n: 38 }),
    'Wait, 75 was wrong, so use 85.',
  ];
  assert.equal(analyzeTrace(good.join('\n')).steps[0].verifyCorrect, true);
  const bad = [...good];
  bad[2] = 'Check tens: 4 + 3 + 1 = 9, carry 0.';
  const st = analyzeTrace(bad.join('\n')).steps[0];
  assert.equal(st.verifyCorrect, false);
  assert.equal(st.quickWrong, true);
  assert.equal(st.followup, 'backtrack');
  const unverified = analyzeTrace('Quick: 47 + 38 = 75.\nNow add 1 to 75.\nQuick: 75 + 1 = 76.');
  assert.deepEqual(
    unverified.steps.map((s) => [s.verified, s.quickWrong]),
    [
      [false, true],
      [false, false],
    ],
  );
});

test('exercises: a verification answering a claim', () => {
  const e = makeExercise(47, { kind: 'add', n: 38 }, 75);
  assert.equal(e.question, 'Is 47 + 38 = 75 right?');
  assert.equal(e.sentences.at(-1)!.type, 'backtrack');
  assert.equal(
    makeExercise(47, { kind: 'add', n: 38 }, 85).sentences.at(-1)!.text,
    'That agrees with the quick result.',
  );
});
