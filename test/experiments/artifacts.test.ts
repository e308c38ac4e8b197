// The organism's shipped SAE and steering vectors (src/organism/models/{sae,vectors}/): present,
// made from the shipped models, unchanged since, loadable by the hybrid; and — the slow check,
// THINKWHEN_REGENERATE_ARTIFACTS=1 — regenerated from seeds they are byte for byte the committed files.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { Model } from '../../src/engine/index.ts';
import { resolveSae } from '../../src/experiments/hybrid.ts';
import { randomSae } from '../../src/hybrid/synthetic.ts';
import {
  ARTIFACT_SEED,
  type ArtifactRecord,
  artifactsMismatch,
  buildOrganismArtifacts,
  organismArtifactPaths,
} from '../../src/organism/artifacts.ts';
import { measureReadout } from '../../src/organism/artifacts-readout.ts';
import { corpusPolicy } from '../../src/organism/corpus.ts';
import { generateProblems, organismModelPaths, TEST_SEED } from '../../src/organism/index.ts';
import { makeTrace } from '../../src/organism/language.ts';
import { Rng } from '../../src/rng.ts';
import { loadVectorSet } from '../../src/steer/vector-set.ts';
import { saveSae } from '../../src/taxonomy/sae.ts';
import type { TraceRecord } from '../../src/traces/generate.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-artifacts-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const shipped = organismArtifactPaths();
const models = organismModelPaths();
const record = (): ArtifactRecord => JSON.parse(readFileSync(shipped.record, 'utf8'));

describe('shipped organism artifacts', () => {
  it('are there, made from the shipped models, and unchanged since', async () => {
    assert.ok(existsSync(shipped.record), `${shipped.record} is missing: regenerate with buildOrganismArtifacts`);
    assert.equal(await artifactsMismatch(shipped, { base: models.base, thinking: models.thinking }), null);
    const r = record();
    assert.ok(Object.keys(r.files).includes('sae/sae.safetensors'));
    assert.ok(Object.keys(r.files).includes('vectors/bias.gguf'));
    // a changed model or file is noticed
    assert.match(
      (await artifactsMismatch(shipped, { base: models.thinking, thinking: models.thinking })) ?? '',
      /is not the model/,
    );
  });

  it('learn from train-split problems, never from the held-out test problems the evaluation uses', () => {
    const r = record();
    assert.equal(r.seeds.split, 'train');
    assert.equal(r.seeds.problems, ARTIFACT_SEED);
    const test = new Set(generateProblems('test', 500, TEST_SEED).map((p) => p.question));
    const train = generateProblems('train', r.seeds.count, r.seeds.problems);
    assert.equal(train.filter((p) => test.has(p.question)).length, 0);
  });

  it('load as the hybrid needs them, with paths relative to their folder', async () => {
    const base = await Model.load(models.base, { vocabOnly: false });
    try {
      const set = await loadVectorSet(shipped.vectors, base, { strictModel: true });
      const sae = await resolveSae({ vectors: shipped.vectors });
      const viaTaxonomy = await resolveSae({ taxonomy: shipped.sae });
      assert.equal(sae.path, viaTaxonomy.path);
      assert.equal(sae.layer, record().layer);
      assert.equal(sae.sae.latents, record().k);
      assert.equal(set.layer, 1);
      assert.ok(set.bias);
      for (const k of set.vectors.keys()) assert.ok(k >= 0 && k < sae.sae.latents);
      assert.equal(set.vectors.size + set.skipped.size, sae.sae.latents);
      assert.equal(resolve(shipped.vectors, String(set.manifest.model.file)), resolve(models.base));
    } finally {
      base.free();
    }
  });

  it('the shipped SAE was chosen by its readout, and reads the verify category where the pair disagrees', async () => {
    const selection = JSON.parse(readFileSync(join(shipped.sae, 'selection.json'), 'utf8'));
    assert.equal(selection.metric, 'readout');
    assert.equal(selection.layer, record().layer);
    // the thinking corpus's traces (a verification where a carry or borrow is needed) of a few train problems
    const made = generateProblems('train', 8, ARTIFACT_SEED).map((p) =>
      makeTrace(p, corpusPolicy('thinking'), new Rng(0)),
    );
    const verifying = made.filter((t) => t.sentences.some((s) => s.type === 'verify')).length;
    assert.ok(verifying >= 3, `only ${verifying} of the traces verify`);
    const traces = made.map(
      (t) => ({ id: t.problem.id, question: t.problem.question, generated: t.text }) as TraceRecord,
    );
    const other = await saveSae(join(tmp, 'random-sae'), randomSae(128, selection.k, 7));
    const base = await Model.load(models.base);
    const thinking = await Model.load(models.thinking);
    try {
      const r = await measureReadout({ base, thinking }, traces, [
        { layer: selection.layer, k: selection.k, path: join(shipped.sae, 'sae.safetensors') },
        { layer: selection.layer, k: selection.k, path: other },
      ]);
      // where a check is needed the thinking model starts one and the base model mostly does not
      assert.ok(r.boundaryPositions >= verifying, `${r.boundaryPositions} disagreements at sentence starts`);
      const [shippedSae, random] = r.entries;
      assert.ok(shippedSae.boundary >= 0.8, `shipped SAE at sentence starts: ${shippedSae.boundary}`);
      assert.ok(random.readout < shippedSae.readout, `random ${random.readout} vs shipped ${shippedSae.readout}`);
    } finally {
      thinking.free();
      base.free();
    }
  });

  it(
    'regenerated from seeds, are byte for byte the committed files (slow: THINKWHEN_REGENERATE_ARTIFACTS=1)',
    {
      skip:
        process.env.THINKWHEN_REGENERATE_ARTIFACTS !== '1' && 'minutes of CPU; set THINKWHEN_REGENERATE_ARTIFACTS=1',
    },
    async () => {
      const out = join(tmp, 'out');
      const built = await buildOrganismArtifacts({ out, work: join(tmp, 'work'), threads: 1 });
      assert.deepEqual(built.record.files, record().files);
      assert.deepEqual(built.record, record());
    },
  );
});
