// The taxonomy chain on a tiny generated model: traces written in the model organism's trace language
// (so every sentence has a known type), activations through the real engine, SAEs, selection,
// annotation, the CLI, and the bad inputs the issue lists.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Model } from '../../src/engine/index.ts';
import { TINY_LLAMA } from '../../src/gguf/tiny-model.ts';
import { makeTrace } from '../../src/organism/language.ts';
import { generateProblems } from '../../src/organism/task.ts';
import { organismLabeller } from '../../src/organism/taxonomy.ts';
import { Rng } from '../../src/rng.ts';
import { loadSentenceActivations } from '../../src/taxonomy/activation-store.ts';
import { annotateTraces, formatValue, locateForAnnotation } from '../../src/taxonomy/annotate.ts';
import { captureSentenceActivations, labelForSpan, planTrace } from '../../src/taxonomy/capture.ts';
import { evaluateGrid, truthMetrics } from '../../src/taxonomy/evaluate.ts';
import { detectPreset, evenlySpacedLayers, resolveLayers } from '../../src/taxonomy/layers.ts';
import { LexicalJudge, lexicalTokens } from '../../src/taxonomy/lexical-judge.ts';
import { readSelection, selectEntry, writeSelection } from '../../src/taxonomy/selection.ts';
import { trainTaxonomyGrid } from '../../src/taxonomy/train-grid.ts';
import { makeTraceRecord, renderPrompt, type TraceRecord } from '../../src/traces/generate.ts';
import { cli, codeOf } from '../helpers/cli.ts';
import { tinyModelPath, tinyQwen2 } from '../helpers/models.ts';

const model = await Model.load(tinyQwen2());
const narrow = await Model.load(tinyModelPath({ ...TINY_LLAMA, nEmbd: 32, nHead: 2, nHeadKv: 1 }));
const tmp = () => mkdtempSync(join(tmpdir(), 'tw-taxonomy-'));
const CAPTURE = { layers: [1, 2], thinking: 'generated' as const, labeller: organismLabeller, threads: 1 };

/** Traces of the organism's language, as if the model had written them (verifying at random). */
function syntheticTraces(m: Model, n: number, seed = 5): TraceRecord[] {
  const rng = new Rng(seed);
  return generateProblems('test', n, seed).map((p) => {
    const t = makeTrace(p, { kind: 'random', p: 0.5 }, rng);
    return makeTraceRecord({ id: p.id, question: p.question }, renderPrompt(m, p.question), t.text, {
      finishReason: 'eog',
      promptTokens: 0,
      generatedTokens: 0,
      model: m.info.path,
      maxTokens: 320,
      temperature: 0,
    });
  });
}

const traces = syntheticTraces(model, 40);
const work = tmp();
const acts = join(work, 'acts');
const capture = await captureSentenceActivations(model, traces, acts, { ...CAPTURE, partTraces: 16 });

test('layers: six evenly spaced by default, the paper presets, range checks', () => {
  assert.deepEqual(evenlySpacedLayers(28), [4, 8, 12, 16, 20, 24]);
  assert.deepEqual(evenlySpacedLayers(64), [9, 18, 27, 37, 46, 55]);
  assert.deepEqual(evenlySpacedLayers(4), [0, 1, 2, 3]);
  const r1 = { name: 'DeepSeek R1 Distill Llama 8B', path: '/m/x.gguf', nLayer: 32 };
  assert.equal(detectPreset(r1)?.name, 'r1-llama-8b');
  assert.deepEqual(resolveLayers('paper', r1), [6, 10, 14, 18, 22, 26]);
  assert.deepEqual(
    resolveLayers('preset:qwq-32b', { name: '', path: 'qwq.gguf', nLayer: 64 }),
    [9, 18, 27, 36, 45, 54],
  );
  assert.deepEqual(resolveLayers(undefined, model.info), [0, 1, 2, 3]);
  assert.deepEqual(resolveLayers('2,1,2', model.info), [1, 2]);
  assert.throws(() => resolveLayers('1,4', model.info), /layer 4 is out of range: this model has 4 layers/);
  assert.throws(() => resolveLayers('paper', model.info), /not one of the paper's thinking models/);
  assert.throws(() => resolveLayers('x', model.info), /not a layer number/);
});

test('capture: sentence means with the one-token shift, equal to a direct decode; labels; thinking mean', async () => {
  assert.equal(capture.traces, 40);
  assert.equal(capture.tracesWithoutSentences, 0);
  const layer1 = await loadSentenceActivations(acts, 1, { expectedDim: 64 });
  assert.equal(layer1.rows, capture.sentences);
  // Every sentence but each trace's last (it ends the text: no next character, skipped as in the paper).
  const split = traces.map((t) => t.generated.split('\n').length);
  assert.equal(
    capture.sentences + capture.unlocated,
    split.reduce((a, b) => a + b, 0),
  );
  assert.equal(capture.unlocated, traces.length);
  assert.ok(layer1.records.every((r) => typeof (r as { label?: string }).label === 'string'));

  // Recompute trace 3's sentences from one plain decode of its whole text.
  const t = traces[3];
  const plan = planTrace(model, t, {
    context: 'full',
    thinking: 'generated',
    bos: 'paper',
    locate: 'find',
    shift: true,
    minWords: 3,
  });
  const ctx = model.createContext({ nCtx: 1024, nBatch: 1024, nSeqMax: 1, threads: 1 });
  const seq = ctx.sequence();
  const res = await ctx.decode(
    Array.from(plan.tokens, (token, pos) => ({ token, seq, pos })),
    [{ hook: 'blocks.1.hook_resid_post', rows: 'all', capture: true }],
  );
  ctx.free();
  const H = res.captures[0]!;
  const mine = layer1.records.filter((r) => r.traceId === t.id);
  assert.equal(mine.length, plan.sentences.length);
  for (const rec of mine) {
    assert.equal(t.fullResponse.slice(rec.charStart, rec.charEnd), rec.sentence);
    const expect = new Float64Array(64);
    for (let p = rec.tokenStart - 1; p < rec.tokenEnd; p++) for (let d = 0; d < 64; d++) expect[d] += H[p][d];
    const n = rec.tokenEnd - rec.tokenStart + 1;
    const got = layer1.x.subarray(rec.row * 64, rec.row * 64 + 64);
    for (let d = 0; d < 64; d++) assert.ok(Math.abs(got[d] - expect[d] / n) < 1e-4, `row ${rec.row} dim ${d}`);
  }
  assert.equal(layer1.manifest.thinkingMeanCounts['1'], 40);
  assert.ok(layer1.thinkingMean?.some((v) => v !== 0));
  assert.equal(
    labelForSpan(
      [
        { start: 0, end: 5, label: 'a' },
        { start: 5, end: 20, label: 'b' },
      ],
      3,
      12,
    ),
    'b',
  );
});

test('capture resumes: a capture continued from half of the traces equals an uninterrupted one', async () => {
  const dir = join(tmp(), 'acts');
  const half = await captureSentenceActivations(model, traces.slice(0, 20), dir, { ...CAPTURE, partTraces: 7 });
  assert.equal(half.capturedNow, 20);
  const all = await captureSentenceActivations(model, traces, dir, { ...CAPTURE, partTraces: 7 });
  assert.equal(all.capturedNow, 20);
  const again = await captureSentenceActivations(model, traces, dir, { ...CAPTURE, partTraces: 7 });
  assert.equal(again.capturedNow, 0);
  for (const f of ['index.jsonl', 'means.safetensors', 'shard-00000.safetensors']) {
    assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(acts, f))), `${f} differs`);
  }
  // Other settings in the same directory are refused.
  assert.equal(
    await codeOf(captureSentenceActivations(model, traces, dir, { ...CAPTURE, layers: [1, 3] })),
    'capture-mismatch',
  );
});

const tax = join(work, 'tax');
const trained = await trainTaxonomyGrid(acts, tax, { ks: [3, 6], maxEpochs: 60, threads: 1, stabilitySeeds: [1] });

test('SAE grid, offline scoring with ground truth, selection', async () => {
  assert.equal(trained.length, 4);
  const grid = await evaluateGrid(acts, tax, trained);
  assert.equal(grid.groundTruth, true);
  assert.equal(grid.entries.length, 4);
  for (const e of grid.entries) {
    const m = e.metrics;
    assert.ok(m.varianceExplained > 0 && m.varianceExplained <= 1);
    assert.ok(m.stability !== null && m.stability <= 1);
    assert.ok(m.ari !== undefined && m.ari > 0, `ARI ${m.ari} at layer ${e.layer} K=${e.k}`);
    assert.ok(m.purity !== undefined && m.purity > 0.3);
    assert.equal(m.labelledSentences, capture.sentences);
    assert.equal(e.categories.length, e.k);
    assert.equal(
      e.categories.reduce((s, c) => s + c.size, 0),
      capture.sentences,
    );
  }
  const best = selectEntry(grid, 'ari');
  assert.ok(grid.entries.every((e) => (e.metrics.ari ?? 0) <= (best.metrics.ari ?? 0)));
  assert.throws(() => selectEntry(grid, 'final'), /needs LLM labelling/);
  const sel = await writeSelection(tax, grid, 'offline');
  assert.deepEqual(await readSelection(tax), sel);
  // Retraining skips what exists.
  const t0 = Date.now();
  await trainTaxonomyGrid(acts, tax, { ks: [3, 6], maxEpochs: 60, threads: 1 });
  assert.ok(Date.now() - t0 < 2000);
  assert.deepEqual(truthMetrics(['a', 'a', null, 'b'], [1, 1, 0, 2]), { ari: 1, nmi: 1, purity: 1, labelled: 3 });
});

test('offline judge: the true partition outscores a split and a merge', () => {
  const sentences: string[] = [];
  const truth: number[] = [];
  for (let i = 0; i < 30; i++) {
    sentences.push(
      `Now add ${i} to ${i + 3}.`,
      `Check ones: ${i} + 1 + 0 = ${i + 1}, carry 0.`,
      `Wait, ${i} was wrong, so use ${i + 10}.`,
    );
    truth.push(0, 1, 2);
  }
  const judge = new LexicalJudge(sentences);
  const exact = judge.score(truth, 3);
  const split = judge.score(
    truth.map((t, i) => (t === 1 && i % 2 ? 3 : t)),
    4,
  );
  const merged = judge.score(
    truth.map((t) => Math.min(t, 1)),
    3,
  );
  assert.ok(exact.f1 > 0.99 && exact.completeness > 0.99 && exact.orthogonality === 1);
  assert.ok(exact.final > split.final, `${exact.final} vs split ${split.final}`);
  assert.ok(exact.final > merged.final, `${exact.final} vs merged ${merged.final}`);
  assert.deepEqual(lexicalTokens('Quick: 12 + 3 = 15.'), ['quick', ':', '<num>', '+', '<num>', '=', '<num>', '.']);
});

test('annotation in the paper format', async () => {
  const sel = await readSelection(tax);
  const out = await annotateTraces(model, traces.slice(0, 3), sel, { thinking: 'generated', threads: 1 });
  assert.equal(out.length, 3);
  for (const a of out) {
    assert.ok(a.sentences.length > 3);
    assert.match(a.annotated_thinking, /^(\["-?\d+(\.\d+)?:idx\d+"\][^[]+\["end-section"\])+$/);
    for (const s of a.sentences) assert.ok(s.category >= 0 && s.category < sel.k);
  }
  assert.equal(formatValue(2), '2.0');
  assert.equal(formatValue(-1.234), '-1.23');
  assert.equal(locateForAnnotation('a. Hello there.\nHello there.', 'Hello there.'), 3);
  const centred = await annotateTraces(model, traces.slice(0, 1), sel, {
    thinking: 'generated',
    saeInput: 'centred',
    threads: 1,
  });
  assert.equal(centred[0].sentences.length, out[0].sentences.length);
});

test('CLI: train, score, show, annotate', async () => {
  const dir = join(tmp(), 'tax');
  const train = await cli([
    'taxonomy',
    'train',
    '--activations',
    acts,
    '--dir',
    dir,
    '--k',
    '4',
    '--max-epochs',
    '30',
    '--threads',
    '1',
  ]);
  assert.equal(train.code, 0, train.err);
  const score = await cli(['taxonomy', 'score', '--dir', dir, '--k', '4', '--max-epochs', '30', '--json']);
  assert.equal(score.code, 0, score.err);
  const s = JSON.parse(score.out);
  assert.equal(s.k, 4);
  assert.equal(s.metric, 'offline');
  assert.ok(typeof s.ari === 'number');
  const show = await cli(['taxonomy', 'show', '--dir', dir]);
  assert.equal(show.code, 0, show.err);
  assert.match(show.out, /^Taxonomy: layer \d, K=4/);
  assert.match(show.out, /idx3 .*sentences; ground truth: /);
  const tracesFile = join(dir, 'traces.jsonl');
  writeFileSync(
    tracesFile,
    `${traces
      .slice(0, 2)
      .map((t) => JSON.stringify(t))
      .join('\n')}\n`,
  );
  const outFile = join(dir, 'annotated.jsonl');
  const ann = await cli([
    'taxonomy',
    'annotate',
    '--dir',
    dir,
    '--model',
    model.info.path,
    '--traces',
    tracesFile,
    '--out',
    outFile,
    '--thinking',
    'generated',
    '--threads',
    '1',
  ]);
  assert.equal(ann.code, 0, ann.err);
  const lines = readFileSync(outFile, 'utf8').trim().split('\n');
  assert.equal(lines.length, 2);
  assert.equal(JSON.parse(lines[0]).question_id, traces[0].id);
  const help = await cli(['taxonomy', '--help']);
  assert.match(help.out, /score --organism --json/);
});

test('bad input: width mismatch between model and stored activations', async () => {
  assert.equal(await codeOf(captureSentenceActivations(narrow, traces, acts, { ...CAPTURE })), 'width-mismatch');
  const r = await cli([
    'taxonomy',
    'train',
    '--activations',
    acts,
    '--dir',
    join(tmp(), 't'),
    '--model',
    narrow.info.path,
    '--k',
    '3',
  ]);
  assert.equal(r.code, 2);
  assert.match(r.err, /width 64, but the model\/SAE expects width 32/);
  const sel = await readSelection(tax);
  assert.equal(
    await codeOf(annotateTraces(narrow, traces.slice(0, 1), sel, { thinking: 'generated' })),
    'width-mismatch',
  );
});

test('bad input: empty traces', async () => {
  const dir = tmp();
  assert.equal(await codeOf(captureSentenceActivations(model, [], join(dir, 'a'), CAPTURE)), 'no-traces');
  const blank = traces.slice(0, 2).map((t) => ({ ...t, generated: '', fullResponse: t.prompt, thinking: '' }));
  assert.equal(await codeOf(captureSentenceActivations(model, blank, join(dir, 'b'), CAPTURE)), 'no-sentences');
  const empty = join(dir, 'empty.jsonl');
  writeFileSync(empty, '');
  const r = await cli(['activations', '--model', model.info.path, '--traces', empty, '--out', join(dir, 'c')]);
  assert.equal(r.code, 2);
  assert.match(r.err, /trace set is empty/);
});

test('bad input: layer out of range', async () => {
  const dir = tmp();
  assert.equal(
    await codeOf(captureSentenceActivations(model, traces, join(dir, 'a'), { ...CAPTURE, layers: [4] })),
    'layer-out-of-range',
  );
  const t = join(dir, 'traces.jsonl');
  writeFileSync(t, `${JSON.stringify(traces[0])}\n`);
  const r = await cli([
    'activations',
    '--model',
    model.info.path,
    '--traces',
    t,
    '--out',
    join(dir, 'b'),
    '--layers',
    '1,9',
  ]);
  assert.equal(r.code, 2);
  assert.match(r.err, /layer 9 is out of range: this model has 4 layers \(0\.\.3\)/);
  const r2 = await cli([
    'taxonomy',
    'train',
    '--activations',
    acts,
    '--dir',
    join(dir, 'tax'),
    '--layers',
    '3',
    '--k',
    '3',
  ]);
  assert.equal(r2.code, 2);
  assert.match(r2.err, /layer 3 was not captured .*captured: 1, 2/);
});

test('bad input: unreachable LLM endpoint', async () => {
  const r = await cli([
    'taxonomy',
    'score',
    '--dir',
    tax,
    '--activations',
    acts,
    '--k',
    '3,6',
    '--layers',
    '1',
    '--llm-base-url',
    'http://127.0.0.1:9/v1',
    '--llm-model',
    'any',
    '--llm-retries',
    '0',
    '--repetitions',
    '1',
  ]);
  assert.equal(r.code, 2);
  assert.match(r.err, /cannot reach the LLM endpoint http:\/\/127\.0\.0\.1:9\/v1/);
  assert.match(r.err, /fix: /);
});
