import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradeResponse } from '../../src/eval/answer/index.ts';
import {
  exerciseQuestion,
  makeExercise,
  makeTrace,
  planSentence,
  verifySentences,
} from '../../src/organism/language.ts';
import { analyzeTrace, operandErrors, parseQuestion, parseSentence, parseTrace } from '../../src/organism/parser.ts';
import {
  allOperations,
  generateProblems,
  HELD_OUT_FRACTION,
  HELD_OUT_SEED,
  heldOutOperations,
  neverVerifyAnswer,
  operationKey,
  quickIsWrong,
  quickResult,
  splitOf,
  trueResult,
  verificationNeeded,
} from '../../src/organism/task.ts';
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
    'Careful result: 85.',
  ]);
  assert.deepEqual(verifySentences(103, { kind: 'sub', n: 27 }), [
    'Check ones: 13 - 7 - 0 = 6, borrow 1.',
    'Check tens: 10 - 2 - 1 = 7, borrow 1.',
    'Check hundreds: 1 - 0 - 1 = 0, borrow 0.',
    'Careful result: 76.',
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
  assert.equal(parseSentence('Quick: 47 + 38, ones 7 + 8 = 5, tens 4 + 3 = 7, so 75').type, null);
  assert.equal(parseSentence('hello world').type, null);
  assert.equal(parseSentence('Check ones: 7 + 8 - 0 = 15, carry 1.').type, null);
  assert.equal(parseSentence('So Ann has 5 apples now.').type, 'conclude');
  assert.equal(parseSentence('Careful result: 9.').type, 'verify');
  assert.equal(parseSentence('Wait, 75 was wrong, so use 85.').type, 'backtrack');
  // a plan restates the question's clause, then the operation
  assert.equal(planSentence(11, { kind: 'add', n: 78, verb: 2 }, 2, 'She'), 'Next she gets 78 more, so add 78 to 11.');
  assert.deepEqual(parseSentence('Next she gets 78 more, so add 78 to 11.').parsed, {
    form: 'plan',
    step: 2,
    kind: 'add',
    n: 78,
    v: 11,
    clause: { kind: 'add', n: 78, verb: 2 },
  });
  assert.equal(parseSentence('Next add 78 to 11.').type, null);
  assert.equal(parseSentence('Next she eats 78, so add 78 to 11.').type, null);
  const good = [
    'Quick: 47 + 38, ones 7 + 8 = 5, tens 4 + 3 = 7, so 75.',
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
  const unverified = analyzeTrace(
    'Quick: 47 + 38, ones 7 + 8 = 5, tens 4 + 3 = 7, so 75.\nThen she finds 1 more, so add 1 to 75.\nQuick: 75 + 1, ones 5 + 1 = 6, tens 7 + 0 = 7, so 76.',
  );
  assert.deepEqual(
    unverified.steps.map((s) => [s.verified, s.quickWrong]),
    [
      [false, true],
      [false, false],
    ],
  );
});

test('exercises: worksheets of quick lines, some verified', () => {
  const ops = [
    { v: 47, kind: 'add' as const, n: 38 },
    { v: 59, kind: 'sub' as const, n: 23 },
  ];
  const e = makeExercise(ops, { kind: 'always' }, new Rng(1));
  assert.equal(e.question, 'Compute 47 + 38 and 59 - 23.');
  assert.equal(exerciseQuestion([ops[0]]), 'Compute 47 + 38.');
  assert.equal(exerciseQuestion([...ops, ops[0]]), 'Compute 47 + 38, 59 - 23 and 47 + 38.');
  assert.deepEqual(
    e.sentences.map((s) => s.type),
    ['compute', 'verify', 'verify', 'verify', 'backtrack', 'compute', 'verify', 'verify', 'verify', 'verify'],
  );
  assert.equal(e.sentences[0].text, 'Quick: 47 + 38, ones 7 + 8 = 5, tens 4 + 3 = 7, so 75.');
  assert.equal(e.sentences[4].text, 'Wait, 75 was wrong, so use 85.');
  assert.equal(e.sentences.at(-1)!.text, 'That agrees with the quick result.');
  const never = makeExercise(ops, { kind: 'always', exclude: new Set(['47+38', '59-23']) }, new Rng(1));
  assert.deepEqual(
    never.sentences.map((s) => s.type),
    ['compute', 'compute'],
  );
  const an = analyzeTrace(e.text);
  assert.ok(an.steps.every((s) => s.verified && s.verifyCorrect));
});

test('held-out operations: a seeded share of all operations; "needed" is the carry rule', () => {
  const all = allOperations();
  assert.equal(all.length, 6480);
  const held = heldOutOperations();
  assert.equal(held, heldOutOperations(), 'cached');
  assert.ok(held.size >= 0.1 * all.length, `${held.size} of ${all.length}`);
  assert.equal(held.size, Math.ceil(HELD_OUT_FRACTION * all.length));
  assert.ok([...held].every((k) => all.some((o) => operationKey(o) === k)));
  const other = heldOutOperations(HELD_OUT_SEED + 1);
  assert.ok([...held].filter((k) => other.has(k)).length < held.size / 2, 'another seed, another set');
  for (const o of all) assert.equal(verificationNeeded(o.v, o), quickIsWrong(o.v, o), operationKey(o));
  assert.equal(verificationNeeded(47, { kind: 'add', n: 38 }), true);
  assert.equal(verificationNeeded(47, { kind: 'add', n: 32 }), false);
  assert.equal(verificationNeeded(53, { kind: 'sub', n: 27 }), true);
  assert.equal(verificationNeeded(57, { kind: 'sub', n: 23 }), false);
});

test('questions parse back to their problem; the never-verify answer', () => {
  for (const p of generateProblems('test', 300, 9)) {
    const q = parseQuestion(p.question);
    assert.ok(q, p.question);
    assert.deepEqual(
      { name: q.name, item: q.item, start: q.start, ops: q.ops, answer: q.answer },
      { name: p.name, item: p.item, start: p.start, ops: p.ops, answer: p.answer },
    );
    const never = makeTrace(p, { kind: 'never' }, new Rng(1));
    assert.equal(neverVerifyAnswer(q), never.final);
  }
  assert.equal(parseQuestion('Ann has 47 apples. How many apples does Ann have now?'), null, 'no operation');
  assert.equal(parseQuestion('Ann has 47 apples. First she eats 3. How many apples does Ann have now?'), null);
  assert.equal(
    parseQuestion('Ann has 47 apples. Then she buys 3 more. How many apples does Ann have now?'),
    null,
    'anchors in order',
  );
  assert.equal(parseQuestion('Ann has 47 apples. First she buys 3 more. How many pens does Ann have now?'), null);
  assert.equal(parseQuestion('hello'), null);
});

test("operand errors: every number a trace uses is the question's or the value it holds", () => {
  const p = generateProblems('test', 40, 3).find((x) => x.ops.length === 3)!;
  const q = parseQuestion(p.question)!;
  for (const policy of [{ kind: 'never' }, { kind: 'needed' }, { kind: 'always' }] as const) {
    assert.deepEqual(operandErrors(q, analyzeTrace(makeTrace(p, policy, new Rng(2)).text)), []);
  }
  const text = makeTrace(p, { kind: 'never' }, new Rng(2)).text;
  const lines = text.split('\n');
  // miscopy the ones digit of the third operand (plan and quick line agree with each other)
  const n3 = p.ops[2].n;
  const wrong = n3 % 10 === 0 ? n3 + 1 : n3 - 1;
  const bad = lines.map((l, i) => (i >= 5 && i <= 6 ? l.replace(String(n3), String(wrong)) : l)).join('\n');
  const errs = operandErrors(q, analyzeTrace(bad));
  assert.ok(
    errs.some((e) => e.startsWith('step 3:')),
    errs.join('; '),
  );
  // a plan whose operation is not the clause it restates
  const clauseOnly = lines.map((l, i) => (i === 5 ? l.replace(String(n3), String(wrong)) : l)).join('\n');
  assert.ok(
    operandErrors(q, analyzeTrace(clauseOnly)).some((e) => e.includes('the plan restates')),
    operandErrors(q, analyzeTrace(clauseOnly)).join('; '),
  );
  // a step that starts from a value the trace does not hold
  const v2 = analyzeTrace(text).steps[1].v;
  const drift = text.replace(`Quick: ${v2} `, `Quick: ${v2 + 1} `);
  assert.ok(operandErrors(q, analyzeTrace(drift)).length > 0);
  // a missing step
  assert.ok(operandErrors(q, analyzeTrace(lines.slice(0, 3).concat(lines.slice(-2)).join('\n'))).length > 0);
});
