// `thinkwhen serve` as a user runs it: a child process on the organism pair plus a vector set (the
// hybrid), listening on a free port, answering the openai client, and exiting 0 on SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import OpenAI from 'openai';
import { randomSae, randomVectors } from '../../src/hybrid/synthetic.ts';
import { organismModelPaths } from '../../src/organism/index.ts';
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
import { questions } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'tw-serve-cli-'));
const models = organismModelPaths();

/** A vector set for the organism's base model, as `thinkwhen vectors train` writes one (random vectors). */
async function vectorSet(): Promise<string> {
  const saePath = await saveSae(join(dir, 'sae', 'sae_layer2_k6'), randomSae(128, 6, 3));
  const out = join(dir, 'vectors');
  mkdirSync(out, { recursive: true });
  const v = randomVectors(128, 2, 6, { biasNorm: 2, norm: 8 });
  const manifest: VectorSetManifest = {
    format: VECTOR_SET_FORMAT,
    method: 'diffmean',
    model: await modelRef(models.base),
    layer: 2,
    ...defaultSites(2),
    bias: null,
    categories: [],
    skipped: [],
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

test('thinkwhen serve: base, thinking and hybrid on a free port; SIGTERM exits 0', async () => {
  const vectors = await vectorSet();
  const child = spawn(
    process.execPath,
    ['bin/thinkwhen.js', 'serve', '--port', '0', '--vectors', vectors, '--coefficients', '0.5,2', '--windows=0,-1'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  try {
    const url = await new Promise<string>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`no listening line in 60 s: ${out} ${err}`)), 60_000);
      child.stdout.on('data', () => {
        const m = /listening on (http:\/\/\S+)\/v1 \(models: ([^)]*)\)/.exec(out);
        if (m) {
          clearTimeout(timer);
          assert.equal(m[2], 'base, thinking, hybrid');
          res(m[1]);
        }
      });
      child.on('exit', () => rej(new Error(`exited early: ${err}`)));
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const r = await client.chat.completions.create({
      model: 'hybrid',
      messages: [{ role: 'user', content: questions(1)[0] }],
      max_tokens: 40,
    });
    assert.equal(r.usage?.completion_tokens, 40);
    // vectors of the set by name, on the base model
    const steered = await client.completions.create({
      model: 'base',
      prompt: 'hi',
      max_tokens: 4,
      steering: { name: 'category 3', coefficient: 1 },
    } as OpenAI.CompletionCreateParamsNonStreaming);
    assert.equal(steered.usage?.completion_tokens, 4);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, err);
  assert.match(err, /SIGTERM: finishing running requests/);
  assert.match(err, /stopped/);
});

test('thinkwhen serve refuses a half-given pair and a port in use', async () => {
  const half = await cli(['serve', '--base', models.base]);
  assert.equal(half.code, 2);
  assert.match(half.err, /give both --base and --thinking/);
  const missing = await cli(['serve', '--base', join(dir, 'nope.gguf'), '--thinking', models.thinking]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /base model not found: .*nope\.gguf/);
  const holder = createServer();
  await new Promise<void>((res) => holder.listen(0, '127.0.0.1', res));
  try {
    const port = (holder.address() as AddressInfo).port;
    const taken = await cli(['serve', '--port', String(port)]);
    assert.equal(taken.code, 2);
    assert.match(taken.err, new RegExp(`cannot listen on 127.0.0.1:${port}.*pick another --port`));
  } finally {
    holder.close();
  }
});
