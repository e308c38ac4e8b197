import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ThinkwhenError } from '../../src/errors.ts';
import { LlmClient } from '../../src/llm/client.ts';
import { Rng } from '../../src/rng.ts';
import {
  generateCategoryTitles,
  parseTitleResponse,
  scoreTaxonomy,
  selectTitleExamples,
  summarise,
} from '../../src/taxonomy/labelling.ts';
import { adjustedRandIndex } from '../../src/taxonomy/metrics.ts';
import { centerAndNormalize } from '../../src/taxonomy/preprocess.ts';
import { clusterDescriptionPrompt } from '../../src/taxonomy/prompts.ts';
import { trainTopKSae } from '../../src/taxonomy/sae.ts';
import { startFakeOpenAI } from '../llm/fake-openai.ts';

// Three planted reasoning behaviours, each with a keyword the fake LLM keys on.
const BEHAVIOURS = [
  { keyword: 'verify', title: 'Verification', template: (i: number) => `Let me verify step ${i} digit by digit.` },
  { keyword: 'answer', title: 'Concluding', template: (i: number) => `So the answer to part ${i} is clear.` },
  { keyword: 'plan', title: 'Planning', template: (i: number) => `Next I plan to handle case ${i} carefully.` },
];
const keywordOf = (text: string) => BEHAVIOURS.find((b) => text.includes(b.keyword));
const byTitle = (title: string) => BEHAVIOURS.find((b) => b.title === title);

/** The fake LLM answers each of the paper's prompts in the format the prompt asks for. */
function fakeLlm(prompt: string, nth: number) {
  if (prompt.startsWith('Analyze the following')) {
    const block = prompt.split("Sentences:\n'''\n")[1].split("\n'''")[0];
    const counts = new Map<string, number>();
    for (const line of block.split('\n')) {
      const b = keywordOf(line);
      if (b) counts.set(b.title, (counts.get(b.title) ?? 0) + 1);
    }
    const title = [...counts].sort((a, b) => b[1] - a[1])[0][0];
    return `Title: ${title}\nDescription: Sentences that ${byTitle(title)!.keyword}. Included: that. Excluded: the rest.`;
  }
  if (prompt.startsWith('# Task: Binary Classification')) {
    // The first attempt of every classification prompt is malformed: the client must retry it.
    if (nth === 1) return 'I think most of them belong.';
    const title = prompt.match(/Title: (.*)\n/)![1];
    const lines = prompt.split('## Sentences to Classify:\n')[1].split('\n\n## Instructions')[0].split('\n');
    const classifications = lines.map((line) => {
      const [, id, text] = line.match(/^Sentence (\d+): (.*)$/)!;
      return {
        sentence_id: Number(id),
        explanation: 'keyword',
        belongs_to_category: keywordOf(text)?.title === title ? 'Yes' : 'No',
      };
    });
    return '```json\n' + JSON.stringify({ classifications }) + '\n```';
  }
  if (prompt.startsWith('You are an expert at analyzing how well')) {
    const sentence = prompt.split('# Sentence to Evaluate:\n')[1].split('\n')[0];
    const title = prompt.match(/Title: (.*)\n/)![1];
    return JSON.stringify({ explanation: 'x', completeness_score: keywordOf(sentence)?.title === title ? 8 : 2 });
  }
  if (prompt.startsWith('# Task: Semantic Similarity')) {
    const [t1, t2] = [...prompt.matchAll(/Title: (.*)\n/g)].map((m) => m[1]);
    return JSON.stringify({ explanation: 'x', similarity_score: t1 === t2 ? 10 : 1 });
  }
  throw new Error(`unexpected prompt: ${prompt.slice(0, 60)}`);
}

function plantedTraces(perBehaviour: number) {
  const rng = new Rng(21);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const dim = 16;
  const centres = BEHAVIOURS.map(() => Array.from({ length: dim }, gauss));
  const sentences: string[] = [];
  const truth: number[] = [];
  const x = new Float32Array(BEHAVIOURS.length * perBehaviour * dim);
  let row = 0;
  for (let i = 0; i < perBehaviour; i++) {
    BEHAVIOURS.forEach((b, k) => {
      sentences.push(b.template(i));
      truth.push(k);
      for (let d = 0; d < dim; d++) x[row * dim + d] = centres[k][d] + 0.1 * gauss();
      row++;
    });
  }
  const mean = new Float64Array(dim);
  for (let i = 0; i < x.length; i++) mean[i % dim] += x[i] / row;
  centerAndNormalize(x, dim, mean);
  const traces = Array.from({ length: 5 }, (_, t) => sentences.slice(t * 9, t * 9 + 9).join(' '));
  return { sentences, truth, x, dim, traces };
}

test('labelling + autograders end to end against a local OpenAI-compatible server; reruns are free', async () => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'tw-label-'));
  const server = await startFakeOpenAI(({ body, nth }) => ({ content: fakeLlm(body.messages[0].content, nth) }));
  try {
    const { sentences, truth, x, dim, traces } = plantedTraces(60);
    // This test is about labelling, so it uses a seed whose SAE recovers the planted behaviours exactly
    // (sae.test.ts covers recovery itself).
    const sae = await trainTopKSae(x, dim, { latents: 3, seed: 3, threads: 1 });
    const labels = sae.assign(x);
    assert.equal(adjustedRandIndex(truth, labels), 1);
    const dense = sae.encodeDense(x);

    const run = async () => {
      const client = new LlmClient({
        baseUrl: server.baseUrl,
        cacheDir,
        concurrency: 4,
        backoffBaseMs: 1,
        backoffMaxMs: 5,
      });
      const sets = await generateCategoryTitles(
        client,
        { sentences, dense, latents: 3, labels, traces },
        { repetitions: 2, seed: 1 },
      );
      const score = await scoreTaxonomy(client, sentences, labels, sets[0], { seed: 0 });
      return { client, sets, score };
    };

    const { client, sets, score } = await run();
    assert.equal(sets.length, 2);
    const titles = sets[0].map((c) => c.title).sort();
    assert.deepEqual(titles, ['Concluding', 'Planning', 'Verification']);
    for (const c of sets[0]) {
      // Each latent is titled after the behaviour of its sentences.
      const members = sentences.filter((_, i) => labels[i] === c.id);
      assert.ok(members.every((s) => keywordOf(s)?.title === c.title));
      assert.match(c.description, /^Sentences that /);
    }
    assert.equal(score.avgF1, 1);
    assert.equal(score.avgConfidence, 0.8);
    assert.equal(score.semanticOrthogonality, 1);
    assert.ok(Math.abs(score.finalScore - 2.8 / 3) < 1e-12);
    assert.equal(score.accuracy.parsingErrors.length, 0);
    // 40 in-cluster + 120 (all available) out-of-cluster sentences per category, ≤ 50 per prompt.
    for (const m of Object.values(score.accuracy.perCategory)) {
      assert.equal(m.truePositives, 40);
      assert.equal(m.trueNegatives, 120);
    }
    assert.equal(score.completeness.evaluated, 180);
    assert.equal(score.orthogonality.pairs.length, 3);
    // Titles 3×2, classification 3×4 chunks (+1 retry each), completeness 180, similarity 3.
    assert.equal(client.stats.retries.malformed, 12);
    const firstRunRequests = server.requests.length;
    assert.equal(firstRunRequests, 6 + 12 * 2 + 180 + 3);
    // Paper settings went out: o4-mini for titles, gpt-4.1-mini in JSON mode for the graders.
    const titleReq = server.requests.find((r) => r.body.messages[0].content.startsWith('Analyze'))!;
    assert.equal(titleReq.body.model, 'o4-mini');
    assert.equal(titleReq.body.max_completion_tokens, 28000);
    const gradeReq = server.requests.find((r) => r.body.messages[0].content.startsWith('# Task: Semantic'))!;
    assert.equal(gradeReq.body.model, 'gpt-4.1-mini');
    assert.deepEqual(gradeReq.body.response_format, { type: 'json_object' });
    assert.equal(gradeReq.body.temperature, 1e-19);

    // Same inputs, same seeds: everything comes from the cache.
    const second = await run();
    assert.equal(server.requests.length, firstRunRequests);
    assert.equal(second.client.stats.requests, 0);
    assert.deepEqual(second.score.finalScore, score.finalScore);
    assert.deepEqual(second.sets, sets);
  } finally {
    await server.close();
    await rm(cacheDir, { recursive: true, force: true });
  }
});

test('bad input: no sentences, mismatched labels, unreachable endpoint', async () => {
  const client = new LlmClient({ baseUrl: 'http://127.0.0.1:9/v1', maxRetries: 0, backoffBaseMs: 1 });
  const cats = [{ id: 0, title: 'A', description: 'a' }];
  await assert.rejects(scoreTaxonomy(client, [], [], cats), (e: unknown) => {
    assert.ok(e instanceof ThinkwhenError);
    assert.equal(e.code, 'NO_SENTENCES');
    assert.match(e.message, /traces are empty/);
    return true;
  });
  await assert.rejects(scoreTaxonomy(client, ['a b c'], [0, 1], cats), /1 sentences but 2 labels/);
  await assert.rejects(
    scoreTaxonomy(client, ['one two three', 'four five six'], [0, 0], cats),
    (e: unknown) => e instanceof ThinkwhenError && e.code === 'LLM_UNREACHABLE',
  );
});

test('title examples: all members if ≤ 200, else the top 100 by activation + 100 random others', () => {
  const n = 500;
  const dense = new Float32Array(n * 2);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    dense[i * 2] = i; // latent 0 activation grows with i
    labels[i] = i < 450 ? 0 : 1;
  }
  const rng = new Rng(1);
  const small = selectTitleExamples(dense, 2, labels, 1, rng);
  assert.deepEqual(
    [...small].sort((a, b) => a - b),
    Array.from({ length: 50 }, (_, i) => 450 + i),
  );
  const big = selectTitleExamples(dense, 2, labels, 0, rng);
  assert.equal(big.length, 200);
  assert.equal(new Set(big).size, 200);
  for (let i = 350; i < 450; i++) assert.ok(big.includes(i), `top member ${i} missing`);
  assert.ok(big.every((i) => labels[i] === 0));
});

test('title parsing and prompt shape follow the reference', () => {
  assert.deepEqual(parseTitleResponse('Title: Backtracking\nDescription: Going back. More.\nExtra'), {
    title: 'Backtracking',
    description: 'Going back. More.',
  });
  assert.deepEqual(parseTitleResponse('nothing useful'), {
    title: 'Unnamed Cluster',
    description: 'No description available',
  });
  const p = clusterDescriptionPrompt(['a b c', 'd e f'], '');
  assert.match(p, /^Analyze the following 2 sentences from an LLM reasoning trace\./);
  assert.match(p, /\*\*Example Category 5: Recalling Mathematical Definitions\*\*/);
  assert.match(p, /as simple and abstractq as possible\.\n$/);
});

test('repetition summary: mean and 95% t-interval', () => {
  const s = summarise([0.5, 0.6, 0.7]);
  assert.ok(Math.abs(s.mean - 0.6) < 1e-12);
  assert.ok(Math.abs(s.high - s.mean - (4.303 * 0.1) / Math.sqrt(3)) < 1e-9);
  assert.deepEqual(summarise([0.4]), { mean: 0.4, low: 0.4, high: 0.4, n: 1 });
});
