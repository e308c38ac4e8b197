/**
 * Character spans → token spans → activation rows (docs/method.md §2.2 and §2.5).
 *
 * Token offsets are `[start, end)` UTF-16 indices into the tokenized string, one pair per token (the
 * HF `offset_mapping` convention). Special tokens that cover no text have `start === end`.
 *
 * The char→token map follows the reference: every character of a token's range maps to that token, and
 * a later token overwrites an earlier one. So a character shared by two tokens (a byte-level BPE token
 * that ends inside an emoji, or overlapping offsets) belongs to the LATER token, and a character no
 * token covers has no token (-1); a sentence whose boundary lands on such a character is skipped, as
 * in the reference.
 *
 * Token span of a sentence at chars `[c0, c1)` (`endRule`):
 *  - 'next-char' (§2.2, sentence activations; default): `[tok(c0), tok(c1))`, the end being the token
 *    that holds the first character AFTER the sentence. A token that straddles the boundary (holds the
 *    sentence's last character and the next one, e.g. ".\n\n") is therefore the end and is excluded;
 *    a sentence at the very end of the text has no next character and is skipped.
 *  - 'last-char' (§2.5, annotation): `[tok(c0), tok(c1 − 1))`, excluding the token of the last character.
 *  - 'cover': every token overlapping the sentence, `[tok(c0), tok(c1 − 1) + 1)`.
 * A span is valid only if both ends exist and `start < end`.
 *
 * Activation rows (`shift`, default true = the paper): the mean is taken over rows `[start − 1, end − 1]`,
 * i.e. `H[start − 1 : end]`: the positions whose outputs predict the sentence's tokens. A sentence
 * starting at token 0 has no row before it; it is skipped (the reference would slice an empty range).
 * `shift: false` takes rows `[start, end)`.
 */

export type TokenOffsets = ReadonlyArray<readonly [number, number]>;

export type EndRule = 'next-char' | 'last-char' | 'cover';

export interface TokenSpan {
  /** First token of the sentence. */
  start: number;
  /** One past the last token (see `EndRule`). */
  end: number;
}

export interface RowRange {
  /** First activation row averaged. */
  start: number;
  /** One past the last row averaged. */
  end: number;
}

/** Character index → token index (-1 where no token covers the character). */
export function charToTokenMap(offsets: TokenOffsets, textLength: number): Int32Array {
  const map = new Int32Array(textLength).fill(-1);
  offsets.forEach(([start, end], token) => {
    const a = Math.max(0, start);
    const b = Math.min(textLength, end);
    for (let c = a; c < b; c++) map[c] = token;
  });
  return map;
}

/** Token span of the characters `[charStart, charEnd)`, or null when the reference would skip it. */
export function tokenSpanOfChars(
  charToToken: Int32Array,
  charStart: number,
  charEnd: number,
  endRule: EndRule = 'next-char',
): TokenSpan | null {
  const tokenAt = (c: number) => (c >= 0 && c < charToToken.length ? charToToken[c] : -1);
  const start = tokenAt(charStart);
  let end: number;
  if (endRule === 'next-char') end = tokenAt(charEnd);
  else if (endRule === 'last-char') end = tokenAt(charEnd - 1);
  else {
    const last = tokenAt(charEnd - 1);
    end = last < 0 ? -1 : last + 1;
  }
  if (start < 0 || end < 0 || start >= end) return null;
  return { start, end };
}

/** Rows of the activation matrix to average for a token span (see the module comment). */
export function activationRows(span: TokenSpan, shift = true): RowRange | null {
  if (!shift) return { start: span.start, end: span.end };
  if (span.start < 1) return null;
  return { start: span.start - 1, end: span.end };
}

export interface LocateOptions {
  /**
   * 'find' (paper): the first occurrence of the sentence text in the full response, which may be an
   * earlier repeat or fail when the paper's text is not verbatim. 'span': the sentence's own span,
   * shifted by `thinkingStart` (its offset in the full response).
   */
  locate?: 'find' | 'span';
  thinkingStart?: number;
  endRule?: EndRule;
  shift?: boolean;
}

export interface LocatedSentence {
  charStart: number;
  charEnd: number;
  tokens: TokenSpan;
  rows: RowRange;
}

/** Place one sentence of the thinking text in the full response's tokens; null if the paper skips it. */
export function locateSentence(
  fullText: string,
  sentence: { text: string; start: number; end: number },
  charToToken: Int32Array,
  options: LocateOptions = {},
): LocatedSentence | null {
  let charStart: number;
  let charEnd: number;
  if ((options.locate ?? 'find') === 'find') {
    charStart = fullText.indexOf(sentence.text);
    if (charStart < 0) return null;
    charEnd = charStart + sentence.text.length;
  } else {
    charStart = sentence.start + (options.thinkingStart ?? 0);
    charEnd = sentence.end + (options.thinkingStart ?? 0);
  }
  const tokens = tokenSpanOfChars(charToToken, charStart, charEnd, options.endRule ?? 'next-char');
  if (!tokens) return null;
  const rows = activationRows(tokens, options.shift ?? true);
  if (!rows) return null;
  return { charStart, charEnd, tokens, rows };
}

/**
 * Convert per-token UTF-8 byte ranges (what llama.cpp token pieces give) to UTF-16 ranges of `text`.
 * A byte boundary inside a multi-byte character is widened to the whole character (start rounds down,
 * end rounds up), so two tokens that split one emoji both cover it, and the later one owns it.
 */
export function byteOffsetsToUtf16(text: string, byteOffsets: TokenOffsets): Array<[number, number]> {
  // byteToUnit[b] = UTF-16 index of the character that contains byte b; one extra entry for the end.
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const cp = text.codePointAt(i) ?? 0;
    const width = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (let k = 0; k < width; k++) bytes.push(i);
    if (cp > 0xffff) i++;
  }
  const unitEnd = (b: number) => {
    if (b <= 0) return 0;
    if (b >= bytes.length) return text.length;
    const unit = bytes[b - 1];
    const cp = text.codePointAt(unit) ?? 0;
    return unit + (cp > 0xffff ? 2 : 1);
  };
  const unitStart = (b: number) => (b >= bytes.length ? text.length : b <= 0 ? 0 : bytes[b]);
  return byteOffsets.map(([a, b]) => [unitStart(a), b > a ? unitEnd(b) : unitStart(a)]);
}
