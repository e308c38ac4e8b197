// The organism's files in llama.cpp: the tokenizer agrees with the TypeScript encoder, the quick
// build runs end to end (loss goes down, both GGUFs load and generate), and the shipped models load.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generate, Model } from '../../src/engine/index.ts';
import { buildOrganism, QUICK_CONFIG } from '../../src/organism/build.ts';
import { buildCorpus } from '../../src/organism/corpus.ts';
import { organismModelPaths } from '../../src/organism/index.ts';
import { QUICK_SPEC, writeInitialModel } from '../../src/organism/model-file.ts';
import { parseTrace } from '../../src/organism/parser.ts';
import { encodeAnswer, encodePrompt, organismVocab, promptText } from '../../src/organism/vocab.ts';
import { runSelfTest } from '../../src/steer/selftest.ts';

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

test('quick build: two loadable GGUFs whose loss went down; resumable', { timeout: 300_000 }, async () => {
  const out = join(dir, 'out');
  const work = join(dir, 'work');
  const rec = await buildOrganism({ config: QUICK_CONFIG, workDir: work, outDir: out, threads: 2 });
  for (const stage of [rec.base, rec.thinking]) {
    assert.ok(stage.lastLoss < stage.firstLoss, `loss ${stage.firstLoss} -> ${stage.lastLoss}`);
  }
  assert.ok(rec.base.lastLoss < 4, `base loss ${rec.base.lastLoss}`);
  const saved = JSON.parse(readFileSync(join(out, 'build.json'), 'utf8'));
  assert.equal(saved.config.name, 'quick');
  for (const f of ['base.gguf', 'thinking.gguf']) {
    const m = await Model.load(join(out, f));
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
  assert.equal(again.base.lastLoss, rec.base.lastLoss);
  assert.ok(again.wallSeconds < rec.base.seconds + rec.thinking.seconds);
});

const shipped = organismModelPaths();
test(
  'shipped models: load, pass the steering self-test, write the trace language, < 20 MB',
  { skip: !existsSync(shipped.thinking) },
  async () => {
    assert.ok(statSync(shipped.base).size + statSync(shipped.thinking).size < 20e6);
    for (const f of [shipped.base, shipped.thinking]) {
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
  },
);

test(
  'shipped models: the organism properties on 48 held-out problems',
  { skip: !existsSync(shipped.thinking), timeout: 240_000 },
  async () => {
    const { evaluateOrganism } = await import('../../src/organism/eval.ts');
    const r = await evaluateOrganism({ basePath: shipped.base, thinkingPath: shipped.thinking, n: 48, threads: 2 });
    for (const [name, p] of Object.entries(r.properties)) {
      if (name !== 'test_set') assert.ok(p.pass, `${name} = ${p.value} (${p.threshold})`);
    }
    assert.ok(r.counts.knows_how_verify[1] >= 48, 'a verification point after most quick computations');
    assert.ok(r.counts.knows_how_backtrack[1] > 5);
  },
);
