// The hybrid's parts: tokenizer bridge and prompts, policy checks, the record's meaning, the
// statistics, elastic KV contexts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ThinkwhenError } from '../../src/errors.ts';
import { promptIds } from '../../src/experiments/prompts.ts';
import {
  Bridge,
  collectResults,
  compareStreams,
  hybridRun,
  hybridStats,
  identicalVocabularies,
  makePolicy,
  PAPER_GRID,
  referenceGenerate,
  resolveOptions,
  type TokenRecord,
} from '../../src/hybrid/index.ts';
import { ElasticContext, feed } from '../../src/hybrid/kv.ts';
import { randomSae, randomVectors } from '../../src/hybrid/synthetic.ts';
import { promptText } from '../../src/organism/index.ts';
import { TopKSae } from '../../src/taxonomy/sae.ts';
import { crossTokenizerPair, organismPair, organismProblems } from './fixtures.ts';

const GRID = { coefficients: [0.5, 2], windows: [0, -1, -15] };

const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return (err as ThinkwhenError).code;
  }
  return 'no error';
};

test('bridge: vocabularies proven identical or not; gate by ids or by token text; the prompts the CLI encodes', async () => {
  const org = await organismPair();
  const cross = await crossTokenizerPair();
  assert.equal(identicalVocabularies(org.base, org.thinking), true);
  assert.equal(identicalVocabularies(cross.base, cross.thinking), false);
  assert.equal(new Bridge(org.base, org.thinking, 'auto').gate, 'ids');
  const b = new Bridge(cross.base, cross.thinking, 'auto');
  assert.equal(b.gate, 'strings');
  // the same text under two vocabularies agrees by strings, never by ids here
  const a = cross.base.tokenize('a', { addSpecial: false })[0];
  const t = cross.thinking.tokenize('a', { addSpecial: false })[0];
  assert.notEqual(a, t);
  assert.equal(b.agree(a, t), true);
  assert.equal(new Bridge(cross.base, cross.thinking, 'ids').agree(a, t), false);
  // bridge: decode, re-encode on both sides, no special tokens added
  const x = b.fromBase(a);
  assert.equal(x.text, 'a');
  assert.deepEqual(x.baseIds, [a]);
  assert.deepEqual(x.thinkIds, [t]);
  assert.equal(b.scoreToken(a), t);
  // some pieces re-encode to several tokens (byte-fallback pieces decode to U+FFFD, A12)
  const ids = [...Array(cross.base.info.nVocab).keys()];
  assert.ok(ids.some((id) => b.fromBase(id).baseIds.length > 1));

  const q = 'Ben has 73 beads. He sells 29. How many beads does Ben have now?';
  assert.deepEqual(promptIds(org.base, 'chat', q), Array.from(org.base.tokenize(promptText(q))));
  const paper = org.base.detokenize(promptIds(org.base, 'paper', q));
  assert.ok(
    paper.startsWith('Task: Answer the question below.') && paper.includes(`Question:\n${q}\n\nStep by step answer:\n`),
  );
  assert.equal(org.base.detokenize(promptIds(org.base, '{chat}Check', q)), `${promptText(q)}Check`);
  assert.equal(org.base.detokenize(promptIds(org.base, 'Q: {question} A:', '{chat}')), 'Q: {chat} A:');
  assert.throws(
    () => promptIds(org.base, 'no placeholder', q),
    (e: ThinkwhenError) => e.code === 'BAD_PROMPT',
  );
});

test('policies: the pair is checked before any decode; c·(bias + v) sums as llama.cpp', async () => {
  const pair = await organismPair();
  const opts = resolveOptions({ grid: GRID });
  assert.equal(
    codeOf(() => makePolicy({ ...pair, sae: randomSae(64, 6) }, opts)),
    'BAD_HYBRID_PAIR',
  );
  assert.equal(
    codeOf(() => makePolicy({ ...pair, saeLayer: 4 }, opts)),
    'BAD_HYBRID_PAIR',
  );
  const holes = randomVectors(128, 2, 6, { biasNorm: 2, norm: 8, skip: [4] });
  holes.skipped.set(4, 'only 3 examples');
  try {
    makePolicy({ ...pair, vectors: holes }, opts);
    assert.fail('a latent without a vector must be refused');
  } catch (err) {
    assert.equal((err as ThinkwhenError).code, 'BAD_HYBRID_PAIR');
    assert.match((err as Error).message, /latent\(s\) 4 \(only 3 examples\)/);
  }
  assert.doesNotThrow(() => makePolicy({ ...pair, vectors: holes }, resolveOptions({ missingVector: 'bias' })));
  assert.equal(
    codeOf(() => makePolicy({ ...pair, vectors: { ...holes, bias: null } }, resolveOptions({ missingVector: 'bias' }))),
    'BAD_HYBRID_PAIR',
  );
  assert.equal(
    codeOf(() =>
      makePolicy({ ...pair, vectors: { ...pair.vectors, bias: null } }, resolveOptions({ policy: 'only_bias' })),
    ),
    'BAD_HYBRID_PAIR',
  );
  const wide = randomVectors(64, 2, 6, { biasNorm: 1, norm: 1 });
  assert.equal(
    codeOf(() => makePolicy({ ...pair, vectors: wide }, opts)),
    'VECTOR_WIDTH',
  );
  const extra = randomVectors(128, 2, 7, { biasNorm: 1, norm: 1 });
  assert.equal(
    codeOf(() => makePolicy({ ...pair, vectors: extra }, opts)),
    'BAD_HYBRID_PAIR',
  );
  assert.equal(
    codeOf(() => resolveOptions({ policy: 'nope' as 'paper' })),
    'BAD_HYBRID_OPTION',
  );
  assert.equal(
    codeOf(() => resolveOptions({ grid: { coefficients: [1], windows: [3] } })),
    'BAD_HYBRID_OPTION',
  );

  const p = makePolicy(pair, opts);
  const v = p.addVector(3, 0.7);
  const bias = pair.vectors.bias!;
  const v3 = pair.vectors.vectors.get(3)!;
  for (let i = 0; i < 128; i++)
    assert.equal(v[i], Math.fround(Math.fround(Math.fround(0.7) * bias[i]) + Math.fround(Math.fround(0.7) * v3[i])));
  assert.equal(p.steering(3).vector, 'bias.gguf + latent-3.gguf');
  const onlyBias = makePolicy(pair, resolveOptions({ policy: 'only_bias' }));
  assert.equal(onlyBias.steering(3).vector, 'bias.gguf');
  assert.equal(onlyBias.steering(3).category, null);
  const rnd = makePolicy(pair, resolveOptions({ policy: 'random_vectors', seed: 4 }));
  const nrm = makePolicy(pair, resolveOptions({ policy: 'norm_random', seed: 4 }));
  const norm = (x: Float32Array) => Math.hypot(...x);
  assert.ok(Math.abs(norm(rnd.steering(3).category!) - 1) < 1e-5);
  assert.ok(Math.abs(norm(nrm.steering(3).category!) - norm(v3)) < 1e-3);
  assert.equal(rnd.steering(3).bias, bias);
  // random firing draws only latents that have vectors
  const firing = makePolicy({ ...pair, vectors: holes }, resolveOptions({ policy: 'random_firing' }));
  const { Rng } = await import('../../src/rng.ts');
  const rng = new Rng(1);
  const drawn = new Set(Array.from({ length: 200 }, () => firing.latent(new Float32Array(6), rng)));
  assert.deepEqual([...drawn].sort(), [0, 1, 2, 3, 5]);
});

test('records: grid order, first-max choice, early exit, missing vectors, policies', async () => {
  const pair = await organismPair();
  const problems = organismProblems(pair, 1);
  const o = { grid: GRID, maxTokens: 90 };
  const [ref] = await collectResults(referenceGenerate(pair, problems, o));
  const [fast] = await collectResults(hybridRun(pair, problems, o).events);
  const steered = ref.records.filter((r) => r.steered);
  assert.ok(steered.length > 0);
  const cells = GRID.coefficients.flatMap((c) => GRID.windows.map((w) => `${c}:${w}`));
  for (const r of steered) {
    assert.deepEqual(
      r.candidates!.map((c) => `${c.coefficient}:${c.window}`),
      cells,
    );
    const best = Math.max(...r.candidates!.map((c) => c.logp));
    assert.equal(
      r.chosen,
      r.candidates!.findIndex((c) => c.logp === best),
    );
    assert.equal(r.token, r.candidates![r.chosen!].token);
    assert.equal(r.vector, `bias.gguf + latent-${r.latent}.gguf`);
  }
  // the fast path evaluates a prefix of the grid (early exit), with the same tokens
  const fs = fast.records.filter((r) => r.steered);
  fs.forEach((r, i) => {
    const full = steered[i].candidates!;
    assert.ok(r.candidates!.length <= full.length);
    assert.deepEqual(
      r.candidates!.map((c) => c.token),
      full.slice(0, r.candidates!.length).map((c) => c.token),
    );
    if (r.candidates!.length < full.length) assert.equal(r.reachedThinking, true);
  });

  // the SAE always picks latent 4, which has no vector: bias-only steering, visible
  const sae = randomSae(128, 6, 3);
  const forced = new TopKSae(
    { ...sae.params, bEnc: Float32Array.from({ length: 6 }, (_, k) => (k === 4 ? 1e6 : 0)) },
    sae.config,
  );
  const holes = randomVectors(128, 2, 6, { biasNorm: 2, norm: 8, skip: [4] });
  const [m] = await collectResults(
    hybridRun({ ...pair, sae: forced, vectors: holes }, problems, { ...o, missingVector: 'bias' }).events,
  );
  const ms = m.records.filter((r) => r.steered);
  assert.ok(
    ms.length > 0 &&
      ms.every((r) => r.missingVector === true && r.latent === 4 && r.vector === 'bias.gguf (latent 4 has no vector)'),
  );
  assert.equal(hybridStats([m]).missingVector, ms.length);

  const run = async (policy: 'oracle' | 'pure_steering' | 'selection_only') =>
    (await collectResults(hybridRun(pair, problems, { ...o, policy, pureCoefficient: 2, pureWindow: -15 }).events))[0];
  const oracle = await run('oracle');
  const os = oracle.records.filter((r) => r.steered);
  assert.ok(os.length > 0 && os.every((r) => r.source === 'thinking' && r.token === r.thinkingGreedy));
  const pure = await run('pure_steering');
  assert.ok(
    pure.records
      .filter((r) => r.steered)
      .every((r) => r.candidates!.length === 1 && r.coefficient === 2 && r.window === -15),
  );
  const sel = await run('selection_only');
  for (const r of sel.records.filter((x) => x.steered)) {
    assert.equal(r.candidates!.length, GRID.coefficients.length * GRID.windows.length);
    assert.equal(r.candidates![0].token, r.baseGreedy, 'the base top-N starts with its greedy token');
    assert.equal(r.vector, 'none');
  }
});

test('speed options never change the stream: no early exit, no window-0 pool, batch sizes', async () => {
  const pair = await organismPair();
  const problems = organismProblems(pair, 2, 7);
  const o = { grid: GRID, maxTokens: 60 };
  const a = await collectResults(hybridRun(pair, problems, { ...o, speculate: 2 }).events);
  const b = await collectResults(
    hybridRun(pair, problems, { ...o, earlyExit: false, steeredPool: 0, batch: 1, speculate: 1 }).events,
  );
  const cmp = compareStreams(a, b);
  assert.equal(cmp.identical, 2, JSON.stringify(cmp.details));
  const ctrl = new AbortController();
  ctrl.abort();
  const [aborted] = await collectResults(hybridRun(pair, problems.slice(0, 1), { ...o, signal: ctrl.signal }).events);
  assert.equal(aborted.finishReason, 'aborted');
  assert.equal(aborted.records.length, 0);
});

test('elastic context: sequences move to a larger context and keep their state', async () => {
  const { base } = await organismPair();
  const ids = Array.from(base.tokenize(promptText('Ben has 73 beads. He sells 29. He finds 53 more. How many now?')));
  const kv = new ElasticContext(base, 8, { nBatch: 16, nSeqMax: 2 });
  assert.equal(kv.ctx.nCtx, 16, 'never below nSeqMax and nBatch (llama.cpp would abort)');
  let [s1, s2] = [kv.ctx.sequence(), kv.ctx.sequence()];
  await feed(kv.ctx, [{ seq: s1, ids: ids.slice(0, 6), outputs: [] }]);
  [s1, s2] = await kv.room(ids.length, [
    { seq: s1, ids },
    { seq: s2, ids: [] },
  ]);
  assert.equal(kv.grown, 1);
  assert.equal(s1.length, 6);
  assert.equal(s2.length, 0);
  const grown = await feed(kv.ctx, [{ seq: s1, ids: ids.slice(6), outputs: [ids.length - 7] }]);
  const fresh = base.createContext({ nCtx: 512, nSeqMax: 1 });
  const s = fresh.sequence();
  const once = await feed(fresh, [{ seq: s, ids, outputs: [ids.length - 1] }]);
  const diff = Math.max(...grown.logits[0][0].map((x, i) => Math.abs(x - once.logits[0][0][i])));
  assert.ok(diff < 1e-3, `logits after the move differ by ${diff}`);
  fresh.free();
  kv.free();
});

test('statistics: steered share per problem then averaged (the headline) and token-weighted; usage', () => {
  const rec = (steered: boolean, c?: number, latent = 1): TokenRecord => ({
    step: 0,
    token: 5,
    source: 'base',
    text: 'x',
    baseGreedy: 5,
    thinkingGreedy: steered ? 6 : 5,
    gate: steered ? 'disagree' : 'agree',
    steered,
    latent,
    title: 'Verify',
    activation: 1,
    ...(steered ? { coefficient: c, window: 0, vector: 'bias.gguf + latent-1.gguf', candidates: [], chosen: 0 } : {}),
  });
  const s = hybridStats([
    { id: 'a', records: [rec(true, 0.1), rec(false), rec(false), rec(false)] }, // 1/4
    { id: 'b', records: [rec(true, 0.1), rec(true, 0.3, 2)] }, // 2/2
  ]);
  assert.equal(s.steeredPerProblem, (0.25 + 1) / 2);
  assert.equal(s.steeredTokenWeighted, 3 / 6);
  assert.deepEqual(s.coefficients, { '0.1': 2, '0.3': 1 });
  assert.deepEqual(s.categories, { '1: Verify': 2, '2: Verify': 1 });
  assert.equal(s.steeredToBaseToken, 3);
  assert.equal(hybridStats([]).steeredPerProblem, 0);
  assert.equal(PAPER_GRID.coefficients.length * PAPER_GRID.windows.length, 50);
});
