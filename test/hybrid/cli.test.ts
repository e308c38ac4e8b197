// `thinkwhen hybrid`: a question, a question file into a resumable run store, and refusals.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RunStore } from '../../src/eval/store.ts';
import type { TokenRecord } from '../../src/hybrid/index.ts';
import { randomSae, randomVectors } from '../../src/hybrid/synthetic.ts';
import { generateProblems, organismModelPaths } from '../../src/organism/index.ts';
import {
  defaultSites,
  latentFile,
  modelRef,
  VECTOR_SET_FORMAT,
  type VectorSetManifest,
  vectorNorm,
  writeManifest,
  writeVectorFile,
} from '../../src/steer/vector-set.ts';
import { saveSae } from '../../src/taxonomy/sae.ts';
import { cli } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'tw-hybrid-cli-'));
const models = organismModelPaths();
const saePath = await saveSae(join(dir, 'sae', 'sae_layer2_k6'), randomSae(128, 6, 3));

/** A vector set for the organism's base model, as `thinkwhen vectors` writes one. */
async function vectorSet(name: string, skip: number[] = []): Promise<string> {
  const out = join(dir, name);
  mkdirSync(out, { recursive: true });
  const v = randomVectors(128, 2, 6, { biasNorm: 2, norm: 8, skip });
  const manifest: VectorSetManifest = {
    format: VECTOR_SET_FORMAT,
    method: 'diffmean',
    model: await modelRef(models.base),
    layer: 2,
    ...defaultSites(2),
    bias: null,
    categories: [],
    skipped: skip.map((latent) => ({ latent, title: `latent ${latent}`, reason: 'too few examples' })),
    sae: { sae: saePath, layer: 2, k: 6, thinking: models.thinking },
  };
  manifest.bias = {
    file: writeVectorFile(out, 'bias.gguf', manifest, v.bias!),
    norm: vectorNorm(v.bias!),
    n_train: 0,
    loss_curve: [],
  };
  for (const [latent, vec] of v.vectors) {
    manifest.categories.push({
      latent,
      title: `category ${latent}`,
      file: writeVectorFile(out, latentFile(latent), manifest, vec),
      norm: vectorNorm(vec),
      n_train: 0,
      n_heldout: 0,
      loss_curve: [],
    });
  }
  writeManifest(out, manifest);
  return out;
}

const vectors = await vectorSet('vectors');
const GRID = ['--coefficients', '0.5,2', '--windows=0,-1,-15'];
const [p1, p2] = generateProblems('test', 2, 5);

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

test('a question file into a run store: records, grades, resume without redoing', async () => {
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
    '--questions',
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
  assert.equal(store.grades().length, 2);
  assert.equal(store.config.role, 'hybrid');
  store.close();
  const again = await cli(args);
  assert.equal(again.code, 0, again.err);
  assert.match(again.err, /2 of 2 problems already in/);
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
  r = await cli(['hybrid', '--organism', '--vectors', holes, ...q]);
  assert.equal(r.code, 2);
  assert.match(r.err, /latent\(s\) 4 \(too few examples\).*--missing-vector bias/);
  r = await cli(['hybrid', '--organism', '--vectors', holes, '--missing-vector', 'bias', ...q]);
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
