// Deterministic parser of the trace language: labels every line of a trace with its sentence type
// (or null when the line is not a sentence of the language) and reads the numbers out of it.
// The analysis walks the labelled sentences and says, for every quick computation, whether it was
// wrong, whether it was verified, whether the verification was done correctly and what followed.
import { AGREE_SENTENCE, COLUMN_NAMES, type SentenceType, verifySentences } from './language.ts';
import { NAMES, type OpKind, ORDINALS, type Problem, trueResult, VERBS } from './task.ts';

export type SentenceForm =
  | { form: 'setup'; name: string; value: number; item: string }
  /** `clause`: the question's clause the plan restates (its operation and operand) */
  | { form: 'plan'; step: number; kind: OpKind; n: number; v: number; clause: { kind: OpKind; n: number } }
  | { form: 'compute'; kind: OpKind; v: number; n: number; q: number }
  | { form: 'column'; column: number; kind: OpKind }
  | { form: 'result'; r: number }
  | { form: 'agree' }
  | { form: 'backtrack'; wrong: number; value: number }
  | { form: 'conclusion'; name: string; value: number; item: string }
  | { form: 'answer'; value: number };

export interface ParsedSentence {
  text: string;
  /** null: not a sentence of the trace language */
  type: SentenceType | null;
  parsed: SentenceForm | null;
}

const NUM = '(0|[1-9][0-9]*)';
/** one column of a quick line (`ones 13 - 7 = 6`), without capture groups */
const QUICK_COLUMN = `(?:${COLUMN_NAMES.join('|')}) (?:0|[1-9][0-9]*) [+-] (?:0|[1-9][0-9]*) = -?(?:0|[1-9][0-9]*)`;
const ordinal = (w: string) => ORDINALS.indexOf(w as (typeof ORDINALS)[number]);
const PRONOUNS = [...new Set(NAMES.map((x) => x.pronoun.toLowerCase()))].join('|');
/** the clauses of a question after its anchor word: `she gets 78 more` */
const CLAUSE_RULES: { re: RegExp; kind: OpKind; verb: number }[] = (['add', 'sub'] as const).flatMap((kind) =>
  VERBS[kind].map((phrase, verb) => ({
    re: new RegExp(`^(?:${PRONOUNS}) ${phrase.replace('{n}', NUM)}$`),
    kind,
    verb,
  })),
);
function parseClause(text: string): { kind: OpKind; n: number; verb: number } | null {
  for (const r of CLAUSE_RULES) {
    const m = r.re.exec(text);
    if (m) return { kind: r.kind, n: +m[1], verb: r.verb };
  }
  return null;
}
function planForm(m: RegExpExecArray, kind: OpKind): SentenceForm | null {
  const clause = parseClause(m[2]);
  return clause && { form: 'plan', step: ordinal(m[1]), kind, n: +m[3], v: +m[4], clause };
}
const RULES: [RegExp, (m: RegExpExecArray) => SentenceForm | null][] = [
  [
    new RegExp(`^([A-Z][a-z]+) starts with ${NUM} ([a-z]+)\\.$`),
    (m) => ({ form: 'setup', name: m[1], value: +m[2], item: m[3] }),
  ],
  [new RegExp(`^(${ORDINALS.join('|')}) ([^,]+), so add ${NUM} to ${NUM}\\.$`), (m) => planForm(m, 'add')],
  [new RegExp(`^(${ORDINALS.join('|')}) ([^,]+), so take ${NUM} from ${NUM}\\.$`), (m) => planForm(m, 'sub')],
  [
    new RegExp(`^Quick: ${NUM} ([+-]) ${NUM}((?:, ${QUICK_COLUMN})+), so (-?${NUM})\\.$`),
    (m) => ({ form: 'compute', kind: m[2] === '+' ? 'add' : 'sub', v: +m[1], n: +m[3], q: +m[5] }),
  ],
  [
    new RegExp(
      `^Check (${COLUMN_NAMES.join('|')}): ${NUM} ([+-]) ${NUM} \\3 ${NUM} = ${NUM}, (carry|borrow) ${NUM}\\.$`,
    ),
    (m) => ({
      form: 'column',
      column: COLUMN_NAMES.indexOf(m[1] as (typeof COLUMN_NAMES)[number]),
      kind: m[3] === '+' ? 'add' : 'sub',
    }),
  ],
  [new RegExp(`^Careful result: (-?${NUM})\\.$`), (m) => ({ form: 'result', r: +m[1] })],
  [new RegExp(`^${AGREE_SENTENCE.replace('.', '\\.')}$`), () => ({ form: 'agree' })],
  [
    new RegExp(`^Wait, (-?${NUM}) was wrong, so use (-?${NUM})\\.$`),
    (m) => ({ form: 'backtrack', wrong: +m[1], value: +m[3] }),
  ],
  [
    new RegExp(`^So ([A-Z][a-z]+) has (-?${NUM}) ([a-z]+) now\\.$`),
    (m) => ({ form: 'conclusion', name: m[1], value: +m[2], item: m[4] }),
  ],
  [new RegExp(`^The answer is \\\\boxed\\{(-?${NUM})\\}\\.$`), (m) => ({ form: 'answer', value: +m[1] })],
];

const TYPE_OF: Record<SentenceForm['form'], SentenceType> = {
  setup: 'setup',
  plan: 'plan',
  compute: 'compute',
  column: 'verify',
  result: 'verify',
  agree: 'verify',
  backtrack: 'backtrack',
  conclusion: 'conclude',
  answer: 'conclude',
};

export function parseSentence(text: string): ParsedSentence {
  for (const [re, make] of RULES) {
    const m = re.exec(text);
    const parsed = m && make(m);
    if (parsed) return { text, type: TYPE_OF[parsed.form], parsed };
  }
  return { text, type: null, parsed: null };
}

/** Splits a trace into sentences (one per non-empty line) and labels each. */
export function parseTrace(text: string): ParsedSentence[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map(parseSentence);
}

export function parsedFraction(sentences: ParsedSentence[]): { parsed: number; total: number } {
  return { parsed: sentences.filter((s) => s.type !== null).length, total: sentences.length };
}

/** What happened after one quick computation. */
export interface StepAnalysis {
  /** index of the compute sentence in the parsed list */
  index: number;
  kind: OpKind;
  v: number;
  n: number;
  q: number;
  /** the quick result differs from the true result of v op n (the model's own inputs) */
  quickWrong: boolean;
  /** the next sentence starts a verification (a column check) */
  verified: boolean;
  /** the verification's sentences are exactly the careful check of v op n (null: not verified) */
  verifyCorrect: boolean | null;
  /** the result the verification arrived at (null: none) */
  verifyResult: number | null;
  /** the sentence after the verification: 'agree', 'backtrack', or null (anything else) */
  followup: 'agree' | 'backtrack' | null;
  /** the value a backtrack switched to (null: no backtrack) */
  backtrackValue: number | null;
  /** index just past the step's last sentence */
  end: number;
}

export interface TraceAnalysis {
  sentences: ParsedSentence[];
  steps: StepAnalysis[];
  /** the boxed value, or null */
  answer: number | null;
}

export function analyzeTrace(text: string): TraceAnalysis {
  const sentences = parseTrace(text);
  const steps: StepAnalysis[] = [];
  let answer: number | null = null;
  for (let i = 0; i < sentences.length; i++) {
    const p = sentences[i].parsed;
    if (p?.form === 'answer') answer = p.value;
    if (p?.form !== 'compute') continue;
    const op = { kind: p.kind, n: p.n };
    const step: StepAnalysis = {
      index: i,
      kind: p.kind,
      v: p.v,
      n: p.n,
      q: p.q,
      quickWrong: p.q !== trueResult(p.v, op),
      verified: false,
      verifyCorrect: null,
      verifyResult: null,
      followup: null,
      backtrackValue: null,
      end: i + 1,
    };
    let j = i + 1;
    if (sentences[j]?.parsed?.form === 'column' || sentences[j]?.text.startsWith('Check')) {
      step.verified = true;
      const lines: string[] = [];
      while (
        j < sentences.length &&
        (sentences[j].parsed?.form === 'column' || sentences[j].text.startsWith('Check'))
      ) {
        lines.push(sentences[j].text);
        j++;
      }
      const res = sentences[j]?.parsed;
      if (res?.form === 'result') {
        lines.push(sentences[j].text);
        step.verifyResult = res.r;
        j++;
      }
      const expected = verifySentences(p.v, op);
      step.verifyCorrect = lines.length === expected.length && lines.every((l, k) => l === expected[k]);
      const f = sentences[j]?.parsed;
      if (f?.form === 'agree') {
        step.followup = 'agree';
        j++;
      } else if (f?.form === 'backtrack') {
        step.followup = 'backtrack';
        step.backtrackValue = f.value;
        j++;
      }
    }
    step.end = j;
    steps.push(step);
  }
  return { sentences, steps, answer };
}

/** What a question asks, read back from its text (null: not a question of the organism's task). */
export type ParsedQuestion = Pick<Problem, 'name' | 'item' | 'start' | 'ops' | 'answer'>;

const QUESTION_CLAUSE = new RegExp(`^(${ORDINALS.join('|')}) (.+)\\.$`);

const QUESTION = new RegExp(
  `^([A-Z][a-z]+) has ${NUM} ([a-z]+)\\. (.*) How many ([a-z]+) does ([A-Z][a-z]+) have now\\?$`,
);

/** The problem a question states: start, operations and the true answer (null: not one of ours). */
export function parseQuestion(text: string): ParsedQuestion | null {
  const m = QUESTION.exec(text.trim());
  if (!m || m[5] !== m[3] || m[6] !== m[1]) return null;
  const ops: ParsedQuestion['ops'] = [];
  for (const clause of m[4].split(/(?<=\.) /)) {
    const m2 = QUESTION_CLAUSE.exec(clause);
    const op = m2 && parseClause(m2[2]);
    if (!op || ordinal(m2[1]) !== ops.length) return null;
    ops.push(op);
  }
  const start = +m[2];
  return { name: m[1], item: m[3], start, ops, answer: ops.reduce((v, op) => trueResult(v, op), start) };
}

/**
 * Operand errors of a trace against its question (empty: none): the start value, each step's
 * operation and operand in the question's order, the value each step starts from (the previous
 * step's quick result, or the value a backtrack switched to), the quick line restating the plan,
 * the number of steps, and the conclusion and boxed answer restating the last value. None of these
 * is an arithmetic slip, so no verification can repair them.
 */
export function operandErrors(q: Pick<ParsedQuestion, 'start' | 'ops'>, a: TraceAnalysis): string[] {
  const errors: string[] = [];
  const forms = a.sentences.map((s) => s.parsed);
  const setup = forms.find((f) => f?.form === 'setup');
  if (setup?.form !== 'setup' || setup.value !== q.start)
    errors.push(`start ${setup?.form === 'setup' ? setup.value : 'missing'}, question says ${q.start}`);
  if (a.steps.length !== q.ops.length) errors.push(`${a.steps.length} steps, question has ${q.ops.length}`);
  let v = q.start;
  for (const [k, st] of a.steps.entries()) {
    const op = q.ops[k];
    const plan = forms[st.index - 1];
    if (op && (st.kind !== op.kind || st.n !== op.n))
      errors.push(`step ${k + 1}: ${st.kind} ${st.n}, question says ${op.kind} ${op.n}`);
    if (plan?.form !== 'plan' || plan.kind !== st.kind || plan.n !== st.n || plan.v !== st.v)
      errors.push(`step ${k + 1}: the quick line does not restate the plan`);
    else if (plan.clause.kind !== plan.kind || plan.clause.n !== plan.n)
      errors.push(
        `step ${k + 1}: the plan restates ${plan.clause.kind} ${plan.clause.n} but does ${plan.kind} ${plan.n}`,
      );
    else if (plan.step !== k) errors.push(`step ${k + 1}: the plan opens with ${ORDINALS[plan.step]}`);
    if (st.v !== v) errors.push(`step ${k + 1}: starts from ${st.v}, the trace holds ${v}`);
    v = st.followup === 'backtrack' && st.backtrackValue !== null ? st.backtrackValue : st.q;
  }
  const conclusion = forms.find((f) => f?.form === 'conclusion');
  if (conclusion?.form === 'conclusion' && conclusion.value !== v)
    errors.push(`conclusion ${conclusion.value}, the trace holds ${v}`);
  if (a.answer !== null && a.answer !== v) errors.push(`answer ${a.answer}, the trace holds ${v}`);
  return errors;
}
