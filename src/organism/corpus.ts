// Training corpora of the organism, as token ids (prompt masked, answer scored). Three of them:
//  - latent ("pre-training" of base-latent): traces that never verify, plus stand-alone verification
//    exercises; verification exists only outside traces;
//  - base (continued pre-training of the base): traces that verify at random, uninformative moments
//    (independent of whether the quick result is wrong), plus the same kind of exercises;
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
  type OpKind,
  operationKey,
  quickResult,
  trueResult,
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

/** The verification policy of each corpus (the base corpora exclude the held-out operations). */
export function corpusPolicy(kind: CorpusKind): VerifyPolicy {
  if (kind === 'thinking') return { kind: 'needed' };
  const exclude = heldOutOperations();
  return kind === 'base' ? { kind: 'random', p: BASE_VERIFY_P, exclude } : { kind: 'never', exclude };
}

/** A claim about v op n: the quick result half the time, the true result or a near miss otherwise. */
function exerciseClaim(rng: Rng, v: number, op: { kind: OpKind; n: number }, d: Difficulty): number {
  const r = rng.next();
  if (r < 0.5) return quickResult(v, op);
  if (r < 0.8) return trueResult(v, op);
  const t = trueResult(v, op);
  const deltas = [-10, 10, -1, 1, -20, 20].filter((x) => t + x >= d.minValue && t + x <= d.maxValue);
  return t + deltas[rng.int(deltas.length)];
}

export function buildCorpus(o: CorpusOptions): Corpus {
  const d = o.difficulty ?? DEFAULT_DIFFICULTY;
  const rng = new Rng(o.seed * 7919 + 17);
  const policy: VerifyPolicy = o.exclude ? { ...o.policy, exclude: o.exclude } : o.policy;
  const problems = generateProblems('train', o.traces, o.seed, d);
  const traces = problems.map((p) => makeTrace(p, policy, rng));
  const exclude = policy.exclude;
  const pool: Operation[] = o.exercises > 0 ? allOperations(d).filter((x) => !exclude?.has(operationKey(x))) : [];
  const exercises = Array.from({ length: o.exercises }, () => {
    const x = pool[rng.int(pool.length)];
    return makeExercise(x.v, x, exerciseClaim(rng, x.v, x, d));
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
