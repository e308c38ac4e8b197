/** Splits a normalised LaTeX / plain-text answer into tokens for the structure and expression parsers. */

export type TokenKind = 'num' | 'sym' | 'cmd' | 'op';

export interface Token {
  k: TokenKind;
  /** num: the digits; sym: a letter or Greek name; cmd: a LaTeX command without `\`; op: the character(s). */
  v: string;
  /** Whitespace came right before this token (mixed numbers `7 3/4` depend on it). */
  sp: boolean;
}

export class ParseError extends Error {}

/** Function names the parser applies to an argument (also read as functions in plain text). */
export const FUNCTIONS = new Set([
  'sin',
  'cos',
  'tan',
  'sec',
  'csc',
  'cot',
  'arcsin',
  'arccos',
  'arctan',
  'sinh',
  'cosh',
  'tanh',
  'ln',
  'log',
  'exp',
]);

/** Plain-text words read as functions or constants instead of letter products. */
const PLAIN_WORDS = new Set([...FUNCTIONS, 'sqrt', 'pi', 'inf', 'infty', 'infinity']);

const UNICODE: Record<string, [TokenKind, string]> = {
  '\u2212': ['op', '-'],
  '\u00d7': ['cmd', 'times'],
  '\u00b7': ['cmd', 'cdot'],
  '\u22c5': ['cmd', 'cdot'],
  '\u00f7': ['op', '/'],
  '\u221a': ['cmd', 'sqrt'],
  '\u03c0': ['cmd', 'pi'],
  '\u221e': ['cmd', 'infty'],
  '\u2264': ['cmd', 'le'],
  '\u2265': ['cmd', 'ge'],
  '\u2260': ['cmd', 'ne'],
  '\u2248': ['cmd', 'approx'],
  '\u00b1': ['cmd', 'pm'],
  '\u2213': ['cmd', 'mp'],
  '\u222a': ['cmd', 'cup'],
  '\u2208': ['cmd', 'in'],
  '\u2205': ['cmd', 'emptyset'],
  '\u27e8': ['op', '('],
  '\u27e9': ['op', ')'],
};

const OPS = new Set([
  '+',
  '-',
  '*',
  '/',
  '^',
  '_',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  ',',
  '=',
  '<',
  '>',
  '!',
  '|',
  '&',
  ';',
  "'",
]);

/** Hard cap so a pathological answer cannot make the parser do unbounded work. */
export const MAX_TOKENS = 2000;

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isLetter = (c: string | undefined): boolean =>
  c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));

export function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let sp = false;
  let i = 0;
  const push = (k: TokenKind, v: string): void => {
    if (out.length >= MAX_TOKENS) throw new ParseError('answer too long to parse');
    out.push({ k, v, sp });
    sp = false;
  };
  while (i < s.length) {
    const c = s[i];
    if (c === ' ' || c === '\t' || c === '\n') {
      sp = true;
      i++;
      continue;
    }
    if (isDigit(c) || (c === '.' && isDigit(s[i + 1]))) {
      let j = i;
      while (isDigit(s[j])) j++;
      if (s[j] === '.' && isDigit(s[j + 1])) {
        j++;
        while (isDigit(s[j])) j++;
      } else if (s[j] === '.' && j > i && !isLetter(s[j + 1])) {
        j++; // `18.` is 18
      }
      // Scientific notation `6.72e-5` only when digits follow the e.
      if (
        (s[j] === 'e' || s[j] === 'E') &&
        (isDigit(s[j + 1]) || ((s[j + 1] === '-' || s[j + 1] === '+') && isDigit(s[j + 2])))
      ) {
        j += 2;
        while (isDigit(s[j])) j++;
      }
      push('num', s.slice(i, j));
      i = j;
      continue;
    }
    if (isLetter(c)) {
      let j = i;
      while (isLetter(s[j])) j++;
      const word = s.slice(i, j);
      if (PLAIN_WORDS.has(word.toLowerCase())) push('cmd', word.toLowerCase());
      else for (const letter of word) push('sym', letter);
      i = j;
      continue;
    }
    if (c === '\\') {
      let j = i + 1;
      while (isLetter(s[j])) j++;
      if (j > i + 1) {
        push('cmd', s.slice(i + 1, j));
        i = j;
        continue;
      }
      const next = s[i + 1];
      if (next === '{') push('op', 'lbrace');
      else if (next === '}') push('op', 'rbrace');
      else if (next === '\\') push('op', 'newline');
      else if (next === '|') push('op', '|');
      else if (next === undefined) throw new ParseError('trailing backslash');
      // Other escaped characters (`\ `, `\,`) are spacing: skip them.
      else sp = true;
      i += 2;
      continue;
    }
    const uni = UNICODE[c];
    if (uni) {
      push(uni[0], uni[1]);
      i++;
      continue;
    }
    if (/[\u0370-\u03ff]/.test(c)) {
      push('sym', c);
      i++;
      continue;
    }
    // `!=` is "not equal", except after a digit or bracket, where `!` is a factorial: `5!=120`.
    if (c === '<' || c === '>' || (c === '!' && !/[\d)}\]]/.test(s[i - 1] ?? ''))) {
      if (s[i + 1] === '=') {
        push('cmd', c === '<' ? 'le' : c === '>' ? 'ge' : 'ne');
        i += 2;
        continue;
      }
    }
    if (c === '*' && s[i + 1] === '*') {
      push('op', '^'); // plain-text power `2**3`
      i += 2;
      continue;
    }
    if (OPS.has(c)) {
      push('op', c);
      i++;
      continue;
    }
    throw new ParseError(`unexpected character '${c}'`);
  }
  return out;
}
