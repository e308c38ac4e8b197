import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitIntoSentences } from '../../src/traces/sentences.ts';
import {
  activationRows,
  byteOffsetsToUtf16,
  charToTokenMap,
  locateSentence,
  type TokenOffsets,
  tokenSpanOfChars,
} from '../../src/traces/spans.ts';

/** Offsets of consecutive pieces of `text` (a toy tokenizer), with a BOS of empty span first. */
function tokenize(pieces: string[]): { text: string; offsets: Array<[number, number]> } {
  const offsets: Array<[number, number]> = [[0, 0]];
  let at = 0;
  for (const p of pieces) {
    offsets.push([at, at + p.length]);
    at += p.length;
  }
  return { text: pieces.join(''), offsets };
}

test('char→token map: later tokens own shared characters, uncovered characters have none', () => {
  const map = charToTokenMap(
    [
      [0, 0],
      [0, 3],
      [2, 5],
      [6, 7],
    ],
    8,
  );
  assert.deepEqual([...map], [1, 1, 2, 2, 2, -1, 3, -1]);
});

test('the paper rule: end = token of the character after the sentence; shifted rows', () => {
  const { text, offsets } = tokenize(['I', ' think', ' so', '.', ' Then', ' yes', '.']);
  const c2t = charToTokenMap(offsets, text.length);
  const sentence = 'I think so.';
  const span = tokenSpanOfChars(c2t, 0, sentence.length)!;
  // Tokens 1..4 are the sentence; token 5 (" Then") holds the next character (the space).
  assert.deepEqual(span, { start: 1, end: 5 });
  // Rows ts-1 .. te-1: the positions that predict the sentence's tokens.
  assert.deepEqual(activationRows(span), { start: 0, end: 5 });
  assert.deepEqual(activationRows(span, false), { start: 1, end: 5 });
  assert.deepEqual(tokenSpanOfChars(c2t, 0, sentence.length, 'last-char'), { start: 1, end: 4 });
  assert.deepEqual(tokenSpanOfChars(c2t, 0, sentence.length, 'cover'), { start: 1, end: 5 });
  // The last sentence has no character after it: the paper skips it.
  assert.equal(tokenSpanOfChars(c2t, text.indexOf('Then') - 1 + 1, text.length), null);
});

test('a BPE token that straddles the sentence boundary (".\\n\\n" merged) is the exclusive end', () => {
  const { text, offsets } = tokenize(['We', ' add', ' them', '.\n\n', 'Next', ' step', ' now', '.', '\n']);
  const c2t = charToTokenMap(offsets, text.length);
  const [first, second] = splitIntoSentences(text);
  assert.equal(first.text, 'We add them.');
  // The "." lives in token 4 together with the newline after it, so token 4 ends the span and the
  // sentence's tokens are 1..3; its rows 0..3 predict tokens 1..4 (the straddling token included).
  assert.deepEqual(tokenSpanOfChars(c2t, first.start, first.end), { start: 1, end: 4 });
  assert.deepEqual(locateSentence(text, first, c2t)?.rows, { start: 0, end: 4 });
  // 'cover' includes the straddling token instead.
  assert.deepEqual(tokenSpanOfChars(c2t, first.start, first.end, 'cover'), { start: 1, end: 5 });
  assert.deepEqual(locateSentence(text, second, c2t)?.tokens, { start: 5, end: 9 });
});

test('a token that holds the whole sentence and more gives an empty span, which is skipped', () => {
  const { text, offsets } = tokenize(['Yes it is. And', ' so on.']);
  const c2t = charToTokenMap(offsets, text.length);
  assert.equal(tokenSpanOfChars(c2t, 0, 'Yes it is.'.length), null);
});

test('a sentence at token 0 has no row before it and is skipped with the shift', () => {
  const offsets: TokenOffsets = [
    [0, 3],
    [3, 8],
    [8, 9],
  ];
  const c2t = charToTokenMap(offsets, 10);
  const span = tokenSpanOfChars(c2t, 0, 8)!;
  assert.deepEqual(span, { start: 0, end: 2 });
  assert.equal(activationRows(span), null);
});

test("locate 'find' takes the first occurrence (the paper); 'span' uses the sentence's own position", () => {
  const prompt = 'Q: Is it true? It is true here.\n<think>\n';
  const thinking = 'It is true here. So done now.';
  const full = prompt + thinking + ' end';
  const pieces = full.match(/\S+|\s+/g)!;
  const { offsets } = tokenize(pieces);
  const c2t = charToTokenMap(offsets, full.length);
  const [first] = splitIntoSentences(thinking);
  const byFind = locateSentence(full, first, c2t)!;
  assert.equal(byFind.charStart, full.indexOf('It is true here.'));
  assert.ok(byFind.charStart < prompt.length, 'the paper finds the copy inside the prompt');
  const bySpan = locateSentence(full, first, c2t, { locate: 'span', thinkingStart: prompt.length })!;
  assert.equal(bySpan.charStart, prompt.length);
  assert.equal(full.slice(bySpan.charStart, bySpan.charEnd), 'It is true here.');
  // A non-verbatim paper sentence is not found by 'find' (the reference drops it) but is by 'span'.
  const odd = 'Wait... so we are here. And then go on.';
  const [s1] = splitIntoSentences(odd);
  assert.equal(s1.verbatim, false);
  const c2tOdd = charToTokenMap(tokenize(odd.match(/\S+|\s+/g)!).offsets, odd.length);
  assert.equal(locateSentence(odd, s1, c2tOdd), null);
  assert.ok(locateSentence(odd, s1, c2tOdd, { locate: 'span' }));
});

test('byte offsets → UTF-16: an emoji split across two byte-level tokens is covered by both', () => {
  const text = 'a😀b. Yes';
  // 'a' = byte 0; 😀 = bytes 1..4 split as [1,3) and [3,5); 'b' = 5; '.' = 6; ' Yes' = 7..10
  const bytes: TokenOffsets = [
    [0, 1],
    [1, 3],
    [3, 5],
    [5, 7],
    [7, 11],
  ];
  const units = byteOffsetsToUtf16(text, bytes);
  assert.deepEqual(units, [
    [0, 1],
    [1, 3],
    [1, 3],
    [3, 5],
    [5, 9],
  ]);
  const c2t = charToTokenMap(units, text.length);
  assert.equal(c2t[1], 2, 'the later token owns the shared emoji');
  assert.equal(c2t[2], 2);
  assert.equal(text.slice(units[4][0], units[4][1]), ' Yes');
});
