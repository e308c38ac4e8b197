// Token bytes → text with character offsets. Offsets are UTF-16 code-unit indices into the text
// (what JavaScript strings index), half-open [start, end). A token that holds only part of a
// multi-byte character is given the whole character; the next token then starts after it.

/** UTF-16 index of the character holding each UTF-8 byte offset (plus one entry for the end). */
function byteToCharIndex(text: string): Int32Array {
  const bytes = Buffer.byteLength(text, 'utf8');
  const map = new Int32Array(bytes + 1);
  let b = 0;
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const units = cp > 0xffff ? 2 : 1;
    const n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (let k = 0; k < n; k++) map[b + k] = i;
    b += n;
    i += units;
  }
  map[bytes] = text.length;
  return map;
}

/**
 * Aligns token pieces to `text`. Pieces may carry a leading space the text lacks (SPM models
 * render the first word with one); such a space is skipped. Returns null when the pieces do not
 * spell the text (e.g. a normalising tokenizer), so callers can report that plainly.
 */
export function alignOffsets(text: string, pieces: Uint8Array[]): Array<[number, number]> | null {
  const textBytes = Buffer.from(text, 'utf8');
  const charAt = byteToCharIndex(text);
  const out: Array<[number, number]> = [];
  let pos = 0;
  for (const piece of pieces) {
    let p = piece;
    if (!matches(textBytes, pos, p) && p.length > 0 && p[0] === 0x20 && matches(textBytes, pos, p.subarray(1))) {
      p = p.subarray(1);
    }
    if (!matches(textBytes, pos, p)) return null;
    const start = charAt[pos];
    pos += p.length;
    // round a split character up to its end
    let end = charAt[pos];
    if (pos < textBytes.length && (textBytes[pos] & 0xc0) === 0x80) {
      let q = pos;
      while (q < textBytes.length && (textBytes[q] & 0xc0) === 0x80) q++;
      end = charAt[q];
    }
    out.push([Math.min(start, end), end]);
  }
  return pos === textBytes.length ? out : null;
}

function matches(hay: Uint8Array, at: number, needle: Uint8Array): boolean {
  if (at + needle.length > hay.length) return false;
  for (let i = 0; i < needle.length; i++) if (hay[at + i] !== needle[i]) return false;
  return true;
}

/** Streaming detokeniser: holds back incomplete UTF-8 sequences between tokens. */
export class TextStream {
  private decoder = new TextDecoder('utf-8', { fatal: false });
  push(bytes: Uint8Array): string {
    return this.decoder.decode(bytes, { stream: true });
  }
  flush(): string {
    return this.decoder.decode();
  }
}
