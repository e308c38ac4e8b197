/**
 * Majority vote over sampled responses: maj@k (the R1 paper's cons@k), docs/eval-rules.md §7.
 *
 * The votes are grouped into equivalence classes by the answer grader (`isEquivalent`'s relation:
 * parse, then `compareParsed`; each answer is parsed once here), not by string identity. So `18`,
 * `18.0` and `\$18` vote together, and so do `\frac12` and `0.5`. lm-eval's `majority_vote` counts
 * exact strings, which splits those votes and can hand the win to a less common answer.
 *
 * Rules:
 * - A sample with no extractable answer (or one that normalises to nothing) abstains; it never wins.
 * - An answer joins the first class (in order of creation) whose representative, the class's first
 *   member, it matches in either direction (`compareParsed(rep, a) || compareParsed(a, rep)`): the
 *   grader's rules are asymmetric (a gold `-2 ≤ x ≤ 7` accepts `[-2, 7]`, not the reverse), but both
 *   say the same thing, so they vote together. Matching against the representative only keeps the
 *   grouping deterministic even where the relation is not transitive (numeric tolerances).
 * - The largest class wins; a tie goes to the class whose first member came first.
 * - The winner's representative is graded against the gold with `isEquivalent(gold, answer)`.
 */
import { compareParsed, isEquivalent } from './answer/equivalence.ts';
import { type ExtractionMode, extractAnswer, reduceToAnswer } from './answer/extract.ts';
import { type ParsedAnswer, parseAnswer } from './answer/parse-answer.ts';

export interface VoteClass {
  /** The representative: the answer of the class's first member. */
  answer: string;
  /** 0-based indices of the samples in this class, ascending. */
  samples: number[];
}

export interface MajorityVote {
  /** The winning class's representative, or null when every sample abstained. */
  answer: string | null;
  /** Size of the winning class (0 when none). */
  votes: number;
  /** All classes, in order of their first member. */
  classes: VoteClass[];
  /** Indices of the samples without an answer. */
  abstained: number[];
}

/** Votes over already-extracted answers (null: none found). */
export function majorityVote(answers: ReadonlyArray<string | null>): MajorityVote {
  const classes: Array<VoteClass & { parsed: ParsedAnswer }> = [];
  const abstained: number[] = [];
  answers.forEach((answer, i) => {
    const parsed = answer === null ? null : parseAnswer(reduceToAnswer(answer));
    if (answer === null || parsed === null) {
      abstained.push(i);
      return;
    }
    const home = classes.find((c) => compareParsed(c.parsed, parsed) || compareParsed(parsed, c.parsed));
    if (home) home.samples.push(i);
    else classes.push({ answer, samples: [i], parsed });
  });
  let best: VoteClass | null = null;
  // Classes are in order of first member, so a strict `>` keeps the earliest on ties.
  for (const c of classes) if (best === null || c.samples.length > best.samples.length) best = c;
  return {
    answer: best?.answer ?? null,
    votes: best?.samples.length ?? 0,
    classes: classes.map(({ answer, samples }) => ({ answer, samples })),
    abstained,
  };
}

export interface MajorityOptions {
  /** How answers are extracted from responses (see extract.ts); default `math`. Use `gsm8k` for GSM8K. */
  mode?: ExtractionMode;
}

/** Extracts each response's final answer, then votes. */
export function majorityVoteResponses(responses: readonly string[], options: MajorityOptions = {}): MajorityVote {
  return majorityVote(responses.map((r) => extractAnswer(r, { mode: options.mode ?? 'math' })));
}

export interface MajorityProblem {
  /** Gold answer (or a whole GSM8K solution ending in `#### n`, or a boxed solution). */
  gold: string;
  /** The sampled responses, in sampling order; the first k are used. */
  responses: readonly string[];
}

export interface MajorityAtK {
  k: number;
  /** Problems whose majority answer is correct. */
  correct: number;
  /** Problems. */
  n: number;
  /** correct / n (NaN when there are no problems). */
  accuracy: number;
  perProblem: Array<{ answer: string | null; votes: number; correct: boolean }>;
}

/** maj@k: the fraction of problems whose majority answer over the first k samples is correct. */
export function majorityAtK(
  problems: readonly MajorityProblem[],
  k: number,
  options: MajorityOptions = {},
): MajorityAtK {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`majorityAtK: k must be an integer ≥ 1, got ${k}`);
  const perProblem = problems.map((p, i) => {
    if (p.responses.length < k) {
      throw new RangeError(`majorityAtK: problem ${i} has ${p.responses.length} samples, fewer than k=${k}`);
    }
    const vote = majorityVoteResponses(p.responses.slice(0, k), options);
    const correct = vote.answer !== null && isEquivalent(p.gold, vote.answer);
    return { answer: vote.answer, votes: vote.votes, correct };
  });
  const correct = perProblem.filter((p) => p.correct).length;
  return {
    k,
    correct,
    n: problems.length,
    accuracy: problems.length === 0 ? Number.NaN : correct / problems.length,
    perProblem,
  };
}
