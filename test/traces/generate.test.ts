import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Model } from '../../src/engine/index.ts';
import {
  generateTraces,
  makeTraceRecord,
  readQuestionsJsonl,
  readTraces,
  renderPrompt,
} from '../../src/traces/generate.ts';
import { cli, codeOf } from '../helpers/cli.ts';
import { tinyLlama } from '../helpers/models.ts';

const model = await Model.load(tinyLlama());
const tmp = () => mkdtempSync(join(tmpdir(), 'tw-traces-'));
const questions = [
  { id: 'q1', question: 'What is 2 + 3?' },
  { id: 'q2', question: 'Ann has 4 pens. She buys 5 more. How many pens does Ann have now?' },
  { id: 'q3', question: 'Is 7 prime?' },
];

test('records: chat-template prompt, full response, thinking span; batched greedy equals one at a time', async () => {
  const dir = tmp();
  const batched = join(dir, 'b.jsonl');
  const single = join(dir, 's.jsonl');
  const sum = await generateTraces(model, questions, batched, { maxTokens: 8, batch: 3, threads: 1 });
  assert.equal(sum.generated, 3);
  await generateTraces(model, questions, single, { maxTokens: 8, batch: 1, threads: 1 });
  const a = (await readTraces(batched)).records;
  const b = (await readTraces(single)).records;
  assert.deepEqual(
    a.map((r) => r.id),
    ['q1', 'q2', 'q3'],
  );
  for (let i = 0; i < 3; i++) {
    const r = a[i];
    assert.equal(r.prompt, model.applyChatTemplate([{ role: 'user', content: questions[i].question }]));
    assert.equal(r.fullResponse, r.prompt + r.generated);
    assert.equal(r.maxTokens, 8);
    assert.ok(r.generatedTokens <= 8 && r.generatedTokens > 0);
    // No <think> anywhere: the paper's extraction starts at 0 (prompt included).
    assert.equal(r.thinkingStart, 0);
    assert.equal(r.thinking, r.fullResponse.trim());
    assert.equal(r.generated, b[i].generated, 'greedy decoding does not depend on the batch');
  }
});

test('thinking span after a <think> prompt suffix', () => {
  const prompt = renderPrompt(model, 'Why?', { promptSuffix: '<think>\n' });
  assert.ok(prompt.endsWith('assistant\n<think>\n'));
  const rec = makeTraceRecord({ id: 'x', question: 'Why?' }, prompt, 'Because it is so.\n</think>\nDone.', {
    finishReason: 'eog',
    promptTokens: 1,
    generatedTokens: 1,
    model: 'm',
    maxTokens: 1,
    temperature: 0,
  });
  assert.equal(rec.thinking, 'Because it is so.');
  assert.equal(rec.fullResponse.slice(rec.thinkingStart, rec.thinkingStart + rec.thinking.length), rec.thinking);
});

test('resume: a torn last line is cut, finished questions are skipped, other settings are refused', async () => {
  const dir = tmp();
  const out = join(dir, 't.jsonl');
  await generateTraces(model, questions.slice(0, 1), out, { maxTokens: 6, threads: 1 });
  const first = readFileSync(out, 'utf8');
  writeFileSync(out, `${first}{"id":"q2","prompt":"<|im_st`);
  const lines: string[] = [];
  const sum = await generateTraces(model, questions, out, {
    maxTokens: 6,
    threads: 1,
    onProgress: (l) => lines.push(l),
  });
  assert.equal(sum.skipped, 1);
  assert.equal(sum.generated, 2);
  assert.ok(lines.some((l) => l.includes('torn')));
  const { records, tornAt } = await readTraces(out);
  assert.equal(tornAt, null);
  assert.deepEqual(
    records.map((r) => r.id),
    ['q1', 'q2', 'q3'],
  );
  assert.ok(readFileSync(out, 'utf8').startsWith(first), 'earlier records are kept byte for byte');
  const again = await generateTraces(model, questions, out, { maxTokens: 6, threads: 1 });
  assert.equal(again.generated, 0);
  assert.equal(await codeOf(generateTraces(model, questions, out, { maxTokens: 7 })), 'TRACES_MISMATCH');
});

test('bad input: empty question set, malformed question file, missing trace file', async () => {
  const dir = tmp();
  assert.equal(await codeOf(generateTraces(model, [], join(dir, 'x.jsonl'))), 'NO_QUESTIONS');
  const q = join(dir, 'q.jsonl');
  writeFileSync(q, '{"id": 1, "question": "ok?"}\n{"id": 2, "prompt": "no question field"}\n');
  assert.equal(await codeOf(readQuestionsJsonl(q)), 'QUESTIONS_MALFORMED');
  writeFileSync(q, '{"id": 1, "question": "a?"}\n{"id": 1, "question": "b?"}\n');
  assert.equal(await codeOf(readQuestionsJsonl(q)), 'QUESTIONS_MALFORMED');
  assert.equal(await codeOf(readTraces(join(dir, 'none.jsonl'))), 'TRACES_NOT_FOUND');
  writeFileSync(q, '{"id": "a", "question": "one?"}\nnot json\n{"id": "b", "question": "two?"}\n');
  assert.equal(await codeOf(readQuestionsJsonl(q)), 'QUESTIONS_MALFORMED');
});

test('CLI: thinkwhen traces writes and resumes; errors name the fix', async () => {
  const dir = tmp();
  const q = join(dir, 'q.jsonl');
  writeFileSync(q, `${questions.map((x) => JSON.stringify(x)).join('\n')}\n`);
  const out = join(dir, 'traces.jsonl');
  const args = ['traces', '--model', model.info.path, '--questions', q, '--out', out, '--max-tokens', '4'];
  const r1 = await cli([...args, '--limit', '2', '--threads', '1']);
  assert.equal(r1.code, 0, r1.err);
  assert.match(r1.out, /2 traces written/);
  const r2 = await cli([...args, '--threads', '1']);
  assert.equal(r2.code, 0, r2.err);
  assert.match(r2.out, /1 traces written .*2 already there/);
  assert.equal((await readTraces(out)).records.length, 3);
  const bad = await cli(['traces', '--questions', q, '--out', out]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--model is required/);
  const empty = join(dir, 'empty.jsonl');
  writeFileSync(empty, '');
  const e = await cli(['traces', '--model', model.info.path, '--questions', empty, '--out', join(dir, 'e.jsonl')]);
  assert.equal(e.code, 2);
  assert.match(e.err, /question set is empty/);
  assert.ok(!existsSync(join(dir, 'e.jsonl')));
  const help = await cli(['traces', '--help']);
  assert.match(help.out, /Examples:/);
});

test('trace files start with a header; --out never truncates or appends to a file that is not ours', async () => {
  const dir = tmp();
  const q = join(dir, 'q.jsonl');
  // A question file without a trailing newline: its last line looks like a torn record.
  const qText = questions.map((x) => JSON.stringify(x)).join('\n');
  writeFileSync(q, qText);
  const base = ['traces', '--model', model.info.path, '--questions', q, '--max-tokens', '3', '--threads', '1'];

  const own = join(dir, 'own.jsonl');
  assert.equal((await cli([...base, '--out', own])).code, 0);
  const { header, records } = await readTraces(own);
  assert.deepEqual(header?.settings, {
    model: model.info.path,
    maxTokens: 3,
    temperature: 0,
    seed: 0,
    promptSuffix: '',
  });
  assert.equal(records.length, 3);
  assert.ok(readFileSync(own, 'utf8').startsWith('{"format":"thinkwhen-traces"'));

  for (const [name, text] of [
    ['notes.txt', 'my notes, no newline at the end'],
    ['other.jsonl', '{"id":"x","fullResponse":"a record from another tool"}\n'],
  ]) {
    const foreign = join(dir, name);
    writeFileSync(foreign, text);
    const r = await cli([...base, '--out', foreign]);
    assert.equal(r.code, 2, name);
    assert.match(
      r.err,
      /is not a trace file written by thinkwhen traces .* left untouched \(fix: write to a new --out file/,
    );
    assert.equal(readFileSync(foreign, 'utf8'), text, `${name} is byte for byte unchanged`);
  }

  // --out naming the question file itself, directly or through a symlink.
  const link = join(dir, 'link.jsonl');
  symlinkSync(q, link);
  for (const out of [q, link]) {
    const r = await cli([...base, '--out', out]);
    assert.equal(r.code, 2);
    assert.match(r.err, /is the question file/);
  }
  assert.equal(readFileSync(q, 'utf8'), qText);
  assert.equal(await codeOf(generateTraces(model, questions, q, { maxTokens: 3, threads: 1 })), 'NOT_OUR_FILE');
  assert.equal(readFileSync(q, 'utf8'), qText);
});

test('--max-tokens and --threads are bounded: by the option table and by the model', async () => {
  const dir = tmp();
  const q = join(dir, 'q.jsonl');
  writeFileSync(q, `${JSON.stringify(questions[0])}\n`);
  const out = join(dir, 't.jsonl');
  const base = ['traces', '--model', model.info.path, '--questions', q, '--out', out];
  const huge = await cli([...base, '--max-tokens', '1e9']);
  assert.equal(huge.code, 2);
  assert.match(huge.err, /--max-tokens expects an integer from 1 to 1048576, got '1e9'/);
  // The tiny model was trained (declared) with a 4096-token context.
  assert.equal(model.info.nCtxTrain, 4096);
  const long = await cli([...base, '--max-tokens', '5000']);
  assert.equal(long.code, 2);
  assert.match(
    long.err,
    /plus 5000 new tokens exceeds the model's training context of 4096 tokens \(fix: use --max-tokens \d+ or less\)/,
  );
  assert.ok(!existsSync(out), 'a refused run writes nothing');
  for (const bad of ['0', '-1', '2.5', 'NaN', '', '2000']) {
    const r = await cli([...base, `--threads=${bad}`, '--max-tokens', '2']);
    assert.equal(r.code, 2, `--threads '${bad}'`);
    assert.match(r.err, /--threads expects an integer from 1 to 1024/);
  }
  const over = String(availableParallelism() + 1);
  const clamped = await cli([...base, '--threads', over, '--max-tokens', '2']);
  assert.equal(clamped.code, 0, clamped.err);
  assert.match(clamped.err, new RegExp(`warning: --threads ${over} is more than this machine's \\d+ cores; using`));
});
