import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gradeResponse, isEquivalent, parseAnswer } from '../../../src/eval/answer/index.ts';
import { matchBrace } from '../../../src/eval/answer/scan.ts';

// Data stays in the shared folder next to the repository; it is never copied in.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const dataDir = path.join(repoRoot, '..', 'shared', 'data');

function readJsonl<T>(relative: string): T[] {
  return readFileSync(path.join(dataDir, relative), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

interface MathRow {
  problem: string;
  solution: string;
  answer: string;
}
interface GsmRow {
  question: string;
  answer: string;
}

const math500 = readJsonl<MathRow>('math500/test.jsonl');
const gsm8k = readJsonl<GsmRow>('gsm8k/test.jsonl');
const pct = (k: number, n: number): string => `${k}/${n} = ${((100 * k) / n).toFixed(2)}%`;

test('every MATH500 gold answer parses (no string fallback) and is equivalent to itself', (t) => {
  assert.equal(math500.length, 500);
  const unparsed = math500.filter((r) => {
    const parsed = parseAnswer(r.answer);
    return parsed === null || parsed.value.kind === 'raw';
  });
  const notSelf = math500.filter((r) => !isEquivalent(r.answer, r.answer));
  t.diagnostic(
    `MATH500 gold parsed structurally: ${pct(500 - unparsed.length, 500)}; self-equivalent: ${pct(500 - notSelf.length, 500)}`,
  );
  assert.deepEqual(
    unparsed.map((r) => r.answer),
    [],
  );
  assert.deepEqual(
    notSelf.map((r) => r.answer),
    [],
  );
});

test('MATH500: the reference solution, graded against its answer, is correct for >= 99% of rows', (t) => {
  const wrong = math500.filter((r) => !gradeResponse(r.answer, r.solution).correct);
  const rate = (500 - wrong.length) / 500;
  t.diagnostic(`MATH500 solution self-grading: ${pct(500 - wrong.length, 500)}`);
  console.log(`MATH500 solution self-grading: ${pct(500 - wrong.length, 500)}`);
  assert.ok(rate >= 0.99, `failed rows: ${wrong.map((r) => r.answer).join(' | ')}`);
});

test('GSM8K test: every full answer text, graded against the gold after ####, is correct', (t) => {
  assert.equal(gsm8k.length, 1319);
  const wrong = gsm8k.filter((r) => {
    const gold = r.answer.slice(r.answer.lastIndexOf('####') + 4).trim();
    return !gradeResponse(gold, r.answer, { mode: 'gsm8k' }).correct;
  });
  t.diagnostic(`GSM8K solution self-grading: ${pct(1319 - wrong.length, 1319)}`);
  console.log(`GSM8K solution self-grading: ${pct(1319 - wrong.length, 1319)}`);
  assert.deepEqual(
    wrong.map((r) => r.answer.slice(-40)),
    [],
  );
});

test("negative control: a solution graded against a different problem's answer is rejected", (t) => {
  // Pair each MATH500 solution with the next row's answer; only rows whose answers differ in value count.
  let compared = 0;
  let accepted = 0;
  const accepts: string[] = [];
  for (let i = 0; i < math500.length; i++) {
    const other = math500[(i + 1) % math500.length];
    if (isEquivalent(math500[i].answer, other.answer)) continue;
    compared++;
    if (gradeResponse(other.answer, math500[i].solution).correct) {
      accepted++;
      accepts.push(`${math500[i].answer} ~ ${other.answer}`);
    }
  }
  t.diagnostic(`MATH500 cross-row false accepts: ${accepted}/${compared}`);
  assert.ok(compared > 450);
  assert.deepEqual(accepts, []);
  // GSM8K: the next problem's gold.
  let gsmAccepted = 0;
  for (let i = 0; i < gsm8k.length; i++) {
    const next = gsm8k[(i + 1) % gsm8k.length].answer;
    const gold = next.slice(next.lastIndexOf('####') + 4).trim();
    const own = gsm8k[i].answer.slice(gsm8k[i].answer.lastIndexOf('####') + 4).trim();
    if (gold.replace(/,/g, '') === own.replace(/,/g, '')) continue;
    if (gradeResponse(gold, gsm8k[i].answer, { mode: 'gsm8k' }).correct) gsmAccepted++;
  }
  assert.equal(gsmAccepted, 0);
});

/** The solution with every `\boxed{X}` replaced by `X`: the answer left in running text, as base models write. */
function unbox(text: string): string {
  let out = '';
  let i = 0;
  for (let at = text.indexOf('\\boxed{', i); at >= 0; at = text.indexOf('\\boxed{', i)) {
    const close = matchBrace(text, at + 6);
    if (close < 0) break;
    out += text.slice(i, at) + text.slice(at + 7, close);
    i = close + 1;
  }
  return out + text.slice(i);
}

test('MATH500 solutions with their boxes unwrapped: >= 88% graded correct in math mode, no cross-row false accepts', (t) => {
  let own = 0;
  let compared = 0;
  const accepts: string[] = [];
  for (let i = 0; i < math500.length; i++) {
    const text = unbox(math500[i].solution);
    assert.ok(!text.includes('\\boxed'));
    if (gradeResponse(math500[i].answer, text).correct) own++;
    const other = math500[(i + 1) % math500.length];
    if (isEquivalent(math500[i].answer, other.answer)) continue;
    compared++;
    if (gradeResponse(other.answer, text).correct) accepts.push(`${math500[i].answer} ~ ${other.answer}`);
  }
  const line = `MATH500 unboxed solutions: ${pct(own, 500)} graded correct; cross-row false accepts ${accepts.length}/${compared}`;
  t.diagnostic(line);
  console.log(line);
  assert.ok(own >= 440, line);
  assert.deepEqual(accepts, []);
});

test('GSM8K solutions without their #### line: >= 99% graded correct in gsm8k mode, no cross-row false accepts', (t) => {
  const goldOf = (answer: string): string => answer.slice(answer.lastIndexOf('####') + 4).trim();
  let own = 0;
  let compared = 0;
  const accepts: string[] = [];
  for (let i = 0; i < gsm8k.length; i++) {
    const text = gsm8k[i].answer.slice(0, gsm8k[i].answer.lastIndexOf('####')).trim();
    const gold = goldOf(gsm8k[i].answer);
    if (gradeResponse(gold, text, { mode: 'gsm8k' }).correct) own++;
    const other = goldOf(gsm8k[(i + 1) % gsm8k.length].answer);
    if (other.replace(/,/g, '') === gold.replace(/,/g, '')) continue;
    compared++;
    if (gradeResponse(other, text, { mode: 'gsm8k' }).correct) accepts.push(`${gold} ~ ${other}`);
  }
  const line = `GSM8K solutions without ####: ${pct(own, gsm8k.length)} graded correct; cross-row false accepts ${accepts.length}/${compared}`;
  t.diagnostic(line);
  console.log(line);
  assert.ok(own >= 1306, line);
  assert.deepEqual(accepts, []);
});
