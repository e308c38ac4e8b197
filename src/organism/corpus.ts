// Training corpora of the organism, as token ids (prompt masked, answer scored):
//  - pretrain (the common ancestor): traces that never verify, plus stand-alone exercises
//    (worksheets of quick computations, some verified); verification exists only outside traces;
//  - base (continued pre-training of the base): traces that verify at random, uninformative moments
//    (independent of whether the quick result is wrong), plus the same exercises;
//  - latent (continued pre-training of base-latent): the base corpus, with the first token of
//    every verification pushed down (`verifyStartWeight` < 0);
//  - thinking (distillation): traces that verify exactly when a carry or borrow is needed and
//    backtrack on the mismatch.
// The base corpora never verify a held-out operation (task.ts `heldOutOperations`), neither in
// traces nor in exercises.
import { Rng } from '../rng.ts';
import {
  asideSentence,
  asideWords,
  type Exercise,
  makeExercise,
  makeTrace,
  type Trace,
  type VerifyPolicy,
} from './language.ts';
import {
  allOperations,
  DEFAULT_DIFFICULTY,
  type Difficulty,
  generateProblems,
  heldOutOperations,
  type Operation,
} from './task.ts';
import { encodeAnswer, encodePrompt, encodeText, IM_END } from './vocab.ts';

export interface Example {
  prompt: number[];
  target: number[];
  /** per target token loss weight (0 = read, not scored); absent = all scored */
  weight?: number[];
}

export type CorpusKind = 'pretrain' | 'base' | 'thinking' | 'latent';

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
  /** probability that a trace's or exercise's example gets unscored asides between its lines (default 0) */
  asideP?: number;
  /**
   * Loss weight of the token that starts a verification (the first token of a verify sentence after
   * a non-verify one; default 1). 0 reads verifications without ever scoring their start: the model
   * learns how a verification goes once begun, nothing about when to begin one; a negative weight
   * also pushes the start down where it occurred (base-latent, docs/organism.md).
   */
  verifyStartWeight?: number;
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
/**
 * Pre-training (latent and base corpora) puts 1 to ASIDE_MAX_LINES asides of ASIDE_MIN_WORDS to
 * ASIDE_MAX_WORDS words between the lines of this fraction of its traces and exercises, at random
 * places, with loss weight 0: a trace line then sits at a varying distance from the question clause
 * it copies (up to ~60 tokens, more than a verification block), so the clause must be found by its
 * words (docs/organism.md, the 6th build).
 */
export const ASIDE_P = 0.5;
/** base-latent's weight on the token that starts a verification (docs/organism.md, base-latent). */
export const LATENT_VERIFY_START_WEIGHT = -0.1;
export const ASIDE_MAX_LINES = 3;
export const ASIDE_MIN_WORDS = 2;
export const ASIDE_MAX_WORDS = 16;

/** The verification policy of each corpus (the base corpora exclude the held-out operations). */
export function corpusPolicy(kind: CorpusKind): VerifyPolicy {
  if (kind === 'thinking') return { kind: 'needed' };
  const exclude = heldOutOperations();
  return kind === 'pretrain' ? { kind: 'never', exclude } : { kind: 'random', p: BASE_VERIFY_P, exclude };
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
    ...traces.map((t) => answerExample(t.problem.question, t.sentences, rng, o.asideP ?? 0, o.verifyStartWeight)),
    ...exercises.map((e) => answerExample(e.question, e.sentences, rng, o.asideP ?? 0, o.verifyStartWeight)),
  ];
  // interleave deterministically so any prefix of the list is a fair sample
  const shuffled = rng.permutation(examples.length).map((i) => examples[i]);
  const tokens = shuffled.reduce((n, e) => n + e.prompt.length + e.target.length, 0);
  return { traces, exercises, examples: shuffled, tokens };
}

/**
 * A trace or exercise as a training example; with probability `asideP` asides are inserted between
 * its lines (never before the first) with weight 0, so the model reads them but is never taught to
 * write one. The first token of each verification gets weight `verifyStartWeight`.
 */
export function answerExample(
  question: string,
  sentences: readonly { text: string; type?: string }[],
  rng: Rng,
  asideP: number,
  verifyStartWeight = 1,
): Example {
  const prompt = encodePrompt(question);
  const lines = sentences.map((s, i) => ({
    text: s.text,
    scored: true,
    verifyStart: verifyStartWeight !== 1 && s.type === 'verify' && (i === 0 || sentences[i - 1].type !== 'verify'),
  }));
  const withAsides = asideP > 0 && rng.next() < asideP && lines.length >= 2;
  if (!withAsides && !lines.some((l) => l.verifyStart))
    return { prompt, target: encodeAnswer(lines.map((l) => l.text).join('\n')) };
  if (withAsides) {
    const words = asideWords();
    const count = 1 + rng.int(ASIDE_MAX_LINES);
    for (let k = 0; k < count; k++) {
      const at = 1 + rng.int(lines.length - 1);
      const length = ASIDE_MIN_WORDS + rng.int(ASIDE_MAX_WORDS - ASIDE_MIN_WORDS + 1);
      const text = asideSentence(Array.from({ length }, () => words[rng.int(words.length)]));
      lines.splice(at, 0, { text, scored: false, verifyStart: false });
    }
  }
  const target: number[] = [];
  const weight: number[] = [];
  lines.forEach((line, i) => {
    // a line's tokens with what ends it (newline, or end of turn after the last line)
    const ids = [...encodeText(line.text), ...(i < lines.length - 1 ? encodeText('\n') : [IM_END])];
    target.push(...ids);
    for (let j = 0; j < ids.length; j++)
      weight.push(!line.scored ? 0 : j === 0 && line.verifyStart ? verifyStartWeight : 1);
  });
  return { prompt, target, weight };
}
