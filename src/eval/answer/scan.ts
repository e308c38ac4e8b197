/**
 * Linear-time scanning helpers shared by extraction and normalisation. Everything here walks the string
 * once; no regex with nested quantifiers touches unbounded input.
 */

/**
 * Index of the `}` that closes the `{` at `open`, or -1 if it never closes. Escaped braces `\{`, `\}`
 * are LaTeX set delimiters, not groups, so they are skipped (as is `\\`).
 */
export function matchBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

export function skipSpaces(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  return i;
}

/**
 * Replaces every `\name{...}` (brace-matched) by `render(inner)`. Unbalanced groups are left alone.
 * `names` are matched as whole command names, so `\text` does not match `\textbf`.
 */
export function replaceCommandGroups(
  text: string,
  names: readonly string[],
  render: (inner: string) => string,
): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const slash = text.indexOf('\\', i);
    if (slash < 0) break;
    let j = slash + 1;
    while (j < text.length && /[a-zA-Z]/.test(text[j])) j++;
    const name = text.slice(slash + 1, j);
    if (j === slash + 1) {
      // `\{`, `\\`, ...: copy both characters so the escaped one is not read as a command start.
      out += text.slice(i, Math.min(j + 1, text.length));
      i = j + 1;
      continue;
    }
    if (names.includes(name)) {
      const open = skipSpaces(text, j);
      if (text[open] === '{') {
        const close = matchBrace(text, open);
        if (close > 0) {
          out += text.slice(i, slash) + render(text.slice(open + 1, close));
          i = close + 1;
          continue;
        }
      }
    }
    out += text.slice(i, j);
    i = j;
  }
  return out + text.slice(i);
}
