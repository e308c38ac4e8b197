import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generate, Model } from '../../src/engine/index.ts';
import { gradeResponse } from '../../src/eval/answer/index.ts';
import { mergeStores } from '../../src/eval/merge.ts';
import { RunStore } from '../../src/eval/store.ts';
import { organismDataset } from '../../src/experiments/datasets.ts';
import { getPreset } from '../../src/experiments/presets.ts';
import { PAPER_BASE_PROMPT, promptIds } from '../../src/experiments/prompts.ts';
import { runSystem } from '../../src/experiments/run.ts';
import { organismModelPaths, promptText } from '../../src/organism/index.ts';
import { cli, codeOf } from '../helpers/cli.ts';
import { tinyQwen2 } from '../helpers/models.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-run-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const organism = getPreset('organism');
const dataset = organismDataset(10);

function texts(path: string): Map<string, string> {
  const s = RunStore.openReadonly(path);
  try {
    return new Map([...s.generations()].map((g) => [`${g.problemId}#${g.sampleIndex}`, g.text]));
  } finally {
    s.close();
  }
}

describe('thinkwhen run', () => {
  it('stores what the engine generates for the same prompt, graded', async () => {
    const out = join(tmp, 'thinking.sqlite');
    const r = await runSystem({ system: 'thinking', preset: organism, checked: true, dataset, out, parallel: 3 });
    assert.deepEqual([r.total, r.generated, r.skipped, r.interrupted], [10, 10, 0, false]);
    // greedy decoding through continuous batching = one plain generate() per problem
    const model = await Model.load(organismModelPaths().thinking);
    const ctx = model.createContext({ nCtx: 2048, nSeqMax: 4 });
    const stored = texts(out);
    for (const p of dataset.problems.slice(0, 3)) {
      assert.equal(promptIds(model, 'chat', p.question).length, model.tokenize(promptText(p.question)).length);
      const [ref] = await generate(ctx, [{ prompt: promptText(p.question), maxTokens: organism.maxTokens }]);
      assert.equal(stored.get(`${p.id}#0`), ref.text);
    }
    ctx.free();
    model.free();
    // grades are the grader's verdicts on the stored texts; the thinking model solves these
    const s = RunStore.openReadonly(out);
    for (const g of s.grades('rules-math')) {
      const p = dataset.problems.find((x) => x.id === g.problemId)!;
      assert.equal(g.correct, gradeResponse(p.answer, stored.get(`${g.problemId}#0`)!).correct);
    }
    assert.equal(s.config.grader, 'rules-math');
    s.close();
    assert.equal(r.correct, 10);
  });

  it('resumes an interrupted run to exactly what an uninterrupted one stores', async () => {
    const full = join(tmp, 'base-full.sqlite');
    await runSystem({ system: 'base', preset: organism, checked: true, dataset, out: full });
    const out = join(tmp, 'base-resumed.sqlite');
    const stop = new AbortController();
    let stored = 0;
    const first = await runSystem({
      system: 'base',
      preset: organism,
      checked: true,
      dataset,
      out,
      parallel: 2,
      signal: stop.signal,
      onAdvance: (units) => {
        stored += units;
        if (stored === 4) stop.abort();
      },
    });
    assert.equal(first.interrupted, true);
    assert.ok(first.generated >= 4 && first.generated < 10, String(first.generated));
    const second = await runSystem({ system: 'base', preset: organism, checked: true, dataset, out });
    assert.equal(second.skipped, first.generated);
    assert.equal(second.generated, 10 - first.generated);
    assert.deepEqual(texts(out), texts(full));
    const s = RunStore.openReadonly(out);
    assert.equal(s.counts().sessions, 2);
    assert.equal(s.done(), true);
    s.close();
    // resuming with other settings is refused
    const other = runSystem({ system: 'base', preset: organism, checked: true, dataset, out, maxTokens: 100 });
    assert.equal(await codeOf(other), 'RUN_CONFIG_MISMATCH');
  });

  it('samples reproducibly: sharded, merged and resumed runs agree', async () => {
    const sampling = { samples: 3, temperature: 1, topP: 1, seed: 7 };
    const small = organismDataset(6);
    const whole = join(tmp, 's-whole.sqlite');
    await runSystem({ system: 'base', preset: organism, checked: true, dataset: small, out: whole, sampling });
    const shards = [1, 2].map((index) => join(tmp, `s-${index}.sqlite`));
    for (const [i, out] of shards.entries()) {
      await runSystem({
        system: 'base',
        preset: organism,
        checked: true,
        dataset: small,
        out,
        sampling,
        parallel: 5,
        shard: { index: i + 1, count: 2 },
      });
    }
    const merged = join(tmp, 's-merged.sqlite');
    mergeStores(merged, shards);
    const a = texts(whole);
    assert.equal(a.size, 18);
    assert.deepEqual(texts(merged), a);
    // the samples of a problem differ (temperature 1), so the seeds are per sample
    const p0 = small.problems[0].id;
    assert.ok(new Set([0, 1, 2].map((s) => a.get(`${p0}#${s}`))).size > 1);
    // greedy samples are refused: they would all be equal
    const greedy = runSystem({
      system: 'base',
      preset: organism,
      checked: true,
      dataset: small,
      out: join(tmp, 'g.sqlite'),
      sampling: { ...sampling, temperature: 0 },
    });
    assert.equal(await codeOf(greedy), 'BAD_ARGUMENT');
  });

  it('refuses impossible settings before generating, leaving no store behind', async () => {
    const out = join(tmp, 'refused.sqlite');
    const long = await cli(['run', '--system', 'base', '--limit', '2', '--max-tokens', '600', '--out', out]);
    assert.equal(long.code, 2);
    assert.match(
      long.err,
      /exceeds the 512-token context base\.gguf was trained for \(fix: lower --max-tokens to \d+ or less\)/,
    );
    assert.equal(existsSync(out), false);
    const fixed = await cli(['run', '--system', 'base', '--limit', '2', '--max-tokens', '300', '--out', out]);
    assert.equal(fixed.code, 0, fixed.err);
    for (const [args, message] of [
      [['--samples', '5000', '--temperature', '1'], /--samples expects an integer from 1 to 1024, got '5000'/],
      [['--limit', '20000'], /at most 10000 problems/],
      [['--system', 'hybird'], /--system must be one of base, thinking, hybrid/],
      [['--preset', 'qwen3'], /--preset must be one of qwen2.5-math-1.5b, .*, got 'qwen3'/],
      [['--dataset', join(tmp, 'missing.jsonl')], /no such file/],
      [['--preset', 'qwen2.5-math-1.5b'], /--dataset is required for this pair/],
      [
        ['--system', 'thinking', '--base', tinyQwen2(), '--dataset', 'organism'],
        /custom pair has no default thinking model/,
      ],
    ] as const) {
      const r = await cli(['run', '--system', 'base', ...args, '--out', join(tmp, 'never.sqlite')]);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.err, message);
    }
    assert.equal(existsSync(join(tmp, 'never.sqlite')), false);
  });

  it("runs a custom pair with the paper's base prompt and the real Qwen2 tokenizer", async () => {
    const q = join(tmp, 'q.jsonl');
    writeFileSync(
      q,
      '{"id": "a", "question": "What is 2+3?", "answer": "5"}\n{"id": "b", "question": "7*6?", "answer": "42"}\n',
    );
    const out = join(tmp, 'custom.sqlite');
    const r = await cli([
      'run',
      '--system',
      'base',
      '--base',
      tinyQwen2(),
      '--dataset',
      q,
      '--max-tokens',
      '6',
      '--out',
      out,
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /base: 2\/2 graded, accuracy 0\.0%/);
    const model = await Model.load(tinyQwen2(), { vocabOnly: true });
    const want = model.tokenize(PAPER_BASE_PROMPT.replace('{question}', 'What is 2+3?'), { addSpecial: true }).length;
    model.free();
    const s = RunStore.openReadonly(out);
    const g = [...s.generations()].find((x) => x.problemId === 'a')!;
    assert.equal(g.promptTokens, want);
    assert.equal(g.completionTokens, 6);
    assert.equal(g.finishReason, 'length');
    assert.equal(s.config.prompt, 'paper');
    s.close();
  });
});
