import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ASIDE_MAX_LINES,
  ASIDE_MAX_WORDS,
  ASIDE_MIN_WORDS,
  answerExample,
  BASE_VERIFY_P,
  buildCorpus,
  corpusPolicy,
  EXERCISE_VERIFY_P,
} from '../../src/organism/corpus.ts';
import { asideWords } from '../../src/organism/language.ts';
import { analyzeTrace } from '../../src/organism/parser.ts';
import { heldOutOperations, isHeldOut, ORDINALS, operationKey, verificationNeeded } from '../../src/organism/task.ts';
import { decodeIds, encodeAnswer, encodePrompt, encodeText, IM_END } from '../../src/organism/vocab.ts';
import { Rng } from '../../src/rng.ts';
import { exampleBatch } from '../../src/train/batch.ts';

test('corpora: deterministic; base verifies at random, latent never in traces, thinking exactly when needed', () => {
  const base = corpusPolicy('base');
  const a = buildCorpus({ seed: 3, traces: 1500, exercises: 400, policy: base });
  const b = buildCorpus({ seed: 3, traces: 1500, exercises: 400, policy: base });
  assert.deepEqual(a.examples, b.examples);
  assert.equal(a.examples.length, 1900);
  const held = heldOutOperations();
  const steps = a.traces.flatMap((t) => analyzeTrace(t.text).steps);
  const seen = steps.filter((s) => !isHeldOut(s.v, s));
  // uninformative: the verify rate does not depend on whether a carry or borrow is needed
  const rate = (xs: typeof steps) => xs.filter((s) => s.verified).length / xs.length;
  const needed = seen.filter((s) => verificationNeeded(s.v, s));
  const notNeeded = seen.filter((s) => !verificationNeeded(s.v, s));
  assert.ok(Math.abs(rate(seen) - BASE_VERIFY_P) < 0.03, `base verify rate ${rate(seen)}`);
  assert.ok(Math.abs(rate(needed) - rate(notNeeded)) < 0.05, `${rate(needed)} vs ${rate(notNeeded)}`);
  // held-out operations: computed in traces, never verified, never an exercise
  const heldSteps = steps.filter((s) => isHeldOut(s.v, s));
  assert.ok(heldSteps.length > 100);
  assert.equal(heldSteps.filter((s) => s.verified).length, 0);
  // exercises: a verification (never of a held-out operation) after some quick lines, not others
  const exSteps = a.exercises.flatMap((e) => analyzeTrace(e.text).steps);
  assert.equal(exSteps.filter((s) => s.verified && held.has(operationKey({ v: s.v, kind: s.kind, n: s.n }))).length, 0);
  assert.ok(exSteps.every((s) => !s.verified || s.verifyCorrect));
  const exRate = rate(exSteps.filter((s) => !isHeldOut(s.v, s)));
  assert.ok(Math.abs(exRate - EXERCISE_VERIFY_P) < 0.05, `exercise verify rate ${exRate}`);
  const followups = new Set(exSteps.map((s) => s.followup));
  assert.deepEqual([...followups].sort(), ['agree', 'backtrack', null]);

  const latent = buildCorpus({ seed: 3, traces: 500, exercises: 200, policy: corpusPolicy('pretrain') });
  assert.ok(latent.traces.every((t) => analyzeTrace(t.text).steps.every((s) => !s.verified)));
  assert.ok(latent.traces.every((t) => !t.text.includes('Check')));
  assert.equal(latent.exercises.length, 200);

  const t = buildCorpus({ seed: 4, traces: 400, exercises: 0, policy: corpusPolicy('thinking') });
  const tSteps = t.traces.flatMap((x) => analyzeTrace(x.text).steps);
  assert.ok(t.traces.every((x) => x.correct));
  assert.ok(tSteps.every((s) => s.verified === verificationNeeded(s.v, s) && s.verified === s.quickWrong));
  assert.ok(tSteps.some((s) => s.verified) && tSteps.some((s) => !s.verified));
});

test('training batches: only answer tokens are scored', () => {
  const e1 = { prompt: encodePrompt('Q one?'), target: encodeAnswer('So 1 + 2 = 3.') };
  const e2 = {
    prompt: encodePrompt('Compute 1 + 2.'),
    target: encodeAnswer('That agrees with the quick result.'),
  };
  const b = exampleBatch([e1, e2], { padToken: IM_END, padMultiple: 16 });
  assert.equal(b.nSeq, 2);
  assert.equal(b.seqLen % 16, 0);
  for (const [i, e] of [e1, e2].entries()) {
    const row = Array.from(b.targets.slice(i * b.seqLen, (i + 1) * b.seqLen));
    const scored = row.filter((x) => x >= 0);
    assert.deepEqual(scored, e.target);
    assert.equal(row.indexOf(scored[0]), e.prompt.length - 1);
    assert.equal(scored.at(-1), IM_END);
    assert.equal(b.lengths[i], e.prompt.length + e.target.length);
  }
  assert.equal(decodeIds(e1.target), 'So 1 + 2 = 3.');
});

test('asides: unscored lines of unrelated words between answer lines, at the configured rate', () => {
  const c = buildCorpus({ seed: 3, traces: 1000, exercises: 400, policy: corpusPolicy('latent'), asideP: 0.5 });
  const withAsides = c.examples.filter((e) => e.weight);
  const rate = withAsides.length / c.examples.length;
  assert.ok(Math.abs(rate - 0.5) < 0.05, `aside rate ${rate}`);
  const allowed = new Set(asideWords());
  for (const [k, trace] of c.traces.slice(0, 50).entries()) {
    const e = answerExample(trace.problem.question, trace.sentences, new Rng(k), 1);
    const w = e.weight ?? [];
    // the scored tokens are exactly the clean answer; the unscored ones are whole aside lines
    assert.deepEqual(
      e.target.filter((_, i) => w[i] === 1),
      encodeAnswer(trace.text),
    );
    const lines = decodeIds(e.target).split('\n');
    const asides = lines.filter((l) => l.startsWith('Aside: '));
    assert.ok(asides.length >= 1 && asides.length <= ASIDE_MAX_LINES);
    assert.ok(!lines[0].startsWith('Aside'), 'never before the first line');
    for (const a of asides) {
      const words = a.slice('Aside: '.length, -1).split(' ');
      assert.ok(words.length >= ASIDE_MIN_WORDS && words.length <= ASIDE_MAX_WORDS);
      assert.ok(
        words.every((x) => allowed.has(x) && !(ORDINALS as readonly string[]).includes(x)),
        a,
      );
    }
    const unscored = e.target.filter((_, i) => w[i] === 0).length;
    assert.equal(
      unscored,
      asides.reduce((n, a) => n + encodeText(`${a}\n`).length, 0),
    );
  }
  // asideP 0 (the thinking corpus) draws nothing and weights nothing
  const t = buildCorpus({ seed: 4, traces: 200, exercises: 0, policy: corpusPolicy('thinking') });
  assert.ok(t.examples.every((e) => e.weight === undefined));
});

test('verifyStartWeight: every verification is read; only its first token is weighted differently', () => {
  const o = { seed: 5, traces: 300, exercises: 100, policy: corpusPolicy('base'), asideP: 0 };
  const plain = buildCorpus(o);
  const masked = buildCorpus({ ...o, verifyStartWeight: 0 });
  const pushed = buildCorpus({ ...o, verifyStartWeight: -0.25 });
  assert.equal(masked.examples.length, plain.examples.length);
  const checkId = encodeText('Check')[0];
  let verifications = 0;
  masked.examples.forEach((e, i) => {
    assert.deepEqual(e.target, plain.examples[i].target);
    const starts = e.target.flatMap((t, j) => (t === checkId && (j === 0 || e.target[j - 1] !== checkId) ? [j] : []));
    const unscored = (e.weight ?? e.target.map(() => 1)).flatMap((w, j) => (w === 0 ? [j] : []));
    // a verification's first `Check` follows a non-`Check` line; later `Check` lines stay scored
    const firstChecks = starts.filter((j) => j === 0 || !isAfterCheckLine(e.target, j, checkId));
    assert.deepEqual(unscored, firstChecks);
    const w = pushed.examples[i].weight ?? e.target.map(() => 1);
    assert.deepEqual(
      w.flatMap((x, j) => (x !== 1 ? [[j, x]] : [])),
      firstChecks.map((j) => [j, -0.25]),
    );
    verifications += firstChecks.length;
  });
  assert.ok(verifications > 100, `${verifications} verifications`);
});

/** Whether the line before position j (a line start) began with `Check`. */
function isAfterCheckLine(ids: number[], j: number, checkId: number): boolean {
  const nl = encodeText('\n')[0];
  let k = j - 2;
  while (k >= 0 && ids[k] !== nl) k--;
  return ids[k + 1] === checkId;
}
