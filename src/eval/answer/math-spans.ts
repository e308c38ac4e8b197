/**
 * LaTeX math spans in free-form text: `$…$`, `$$…$$`, `\(…\)`, `\[…\]`, display environments (`align*`,
 * `equation`) and bare matrix environments. Base models rarely box their answers; they end with one of these.
 *
 * A `$` delimits math only by Pandoc's rule: an opener is not followed by a space, a closer is not preceded by
 * one (nor by an operator) nor followed by a digit, and an inline span holds no blank line and no prose. So the currency in
 * "earns $5 per hour … so she earns $15" is not math. Every scan is linear: an inline span stops at the next
 * `$`, and a display delimiter that never closes cannot close a later one either.
 */
export interface MathSpan {
  start: number;
  /** One past the closing delimiter. */
  end: number;
  /** What the grader reads: the inside of the delimiters, or the whole environment for a matrix. */
  content: string;
}

/** Inline math longer than this is not an answer span (it bounds the scan per `$`). */
const MAX_INLINE = 1000;
const DISPLAY_ENVS = new Set([
  'equation',
  'equation*',
  'align',
  'align*',
  'aligned',
  'gather',
  'gather*',
  'multline',
  'multline*',
  'displaymath',
  'eqnarray',
  'eqnarray*',
]);
export const MATRIX_ENVS = new Set([
  'pmatrix',
  'bmatrix',
  'Bmatrix',
  'vmatrix',
  'Vmatrix',
  'matrix',
  'smallmatrix',
  'array',
]);

const isLetterCode = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r';
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** Two or more words of 3+ letters outside commands and `\text{}`: a sentence, not a formula. */
function looksLikeProse(content: string): boolean {
  const bare = content.replace(
    /\\(?:text|mbox|textbf|textit|mathrm|operatorname|begin|end)\s*\{[^{}]*\}|\\[a-zA-Z]+/g,
    ' ',
  );
  let words = 0;
  for (const _ of bare.matchAll(/(?<![A-Za-z])[A-Za-z]{3,}(?![A-Za-z])/g)) if (++words >= 2) return true;
  return false;
}

/** Rows of a display split at `\\` outside braces and nested environments (a matrix keeps its rows). */
function displayRows(content: string): string[] {
  const rows: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < content.length; i++) {
    const c = content[i];
    if (c === '{') depth++;
    else if (c === '}') depth--;
    else if (c === '\\') {
      if (content.startsWith('\\begin{', i)) depth++;
      else if (content.startsWith('\\end{', i)) depth--;
      else if (content[i + 1] === '\\' && depth === 0) {
        rows.push(content.slice(from, i));
        from = i + 2;
      }
      i++;
    }
  }
  rows.push(content.slice(from));
  return rows;
}

/** The last row of an `align*`-style display: `x &= 3 + 4 \\ &= 7.` reads as `7.`. */
function lastDisplayRow(content: string): string {
  const rows = displayRows(content.replace(/\\(?:nonumber|notag)\b|\\(?:label|tag)\{[^{}]*\}/g, ''))
    .map((r) => r.replace(/&/g, ' ').trim())
    .filter((r) => r !== '');
  const last = rows.at(-1) ?? '';
  return last.startsWith('=') ? last.slice(1).trim() : last;
}

/** Scanner state: where a display delimiter or environment is known never to close again. */
class Scanner {
  private readonly lastClose = new Map<string, number>();

  constructor(private readonly text: string) {}

  /** Index of `close` at or after `from`, or -1; computed once per delimiter (later searches reuse it). */
  private find(close: string, from: number): number {
    let last = this.lastClose.get(close);
    if (last === undefined) {
      last = this.text.lastIndexOf(close);
      this.lastClose.set(close, last);
    }
    return last < from ? -1 : this.text.indexOf(close, from);
  }

  /** The span that starts exactly at `i`, or null (with the index to resume scanning from). */
  spanAt(i: number): { span: MathSpan | null; next: number } {
    const t = this.text;
    if (t[i] === '$' && t[i + 1] === '$') {
      const close = this.find('$$', i + 2);
      if (close < 0 || close === i + 2) return { span: null, next: close < 0 ? i + 2 : close + 2 };
      return { span: { start: i, end: close + 2, content: t.slice(i + 2, close) }, next: close + 2 };
    }
    if (t[i] === '$') return this.inlineAt(i);
    if (t[i] !== '\\') return { span: null, next: i + 1 };
    const pair = t[i + 1] === '(' ? '\\)' : t[i + 1] === '[' ? '\\]' : null;
    if (pair) {
      const close = this.find(pair, i + 2);
      if (close < 0) return { span: null, next: i + 2 };
      return { span: { start: i, end: close + 2, content: t.slice(i + 2, close) }, next: close + 2 };
    }
    if (t.startsWith('\\begin{', i)) {
      const nameEnd = t.indexOf('}', i + 7);
      const name = nameEnd < 0 ? '' : t.slice(i + 7, nameEnd);
      if (DISPLAY_ENVS.has(name) || MATRIX_ENVS.has(name)) {
        const endTag = `\\end{${name}}`;
        const close = this.find(endTag, nameEnd + 1);
        if (close < 0) return { span: null, next: nameEnd + 1 };
        const end = close + endTag.length;
        const content = MATRIX_ENVS.has(name) ? t.slice(i, end) : lastDisplayRow(t.slice(nameEnd + 1, close));
        return { span: { start: i, end, content }, next: end };
      }
    }
    // Any other command, or an escaped character (`\$`, `\\`): step over it.
    let j = i + 1;
    while (j < t.length && isLetterCode(t.charCodeAt(j))) j++;
    return { span: null, next: j === i + 1 ? i + 2 : j };
  }

  /** `$…$` by Pandoc's rule; a failed opener resumes at the `$` that stopped it (it may open the next span). */
  private inlineAt(i: number): { span: MathSpan | null; next: number } {
    const t = this.text;
    if (i + 1 >= t.length || isSpace(t[i + 1])) return { span: null, next: i + 1 };
    const limit = Math.min(t.length, i + 1 + MAX_INLINE);
    for (let j = i + 1; j < limit; j++) {
      const c = t[j];
      if (c === '\\') {
        j++;
        continue;
      }
      if (c === '\n' && t[j + 1] === '\n') return { span: null, next: j };
      if (c !== '$') continue;
      // `$900/20=$45`: currency on both sides of a computation, not math (math never ends in an operator).
      const closes = !isSpace(t[j - 1]) && !isDigit(t[j + 1]) && t[j + 1] !== '$' && !/[=+\-*/]/.test(t[j - 1]);
      const content = t.slice(i + 1, j);
      if (!closes || looksLikeProse(content)) return { span: null, next: j };
      return { span: { start: i, end: j + 1, content }, next: j + 1 };
    }
    return { span: null, next: i + 1 };
  }
}

/** The last `keep` math spans of `text`, in order. */
export function lastMathSpans(text: string, keep = 8): MathSpan[] {
  const scanner = new Scanner(text);
  const spans: MathSpan[] = [];
  let i = 0;
  let dollar = text.indexOf('$');
  let slash = text.indexOf('\\');
  while (i < text.length) {
    // Jump to the next `$` or backslash: prose between delimiters costs one indexOf, not a loop.
    if (dollar >= 0 && dollar < i) dollar = text.indexOf('$', i);
    if (slash >= 0 && slash < i) slash = text.indexOf('\\', i);
    if (dollar < 0 && slash < 0) break;
    i = dollar < 0 ? slash : slash < 0 ? dollar : Math.min(dollar, slash);
    const { span, next } = scanner.spanAt(i);
    if (span) {
      spans.push(span);
      if (spans.length > keep) spans.shift();
    }
    i = next;
  }
  return spans;
}

/** The math span starting exactly at `i` (after an answer phrase), or null. */
export function mathSpanAt(text: string, i: number): MathSpan | null {
  return new Scanner(text).spanAt(i).span;
}
