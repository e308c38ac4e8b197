// LLM labelling and the paper's autograders through `thinkwhen taxonomy score`, against a local
// OpenAI-compatible server that answers from the organism's ground-truth sentence types.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Model } from '../../src/engine/index.ts';
import { makeTrace } from '../../src/organism/language.ts';
import { generateProblems } from '../../src/organism/task.ts';
import { organismLabeller } from '../../src/organism/taxonomy.ts';
import { Rng } from '../../src/rng.ts';
import { captureSentenceActivations } from '../../src/taxonomy/capture.ts';
import { readGrid } from '../../src/taxonomy/evaluate.ts';
import { readSelection } from '../../src/taxonomy/selection.ts';
import { makeTraceRecord, renderPrompt } from '../../src/traces/generate.ts';
import { cli } from '../helpers/cli.ts';
import { tinyQwen2 } from '../helpers/models.ts';
import { startFakeOpenAI } from '../llm/fake-openai.ts';

const model = await Model.load(tinyQwen2());
const work = mkdtempSync(join(tmpdir(), 'tw-taxonomy-llm-'));
const rng = new Rng(9);
const traces = generateProblems('test', 30, 9).map((p) =>
  makeTraceRecord(
    { id: p.id, question: p.question },
    renderPrompt(model, p.question),
    makeTrace(p, { kind: 'random', p: 0.5 }, rng).text,
    {
      finishReason: 'eog',
      promptTokens: 0,
      generatedTokens: 0,
      model: model.info.path,
      maxTokens: 320,
      temperature: 0,
    },
  ),
);
const acts = join(work, 'acts');
await captureSentenceActivations(model, traces, acts, {
  layers: [1],
  thinking: 'generated',
  labeller: organismLabeller,
  threads: 1,
});

const typeOf = (s: string) => organismLabeller(s) ?? 'other';

/** Answers each of the paper's prompts from the true types of the sentences it shows. */
function fakeLlm(prompt: string): string {
  if (prompt.startsWith('Analyze the following')) {
    const block = prompt.split("Sentences:\n'''\n")[1].split("\n'''")[0];
    const counts = new Map<string, number>();
    for (const line of block.split('\n')) {
      const t = typeOf(line.replace(/^- /, '').trim());
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    const title = [...counts].sort((a, b) => b[1] - a[1])[0][0];
    return `Title: ${title}\nDescription: Sentences of type ${title}.`;
  }
  if (prompt.startsWith('# Task: Binary Classification')) {
    const title = prompt.match(/Title: (.*)\n/)![1];
    const lines = prompt.split('## Sentences to Classify:\n')[1].split('\n\n## Instructions')[0].split('\n');
    const classifications = lines.map((line) => {
      const [, id, text] = line.match(/^Sentence (\d+): (.*)$/)!;
      return {
        sentence_id: Number(id),
        explanation: 'type',
        belongs_to_category: typeOf(text) === title ? 'Yes' : 'No',
      };
    });
    return JSON.stringify({ classifications });
  }
  if (prompt.startsWith('You are an expert at analyzing how well')) {
    const sentence = prompt.split('# Sentence to Evaluate:\n')[1].split('\n')[0];
    const title = prompt.match(/Title: (.*)\n/)![1];
    return JSON.stringify({ explanation: 'x', completeness_score: typeOf(sentence) === title ? 9 : 1 });
  }
  if (prompt.startsWith('# Task: Semantic Similarity')) {
    const [t1, t2] = [...prompt.matchAll(/Title: (.*)\n/g)].map((m) => m[1]);
    return JSON.stringify({ explanation: 'x', similarity_score: t1 === t2 ? 10 : 1 });
  }
  throw new Error(`unexpected prompt: ${prompt.slice(0, 60)}`);
}

test('taxonomy score with an LLM: titles, F1, completeness, orthogonality, final-score selection, cached reruns', async () => {
  const server = await startFakeOpenAI(({ body }) => ({ content: fakeLlm(body.messages[0].content) }));
  try {
    const dir = join(work, 'tax');
    const args = [
      'taxonomy',
      'score',
      '--activations',
      acts,
      '--dir',
      dir,
      '--k',
      '4,8',
      '--max-epochs',
      '40',
      '--threads',
      '1',
      '--llm-base-url',
      server.baseUrl,
      '--llm-model',
      'fake',
      '--repetitions',
      '2',
      '--json',
    ];
    const r = await cli(args);
    assert.equal(r.code, 0, r.err);
    const out = JSON.parse(r.out);
    assert.equal(out.metric, 'final');
    const grid = await readGrid(dir);
    for (const e of grid.entries) {
      const m = e.metrics;
      assert.equal(e.labelSource, 'llm');
      for (const v of [m.avgF1, m.avgConfidence, m.semanticOrthogonality, m.finalScore]) {
        assert.ok(v !== undefined && v >= 0 && v <= 1);
      }
      assert.ok(Math.abs(m.finalScore! - (m.avgF1! + m.avgConfidence! + m.semanticOrthogonality!) / 3) < 1e-9);
      assert.ok(m.finalScoreLow! <= m.finalScore! && m.finalScore! <= m.finalScoreHigh!);
    }
    const best = Math.max(...grid.entries.map((e) => e.metrics.finalScore!));
    const sel = await readSelection(dir);
    assert.equal(sel.metrics.finalScore, best);
    assert.ok(sel.categories.some((c) => ['compute', 'plan', 'verify', 'setup', 'conclude'].includes(c.title)));
    assert.ok(sel.metrics.avgF1! > 0.3, `F1 ${sel.metrics.avgF1}`);
    const calls = server.requests.length;
    assert.ok(calls > 0);
    const again = await cli(args);
    assert.equal(again.code, 0, again.err);
    assert.equal(server.requests.length, calls, 'every call is served from the cache');
    const show = await cli(['taxonomy', 'show', '--dir', dir]);
    assert.match(show.out, /llm titles/);
    assert.match(show.out, /Sentences of type/);
  } finally {
    await server.close();
  }
});
