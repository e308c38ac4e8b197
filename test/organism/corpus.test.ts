import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildCorpus } from '../../src/organism/corpus.ts';
import { analyzeTrace } from '../../src/organism/parser.ts';
import { maskedBatch } from '../../src/organism/train.ts';
import { decodeIds, encodeAnswer, encodePrompt, IM_END } from '../../src/organism/vocab.ts';

test('corpora: deterministic; base verifies at random, thinking always', () => {
  const a = buildCorpus({ seed: 3, traces: 600, exercises: 100, policy: { kind: 'random', p: 0.15 } });
  const b = buildCorpus({ seed: 3, traces: 600, exercises: 100, policy: { kind: 'random', p: 0.15 } });
  assert.deepEqual(a.examples, b.examples);
  assert.equal(a.examples.length, 700);
  const steps = a.traces.flatMap((t) => analyzeTrace(t.text).steps);
  const rate = steps.filter((s) => s.verified).length / steps.length;
  assert.ok(rate > 0.1 && rate < 0.2, `base verify rate ${rate}`);
  // uninformative: the verify rate does not depend on whether the quick result is wrong
  const wrong = steps.filter((s) => s.quickWrong);
  const right = steps.filter((s) => !s.quickWrong);
  const r1 = wrong.filter((s) => s.verified).length / wrong.length;
  const r2 = right.filter((s) => s.verified).length / right.length;
  assert.ok(Math.abs(r1 - r2) < 0.08, `${r1} vs ${r2}`);
  const t = buildCorpus({ seed: 4, traces: 200, exercises: 0, policy: { kind: 'always' } });
  assert.ok(t.traces.every((x) => x.correct && analyzeTrace(x.text).steps.every((s) => s.verified)));
  // exercises: claims that agree and claims that do not
  const kinds = new Set(a.exercises.map((e) => e.sentences.at(-1)!.type));
  assert.deepEqual([...kinds].sort(), ['backtrack', 'verify']);
});

test('masked batches: only answer tokens are scored', () => {
  const e1 = { prompt: encodePrompt('Q one?'), target: encodeAnswer('So 1 + 2 = 3.') };
  const e2 = {
    prompt: encodePrompt('Is 1 + 2 = 3 right?'),
    target: encodeAnswer('That agrees with the quick result.'),
  };
  const b = maskedBatch([e1, e2], 16);
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
