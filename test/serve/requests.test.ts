// Per-request steering (inline, by name, by file; layer, coefficient, positions), and everything the
// server refuses or cuts short: bad requests get a 4xx JSON error with a code and a fix, a full queue
// gets 429 with Retry-After, a disconnected client frees its sequence, a timeout answers 504, and
// shutdown answers what is still running.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { writeControlVector } from '../../src/gguf/control-vector.ts';
import { Rng } from '../../src/rng.ts';
import type { RunningServer } from '../../src/serve/server.ts';
import { encodeVector } from '../../src/serve/steering.ts';
import { post, questions, serve } from './fixtures.ts';

const [q1] = questions(1);
/** A prompt the organism's base model continues with a run of numbers and no end-of-generation token: 400 tokens keep a slot busy. */
const LONG = '1 2 3 4 5';
const vectorDir = mkdtempSync(join(tmpdir(), 'tw-serve-vectors-'));
const rng = new Rng(7);
const direction = Float32Array.from({ length: 128 }, () => 3 * rng.normal());
writeControlVector(join(vectorDir, 'push.gguf'), {
  modelHint: 'llama',
  nEmbd: 128,
  directions: new Map([[2, direction]]),
});

let server: RunningServer;
let client: OpenAI;
before(async () => {
  server = await serve({ vectorDirs: [vectorDir], maxBodyBytes: 64 << 10 });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(() => server.close());

const complete = async (extra: object, model = 'base'): Promise<string> => {
  const body = { model, prompt: q1, temperature: 0, max_tokens: 40, ...extra };
  const r = await client.completions.create(body as OpenAI.CompletionCreateParamsNonStreaming);
  return r.choices[0].text;
};

test('steering: a zero vector changes nothing; inline, by name and by file the same vector steers alike', async () => {
  const plain = await complete({});
  assert.equal(await complete({ steering: { layer: 2, vector: encodeVector(new Float32Array(128)) } }), plain);
  const inline = await complete({ steering: { layer: 2, vector: Array.from(direction), coefficient: 2 } });
  assert.notEqual(inline, plain);
  assert.equal(await complete({ steering: { name: 'push', coefficient: 2 } }), inline);
  assert.equal(await complete({ steering: [{ file: 'push.gguf', layer: 2, coefficient: 2 }] }), inline);
  // coefficient 0 is the unsteered model again; the base64 form equals the array form
  assert.equal(await complete({ steering: { name: 'push', coefficient: 0 } }), plain);
  const b64 = encodeVector(direction.map((x) => 2 * x));
  assert.equal(await complete({ steering: { layer: 2, vector: b64 } }), inline);
});

test('steering: positions limit where the vector is added', async () => {
  const plain = await complete({});
  const at = async (positions: unknown) => complete({ steering: { name: 'push', coefficient: 0.6, positions } });
  const [all, prompt, generated] = [await at('all'), await at('prompt'), await at('generated')];
  assert.equal(new Set([plain, all, prompt, generated]).size, 4, 'four different texts');
  // [0, null) is every position; a range that starts past the text adds nothing
  assert.equal(await at([0, null]), all);
  assert.equal(await at([100000, null]), plain);
});

test('bad requests: 4xx with the field, a code and a fix', async () => {
  const url = `${server.url}/v1/completions`;
  const cases: [string | object, number, string, string | null][] = [
    ['{"model": "base", "prompt": ', 400, 'MALFORMED_JSON', null],
    [[1, 2], 400, 'MALFORMED_JSON', null],
    [{ model: 'gpt-4', prompt: 'hi' }, 404, 'UNKNOWN_MODEL', 'model'],
    [{ model: 'base', prompt: 'hi', max_tokens: -5 }, 400, 'BAD_REQUEST', 'max_tokens'],
    [{ model: 'base', prompt: 'hi', max_tokens: 1e9 }, 400, 'BAD_REQUEST', 'max_tokens'],
    [{ model: 'base', prompt: '' }, 400, 'BAD_REQUEST', 'prompt'],
    [{ model: 'base', prompt: 'hi', temperature: 'hot' }, 400, 'BAD_REQUEST', 'temperature'],
    [
      { model: 'base', prompt: 'hi', steering: { layer: 2, vector: [1, 2, 3] } },
      400,
      'VECTOR_WIDTH',
      'steering[0].vector',
    ],
    [{ model: 'base', prompt: 'hi', steering: { layer: 9, vector: [1] } }, 400, 'BAD_REQUEST', 'steering[0]'],
    [{ model: 'base', prompt: 'hi', steering: { name: 'pull' } }, 400, 'UNKNOWN_VECTOR', 'steering[0].name'],
    [{ model: 'base', prompt: 'hi', steering: { file: '../push.gguf' } }, 400, 'BAD_REQUEST', 'steering[0].file'],
    [
      { model: 'base', prompt: 'hi', steering: { name: 'push', positions: [5, 2] } },
      400,
      'BAD_REQUEST',
      'steering[0].positions',
    ],
    [{ model: 'base', prompt: 'hi', hybrid: { policy: 'paper' } }, 400, 'BAD_REQUEST', 'hybrid'],
    [{ model: 'hybrid', prompt: 'hi', hybrid: { policy: 'magic' } }, 400, 'BAD_REQUEST', 'hybrid.policy'],
    [{ model: 'hybrid', prompt: 'hi', hybrid: { windows: [3] } }, 400, 'BAD_HYBRID_OPTION', 'hybrid'],
    [{ model: 'hybrid', prompt: 'hi', temperature: 0.7, top_k: 5 }, 400, 'BAD_REQUEST', 'top_k'],
    [{ model: 'hybrid', prompt: 'hi', temperature: 0.7, seed: -1 }, 400, 'BAD_REQUEST', 'seed'],
    [{ model: 'hybrid', prompt: 'hi', seed: 3, hybrid: { seed: 4 } }, 400, 'BAD_REQUEST', 'seed'],
    [{ model: 'hybrid', prompt: 'hi', steering: { name: 'push' } }, 400, 'BAD_REQUEST', 'steering'],
    [{ model: 'base', prompt: 'x'.repeat(100 << 10) }, 413, 'BODY_TOO_LARGE', null],
  ];
  for (const [body, status, code, param] of cases) {
    const r = await post(url, body);
    const what = `${JSON.stringify(body).slice(0, 80)} → ${r.text.slice(0, 300)}`;
    assert.equal(r.status, status, what);
    assert.equal(r.json.error.code, code, what);
    assert.equal(r.json.error.param, param, what);
    assert.ok(r.json.error.message.length > 10 && r.json.error.fix.length > 5, what);
  }
  const chat = await post(`${server.url}/v1/chat/completions`, {
    model: 'hybrid',
    messages: [
      { role: 'user', content: 'a' },
      { role: 'assistant', content: 'b' },
      { role: 'user', content: 'c' },
    ],
  });
  assert.equal(chat.status, 400);
  assert.match(chat.json.error.message, /one user message/);
  const get = await fetch(`${server.url}/v1/completions`);
  assert.equal(get.status, 405);
  const nowhere = await fetch(`${server.url}/v2/models`);
  assert.equal(nowhere.status, 404);
  assert.equal(((await nowhere.json()) as { error: { code: string } }).error.code, 'NO_ROUTE');
  // the client sees the same: a typed error with the status and code
  await assert.rejects(
    client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }),
    (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'UNKNOWN_MODEL',
  );
});

test('a full queue answers 429 with Retry-After; a client that leaves frees its sequence', async () => {
  const busy = await serve({ parallel: 1, queue: 0, hybridParallel: 1, retryAfterS: 3 });
  try {
    const c = new OpenAI({ baseURL: `${busy.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const abort = new AbortController();
    // a long request holds the one slot; its first token shows it is running
    const long = await c.completions.create(
      { model: 'base', prompt: LONG, temperature: 0, max_tokens: 400, stream: true },
      { signal: abort.signal },
    );
    const it = long[Symbol.asyncIterator]();
    await it.next();
    const r = await post(`${busy.url}/v1/completions`, { model: 'base', prompt: q1, max_tokens: 5 });
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '3');
    assert.equal(r.json.error.code, 'BUSY');
    await assert.rejects(
      c.completions.create({ model: 'base', prompt: q1, max_tokens: 5 }),
      (e: unknown) => e instanceof OpenAI.RateLimitError,
    );
    // the official client retries a 429 on its own after Retry-After (docs/scale-out.md): the long
    // request's client leaves while the retry waits, so the retry finds the slot free
    const statuses: number[] = [];
    const retrying = new OpenAI({
      baseURL: `${busy.url}/v1`,
      apiKey: 'unused',
      fetch: async (url, init) => {
        const res = await fetch(url, init);
        statuses.push(res.status);
        return res;
      },
    });
    const t0 = performance.now();
    const retried = retrying.completions.create({ model: 'base', prompt: q1, temperature: 0, max_tokens: 5 });
    while (statuses.length === 0) await new Promise((res) => setTimeout(res, 20));
    // the client leaves: its sequence is freed and the next request runs
    abort.abort();
    assert.equal((await retried).usage?.completion_tokens, 5);
    assert.deepEqual(statuses, [429, 200]);
    assert.ok(performance.now() - t0 >= 2900, `retried after ${performance.now() - t0} ms, Retry-After 3 s`);
    const health = async () =>
      ((await (await fetch(`${busy.url}/health`)).json()) as { models: { base: { active: number } } }).models.base;
    for (let i = 0; i < 100 && (await health()).active > 0; i++) await new Promise((res) => setTimeout(res, 20));
    assert.equal((await health()).active, 0);
    const next = await c.completions.create({ model: 'base', prompt: q1, temperature: 0, max_tokens: 5 });
    assert.equal(next.usage?.completion_tokens, 5);
  } finally {
    await busy.close();
  }
});

test('an API key is required when set; the timeout answers 504', async () => {
  const locked = await serve({ apiKey: 'sesame', timeoutMs: 1 });
  try {
    const r = await post(`${locked.url}/v1/completions`, { model: 'base', prompt: 'hi' });
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'UNAUTHORIZED');
    const wrong = await post(
      `${locked.url}/v1/completions`,
      { model: 'base', prompt: 'hi' },
      { authorization: 'Bearer open' },
    );
    assert.equal(wrong.status, 401);
    const slow = await post(
      `${locked.url}/v1/completions`,
      { model: 'base', prompt: q1, max_tokens: 400 },
      { authorization: 'Bearer sesame' },
    );
    assert.equal(slow.status, 504, slow.text);
    assert.equal(slow.json.error.code, 'REQUEST_TIMEOUT');
  } finally {
    await locked.close();
  }
});

test('shutdown: running requests get a 503 or a stream error after the grace time; new ones are refused', async () => {
  const s = await serve({ graceMs: 0 });
  const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const stream = await c.completions.create({
    model: 'base',
    prompt: LONG,
    temperature: 0,
    max_tokens: 400,
    stream: true,
  });
  const it = stream[Symbol.asyncIterator]();
  await it.next();
  const plain = post(`${s.url}/v1/completions`, { model: 'base', prompt: LONG, temperature: 0, max_tokens: 400 });
  // close only once the server holds both requests (a fixed wait lost the race on a loaded machine)
  for (let t0 = Date.now(); ; await new Promise((res) => setTimeout(res, 10))) {
    const health = (await (await fetch(`${s.url}/health`)).json()) as {
      models: Record<string, { active: number; queued: number }>;
    };
    if (health.models.base.active + health.models.base.queued >= 2) break;
    assert.ok(Date.now() - t0 < 30_000, 'the second request never reached the server');
  }
  await s.close();
  const r = await plain;
  assert.equal(r.status, 503);
  assert.equal(r.json.error.code, 'SERVER_CLOSING');
  await assert.rejects(
    (async () => {
      for (;;) if ((await it.next()).done) break;
    })(),
    /shut down/,
  );
  await assert.rejects(fetch(`${s.url}/v1/models`));
});
