/**
 * The paper's sentence splitter (docs/method.md §2.2, `split_into_sentences(text, min_words=3)`), reproduced
 * step for step, plus the character span of every sentence in the original text.
 *
 * Spans are UTF-16 code-unit indices into the input string, half-open `[start, end)`, i.e. what
 * `text.slice(start, end)` takes. (Python indexes code points; a span here differs from the paper's
 * index only when astral characters such as emoji precede it, and the text of the sentence is the same.)
 *
 * Algorithm (Python `re` semantics kept: `\d` = any Unicode decimal digit, `\b` = Unicode word boundary,
 * `\s`/`split()`/`strip()` = Unicode whitespace):
 *  1. protect decimals `\d+\.\d+`, one-letter abbreviations `\b[A-Za-z]\.\s+[A-Za-z]` and `\b[A-Za-z]!`
 *     (each match string is replaced *everywhere* it occurs, as Python's `str.replace` does);
 *  2. collapse runs of the same punctuation `([.!?;])\1+` to one character;
 *  3. split after every `. ! ? ;` or newline;
 *  4. restore collapsed runs (the paper's approximation: for every run, in every non-empty piece, the first
 *     occurrence of that punctuation character is widened back to the run) and the protected strings;
 *  5. strip, drop empty pieces, keep pieces with at least `minWords` whitespace-separated words;
 *  6. a sentence that starts with `"` gives the quote to the previous kept sentence and is re-checked.
 *
 * Step 4 can make the paper's sentence text differ from the original text (e.g. "Wait... Hmm. OK so."
 * gives "Hmm..." for the second piece). `text: 'paper'` (default) returns the paper's strings exactly,
 * which is what the reference then searches for in the response; `text: 'span'` returns
 * `original.slice(start, end)`. The set of sentences and their spans are the same in both modes.
 */

export interface Sentence {
  /** The sentence text (see `SplitOptions.text`). */
  text: string;
  /** UTF-16 index of the first character in the input. */
  start: number;
  /** UTF-16 index one past the last character in the input. */
  end: number;
  /** True when `text === input.slice(start, end)`. */
  verbatim: boolean;
}

export interface SplitOptions {
  /** Minimum number of whitespace-separated words (paper: 3; steering code also uses 0). */
  minWords?: number;
  /** 'paper': the reference's strings (default); 'span': the original substring of each span. */
  text?: 'paper' | 'span';
}

/** Python's `str.isspace()` set, used by `\s`, `split()` and `strip()`. */
const WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WS_CHAR = new RegExp(`[${WS}]`, 'u');
const WORD_SPLIT = new RegExp(`[${WS}]+`, 'u');
/** `\b` before a letter: the previous character is not a Python word character. */
const NOT_WORD_BEFORE = '(?<![\\p{L}\\p{N}_])';
const DECIMAL = /\p{Nd}+\.\p{Nd}+/gu;
const ABBREVIATION = new RegExp(`${NOT_WORD_BEFORE}[A-Za-z]\\.[${WS}]+[A-Za-z]`, 'gu');
const BANG_AFTER_LETTER = new RegExp(`${NOT_WORD_BEFORE}[A-Za-z]!`, 'gu');
const REPEATED_PUNCT = /([.!?;])\1+/g;
/** Stands for one protected string; a noncharacter that real text does not contain. */
const PLACEHOLDER = '\uffff';

const isSpace = (ch: string) => WS_CHAR.test(ch);

/** Python `len(s.split())`. */
export function countWords(s: string): number {
  const t = pyStrip(s);
  return t === '' ? 0 : t.split(WORD_SPLIT).length;
}

/** Python `str.strip()`. */
export function pyStrip(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isSpace(s[a])) a++;
  while (b > a && isSpace(s[b - 1])) b--;
  return s.slice(a, b);
}

/**
 * A string in which some units stand for original substrings; `from[i]..to[i]` is the original span of
 * unit i. Consecutive units always cover consecutive original text.
 */
interface Mapped {
  s: string;
  from: number[];
  to: number[];
}

/** Python `protected.replace(needle, PLACEHOLDER)`: every occurrence becomes one placeholder unit. */
function protectAll(m: Mapped, needle: string): Mapped {
  const out: Mapped = { s: '', from: [], to: [] };
  let i = 0;
  let parts = '';
  for (;;) {
    const hit = m.s.indexOf(needle, i);
    const stop = hit < 0 ? m.s.length : hit;
    parts += m.s.slice(i, stop);
    for (let u = i; u < stop; u++) {
      out.from.push(m.from[u]);
      out.to.push(m.to[u]);
    }
    if (hit < 0) break;
    parts += PLACEHOLDER;
    out.from.push(m.from[hit]);
    out.to.push(m.to[hit + needle.length - 1]);
    i = hit + needle.length;
  }
  out.s = parts;
  return out;
}

/** Collapse `([.!?;])\1+` runs; returns the collapsed text and the run strings in order. */
function collapseRuns(m: Mapped): { text: Mapped; runs: string[] } {
  const out: Mapped = { s: '', from: [], to: [] };
  const runs: string[] = [];
  let last = 0;
  for (const hit of m.s.matchAll(REPEATED_PUNCT)) {
    const at = hit.index ?? 0;
    for (let u = last; u < at; u++) {
      out.from.push(m.from[u]);
      out.to.push(m.to[u]);
    }
    out.s += m.s.slice(last, at) + hit[1];
    out.from.push(m.from[at]);
    out.to.push(m.to[at + hit[0].length - 1]);
    runs.push(hit[0]);
    last = at + hit[0].length;
  }
  for (let u = last; u < m.s.length; u++) {
    out.from.push(m.from[u]);
    out.to.push(m.to[u]);
  }
  out.s += m.s.slice(last);
  return { text: out, runs };
}

interface Piece {
  /** Text in the collapsed/protected alphabet, later rewritten to the paper's string. */
  paper: string;
  start: number;
  end: number;
}

/** Split the input into sentences exactly as the paper does; see the module comment. */
export function splitIntoSentences(input: string, options: SplitOptions = {}): Sentence[] {
  const minWords = options.minWords ?? 3;
  const mode = options.text ?? 'paper';
  const from = new Array<number>(input.length);
  const to = new Array<number>(input.length);
  for (let i = 0; i < input.length; i++) {
    from[i] = i;
    to[i] = i + 1;
  }
  let protectedText: Mapped = { s: input, from, to };
  // Matches are searched in the original text, replacements applied in order to the protected text.
  for (const pattern of [DECIMAL, ABBREVIATION, BANG_AFTER_LETTER]) {
    for (const hit of input.matchAll(pattern)) protectedText = protectAll(protectedText, hit[0]);
  }
  const { text: norm, runs } = collapseRuns(protectedText);

  // re.split(r'(?<=[.!?;\n])'): cut after each delimiter.
  const pieces: Piece[] = [];
  let segStart = 0;
  for (let u = 0; u <= norm.s.length; u++) {
    const atEnd = u === norm.s.length;
    if (atEnd || '.!?;\n'.includes(norm.s[u])) {
      const segEnd = atEnd ? u : u + 1;
      // Empty pieces (text ending in a delimiter) are dropped later anyway.
      if (segEnd > segStart) {
        pieces.push({ paper: norm.s.slice(segStart, segEnd), start: norm.from[segStart], end: norm.to[segEnd - 1] });
      }
      segStart = segEnd;
    }
  }

  // The protected strings, in order; each piece takes as many as it has placeholders.
  const protectedStrings: string[] = [];
  for (let unit = norm.s.indexOf(PLACEHOLDER); unit >= 0; unit = norm.s.indexOf(PLACEHOLDER, unit + 1)) {
    protectedStrings.push(input.slice(norm.from[unit], norm.to[unit]));
  }
  let seen = 0;
  const perPiece = pieces.map((p) => {
    const count = p.paper.split(PLACEHOLDER).length - 1;
    seen += count;
    return protectedStrings.slice(seen - count, seen);
  });

  for (const run of runs) {
    for (const p of pieces) {
      if (p.paper.includes(run[0])) p.paper = p.paper.replace(run[0], () => run);
    }
  }
  pieces.forEach((p, i) => {
    let k = 0;
    p.paper = p.paper.replace(/\uffff/g, () => perPiece[i][k++]);
  });

  // Strip, drop empty, minimum words.
  const kept: Piece[] = [];
  for (const p of pieces) {
    const stripped = pyStrip(p.paper);
    if (!stripped) continue;
    if (countWords(stripped) < minWords) continue;
    let a = p.start;
    let b = p.end;
    while (a < b && isSpace(input[a])) a++;
    while (b > a && isSpace(input[b - 1])) b--;
    kept.push({ paper: stripped, start: a, end: b });
  }

  // A sentence that starts with a quote hands the quote to the previous kept sentence.
  const out: Piece[] = [];
  kept.forEach((p, i) => {
    if (i > 0 && p.paper.startsWith('"') && out.length > 0) {
      const prev = out[out.length - 1];
      prev.paper += '"';
      // The span grows over the quote only when nothing but whitespace separates them.
      if (pyStrip(input.slice(prev.end, p.start)) === '') prev.end = p.start + 1;
      const rest = pyStrip(p.paper.slice(1));
      if (rest && countWords(rest) >= minWords) {
        let a = p.start + 1;
        while (a < p.end && isSpace(input[a])) a++;
        out.push({ paper: rest, start: a, end: p.end });
      }
    } else {
      out.push({ ...p });
    }
  });

  return out.map((p) => {
    const original = input.slice(p.start, p.end);
    const text = mode === 'span' ? original : p.paper;
    return { text, start: p.start, end: p.end, verbatim: text === original };
  });
}

/**
 * The simpler splitter of the annotation stage (docs/method.md §2.5): `re.split(r'(?<=[.!?;])')`, strip,
 * drop empty; no newline split, no protection, no word minimum. Spans as in `splitIntoSentences`.
 */
export function splitForAnnotation(input: string): Sentence[] {
  const out: Sentence[] = [];
  let segStart = 0;
  for (let u = 0; u <= input.length; u++) {
    if (u === input.length || '.!?;'.includes(input[u])) {
      const segEnd = u === input.length ? u : u + 1;
      let a = segStart;
      let b = segEnd;
      while (a < b && isSpace(input[a])) a++;
      while (b > a && isSpace(input[b - 1])) b--;
      if (b > a) out.push({ text: input.slice(a, b), start: a, end: b, verbatim: true });
      segStart = segEnd;
    }
  }
  return out;
}

/**
 * The paper's `extract_thinking_process`: the text after the first `<think>` (or from 0) up to the first
 * `</think>` (or the end), stripped. `start` is its UTF-16 offset in the response.
 */
export function extractThinking(response: string): { text: string; start: number } {
  const open = response.indexOf('<think>');
  const from = open >= 0 ? open + '<think>'.length : 0;
  const close = response.indexOf('</think>', from);
  const raw = response.slice(from, close >= 0 ? close : response.length);
  const stripped = pyStrip(raw);
  let lead = 0;
  while (lead < raw.length && isSpace(raw[lead])) lead++;
  return { text: stripped, start: from + lead };
}
