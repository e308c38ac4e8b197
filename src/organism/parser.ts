// Deterministic parser of the trace language: labels every line of a trace with its sentence type
// (or null when the line is not a sentence of the language) and reads the numbers out of it.
// The analysis walks the labelled sentences and says, for every quick computation, whether it was
// wrong, whether it was verified, whether the verification was done correctly and what followed.
import { AGREE_SENTENCE, COLUMN_NAMES, type SentenceType, verifySentences } from './language.ts';
import { type OpKind, trueResult } from './task.ts';

export type SentenceForm =
  | { form: 'setup'; name: string; value: number; item: string }
  | { form: 'plan'; kind: OpKind; n: number; v: number }
  | { form: 'compute'; kind: OpKind; v: number; n: number; q: number }
  | { form: 'column'; column: number; kind: OpKind }
  | { form: 'result'; kind: OpKind; v: number; n: number; r: number }
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
const RULES: [RegExp, (m: RegExpExecArray) => SentenceForm][] = [
  [
    new RegExp(`^([A-Z][a-z]+) starts with ${NUM} ([a-z]+)\\.$`),
    (m) => ({ form: 'setup', name: m[1], value: +m[2], item: m[3] }),
  ],
  [new RegExp(`^Now add ${NUM} to ${NUM}\\.$`), (m) => ({ form: 'plan', kind: 'add', n: +m[1], v: +m[2] })],
  [new RegExp(`^Now take ${NUM} from ${NUM}\\.$`), (m) => ({ form: 'plan', kind: 'sub', n: +m[1], v: +m[2] })],
  [
    new RegExp(`^Quick: ${NUM} ([+-]) ${NUM} = (-?${NUM})\\.$`),
    (m) => ({ form: 'compute', kind: m[2] === '+' ? 'add' : 'sub', v: +m[1], n: +m[3], q: +m[4] }),
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
  [
    new RegExp(`^So ${NUM} ([+-]) ${NUM} = (-?${NUM})\\.$`),
    (m) => ({ form: 'result', kind: m[2] === '+' ? 'add' : 'sub', v: +m[1], n: +m[3], r: +m[4] }),
  ],
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
    if (m) {
      const parsed = make(m);
      return { text, type: TYPE_OF[parsed.form], parsed };
    }
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
