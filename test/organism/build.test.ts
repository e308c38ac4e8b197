// The organism's files in llama.cpp: the tokenizer agrees with the TypeScript encoder, the quick
// build runs end to end (loss goes down, the three GGUFs load and generate, a rerun resumes), the
// shipped models load and their stored evaluations are theirs and pass.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { generate, Model } from '../../src/engine/index.ts';
import type { ThinkwhenError } from '../../src/errors.ts';
import { buildOrganism, organismVersion, QUICK_CONFIG, STAGES } from '../../src/organism/build.ts';
import { buildCorpus } from '../../src/organism/corpus.ts';
import {
  evalFileName,
  evaluateOrganism,
  type OrganismEvalResult,
  organismProperties,
  SHIPPED_EVALS,
} from '../../src/organism/eval.ts';
import { organismModelPaths } from '../../src/organism/index.ts';
import { QUICK_SPEC, requireOrganismVocab, writeInitialModel } from '../../src/organism/model-file.ts';
import { parseTrace } from '../../src/organism/parser.ts';
import { encodeAnswer, encodePrompt, organismVocab, promptText } from '../../src/organism/vocab.ts';
import { runSelfTest } from '../../src/steer/selftest.ts';
import { tinyQwen2 } from '../helpers/models.ts';

const dir = mkdtempSync(join(tmpdir(), 'organism-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('vocabulary: llama.cpp tokenizes the corpus exactly as the TypeScript encoder does', async () => {
  const init = join(dir, 'init.gguf');
  writeInitialModel(init, QUICK_SPEC, 1);
  const m = await Model.load(init);
  try {
    const v = organismVocab();
    assert.equal(m.info.nVocab, v.pieces.length);
    assert.ok(v.pieces.length < 1000);
    const corpus = buildCorpus({ seed: 5, traces: 150, exercises: 50, policy: { kind: 'random', p: 0.5 } });
    const texts = [
      ...corpus.traces.map((t) => [t.problem.question, t.text]),
      ...corpus.exercises.map((e) => [e.question, e.text]),
    ];
    for (const [q, a] of texts) {
      const full = `${promptText(q)}${a}<|im_end|>`;
      assert.deepEqual(Array.from(m.tokenize(full)), [...encodePrompt(q), ...encodeAnswer(a)]);
      assert.equal(m.detokenize(m.tokenize(a)), a);
    }
    // round trip of model-visible text and byte fallback for anything else
    const t = corpus.traces[0].text;
    assert.equal(m.detokenize(m.tokenize(t)), t);
    assert.equal(m.detokenize(m.tokenize('Zürich 3.5% ok?')), 'Zürich 3.5% ok?');
    assert.equal(
      m.applyChatTemplate([{ role: 'user', content: 'Q?' }], { addGenerationPrompt: true }),
      promptText('Q?'),
    );
  } finally {
    m.free();
  }
});

test('quick build: three loadable GGUFs whose loss went down; a rerun resumes', { timeout: 300_000 }, async () => {
  const out = join(dir, 'out');
  const work = join(dir, 'work');
  const rec = await buildOrganism({ config: QUICK_CONFIG, workDir: work, outDir: out, threads: 2 });
  for (const stage of STAGES) {
    const r = rec.stages[stage];
    assert.equal(r.steps, QUICK_CONFIG[stage].steps);
    assert.ok(r.lastLoss < r.firstLoss, `${stage}: loss ${r.firstLoss} -> ${r.lastLoss}`);
  }
  assert.ok(rec.stages.pretrain.lastLoss < 4, `pre-training loss ${rec.stages.pretrain.lastLoss}`);
  const saved = JSON.parse(readFileSync(join(out, 'build.json'), 'utf8'));
  assert.equal(saved.config.name, 'quick');
  assert.deepEqual(Object.keys(saved.stages).sort(), ['base', 'latent', 'pretrain', 'thinking']);
  assert.equal(organismVersion(out), 'v2 (quick build)');
  const paths = organismModelPaths(out);
  for (const f of [paths.base, paths.baseLatent, paths.thinking]) {
    requireOrganismVocab(f);
    const m = await Model.load(f);
    try {
      assert.equal(m.info.arch, 'llama');
      assert.match(m.info.name, /organism/);
      const ctx = m.createContext({ nCtx: 512, nSeqMax: 1, threads: 2 });
      const [r] = await generate(ctx, [
        {
          prompt: promptText('Ann has 12 apples. She buys 23 more. How many apples does Ann have now?'),
          maxTokens: 12,
        },
      ]);
      assert.equal(r.tokens.length > 0, true);
      ctx.free();
    } finally {
      m.free();
    }
  }
  // a rerun finds every stage done and only rewrites the final files
  const again = await buildOrganism({ config: QUICK_CONFIG, workDir: work, outDir: out, threads: 2 });
  assert.deepEqual(again.stages, rec.stages);
  assert.ok(again.wallSeconds < rec.trainSeconds);
});

test('organismVersion reads the build record; a model of another vocabulary is refused', () => {
  const v1 = join(dir, 'v1');
  mkdirSync(v1);
  assert.equal(organismVersion(v1), 'unknown');
  // the first organism's record: two stages, base and thinking, at the top level
  writeFileSync(join(v1, 'build.json'), JSON.stringify({ config: { name: 'full' }, base: {}, thinking: {} }));
  assert.equal(organismVersion(v1), 'v1');
  writeFileSync(join(v1, 'build.json'), JSON.stringify({ config: { name: 'full' }, stages: { latent: {} } }));
  assert.equal(organismVersion(v1), 'v2');
  assert.throws(
    () => requireOrganismVocab(tinyQwen2()),
    (e: ThinkwhenError) => e.code === 'ORGANISM_VOCAB' && /organism build/.test(e.fix ?? ''),
  );
});

// The shipped models and their stored measurements: missing files fail these tests.
const shipped = organismModelPaths();
const shippedDir = dirname(shipped.base);

test('shipped models: all files present, < 20 MB together, each loads, passes the steering self-test and writes the trace language', async () => {
  const files = [shipped.base, shipped.baseLatent, shipped.thinking];
  for (const f of [...files, join(shippedDir, 'build.json')])
    assert.ok(existsSync(f), `missing ${f}: run \`thinkwhen organism build\``);
  assert.ok(files.reduce((n, f) => n + statSync(f).size, 0) <= 20e6);
  for (const f of files) {
    const m = await Model.load(f);
    try {
      const report = await runSelfTest(m, {});
      assert.ok(
        report.checks.every((c) => c.pass),
        JSON.stringify(report.checks),
      );
      const ctx = m.createContext({ nCtx: 2048, nSeqMax: 4, threads: 2 });
      const res = await generate(ctx, [
        {
          prompt: promptText('Ann has 47 apples. She buys 38 more. She sells 25. How many apples does Ann have now?'),
          maxTokens: 300,
        },
      ]);
      const parsed = parseTrace(res[0].text);
      assert.ok(parsed.length >= 5 && parsed.every((s) => s.type !== null), res[0].text);
      ctx.free();
    } finally {
      m.free();
    }
  }
});

test('shipped models: the stored evaluations measured these files and every property holds', () => {
  const hash = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
  const sha = { base: hash(shipped.base), latent: hash(shipped.baseLatent), thinking: hash(shipped.thinking) };
  for (const { base, seed } of SHIPPED_EVALS) {
    const file = join(shippedDir, evalFileName(base, seed));
    assert.ok(existsSync(file), `missing ${file}: run \`thinkwhen organism eval --json\` (see docs/organism.md)`);
    const r = JSON.parse(readFileSync(file, 'utf8')) as OrganismEvalResult;
    assert.equal(r.base, base);
    assert.equal(r.seed, seed);
    assert.ok(r.n >= 500);
    assert.equal(r.models.base.sha256, base === 'latent' ? sha.latent : sha.base, `${file}: another base model`);
    assert.equal(r.models.thinking.sha256, sha.thinking, `${file}: another thinking model`);
    // the stored properties are consistent with the stored values and all pass
    assert.deepEqual(r.properties, organismProperties(r), file);
    for (const [k, p] of Object.entries(r.properties)) assert.ok(p.pass, `${file}: ${k} = ${p.value} (${p.threshold})`);
    for (const [k, [a, b]] of Object.entries(r.counts)) {
      if (k in r && !k.startsWith('p_verify_')) assert.equal((r as never)[k], b ? a / b : 0, `${file}: ${k}`);
    }
  }
});

test('shipped models: the stored taxonomy score was measured on the shipped thinking model', () => {
  const file = join(shippedDir, 'taxonomy.json');
  assert.ok(existsSync(file), `missing ${file}: see docs/organism.md (taxonomy score of the organism)`);
  const t = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(t.thinking.sha256, createHash('sha256').update(readFileSync(shipped.thinking)).digest('hex'));
  for (const k of ['ari', 'nmi', 'purity']) assert.ok(t[k] >= 0 && t[k] <= 1, `${k} = ${t[k]}`);
  assert.ok(Number.isInteger(t.layer) && Number.isInteger(t.k) && t.problems >= 200);
  assert.match(t.command, /taxonomy score --organism --json/);
});

test(
  'shipped models: a live check on 16 held-out problems agrees with the stored evaluation',
  { timeout: 240_000 },
  async () => {
    const r = await evaluateOrganism({ basePath: shipped.base, thinkingPath: shipped.thinking, n: 16, threads: 2 });
    assert.ok(r.counts.thinking_acc[0] >= 15, `thinking ${r.counts.thinking_acc}`);
    assert.ok(
      Math.abs(r.counts.base_acc[0] - r.counts.never_verify_acc[0]) <= 1,
      'the base follows the never-verify policy',
    );
    assert.ok(r.counts.copy_error_rate_base[0] <= 1 && r.counts.copy_error_rate_thinking[0] <= 1);
    assert.ok(r.p_verify_needed_thinking > 0.8 && r.p_verify_not_needed_thinking < 0.2);
    assert.ok(r.knows_how_verify > 0.8);
  },
);
