// A vector set's files through llama.cpp's own control-vector path give the same logits, bit for
// bit, as the same vectors through our residual hook: the files are loaded by llama.cpp's loader
// (common_control_vector_load from the pinned libllama-common.so, the code behind `llama-cli
// --control-vector` / `--control-vector-scaled`), applied with llama_set_adapter_cvec, and
// compared with steeringDelta() added at the set's apply hook.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { type BatchToken, Model } from '../../src/engine/index.ts';
import { binsDir } from '../../src/llama-paths.mjs';
import {
  biasFile,
  defaultSites,
  latentFile,
  loadVectorSet,
  modelRef,
  steeringDelta,
  type VectorSetManifest,
  vectorNorm,
  writeManifest,
  writeVectorFile,
} from '../../src/steer/vector-set.ts';
import { tinyQwen2 } from '../helpers/models.ts';

const root = mkdtempSync(join(tmpdir(), 'tw-cvec-'));
const loader = join(root, 'llama-cvec-load');
let model: Model;

before(async () => {
  const bins = binsDir();
  execFileSync('g++', [
    '-std=c++17',
    '-O1',
    resolve('test/steer/fixtures/llama-cvec-load.cpp'),
    join(bins, 'libllama-common.so'),
    `-Wl,-rpath,${bins}`,
    '-o',
    loader,
  ]);
  model = await Model.load(tinyQwen2());
});
after(() => {
  model?.free();
  rmSync(root, { recursive: true, force: true });
});

/** What llama.cpp's loader makes of `FILE STRENGTH ...`: n_embd and the layer-1-based buffer. */
function llamaLoad(args: string[]): { nEmbd: number; data: Float32Array } | null {
  const r = spawnSync(loader, args, { encoding: 'buffer' });
  if (r.status !== 0) return null;
  const buf = r.stdout;
  const head = new Int32Array(buf.buffer, buf.byteOffset, 2);
  return {
    nEmbd: head[0],
    data: new Float32Array(buf.buffer.slice(buf.byteOffset + 8, buf.byteOffset + 8 + head[1] * 4)),
  };
}

const vec = (n: number, seed: number, scale: number) =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * scale);

async function makeSet(layer: number, name = `set-${layer}`) {
  const dir = join(root, name);
  mkdirSync(dir);
  const m: VectorSetManifest = {
    format: 'thinkwhen-vectors/1',
    method: 'optimised',
    model: await modelRef(tinyQwen2()),
    layer,
    ...defaultSites(layer),
    bias: null,
    categories: [],
    skipped: [],
    sae: null,
  };
  const bias = vec(64, 1, 0.9);
  const v = vec(64, 2, 1.3);
  writeVectorFile(dir, biasFile, m, bias);
  writeVectorFile(dir, latentFile(7), m, v);
  m.bias = { file: biasFile, norm: vectorNorm(bias), n_train: 1, loss_curve: [] };
  m.categories.push({
    latent: 7,
    title: 't',
    file: latentFile(7),
    norm: vectorNorm(v),
    n_train: 1,
    n_heldout: 0,
    loss_curve: [],
  });
  writeManifest(dir, m);
  return dir;
}

const same = (a: Float32Array, b: Float32Array) =>
  a.length === b.length &&
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

test('llama.cpp loads the files: direction.L lands in slot L, values bit-identical', async () => {
  const dir = await makeSet(2);
  const set = await loadVectorSet(dir, model);
  const got = llamaLoad([join(dir, latentFile(7)), '1']);
  assert.ok(got, 'llama.cpp refused the file');
  assert.equal(got.nEmbd, 64);
  assert.equal(got.data.length, 2 * 64); // layers 1..2, layer 1 empty
  assert.ok(got.data.subarray(0, 64).every((x) => x === 0));
  assert.ok(same(got.data.subarray(64, 128), set.vectors.get(7)!));
  // llama.cpp refuses what it cannot apply, so a file it loads is one we wrote right.
  assert.equal(llamaLoad([join(root, 'nope.gguf'), '1']), null);
});

test('c·(bias + v) through llama.cpp --control-vector-scaled and through the hook: bit-identical logits', async () => {
  const ctx = model.createContext({ nCtx: 128, nBatch: 64, nSeqMax: 1 });
  const seq = ctx.sequence();
  try {
    for (const layer of [1, 2]) {
      const dir = await makeSet(layer, `logits-${layer}`);
      const set = await loadVectorSet(dir, model);
      const tokens: BatchToken[] = Array.from(
        model.tokenize('Check ones: 13 - 9 - 0 = 4, borrow 1. So'),
        (token, pos) => ({
          token,
          seq,
          pos,
          logits: true,
        }),
      );
      for (const c of [1, 0.3]) {
        const cpp = llamaLoad([join(dir, biasFile), String(c), join(dir, latentFile(7)), String(c)]);
        assert.ok(cpp);
        seq.clear();
        const plain = await ctx.decode(tokens);
        seq.clear();
        const hooked = await ctx.decode(tokens, [
          { hook: set.applyHook, rows: 'all', add: steeringDelta(set, 7, c).vector },
        ]);
        const slots = new Map<number, Float32Array>();
        for (let l = 1; l * 64 <= cpp.data.length; l++) slots.set(l, cpp.data.slice((l - 1) * 64, l * 64));
        ctx.setControlVector(slots);
        seq.clear();
        let viaCvec: Awaited<ReturnType<typeof ctx.decode>>;
        try {
          viaCvec = await ctx.decode(tokens);
        } finally {
          ctx.setControlVector(null);
        }
        assert.ok(
          hooked.logits.every((l, i) => same(l, viaCvec.logits[i])),
          `layer ${layer}, c=${c}: logits differ`,
        );
        assert.ok(!same(hooked.logits.at(-1)!, plain.logits.at(-1)!), 'the vector changed nothing');
      }
    }
  } finally {
    ctx.free();
  }
});
