// `thinkwhen serve` as a user runs it: a child process on the organism pair plus a vector set (the
// hybrid), or with no arguments (the hybrid from the shipped SAE and vectors when they belong to the
// shipped models), listening on a free port, answering the openai client, and exiting 0 on SIGTERM.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import OpenAI from 'openai';
import { shippedHybrid } from '../../src/cli/serve.ts';
import { randomSae } from '../../src/hybrid/synthetic.ts';
import { artifactsMismatch, organismArtifactPaths } from '../../src/organism/artifacts.ts';
import { organismModelPaths } from '../../src/organism/index.ts';
import { saveSae } from '../../src/taxonomy/sae.ts';
import { cli } from '../helpers/cli.ts';
import { startServeChild } from '../helpers/serve-child.ts';
import { writeRandomVectorSet } from '../helpers/vector-set.ts';
import { questions } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'tw-serve-cli-'));
const models = organismModelPaths();

/** A vector set for the organism's base model, as `thinkwhen vectors train` writes one (random vectors). */
async function vectorSet(): Promise<string> {
  const saePath = await saveSae(join(dir, 'sae', 'sae_layer2_k6'), randomSae(128, 6, 3));
  return writeRandomVectorSet(join(dir, 'vectors'), {
    baseModel: models.base,
    thinkingModel: models.thinking,
    saePath,
  });
}

/** Starts `thinkwhen serve ARGS --port 0` and waits for its listening line. */
const startServe = (args: string[]) => startServeChild(args, 60_000);

test('thinkwhen serve: base, thinking and hybrid on a free port; SIGTERM exits 0', async () => {
  const vectors = await vectorSet();
  const s = await startServe(['--vectors', vectors, '--coefficients', '0.5,2', '--windows=0,-1']);
  try {
    assert.equal(s.models, 'base, thinking, hybrid');
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
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
    assert.equal(await s.stop(), 0, s.stderr());
  }
  assert.match(s.stderr(), /SIGTERM: finishing running requests/);
  assert.match(s.stderr(), /stopped/);
});

test('thinkwhen serve with no arguments: the hybrid from the shipped artifacts when they belong to the models, else one line why not', async () => {
  // Whichever state the shipped organism is in (the artifacts are regenerated whenever its models are).
  const why = await artifactsMismatch(organismArtifactPaths(), models);
  const s = await startServe([]);
  try {
    if (why === null) {
      assert.equal(s.models, 'base, thinking, hybrid');
      assert.doesNotMatch(s.stderr(), /hybrid not served/);
      const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const r = await client.chat.completions.create({
        model: 'hybrid',
        messages: [{ role: 'user', content: questions(1)[0] }],
        max_tokens: 30,
      });
      assert.ok((r.usage?.completion_tokens ?? 0) > 0);
      assert.ok(
        typeof (r as unknown as { thinkwhen: { steered_tokens: number } }).thinkwhen.steered_tokens === 'number',
      );
    } else {
      assert.equal(s.models, 'base, thinking');
      const lines = s
        .stderr()
        .split('\n')
        .filter((l) => l.includes('hybrid not served'));
      assert.equal(lines.length, 1, s.stderr());
      assert.ok(lines[0].includes(why), lines[0]);
      assert.match(lines[0], /--vectors runs\/demo\/default\/artifacts\/vectors/);
    }
  } finally {
    assert.equal(await s.stop(), 0, s.stderr());
  }
});

test('shippedHybrid: artifacts that are not there or not of these models turn the hybrid off, saying why and how', async () => {
  const empty = organismArtifactPaths(mkdtempSync(join(tmpdir(), 'tw-serve-noartifacts-')));
  const off = await shippedHybrid(empty, models);
  assert.ok('off' in off);
  assert.match(off.off, /do not belong to its models \(no .*artifacts\.json\)/);
  assert.match(off.off, /thinkwhen demo .*--vectors runs\/demo\/default\/artifacts\/vectors/);
  // the shipped artifacts with the models swapped round are not theirs either
  const swapped = await shippedHybrid(organismArtifactPaths(), { base: models.thinking, thinking: models.base });
  assert.ok('off' in swapped);
  assert.match(swapped.off, /do not belong to its models/);
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
