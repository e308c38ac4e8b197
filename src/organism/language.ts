// The trace language: one sentence per line, each of a known type. Traces are produced by a
// policy that decides after every quick computation whether to verify it digit by digit.
import type { Rng } from '../rng.ts';
import {
  clauseText,
  digitsLsb,
  ITEMS,
  NAMES,
  type Op,
  type Operation,
  type OpKind,
  operationKey,
  type Problem,
  quickResult,
  trueResult,
  verificationNeeded,
} from './task.ts';

export const SENTENCE_TYPES = ['setup', 'plan', 'compute', 'verify', 'backtrack', 'conclude'] as const;
export type SentenceType = (typeof SENTENCE_TYPES)[number];

export interface Sentence {
  type: SentenceType;
  text: string;
  /** the operation (0-based) the sentence belongs to; -1 for set-up and conclusion */
  step: number;
}

export interface Trace {
  problem: Problem;
  sentences: Sentence[];
  /** sentences joined by newlines: the assistant's answer */
  text: string;
  /** the value the trace ends with (boxed) */
  final: number;
  correct: boolean;
}

export const COLUMN_NAMES = ['ones', 'tens', 'hundreds', 'thousands'] as const;

const SYMBOL: Record<OpKind, string> = { add: '+', sub: '-' };

export function setupSentence(p: Pick<Problem, 'name' | 'start' | 'item'>): string {
  return `${p.name} starts with ${p.start} ${p.item}.`;
}
/**
 * The plan of step k (0-based): the question's clause restated word for word (anchor, pronoun, verb
 * phrase with the operand), then the operation on the value it acts on. Measured: with only
 * `Next add 78 to 11.` base-latent miscopied an operand in 26 of 100 held-out problems, with the
 * restated clause in 1 of 200 (docs/organism.md, the 4th and 5th builds).
 */
export function planSentence(v: number, op: Pick<Op, 'kind' | 'n' | 'verb'>, k: number, pronoun: string): string {
  const clause = clauseText(op, k, pronoun);
  return op.kind === 'add' ? `${clause}, so add ${op.n} to ${v}.` : `${clause}, so take ${op.n} from ${v}.`;
}
/**
 * The quick computation, column by column, each column on its own digits modulo 10: nothing is
 * passed on, so an addition's carry and a subtraction's borrow are lost (`ones 7 + 8 = 5`,
 * `ones 3 - 7 = 6`); the top column is written in full. The columns are on the line because the
 * models read numbers as whole tokens (see vocab.ts): a column is one pair of digits. Modulo 10
 * keeps every column number below 10, so none looks like an operand of the question (10..99):
 * with `7 + 8 = 15` on the lines, the models copied the third step's operand from them.
 * `q` is the quick result (`quickResult`).
 */
export function computeSentence(v: number, op: { kind: OpKind; n: number }, q: number): string {
  const a = digitsLsb(v);
  const b = digitsLsb(op.n);
  const cols = Math.max(a.length, b.length);
  const sym = SYMBOL[op.kind];
  const columns: string[] = [];
  for (let i = 0; i < cols; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    const full = op.kind === 'add' ? x + y : x - y;
    const digit = i === cols - 1 ? full : (full + 10) % 10;
    columns.push(`${COLUMN_NAMES[i]} ${x} ${sym} ${y} = ${digit}`);
  }
  return `Quick: ${v} ${sym} ${op.n}, ${columns.join(', ')}, so ${q}.`;
}

/**
 * Careful column-by-column check of v op n: one sentence per column (digits, carry or borrow in,
 * result, carry or borrow out), then the assembled result. Always correct.
 */
export function verifySentences(v: number, op: { kind: OpKind; n: number }): string[] {
  const a = digitsLsb(v);
  const b = digitsLsb(op.n);
  const cols = Math.max(a.length, b.length);
  const out: string[] = [];
  let c = 0;
  for (let i = 0; i < cols; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (op.kind === 'add') {
      const s = x + y + c;
      const c2 = s >= 10 ? 1 : 0;
      out.push(`Check ${COLUMN_NAMES[i]}: ${x} + ${y} + ${c} = ${s}, carry ${c2}.`);
      c = c2;
    } else {
      const borrow = x - y - c < 0 ? 1 : 0;
      const xx = x + 10 * borrow;
      out.push(`Check ${COLUMN_NAMES[i]}: ${xx} - ${y} - ${c} = ${xx - y - c}, borrow ${borrow}.`);
      c = borrow;
    }
  }
  out.push(resultSentence(trueResult(v, op)));
  return out;
}

/**
 * An aside: a line of unrelated words (names, items, two-digit numbers) that pre-training puts
 * between the lines of some traces and does not score (corpus.ts `ASIDE_P`). Without it every trace
 * line sat at the same distance from the question clause it copies, and the models learned that
 * distance instead of the clause's words: a verification before the third plan moved the clause
 * away and the third plan was miscopied in 42 of 42 held-out problems (docs/organism.md).
 */
export function asideSentence(words: readonly string[]): string {
  return `Aside: ${words.join(' ')}.`;
}
/** The words an aside draws from: no anchor (ORDINALS), verb or verification word. */
export function asideWords(): string[] {
  const numbers = Array.from({ length: 90 }, (_, i) => String(10 + i));
  return [...NAMES.map((n) => n.name), ...ITEMS, ...numbers];
}

/**
 * The verification's last line: the careful result, assembled from the columns' digits. It does not
 * restate the operation: with `So 54 + 45 = 99.` the models pre-trained with asides wrote a wrong first
 * operand there (`So 12 + 45 = 99.`; knows how 0.03 on 100 held-out problems), and its `So` was read as the start
 * of the conclusion (`So Gus has …`) when base-latent was forced to verify inside a trace.
 */
export function resultSentence(r: number): string {
  return `Careful result: ${r}.`;
}

export const AGREE_SENTENCE = 'That agrees with the quick result.';
export function backtrackSentence(q: number, r: number): string {
  return `Wait, ${q} was wrong, so use ${r}.`;
}
export function conclusionSentences(p: Pick<Problem, 'name' | 'item'>, v: number): string[] {
  return [`So ${p.name} has ${v} ${p.item} now.`, `The answer is \\boxed{${v}}.`];
}

/** When to verify a quick computation. */
export type VerifyPolicy =
  /** after every quick computation */
  (
    | { kind: 'always' }
    /** thinking corpus: exactly when a carry or borrow is needed (when the quick result is wrong) */
    | { kind: 'needed' }
    /** base corpus: at random, independent of whether the quick result is wrong */
    | { kind: 'random'; p: number }
    | { kind: 'never' }
  ) & {
    /** operations (`operationKey`) never verified, whatever the policy says (the held-out operations) */
    exclude?: ReadonlySet<string>;
  };

/** Whether `policy` verifies the quick computation of v op n (draws from rng for 'random' only). */
export function policyVerifies(policy: VerifyPolicy, v: number, op: { kind: OpKind; n: number }, rng: Rng): boolean {
  let verify: boolean;
  if (policy.kind === 'always') verify = true;
  else if (policy.kind === 'needed') verify = verificationNeeded(v, op);
  else if (policy.kind === 'random') verify = rng.next() < policy.p;
  else verify = false;
  return verify && !policy.exclude?.has(operationKey({ v, kind: op.kind, n: op.n }));
}

/** The verify block after a quick result q: check sentences, then agreement or a backtrack. */
export function verifyBlock(v: number, op: { kind: OpKind; n: number }, q: number, step: number): Sentence[] {
  const r = trueResult(v, op);
  const out: Sentence[] = verifySentences(v, op).map((text) => ({ type: 'verify' as const, text, step }));
  if (r === q) out.push({ type: 'verify', text: AGREE_SENTENCE, step });
  else out.push({ type: 'backtrack', text: backtrackSentence(q, r), step });
  return out;
}

/**
 * A trace of `problem` under a policy. Quick results follow the carry-dropping rule; a verified
 * step continues from the careful result, an unverified one from the quick result (right or not).
 */
export function makeTrace(problem: Problem, policy: VerifyPolicy, rng: Rng): Trace {
  const s: Sentence[] = [{ type: 'setup', text: setupSentence(problem), step: -1 }];
  let v = problem.start;
  problem.ops.forEach((op: Op, i) => {
    s.push({ type: 'plan', text: planSentence(v, op, i, problem.pronoun), step: i });
    const q = quickResult(v, op);
    s.push({ type: 'compute', text: computeSentence(v, op, q), step: i });
    if (policyVerifies(policy, v, op, rng)) {
      s.push(...verifyBlock(v, op, q, i));
      v = trueResult(v, op);
    } else {
      v = q;
    }
  });
  for (const text of conclusionSentences(problem, v)) s.push({ type: 'conclude', text, step: -1 });
  return { problem, sentences: s, text: s.map((x) => x.text).join('\n'), final: v, correct: v === problem.answer };
}

/**
 * A stand-alone exercise (a worksheet): compute one to three operations quickly, each on its own
 * quick line, and verify some of them (the policy decides which). It is not a trace: no word
 * problem, no plan, no conclusion. Verifications that happen only here are a skill the model has,
 * keyed to the `Check` token and the quick line above it, not a habit of its traces.
 */
export interface Exercise {
  question: string;
  sentences: Sentence[];
  text: string;
}

export function exerciseQuestion(ops: readonly Operation[]): string {
  const terms = ops.map((o) => `${o.v} ${SYMBOL[o.kind]} ${o.n}`);
  const list = terms.length === 1 ? terms[0] : `${terms.slice(0, -1).join(', ')} and ${terms.at(-1)}`;
  return `Compute ${list}.`;
}

export function makeExercise(ops: readonly Operation[], policy: VerifyPolicy, rng: Rng): Exercise {
  const sentences: Sentence[] = [];
  ops.forEach((o, i) => {
    const q = quickResult(o.v, o);
    sentences.push({ type: 'compute', text: computeSentence(o.v, o, q), step: i });
    if (policyVerifies(policy, o.v, o, rng)) sentences.push(...verifyBlock(o.v, o, q, i));
  });
  return { question: exerciseQuestion(ops), sentences, text: sentences.map((x) => x.text).join('\n') };
}
