import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ThinkwhenError } from '../../src/errors.ts';
import { canonicalJson } from '../../src/llm/cache.ts';
import { LlmClient, type LlmEvent, parseJsonContent, parseRetryAfter } from '../../src/llm/client.ts';
import { type Reply, startFakeOpenAI } from './fake-openai.ts';

const fast = { backoffBaseMs: 5, backoffMaxMs: 20, timeoutMs: 300 };

test('retries 500s, hangs, malformed bodies and content, 429 + Retry-After; nothing lost; cache makes reruns free', async () => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'tw-llm-'));
  // Each prompt fails in its own way on the first attempt(s), then succeeds.
  const script: Record<string, Reply[]> = {
    'p-500': [{ status: 500 }, { status: 503 }],
    'p-hang': [{ hang: true }],
    'p-body': [{ raw: '{"choices": [ {"mess' }],
    'p-429': [{ status: 429, headers: { 'retry-after': '1' } }],
    'p-json': [{ content: 'Sure! Here you go: not json' }],
    'p-ok': [],
  };
  const server = await startFakeOpenAI(({ body, nth }) => {
    const prompt = body.messages[0].content;
    return script[prompt][nth - 1] ?? { content: JSON.stringify({ echo: prompt }) };
  });
  try {
    const events: LlmEvent[] = [];
    const client = new LlmClient({
      baseUrl: server.baseUrl,
      apiKey: 'sk-test',
      model: 'tiny',
      cacheDir,
      concurrency: 3,
      ...fast,
      onEvent: (e) => events.push(e),
    });
    const started = Date.now();
    const prompts = Object.keys(script);
    const results = await Promise.all(
      prompts.map((p) =>
        client.chat([{ role: 'user', content: p }], { params: { temperature: 0 }, parse: parseJsonContent }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.value),
      prompts.map((p) => ({ echo: p })),
    );
    assert.ok(results.every((r) => !r.cached));
    // 6 successes + 6 failed attempts, each reported with its reason.
    assert.equal(server.requests.length, 12);
    assert.deepEqual(client.stats.retries, {
      'rate-limited': 1,
      'server-error': 2,
      timeout: 1,
      network: 0,
      malformed: 2,
    });
    assert.equal(events.filter((e) => e.type === 'retry').length, 6);
    const rateLimited = events.find((e) => e.type === 'retry' && e.reason === 'rate-limited');
    assert.equal(rateLimited?.type === 'retry' && rateLimited.waitMs, 1000, 'Retry-After honoured');
    assert.ok(Date.now() - started >= 1000);
    // The request is a proper chat completion with the key.
    const first = server.requests[0];
    assert.equal(first.headers.authorization, 'Bearer sk-test');
    assert.equal(first.body.model, 'tiny');
    assert.equal(first.body.temperature, 0);

    // A second run (new client, same cache) makes zero requests and returns the same values.
    const again = new LlmClient({ baseUrl: server.baseUrl, model: 'tiny', cacheDir, ...fast });
    const cached = await Promise.all(
      prompts.map((p) =>
        again.chat([{ role: 'user', content: p }], { params: { temperature: 0 }, parse: parseJsonContent }),
      ),
    );
    assert.equal(server.requests.length, 12);
    assert.ok(cached.every((r) => r.cached));
    assert.deepEqual(
      cached.map((r) => r.value),
      results.map((r) => r.value),
    );
    assert.equal(again.stats.cacheHits, 6);
    // Different params are a different call.
    await again.chat([{ role: 'user', content: 'p-ok' }], { params: { temperature: 1 } });
    assert.equal(server.requests.length, 13);
  } finally {
    await server.close();
    await rm(cacheDir, { recursive: true, force: true });
  }
});

test('the concurrency limit holds at the server', async () => {
  const server = await startFakeOpenAI(() => ({ content: 'ok', delayMs: 30 }));
  try {
    const client = new LlmClient({ baseUrl: server.baseUrl, model: 'm', concurrency: 2, ...fast });
    await Promise.all(Array.from({ length: 8 }, (_, i) => client.chat([{ role: 'user', content: `q${i}` }])));
    assert.equal(server.requests.length, 8);
    assert.equal(server.peakConcurrency(), 2);
  } finally {
    await server.close();
  }
});

test('exhausted retries on persistent 500s: LLM_FAILED, nothing cached', async () => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'tw-llm-'));
  const server = await startFakeOpenAI(() => ({ status: 502 }));
  try {
    const client = new LlmClient({ baseUrl: server.baseUrl, model: 'm', cacheDir, maxRetries: 2, ...fast });
    await assert.rejects(client.chat([{ role: 'user', content: 'x' }]), (e: unknown) => {
      assert.ok(e instanceof ThinkwhenError);
      assert.equal(e.code, 'LLM_FAILED');
      assert.match(e.message, /server-error: HTTP 502.*after 3 attempts/);
      return true;
    });
    assert.equal(server.requests.length, 3);
    const rerun = new LlmClient({ baseUrl: server.baseUrl, model: 'm', cacheDir, maxRetries: 0, ...fast });
    await assert.rejects(rerun.chat([{ role: 'user', content: 'x' }]));
    assert.equal(server.requests.length, 4, 'a failure is never served from the cache');
  } finally {
    await server.close();
    await rm(cacheDir, { recursive: true, force: true });
  }
});

test('401 and unknown models fail at once with the fix named', async () => {
  const server = await startFakeOpenAI(({ body }) =>
    body.model === 'nope'
      ? { status: 404, body: '{"error":{"message":"The model `nope` does not exist"}}' }
      : { status: 401, body: '{"error":{"message":"Incorrect API key"}}' },
  );
  try {
    const client = new LlmClient({ baseUrl: server.baseUrl, apiKey: 'bad', model: 'gpt', ...fast });
    await assert.rejects(client.chat([{ role: 'user', content: 'x' }]), (e: unknown) => {
      assert.ok(e instanceof ThinkwhenError);
      assert.equal(e.code, 'LLM_UNAUTHORIZED');
      assert.match(e.message, /OPENAI_API_KEY/);
      return true;
    });
    await assert.rejects(client.chat([{ role: 'user', content: 'x' }], { model: 'nope' }), (e: unknown) => {
      assert.ok(e instanceof ThinkwhenError);
      assert.equal(e.code, 'LLM_BAD_MODEL');
      assert.match(e.message, /"nope".*\/models/);
      return true;
    });
    assert.equal(server.requests.length, 2, 'no retries for errors retrying cannot fix');
  } finally {
    await server.close();
  }
});

test('an unreachable endpoint is reported as such after the retries', async () => {
  // A port that was free a moment ago and now has no listener.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const events: LlmEvent[] = [];
  const client = new LlmClient({
    baseUrl: `http://127.0.0.1:${port}/v1`,
    model: 'm',
    maxRetries: 2,
    ...fast,
    onEvent: (e) => events.push(e),
  });
  await assert.rejects(client.chat([{ role: 'user', content: 'x' }]), (e: unknown) => {
    assert.ok(e instanceof ThinkwhenError);
    assert.equal(e.code, 'LLM_UNREACHABLE');
    assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}.*3 attempts.*ECONNREFUSED`));
    assert.match(e.message, /OPENAI_BASE_URL/);
    return true;
  });
  assert.equal(events.filter((e) => e.type === 'retry' && e.reason === 'network').length, 2);
});

test('no model named is a clear error; helpers parse Retry-After and fenced JSON; keys are canonical', async () => {
  await assert.rejects(
    new LlmClient({ baseUrl: 'http://127.0.0.1:9/v1' }).chat([{ role: 'user', content: 'x' }]),
    /no LLM model/,
  );
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(new Date(Date.now() + 5000).toUTCString(), Date.now()) !== undefined, true);
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.deepEqual(parseJsonContent('```json\n{"a": 1}\n```'), { a: 1 });
  assert.deepEqual(parseJsonContent('Here: {"a": [1, 2]} done'), { a: [1, 2] });
  assert.throws(() => parseJsonContent('nothing'), /no JSON object/);
  assert.equal(
    canonicalJson({ b: 1, a: { d: [1, { f: 2, e: 3 }], c: undefined } }),
    '{"a":{"d":[1,{"e":3,"f":2}]},"b":1}',
  );
});
