// Training corpora of the organism, as token ids (prompt masked, answer scored).
//  - base ("pre-training"): traces that verify at random, uninformative moments (independent of
//    whether the quick result is wrong), plus stand-alone verification exercises;
//  - thinking (distillation): traces that verify after every quick computation and backtrack on a
//    mismatch.
import { Rng } from '../rng.ts';
import { type Exercise, makeExercise, makeTrace, type Trace, type VerifyPolicy } from './language.ts';
import { DEFAULT_DIFFICULTY, type Difficulty, generateProblems, type OpKind, quickResult, trueResult } from './task.ts';
import { encodeAnswer, encodePrompt } from './vocab.ts';

export interface Example {
  prompt: number[];
  target: number[];
}

export interface CorpusOptions {
  seed: number;
  /** number of problems with traces */
  traces: number;
  /** number of stand-alone verification exercises */
  exercises: number;
  policy: VerifyPolicy;
  difficulty?: Difficulty;
}

export interface Corpus {
  traces: Trace[];
  exercises: Exercise[];
  examples: Example[];
  tokens: number;
}

export const BASE_VERIFY_P = 0.15;

/** A claim about v op n: the quick result half the time, the true result or a near miss otherwise. */
function exerciseClaim(rng: Rng, v: number, op: { kind: OpKind; n: number }, d: Difficulty): number {
  const r = rng.next();
  if (r < 0.5) return quickResult(v, op);
  if (r < 0.8) return trueResult(v, op);
  const t = trueResult(v, op);
  const deltas = [-10, 10, -1, 1, -20, 20].filter((x) => t + x >= d.minValue && t + x <= d.maxValue);
  return t + deltas[rng.int(deltas.length)];
}

function sampleExercise(rng: Rng, d: Difficulty): Exercise {
  for (;;) {
    const kind: OpKind = rng.next() < 0.5 ? 'add' : 'sub';
    const span = d.maxValue - d.minValue + 1;
    const v = d.minValue + rng.int(span);
    const n = d.minValue + rng.int(span);
    const op = { kind, n };
    const results = [trueResult(v, op), quickResult(v, op)];
    if (results.some((x) => x < d.minValue || x > d.maxValue)) continue;
    return makeExercise(v, op, exerciseClaim(rng, v, op, d));
  }
}

export function buildCorpus(o: CorpusOptions): Corpus {
  const d = o.difficulty ?? DEFAULT_DIFFICULTY;
  const rng = new Rng(o.seed * 7919 + 17);
  const problems = generateProblems('train', o.traces, o.seed, d);
  const traces = problems.map((p) => makeTrace(p, o.policy, rng));
  const exercises = Array.from({ length: o.exercises }, () => sampleExercise(rng, d));
  const examples: Example[] = [
    ...traces.map((t) => ({ prompt: encodePrompt(t.problem.question), target: encodeAnswer(t.text) })),
    ...exercises.map((e) => ({ prompt: encodePrompt(e.question), target: encodeAnswer(e.text) })),
  ];
  // interleave deterministically so any prefix of the list is a fair sample
  const order = examples.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const shuffled = order.map((i) => examples[i]);
  const tokens = shuffled.reduce((n, e) => n + e.prompt.length + e.target.length, 0);
  return { traces, exercises, examples: shuffled, tokens };
}
