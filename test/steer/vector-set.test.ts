// The vector-set directory format: what loads, and every way it refuses to guess.
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Model } from '../../src/engine/index.ts';
import { GgmlType, str } from '../../src/gguf/types.ts';
import { writeGguf } from '../../src/gguf/write.ts';
import {
  biasFile,
  defaultSites,
  latentFile,
  loadVectorSet,
  MANIFEST,
  type ModelRef,
  modelRef,
  steeringDelta,
  type VectorSetManifest,
  vectorNorm,
  writeManifest,
  writeVectorFile,
} from '../../src/steer/vector-set.ts';
import { codeOf } from '../helpers/cli.ts';
import { tinyLlama, tinyQwen2 } from '../helpers/models.ts';

const root = mkdtempSync(join(tmpdir(), 'tw-vset-'));
let model: Model;
let ref: ModelRef;
after(() => {
  model?.free();
  rmSync(root, { recursive: true, force: true });
});
before(async () => {
  model = await Model.load(tinyQwen2());
  ref = await modelRef(tinyQwen2());
});

const vec = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + seed));

let count = 0;
/** A set with a bias, latents 0 and 5 (4 has too few examples), at layer 2 of the tiny qwen2. */
async function makeSet(): Promise<{ dir: string; manifest: VectorSetManifest }> {
  const dir = join(root, `set-${count++}`);
  mkdirSync(dir);
  const manifest: VectorSetManifest = {
    format: 'thinkwhen-vectors/1',
    method: 'optimised',
    model: { ...ref },
    layer: 2,
    ...defaultSites(2),
    bias: { file: biasFile, norm: 0, n_train: 10, loss_curve: [1, 0.5] },
    categories: [],
    skipped: [{ latent: 4, title: 'rare', reason: '3 examples < minimum 8' }],
    sae: null,
  };
  const bias = vec(64, 0);
  writeVectorFile(dir, biasFile, manifest, bias);
  manifest.bias!.norm = vectorNorm(bias);
  for (const latent of [5, 0]) {
    const v = vec(64, latent + 1);
    writeVectorFile(dir, latentFile(latent), manifest, v);
    manifest.categories.push({
      latent,
      title: `cat ${latent}`,
      file: latentFile(latent),
      norm: vectorNorm(v),
      n_train: 8,
      n_heldout: 4,
      loss_curve: [2, 1],
    });
  }
  writeManifest(dir, manifest);
  return { dir, manifest };
}

function editManifest(dir: string, edit: (m: VectorSetManifest) => void) {
  const m = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8'));
  edit(m);
  writeFileSync(join(dir, MANIFEST), JSON.stringify(m));
}

test('a set loads keyed by latent id, with the paper sites and skipped latents', async () => {
  const { dir } = await makeSet();
  const set = await loadVectorSet(dir, model);
  assert.equal(set.layer, 2);
  assert.equal(set.applyHook, 'blocks.2.hook_resid_post');
  assert.equal(set.manifest.train_site, 'blocks.2.hook_resid_pre');
  assert.deepEqual([...set.vectors.keys()].sort(), [0, 5]);
  assert.deepEqual(set.vectors.get(5), vec(64, 6));
  assert.deepEqual(set.bias, vec(64, 0));
  assert.equal(set.titles.get(0), 'cat 0');
  assert.equal(set.skipped.get(4), '3 examples < minimum 8');
  assert.deepEqual(set.warnings, []);
  const d = steeringDelta(set, 5, 0.5);
  assert.equal(d.biasOnly, false);
  assert.ok(Math.abs(d.vector[3] - 0.5 * (vec(64, 0)[3] + vec(64, 6)[3])) < 1e-6);
  const fallback = steeringDelta(set, 4, 0.5);
  assert.equal(fallback.biasOnly, true);
  assert.ok(Math.abs(fallback.vector[3] - 0.5 * vec(64, 0)[3]) < 1e-6);
});

test('the same-site option trains where the vectors are applied', () => {
  assert.deepEqual(defaultSites(3, true), {
    train_site: 'blocks.3.hook_resid_post',
    apply_site: 'blocks.3.hook_resid_post',
  });
});

test('two entries for one latent, or one file for two, are refused', async () => {
  const { dir } = await makeSet();
  editManifest(dir, (m) => m.categories.push({ ...m.categories[0], file: 'latent-5b.gguf' }));
  copyFileSync(join(dir, latentFile(5)), join(dir, 'latent-5b.gguf'));
  await assert.rejects(loadVectorSet(dir), /latent 5 has two vectors/);

  const b = await makeSet();
  editManifest(b.dir, (m) => {
    m.categories[1].file = latentFile(5);
    m.categories[1].norm = m.categories[0].norm;
  });
  unlinkSync(join(b.dir, latentFile(0)));
  await assert.rejects(loadVectorSet(b.dir), /latent-5\.gguf is named by both latent 5 and latent 0/);

  const c = await makeSet();
  editManifest(c.dir, (m) => m.skipped.push({ latent: 0, title: 'x', reason: 'y' }));
  await assert.rejects(loadVectorSet(c.dir), /latent 0 is listed as skipped and also elsewhere/);
});

test('a file the manifest does not name is refused (the paper listdir race)', async () => {
  const { dir } = await makeSet();
  copyFileSync(join(dir, latentFile(5)), join(dir, 'latent-5-adaptive.gguf'));
  await assert.rejects(loadVectorSet(dir), /does not name \(latent-5-adaptive\.gguf\)/);
});

test('missing, changed, foreign and non-finite files are refused', async () => {
  const a = await makeSet();
  unlinkSync(join(a.dir, latentFile(0)));
  await assert.rejects(loadVectorSet(a.dir), /names latent-0\.gguf, which is not in/);

  const b = await makeSet();
  copyFileSync(join(b.dir, latentFile(5)), join(b.dir, latentFile(0)));
  await assert.rejects(loadVectorSet(b.dir), /latent 0: latent-0\.gguf has norm .* the file changed/);

  const c = await makeSet();
  const nan = vec(64, 1);
  nan[7] = Number.NaN;
  writeGguf(join(c.dir, latentFile(0)), new Map([['general.architecture', str('controlvector')]]), [
    { name: 'direction.2', shape: [64], type: GgmlType.F32, data: nan },
  ]);
  await assert.rejects(loadVectorSet(c.dir), /direction\.2\[7\] is NaN/);

  const d = await makeSet();
  writeGguf(join(d.dir, latentFile(0)), new Map([['general.architecture', str('controlvector')]]), [
    { name: 'direction.3', shape: [64], type: GgmlType.F32, data: vec(64, 1) },
  ]);
  await assert.rejects(loadVectorSet(d.dir), /holds direction\.3 but the set applies at blocks\.2\.hook_resid_post/);

  const e = await makeSet();
  editManifest(e.dir, (m) => {
    m.categories[0].file = '../escape.gguf';
  });
  await assert.rejects(loadVectorSet(e.dir), /not a plain \.gguf file name/);

  const f = await makeSet();
  writeFileSync(join(f.dir, MANIFEST), '{"format": "thinkwhen-vectors/9"}');
  await assert.rejects(loadVectorSet(f.dir), /format "thinkwhen-vectors\/9"/);
  assert.equal(await codeOf(loadVectorSet(join(root, 'nope'))), 'NO_VECTOR_SET');
});

test('a model of another width is an error; another file of the same shape a warning (strict: error)', async () => {
  const { dir } = await makeSet();
  const wide = structuredClone(JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')));
  wide.model.nEmbd = 128;
  const wideDir = join(root, 'wide');
  cpSync(dir, wideDir, { recursive: true });
  writeFileSync(join(wideDir, MANIFEST), JSON.stringify(wide));
  // Files of width 64 under a manifest of width 128: refused without a model too.
  await assert.rejects(loadVectorSet(wideDir), /has width 64 but the set's model has n_embd 128/);
  await assert.rejects(loadVectorSet(wideDir, model), /made for a model with n_embd 128/);

  // tinyLlama: same width and depth, another architecture and file.
  const llama = await Model.load(tinyLlama());
  try {
    await assert.rejects(loadVectorSet(dir, llama), /made for a 'qwen2' model/);
  } finally {
    llama.free();
  }
  editManifest(dir, (m) => {
    m.model.sha256 = '0'.repeat(64);
  });
  const set = await loadVectorSet(dir, model);
  assert.equal(set.warnings.length, 1);
  assert.match(set.warnings[0], /is not the file the vectors .* were made with/);
  await assert.rejects(loadVectorSet(dir, model, { strictModel: true }), /is not the file/);
});
