import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countWords, extractThinking, splitForAnnotation, splitIntoSentences } from '../../src/traces/sentences.ts';

const texts = (s: string, opts = {}) => splitIntoSentences(s, opts).map((x) => x.text);

/** Every span must hold the sentence (verbatim ones exactly). */
function checkSpans(input: string) {
  for (const s of splitIntoSentences(input)) {
    const original = input.slice(s.start, s.end);
    assert.equal(s.verbatim, original === s.text);
    assert.equal(original.trim(), original, 'spans are stripped');
    assert.deepEqual(countWords(original) > 0, true);
  }
}

test('decimals are not sentence ends', () => {
  const input = 'The value of pi is 3.14 approximately. Next we compute 2.5 times it.';
  assert.deepEqual(texts(input), ['The value of pi is 3.14 approximately.', 'Next we compute 2.5 times it.']);
  checkSpans(input);
});

test('one-letter abbreviations: "E. coli" is protected, "e.g." splits after "e." as in the reference', () => {
  assert.deepEqual(texts('E. coli is a bacterium that lives. It is small.'), [
    'E. coli is a bacterium that lives.',
    'It is small.',
  ]);
  // "e.g" has no space after "e.", so only "g. t" is protected: the reference splits after "e.".
  assert.deepEqual(texts('We use e.g. the formula here. Then we stop.'), [
    'We use e.',
    'g. the formula here.',
    'Then we stop.',
  ]);
  assert.deepEqual(texts('So e.g. the formula.', { minWords: 3 }), ['g. the formula.']);
});

test('"k!" (factorial) does not end a sentence; "!" after a word does', () => {
  assert.deepEqual(texts('Then k! is large for sure. Wow that is big! Really big indeed.'), [
    'Then k! is large for sure.',
    'Wow that is big!',
    'Really big indeed.',
  ]);
});

test('repeated punctuation collapses for splitting and is restored the reference way', () => {
  assert.deepEqual(texts('Really?! Are you sure about it?? Yes I am sure.'), [
    'Are you sure about it??',
    'Yes I am sure.',
  ]);
  // The reference widens the first "." of every piece for each "..." run: text differs from the source.
  const input = 'Wait... Hmm let me think. OK so that is it.';
  const got = splitIntoSentences(input);
  assert.deepEqual(
    got.map((s) => s.text),
    ['Hmm let me think...', 'OK so that is it...'],
  );
  assert.deepEqual(
    got.map((s) => input.slice(s.start, s.end)),
    ['Hmm let me think.', 'OK so that is it.'],
  );
  assert.equal(got[0].verbatim, false);
  // 'span' mode returns the source text of the same sentences.
  assert.deepEqual(texts(input, { text: 'span' }), ['Hmm let me think.', 'OK so that is it.']);
});

test('a sentence starting with a quote gives the quote to the previous sentence', () => {
  const input = 'He said "stop this now." Then it was done.';
  const got = splitIntoSentences(input);
  assert.deepEqual(
    got.map((s) => s.text),
    ['He said "stop this now."', 'Then it was done.'],
  );
  assert.equal(input.slice(got[0].start, got[0].end), 'He said "stop this now."');
  assert.equal(got[1].start, input.indexOf('Then'));
  // The word minimum applies first: '" Ok.' (2 words) is gone before the quote step, so no quote moves.
  assert.deepEqual(texts('He said "stop this now." Ok.'), ['He said "stop this now.']);
  assert.deepEqual(texts('He said "stop this now." Ok.', { minWords: 0 }), ['He said "stop this now."', 'Ok.']);
});

test('newlines split; short lines are dropped; unicode and emoji keep UTF-16 spans', () => {
  const input = 'First line has words\nok\nSecond line 😀 has words too. Done here now.';
  const got = splitIntoSentences(input);
  assert.deepEqual(
    got.map((s) => s.text),
    ['First line has words', 'Second line 😀 has words too.', 'Done here now.'],
  );
  for (const s of got) assert.equal(input.slice(s.start, s.end), s.text);
  assert.equal(got[2].start, input.indexOf('Done'));
  // Non-ASCII digits count as decimals (Python's \d).
  assert.deepEqual(texts('Value ٣.٥ is here ok. And more words here.'), [
    'Value ٣.٥ is here ok.',
    'And more words here.',
  ]);
  checkSpans(input);
});

test('a protected abbreviation spanning a newline does not split there (as in the reference)', () => {
  assert.deepEqual(texts('Take option a.\nb is wrong here. Fine then ok.'), [
    'Take option a.\nb is wrong here.',
    'Fine then ok.',
  ]);
});

test('empty and whitespace-only text give no sentences', () => {
  assert.deepEqual(splitIntoSentences(''), []);
  assert.deepEqual(splitIntoSentences('  \n\n '), []);
  assert.deepEqual(splitIntoSentences('ok.'), []);
});

test('annotation splitter (§2.5): punctuation only, no word minimum', () => {
  const input = 'Hi. So 3.14 is pi?\nYes; done';
  assert.deepEqual(
    splitForAnnotation(input).map((s) => s.text),
    ['Hi.', 'So 3.', '14 is pi?', 'Yes;', 'done'],
  );
});

test('extractThinking: between <think> and </think>, stripped, with its offset', () => {
  const r = '<｜User｜>Q<｜Assistant｜><think>\n  Let me see. It is 4.\n</think>\nAnswer: 4';
  const t = extractThinking(r);
  assert.equal(t.text, 'Let me see. It is 4.');
  assert.equal(r.slice(t.start, t.start + t.text.length), t.text);
  assert.equal(extractThinking('no tags here. ').text, 'no tags here.');
});
