// `thinkwhen hybrid`: a question, a question file into a resumable run store, and refusals.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RunStore } from '../../src/eval/store.ts';
import type { TokenRecord } from '../../src/hybrid/index.ts';
import { randomSae } from '../../src/hybrid/synthetic.ts';
import { generateProblems, organismModelPaths } from '../../src/organism/index.ts';
import { saveSae } from '../../src/taxonomy/sae.ts';
import { cli } from '../helpers/cli.ts';
import { writeRandomVectorSet } from '../helpers/vector-set.ts';

const dir = mkdtempSync(join(tmpdir(), 'tw-hybrid-cli-'));
const models = organismModelPaths();
const saePath = await saveSae(join(dir, 'sae', 'sae_layer2_k6'), randomSae(128, 6, 3));

/** A vector set for the organism's base model, as `thinkwhen vectors` writes one. */
const vectorSet = (name: string, skip: number[] = []) =>
  writeRandomVectorSet(join(dir, name), { baseModel: models.base, thinkingModel: models.thinking, saePath, skip });

const vectors = await vectorSet('vectors');
const GRID = ['--coefficients', '0.5,2', '--windows=0,-1,-15'];
// seed 79: both need a verification at their first step, where the organism v2 pair disagrees
const [p1, p2] = generateProblems('test', 2, 79);

test('a question: the text, the steered tokens, the statistics; --reference gives the same text', async () => {
  const args = ['hybrid', '--organism', '--vectors', vectors, '--question', p1.question, '--max-tokens', '80', ...GRID];
  const fast = await cli([...args, '--trace']);
  assert.equal(fast.code, 0, fast.err);
  assert.match(fast.out, /starts with \d+/);
  assert.match(fast.err, /steered: [\d.]+ % per problem/);
  assert.match(fast.err, /step \d+: .* → .*\[\d: category \d c [\d.]+ w -?\d+\]/);
  const ref = await cli([...args, '--reference']);
  assert.equal(ref.code, 0, ref.err);
  assert.equal(ref.out, fast.out);
});

test('a problem file into a run store: records, graded as `thinkwhen run` grades, resume without redoing', async () => {
  const questions = join(dir, 'q.jsonl');
  writeFileSync(
    questions,
    [p1, p2].map((p, i) => JSON.stringify({ id: `p${i}`, question: p.question, answer: String(p.answer) })).join('\n'),
  );
  const out = join(dir, 'run.sqlite');
  const args = [
    'hybrid',
    '--organism',
    '--vectors',
    vectors,
    '--dataset',
    questions,
    '--out',
    out,
    '--max-tokens',
    '120',
    ...GRID,
  ];
  const first = await cli(args);
  assert.equal(first.code, 0, first.err);
  assert.match(first.err, /\[2\/2\]/);
  const store = RunStore.openReadonly(out);
  const gens = [...store.generations()];
  assert.equal(gens.length, 2);
  for (const g of gens) {
    const a = g.annotations as { format: string; records: TokenRecord[] };
    assert.equal(a.format, 'thinkwhen-hybrid/1');
    assert.equal(a.records.length, g.completionTokens);
    assert.equal(g.steeredTokens, a.records.filter((r) => r.steered).length);
    assert.equal(
      g.text,
      a.records
        .map((r) => r.text)
        .join('')
        .replace(/<\|im_end\|>$/, ''),
    );
  }
  // the graders of `thinkwhen run` for a custom file: 'rules-math'
  assert.deepEqual(
    store.grades().map((g) => g.grader),
    ['rules-math', 'rules-math'],
  );
  assert.equal(store.config.role, 'hybrid');
  assert.equal(store.config.grader, 'rules-math');
  store.close();
  const again = await cli(args);
  assert.equal(again.code, 0, again.err);
  assert.match(again.err, /2 of 2 generations already in/);
  const s2 = RunStore.openReadonly(out);
  assert.equal(s2.counts().generations, 2);
  s2.close();
  // another policy is another run: refused in the same store
  const other = await cli([...args, '--policy', 'only_bias']);
  assert.equal(other.code, 2);
  assert.match(other.err, /different config/);
});

test('refusals name the problem and the fix', async () => {
  const q = ['--question', p1.question, '--max-tokens', '5'];
  let r = await cli(['hybrid', '--organism', ...q]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--vectors is required/);
  r = await cli(['hybrid', '--organism', '--vectors', vectors, '--policy', 'nope', ...q]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--policy must be one of paper, only_bias/);
  const holes = await vectorSet('holes', [4]);
  r = await cli(['hybrid', '--organism', '--vectors', holes, '--missing-vector', 'error', ...q]);
  assert.equal(r.code, 2);
  assert.match(r.err, /latent\(s\) 4 \(too few examples\).*--missing-vector bias/);
  // with --organism the default is bias (its shipped sets lack vectors for rare latents)
  r = await cli(['hybrid', '--organism', '--vectors', holes, ...q]);
  assert.equal(r.code, 0, r.err);
  const other = await saveSae(join(dir, 'sae', 'sae_layer2_k5'), randomSae(128, 5, 3));
  r = await cli(['hybrid', '--organism', '--vectors', vectors, '--sae', other, ...q]);
  assert.match(r.err, /does not say which layer it reads.*--sae-layer/);
  r = await cli(['hybrid', '--organism', '--vectors', vectors, '--sae', other, '--sae-layer', '2', ...q]);
  assert.equal(r.code, 2);
  assert.match(r.err, /6-latent SAE .* has 5 latents/);
  r = await cli(['hybrid', '--organism', '--vectors', vectors, '--dataset', 'gsm8k', '--limit', '1']);
  assert.equal(r.code, 2);
  assert.match(r.err, /needs --out/);
  r = await cli(['hybrid', '--vectors', join(dir, 'nowhere'), ...q]);
  assert.equal(r.code, 2);
  // the oracle needs no vectors
  r = await cli(['hybrid', '--organism', '--sae', saePath, '--sae-layer', '2', '--policy', 'oracle', ...q]);
  assert.equal(r.code, 0, r.err);
});

test('pass@k: --samples 2 --temperature 1.5 stores two graded samples per problem, reproducibly', async () => {
  const questions = join(dir, 'q1.jsonl');
  writeFileSync(questions, JSON.stringify({ id: 'p0', question: p1.question, answer: String(p1.answer) }));
  const args = (out: string) => [
    'hybrid',
    '--organism',
    '--vectors',
    vectors,
    '--dataset',
    questions,
    '--out',
    out,
    '--max-tokens',
    '60',
    '--samples',
    '2',
    // the organism's models are nearly certain of most tokens: a high temperature makes the samples differ
    '--temperature',
    '1.5',
    '--seed',
    '4',
    ...GRID,
  ];
  const texts = async (out: string) => {
    const r = await cli(args(out));
    assert.equal(r.code, 0, r.err);
    const store = RunStore.openReadonly(out);
    const gens = [...store.generations()].sort((a, b) => a.sampleIndex - b.sampleIndex);
    assert.deepEqual(
      gens.map((g) => g.sampleIndex),
      [0, 1],
    );
    assert.equal(store.grades().length, 2);
    assert.equal(store.config.samplesPerProblem, 2);
    store.close();
    return gens.map((g) => g.text);
  };
  const a = await texts(join(dir, 'k1.sqlite'));
  const b = await texts(join(dir, 'k2.sqlite'));
  assert.deepEqual(a, b, 'the same seed draws the same samples');
  assert.notEqual(a[0], a[1], 'two samples, one text');
});

test('hostile command lines: exit 2, the problem and the fix, no stack trace, nothing run', async () => {
  const refused = (r: { code: number; err: string }, message: RegExp) => {
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, message);
    assert.match(r.err, /\(fix: /);
    assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  };
  const q = ['--question', p1.question];
  const org = ['hybrid', '--organism', '--vectors', vectors];
  refused(await cli([...org, ...q, '--max-tokens', '1e9']), /--max-tokens expects an integer from 1 to/);
  refused(await cli([...org, ...q, '--max-tokens', 'NaN']), /--max-tokens expects an integer/);
  refused(await cli([...org, ...q, '--windows=0,1']), /--windows expects integers from -\d+ to 0/);
  refused(await cli([...org, ...q, '--coefficients', '0.1,x']), /--coefficients expects numbers/);
  refused(await cli([...org, ...q, '--temperature=-1']), /--temperature expects a number from 0 to 100/);
  refused(await cli([...org, ...q, '--speculate', '0']), /--speculate expects an integer from 1 to 64/);
  refused(await cli([...org, ...q, '--sae-layer', '2.5']), /--sae-layer expects an integer/);
  refused(await cli([...org, '--dataset', 'x.jsonl', '--out', join(dir, 'x.sqlite'), '--samples', '3']), /identical/);
  refused(await cli([...org, ...q, '--dataset', 'gsm8k']), /exactly one of --question and --dataset/);
  refused(await cli([...org, ...q, '--base-prompt', 'no placeholder']), /neither 'paper' nor 'chat'/);
  refused(
    await cli([...org, '--dataset', join(dir, 'missing.jsonl'), '--json']),
    /neither gsm8k, math500, organism nor a file/,
  );
  refused(await cli([...org, ...q, '--base', join(dir, 'missing.gguf')]), /base model not found/);
  refused(await cli([...org, ...q, '--sae', join(dir, 'missing')]), /SAE not found/);
  // a layer the thinking model does not have: refused before any decode
  refused(
    await cli([...org, ...q, '--sae-layer', '99']),
    /SAE layer 99 is not a layer of the \d+-layer thinking model/,
  );
  refused(await cli([...org, ...q, '--no-such-option']), /Unknown option '--no-such-option'/);
  // --out at a file that is not a run store: refused, left as it was
  const notes = join(dir, 'notes.txt');
  writeFileSync(notes, 'my notes\n');
  const qs = join(dir, 'q2.jsonl');
  writeFileSync(qs, JSON.stringify({ id: 'p0', question: p1.question, answer: '1' }));
  const r = await cli([...org, '--dataset', qs, '--out', notes, '--max-tokens', '5']);
  assert.equal(r.code, 2, r.err);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  assert.equal(readFileSync(notes, 'utf8'), 'my notes\n');
});
