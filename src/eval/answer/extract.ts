/**
 * Pulls the final answer out of a model response (or a dataset solution). All rules scan linearly, so
 * a 1 MB response costs a few milliseconds and no regex can backtrack catastrophically.
 */
import { lastMathSpans, type MathSpan, mathSpanAt } from './math-spans.ts';
import { UNIT_WORDS } from './normalize.ts';
import { matchBrace, skipSpaces } from './scan.ts';

/**
 * Every mode first cuts the response at the start of a next turn (chat-template debris such as
 * `<|im_start|>user`, or a few-shot continuation "Problem:" / "Question:"); then:
 * - `boxed`: only the last `\boxed{}` / `\fbox{}` (Hendrycks / Qwen style).
 * - `math`: boxed, else a "final answer is" / "the answer is" / "answer:" anchor, else the last LaTeX math
 *   span (`$…$`, `$$…$$`, `\(…\)`, `\[…\]`, a display environment). Default for MATH.
 * - `gsm8k-strict`: `####`, boxed, or an answer anchor; never a bare number.
 * - `gsm8k`: like `gsm8k-strict`, then the result after the last `=` of the final sentence, else the last
 *   math span or number, whichever comes last (lm-eval's flexible-extract, with Math-Verify's math spans).
 */
export type ExtractionMode = 'boxed' | 'math' | 'gsm8k-strict' | 'gsm8k';
export const EXTRACTION_MODES: readonly ExtractionMode[] = ['boxed', 'math', 'gsm8k-strict', 'gsm8k'];

export type ExtractionRule = 'boxed' | 'hashes' | 'anchor' | 'math-span' | 'last-number';

export interface Extraction {
  answer: string;
  rule: ExtractionRule;
}

/** Longest anchored answer we take after "the answer is"; the sentence normally ends long before. */
const MAX_ANCHOR_ANSWER = 300;
/** How many unbalanced trailing boxes we step over before giving up (bounds the work on junk input). */
const MAX_BOX_ATTEMPTS = 8;
/** Math-Verify joins up to 6 adjacent boxes (`\boxed{1}, \boxed{2}`) into one set answer. */
const MAX_MERGED_BOXES = 6;

interface BoxSpan {
  start: number; // index of the backslash
  end: number; // index one past the box's last character
  content: string;
}

/** The box starting at `start` (which points at `\boxed` or `\fbox`), or null if its braces never close. */
function readBox(text: string, start: number): BoxSpan | null {
  const nameEnd = start + (text.startsWith('\\boxed', start) ? 6 : 5);
  const i = skipSpaces(text, nameEnd);
  if (text[i] === '{') {
    const close = matchBrace(text, i);
    return close < 0 ? null : { start, end: close + 1, content: text.slice(i + 1, close) };
  }
  // `\boxed 5`: the answer is the next run up to `$`, whitespace or the end.
  if (i === nameEnd || i >= text.length) return null;
  let j = i;
  while (j < text.length && text[j] !== '$' && !/\s/.test(text[j])) j++;
  return j > i ? { start, end: j, content: text.slice(i, j) } : null;
}

function lastBoxStart(text: string, before: number): number {
  const b = before < 0 ? -1 : text.lastIndexOf('\\boxed', before);
  const f = before < 0 ? -1 : text.lastIndexOf('\\fbox', before);
  return Math.max(b, f);
}

/** Only separators between two boxes: whitespace, `$`, commas, "and"/"or" (also inside `\text{}`). */
function isBoxSeparator(between: string): boolean {
  if (between.length > 40) return false;
  const rest = between.replace(/\\text\{\s*(and|or)\s*\}|\\quad|\\[,;]|\b(and|or)\b|[\s$,.;]/g, '');
  return rest === '' || rest === '\\(' || rest === '\\)' || rest === '\\)\\(';
}

/** Last balanced box; adjacent earlier boxes joined only by separators are merged as a comma list. */
export function extractLastBoxed(text: string): string | null {
  let pos = text.length;
  let last: BoxSpan | null = null;
  for (let attempt = 0; attempt < MAX_BOX_ATTEMPTS && !last; attempt++) {
    const start = lastBoxStart(text, pos - 1);
    if (start < 0) return null;
    last = readBox(text, start);
    pos = start;
  }
  if (!last) return null;
  const parts = [last.content];
  let first = last;
  while (parts.length < MAX_MERGED_BOXES) {
    const start = lastBoxStart(text, first.start - 1);
    if (start < 0) break;
    const box = readBox(text, start);
    if (!box || box.end > first.start || !isBoxSeparator(text.slice(box.end, first.start))) break;
    parts.unshift(box.content);
    first = box;
  }
  return parts.length === 1 ? parts[0] : parts.join(', ');
}

/** Text after the last `####` up to the end of that line (GSM8K's gold format). */
export function extractAfterHashes(text: string): string | null {
  const at = text.lastIndexOf('####');
  if (at < 0) return null;
  let end = text.indexOf('\n', at);
  if (end < 0) end = text.length;
  const answer = text.slice(at + 4, end).trim();
  return answer === '' ? null : answer;
}

const ANCHORS = ['final answer is', 'the answer is', 'answer is', 'final answer:', 'answer:'];

/** End of the anchored answer: a newline, or a `.` that ends a sentence (not a decimal point). */
function sentenceEnd(text: string, from: number): number {
  const limit = Math.min(text.length, from + MAX_ANCHOR_ANSWER);
  let depth = 0;
  let inMath = false;
  for (let i = from; i < limit; i++) {
    const c = text[i];
    if (c === '\n') return i;
    if (c === '$') inMath = !inMath;
    else if (c === '{') depth++;
    else if (c === '}') depth--;
    else if (c === '.' && depth <= 0 && !inMath && !/[0-9]/.test(text[i + 1] ?? '')) return i;
    else if (text.startsWith('I hope', i) || text.startsWith('i hope', i)) return i; // Minerva: "... is $x$. I hope it is correct."
  }
  return limit;
}

/** Words that continue a list or a formula, not a sentence: never cut as prose. */
const NOT_PROSE = new Set(['and', 'or', 'pi', 'sqrt', 'sin', 'cos', 'tan', 'log', 'exp', 'inf', 'infty', 'infinity']);

/**
 * "5 apples", "5 because 2 times 5 is 10", "x = 4, since the other root is negative": an answer phrase is
 * followed by prose. The answer ends before the first word of 3+ letters (outside braces) that follows
 * something else; unit words stay for the normaliser, and a word answer (`Evelyn`) is kept whole.
 */
function trimTrailingProse(answer: string): string {
  let depth = 0;
  for (let i = 0; i < answer.length; i++) {
    const c = answer[i];
    if (c === '{') depth++;
    else if (c === '}') depth--;
    else if (c === '\\') {
      while (/[a-zA-Z]/.test(answer[i + 1] ?? '')) i++;
    } else if (depth === 0 && /[a-zA-Z]/.test(c) && i > 0 && /[\s,;]/.test(answer[i - 1])) {
      let j = i;
      while (/[a-zA-Z]/.test(answer[j] ?? '')) j++;
      const word = answer.slice(i, j).toLowerCase();
      const head = answer.slice(0, i).trim();
      if (j - i >= 3 && !NOT_PROSE.has(word) && !UNIT_WORDS.has(word) && /[0-9)\]}$]/.test(head)) {
        return head.replace(/[\s,;:]+$/, '');
      }
      i = j - 1;
    }
  }
  return answer;
}

/** The answer after the last "final answer is" / "the answer is" / "answer:" anchor. */
export function extractAfterAnchor(text: string): string | null {
  // Lower-casing a copy is linear; lastIndexOf on it is linear too.
  const lower = text.toLowerCase();
  let best = -1;
  let bestLen = 0;
  for (const anchor of ANCHORS) {
    const at = lower.lastIndexOf(anchor);
    // A later anchor wins; at the same spot the longer phrase wins ("final answer is" over "answer is").
    if (
      at >= 0 &&
      (at + anchor.length > best + bestLen || (at + anchor.length === best + bestLen && anchor.length > bestLen))
    ) {
      best = at;
      bestLen = anchor.length;
    }
  }
  if (best < 0) return null;
  let from = best + bestLen;
  // "The final answer is\n\\[ … \\]": a math span right after the phrase, on the same line or the next.
  let k = from;
  while (k < text.length && (isSpaceChar(text[k]) || text[k] === ':' || text[k] === '*')) k++;
  const span = mathSpanAt(text, k);
  if (span && span.content.trim() !== '') return span.content.trim();
  from = skipInline(text, from);
  const end = sentenceEnd(text, from);
  // "the final answer is the larger of the two: $x=1$": prose first, then the answer in a span.
  const inSentence = lastMathSpans(text.slice(0, end)).find((s) => s.start >= from);
  if (
    inSentence &&
    /^[A-Za-z]{3,}/.test(text.slice(from, inSentence.start).trim()) &&
    inSentence.content.trim() !== ''
  ) {
    return inSentence.content.trim();
  }
  let answer = text.slice(from, end).trim();
  answer = trimTrailingProse(stripMathDelimiters(stripBold(answer)));
  return answer === '' ? null : answer;
}

const isSpaceChar = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r';

/** Skips spaces and tabs (not newlines: a phrase that ends its line has no answer on it). */
function skipInline(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
  return i;
}

/** `: **72**.` → `72`: the colon and Markdown bold around an answer phrase. */
function stripBold(s: string): string {
  return s
    .replace(/^[:\s]+/, '')
    .replace(/^\*\*/, '')
    .replace(/\*\*[\s.]*$/, '')
    .trim();
}

function stripMathDelimiters(s: string): string {
  let t = s.trim();
  for (const [open, close] of [
    ['$$', '$$'],
    ['$', '$'],
    ['\\(', '\\)'],
    ['\\[', '\\]'],
  ]) {
    if (t.startsWith(open) && t.endsWith(close) && t.length >= open.length + close.length) {
      t = t.slice(open.length, t.length - close.length).trim();
    }
  }
  return t.replace(/^\$+|\$+$/g, '').trim();
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** `s` without trailing `chars`; a loop, because `/[\s.]+$/` is quadratic on a long run of spaces. */
function trimEndOf(s: string, chars: string): string {
  let end = s.length;
  while (end > 0 && chars.includes(s[end - 1])) end--;
  return s.slice(0, end);
}

/**
 * The number after the last `=` of the final sentence, when nothing is computed on it and every number after
 * it in the sentence was already mentioned: "… = $42 from selling lemonade for 6 hours." answers 42, where
 * the last number (6 hours, from the problem) is context; "… = 7, so she needs 10 more" still answers 10.
 */
export function resultOfLastSentence(text: string): string | null {
  // GSM8K's calculator annotations (`4+5=<<4+5=9>>9`) repeat the result: drop them.
  const body = trimEndOf(text.replace(/<<[^<>\n]{0,200}>>/g, ''), ' \t\r\n.');
  const from = Math.max(body.lastIndexOf('\n'), body.lastIndexOf('. '), body.lastIndexOf('? '), body.lastIndexOf('! '));
  const eq = body.lastIndexOf('=');
  if (eq <= from) return null;
  const m =
    /^[\s$]*(?:\\\$\s*)?(-?\d{1,3}(?:[, ]\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?|-?\.\d+)(?![\d.,]*\s*[-+*/×÷^(\d])/.exec(
      body.slice(eq + 1),
    );
  if (!m) return null;
  const rest = body.slice(eq + 1 + m[0].length);
  const before = new Set(body.slice(0, eq).match(NUMBER));
  for (const n of rest.matchAll(NUMBER)) {
    const context = before.has(n[0]) || CONTEXT_BEFORE.test(rest.slice(Math.max(0, n.index - 24), n.index));
    if (!context) return null;
  }
  return m[1];
}

const NUMBER = /\d+(?:\.\d+)?/g;
/** A number after a preposition ("for 6 hours", "out of the 24 liters") restates the problem. */
const CONTEXT_BEFORE =
  /\b(?:for|in|of|after|per|to|from|with|at|by|over|within|during|on|than)\s+(?:the\s+|a\s+|each\s+|every\s+|all\s+)?\$?$/i;

/**
 * The last number in the text, scanning backwards: `-1,234.5`, `.5`, or a fraction `3/4`. Commas inside
 * the number are kept (normalisation strips well-formed thousands separators).
 */
export function extractLastNumber(text: string): string | null {
  let end = text.length - 1;
  while (end >= 0 && !isDigit(text[end])) end--;
  if (end < 0) return null;
  let start = end;
  while (
    start > 0 &&
    (isDigit(text[start - 1]) || ((text[start - 1] === ',' || text[start - 1] === '.') && isDigit(text[start - 2])))
  ) {
    start--;
  }
  if (text[start - 1] === '.' && !isDigit(text[start - 2])) start--; // leading-dot decimal `.5`
  // A fraction `a/b`: extend over the numerator.
  if (text[start - 1] === '/' && isDigit(text[start - 2])) {
    start -= 2;
    while (start > 0 && isDigit(text[start - 1])) start--;
  }
  if (text[start - 1] === '-' || text[start - 1] === '\u2212') start--;
  return text.slice(start, end + 1).replace('\u2212', '-');
}

/**
 * Chat-template tokens (`<|im_start|>`, `<|eot_id|>`, `</s>`, `<｜User｜>`, `<end_of_turn>`, `[INST]`) and
 * lines that open a next few-shot turn ("Problem:", "Question:", "Q:", "User:", "Human:", a Markdown heading
 * "### Problem 2").
 */
const NEXT_TURN =
  /<\|[A-Za-z_]{1,32}\|>|<｜[^｜<>\n]{1,32}｜>|<\/?s>|\[\/?INST\]|<(?:start|end)_of_turn>|\n[ \t]*(?:Problem|Question|Q|User|Human)[ \t]*(?:\d+[ \t]*)?:|\n[ \t]*#{1,6}[ \t]*(?:Problem|Question|Exercise)\b/g;

/**
 * The response up to the first next-turn marker that follows some content: what a base model writes after
 * its answer (a hallucinated next question, another turn) is never the answer. Leading markers are dropped.
 */
export function cutAtNextTurn(text: string): string {
  let from = 0;
  for (const m of text.matchAll(NEXT_TURN)) {
    if (text.slice(from, m.index).trim() !== '') return text.slice(from, m.index);
    from = m.index + m[0].length;
  }
  return text.slice(from);
}

/**
 * A span that can be one item of a list answer: a value, or one variable set to one value (`x = -2`). A
 * chain (`a_1 = 14 \cdot 6^2 = 504`) or an equation between expressions (`k - 1 = 1`) is a step of work.
 */
function isListItem(content: string): boolean {
  const sides = content.split('=');
  return sides.length === 1 || (sides.length === 2 && /^\s*(?:[A-Za-z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?\s*$/.test(sides[0]));
}

/**
 * Up to 6 math spans at the end joined only by `,`, "and", "or" ("$x = 1$ and $x = -2$") form one list, as
 * in Math-Verify, when each of them can be a list item.
 */
function mergedLastSpan(spans: MathSpan[], text: string): { answer: string; end: number } | null {
  const nonEmpty = spans.filter((s) => s.content.trim() !== '');
  const last = nonEmpty.at(-1);
  if (!last) return null;
  const parts = [last.content.trim()];
  for (let k = nonEmpty.length - 2; k >= 0 && parts.length < MAX_MERGED_BOXES; k--) {
    const between = text.slice(nonEmpty[k].end, nonEmpty[k + 1].start);
    if (!isBoxSeparator(between) || !/,|\band\b|\bor\b/.test(between)) break;
    const item = trimEndOf(nonEmpty[k].content.trim(), '.,;');
    if (!isListItem(item) || !isListItem(parts[0])) break;
    parts.unshift(item);
  }
  return { answer: parts.join(', '), end: last.end };
}

/** The last math span (merged with adjacent ones); for `gsm8k`, a plain number after it wins. */
function extractTail(text: string, numbers: boolean): Extraction | null {
  const span = mergedLastSpan(lastMathSpans(text), text);
  if (numbers) {
    const tail = span ? text.slice(span.end) : text;
    const number = resultOfLastSentence(tail) ?? extractLastNumber(tail);
    if (number !== null) return { answer: number, rule: 'last-number' };
  }
  return span && { answer: span.answer, rule: 'math-span' };
}

/** Full extraction with the rule that fired; null when nothing qualifies (never an empty answer). */
export function extractAnswerWithRule(response: string, options: { mode?: ExtractionMode } = {}): Extraction | null {
  const mode = options.mode ?? 'math';
  const gsm = mode === 'gsm8k' || mode === 'gsm8k-strict';
  const text = cutAtNextTurn(response);
  const found = (answer: string | null, rule: ExtractionRule): Extraction | null =>
    answer !== null && answer.trim() !== '' ? { answer: answer.trim(), rule } : null;
  if (gsm) {
    const hashes = found(extractAfterHashes(text), 'hashes');
    if (hashes) return hashes;
  }
  const boxed = found(extractLastBoxed(text), 'boxed');
  if (boxed || mode === 'boxed') return boxed;
  const anchored = found(extractAfterAnchor(text), 'anchor');
  if (anchored || mode === 'gsm8k-strict') return anchored;
  const tail = extractTail(text, mode === 'gsm8k');
  return tail && found(tail.answer, tail.rule);
}

/** The extracted answer string, or null. See `ExtractionMode` for the rules each mode tries. */
export function extractAnswer(text: string, options: { mode?: ExtractionMode } = {}): string | null {
  return extractAnswerWithRule(text, options)?.answer ?? null;
}

/**
 * For inputs that should already be answers but may still carry their wrapper: a gold written as a
 * whole GSM8K solution (`... #### 18`) or a boxed solution. Returns the text unchanged otherwise.
 */
export function reduceToAnswer(text: string): string {
  if (text.includes('\\boxed') || text.includes('\\fbox')) {
    const boxed = extractLastBoxed(text);
    if (boxed !== null) return boxed;
  }
  if (text.includes('####')) return extractAfterHashes(text) ?? text;
  return text;
}

/**
 * A gold copied with its string escapes (`\\frac{1}{2}`, `\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}`) read as
 * LaTeX: only when no single backslash starts a command, so real LaTeX (`\frac`, a `\\` row break) is kept.
 */
export function unescapeBackslashes(text: string): string {
  if (!/\\\\[a-zA-Z{}]/.test(text)) return text;
  for (const run of text.matchAll(/\\+(?=[a-zA-Z])/g)) if (run[0].length % 2 === 1) return text;
  return text.replace(/\\\\/g, '\\');
}

/** The gold, read leniently (Math-Verify parses golds leniently, predictions strictly). */
export function reduceGold(text: string): string {
  return reduceToAnswer(unescapeBackslashes(text));
}
