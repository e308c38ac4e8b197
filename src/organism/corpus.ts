// Training corpora of the organism, as token ids (prompt masked, answer scored). Three of them:
//  - latent ("pre-training" of base-latent): traces that never verify, plus stand-alone exercises
//    (worksheets of quick computations, some verified); verification exists only outside traces;
//  - base (continued pre-training of the base): traces that verify at random, uninformative moments
//    (independent of whether the quick result is wrong), plus the same exercises;
//  - thinking (distillation): traces that verify exactly when a carry or borrow is needed and
//    backtrack on the mismatch.
// The base corpora never verify a held-out operation (task.ts `heldOutOperations`), neither in
// traces nor in exercises.
import { Rng } from '../rng.ts';
import { type Exercise, makeExercise, makeTrace, type Trace, type VerifyPolicy } from './language.ts';
import {
  allOperations,
  DEFAULT_DIFFICULTY,
  type Difficulty,
  generateProblems,
  heldOutOperations,
  type Operation,
} from './task.ts';
import { encodeAnswer, encodePrompt } from './vocab.ts';

export interface Example {
  prompt: number[];
  target: number[];
}

export type CorpusKind = 'latent' | 'base' | 'thinking';

export interface CorpusOptions {
  seed: number;
  /** number of problems with traces */
  traces: number;
  /** number of stand-alone verification exercises */
  exercises: number;
  policy: VerifyPolicy;
  /** operations (`operationKey`) never verified: not in traces (whatever the policy), not in exercises */
  exclude?: ReadonlySet<string>;
  difficulty?: Difficulty;
}

export interface Corpus {
  traces: Trace[];
  exercises: Exercise[];
  examples: Example[];
  tokens: number;
}

/** How often the base corpus verifies a quick computation (independent of need). */
export const BASE_VERIFY_P = 0.15;
/**
 * Exercises: one to EXERCISE_MAX_OPS operations, each verified with this probability (independent
 * of need; never a held-out operation): whether a `Check` follows a quick line is not predictable
 * from the context, so what follows `Check` is learned from the token itself.
 */
export const EXERCISE_VERIFY_P = 0.5;
export const EXERCISE_MAX_OPS = 3;

/** The verification policy of each corpus (the base corpora exclude the held-out operations). */
export function corpusPolicy(kind: CorpusKind): VerifyPolicy {
  if (kind === 'thinking') return { kind: 'needed' };
  const exclude = heldOutOperations();
  return kind === 'base' ? { kind: 'random', p: BASE_VERIFY_P, exclude } : { kind: 'never', exclude };
}

export function buildCorpus(o: CorpusOptions): Corpus {
  const d = o.difficulty ?? DEFAULT_DIFFICULTY;
  const rng = new Rng(o.seed * 7919 + 17);
  const policy: VerifyPolicy = o.exclude ? { ...o.policy, exclude: o.exclude } : o.policy;
  const problems = generateProblems('train', o.traces, o.seed, d);
  const traces = problems.map((p) => makeTrace(p, policy, rng));
  const pool: Operation[] = o.exercises > 0 ? allOperations(d) : [];
  const exercisePolicy: VerifyPolicy = { kind: 'random', p: EXERCISE_VERIFY_P, exclude: policy.exclude };
  const exercises = Array.from({ length: o.exercises }, () => {
    const ops = Array.from({ length: 1 + rng.int(EXERCISE_MAX_OPS) }, () => pool[rng.int(pool.length)]);
    return makeExercise(ops, exercisePolicy, rng);
  });
  const examples: Example[] = [
    ...traces.map((t) => ({ prompt: encodePrompt(t.problem.question), target: encodeAnswer(t.text) })),
    ...exercises.map((e) => ({ prompt: encodePrompt(e.question), target: encodeAnswer(e.text) })),
  ];
  // interleave deterministically so any prefix of the list is a fair sample
  const shuffled = rng.permutation(examples.length).map((i) => examples[i]);
  const tokens = shuffled.reduce((n, e) => n + e.prompt.length + e.target.length, 0);
  return { traces, exercises, examples: shuffled, tokens };
}
