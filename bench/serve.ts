// `thinkwhen serve` under load, as a user runs it: a child `thinkwhen serve` on the shipped organism,
// measured through the official `openai` client, side by side in one run:
//  1. one client: every request sent one at a time (greedy, streamed) → the reference texts and the
//     one-client tokens/s;
//  2. --clients concurrent streaming clients, each sending its share of the same requests, --rounds
//     times → zero errors, texts identical to step 1, aggregate tokens/s (ratio to step 1), latency
//     p50/p95 (whole request and first text);
//  3. the server's RSS (/proc/PID/status) after step 1 and after each round: growth from the first
//     round (contexts allocated) to the last is what a leak would show; it includes garbage V8 has
//     not collected yet, so --in-process serves base and thinking from this process instead and
//     reads RSS after a forced GC (node --expose-gc);
//  4. bad requests (malformed JSON, unknown model, negative max_tokens, a vector of the wrong width)
//     each answered with a 4xx and a message.
// Exits 1 when an output differs, a request fails, or a bad request is not a 4xx.
//
//   THINKWHEN_THREADS=1 nice -n 15 node --import tsx bench/serve.ts [--clients 16] [--requests 96]
//     [--max-tokens 64] [--rounds 5] [--models base,thinking] [--parallel 8] [--json]
//   THINKWHEN_THREADS=1 nice -n 15 node --expose-gc --import tsx bench/serve.ts --in-process [...]
//
// --requests is the total (spread over the clients); --models the models the requests alternate
// between (hybrid too, when the server serves it: docs/serve.md).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import OpenAI from 'openai';
import { Model } from '../src/engine/index.ts';
import { generateProblems, organismModelPaths } from '../src/organism/index.ts';
import { PlainModel } from '../src/serve/models.ts';
import { startServer } from '../src/serve/server.ts';
import { VectorLibrary } from '../src/serve/steering.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '16' },
    requests: { type: 'string', default: '96' },
    'max-tokens': { type: 'string', default: '64' },
    models: { type: 'string', default: 'base,thinking' },
    parallel: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '5' },
    'in-process': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const positive = (name: string, v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: a positive integer was expected, got ${v}`);
  return n;
};
const clients = positive('clients', values.clients);
const total = positive('requests', values.requests);
const maxTokens = positive('max-tokens', values['max-tokens']);
const parallel = positive('parallel', values.parallel);
const roundsWanted = positive('rounds', values.rounds);
const models = values.models.split(',').filter(Boolean);

interface Request {
  model: string;
  question: string;
}
interface Outcome {
  text: string;
  tokens: number;
  ms: number;
  firstMs: number;
}

const requests: Request[] = generateProblems('test', total, 17).map((p, i) => ({
  model: models[i % models.length],
  question: p.question,
}));

interface Served {
  url: string;
  models: string[];
  /** the server's resident memory in MiB */
  rss: () => number;
  stop: () => Promise<void>;
}

/** Starts `thinkwhen serve --port 0` as a child process. */
async function startChild(): Promise<Served> {
  const child = spawn(
    process.execPath,
    ['bin/thinkwhen.js', 'serve', '--port', '0', '--parallel', String(parallel), '--queue', String(clients * 2)],
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
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  const [url, served] = await new Promise<[string, string]>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no listening line in 120 s: ${out} ${err}`)), 120_000);
    child.stdout.on('data', () => {
      const m = /listening on (http:\/\/\S+)\/v1 \(models: ([^)]*)\)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res([m[1], m[2]]);
      }
    });
    child.on('exit', () => rej(new Error(`thinkwhen serve exited: ${err}`)));
  });
  for (const l of err.split('\n').filter(Boolean)) console.error(`[server] ${l}`);
  return {
    url,
    models: served.split(', '),
    rss: () => childRssMiB(child.pid!),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * --in-process: base and thinking served from this process (src/serve, as the CLI builds them), its
 * RSS read after a full garbage collection, so that growth is memory still held, not garbage V8 has
 * not collected yet (the child's RSS includes that).
 */
async function startInProcess(): Promise<Served> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('--in-process measures RSS after a garbage collection: run node with --expose-gc');
  const paths = organismModelPaths();
  const [base, thinking] = [await Model.load(paths.base), await Model.load(paths.thinking)];
  const plain = { parallel, queue: clients * 2, library: new VectorLibrary([]) };
  const server = await startServer(
    [new PlainModel('base', 'base', base, plain), new PlainModel('thinking', 'thinking', thinking, plain)],
    { port: 0 },
  );
  return {
    url: server.url,
    models: ['base', 'thinking'],
    rss: () => {
      gc();
      return process.memoryUsage().rss / 2 ** 20;
    },
    stop: async () => {
      await server.close();
      base.free();
      thinking.free();
    },
  };
}

function childRssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) / 1024;
}

/** One greedy streamed chat request: its text, completion tokens, latency and time to first text. */
async function send(client: OpenAI, r: Request): Promise<Outcome> {
  const t0 = performance.now();
  let firstMs = Number.NaN;
  let text = '';
  let tokens = 0;
  const stream = await client.chat.completions.create({
    model: r.model,
    messages: [{ role: 'user', content: r.question }],
    temperature: 0,
    max_tokens: maxTokens,
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const c of stream) {
    const delta = c.choices[0]?.delta.content ?? '';
    if (delta && Number.isNaN(firstMs)) firstMs = performance.now() - t0;
    text += delta;
    if (c.usage) tokens = c.usage.completion_tokens;
  }
  return { text, tokens, ms: performance.now() - t0, firstMs };
}

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const round = (x: number, digits = 1) => Number(x.toFixed(digits));

/** The bad requests of issue 13: each must get a 4xx whose body says what is wrong. */
async function badRequests(url: string) {
  const post = async (body: string) => {
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const json = (await res.json().catch(() => ({}))) as { error?: { message?: string; code?: string } };
    return { status: res.status, code: json.error?.code ?? null, message: json.error?.message ?? null };
  };
  const cases: Record<string, string> = {
    'malformed JSON': '{"model": "base", "prompt": ',
    'unknown model': JSON.stringify({ model: 'gpt-4', prompt: 'hi' }),
    'negative max_tokens': JSON.stringify({ model: 'base', prompt: 'hi', max_tokens: -5 }),
    'a vector of the wrong width': JSON.stringify({
      model: 'base',
      prompt: 'hi',
      steering: { layer: 1, vector: [1, 2, 3] },
    }),
  };
  const out: Record<string, { status: number; code: string | null; message: string | null }> = {};
  for (const [name, body] of Object.entries(cases)) out[name] = await post(body);
  return out;
}

/** One concurrent round: every request, request i on client i mod --clients (each its own connection pool). */
async function concurrentRound(
  url: string,
): Promise<{ outcomes: (Outcome | null)[]; errors: string[]; seconds: number }> {
  const outcomes: (Outcome | null)[] = new Array(requests.length).fill(null);
  const errors: string[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const own = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 600_000 });
      for (let i = c; i < requests.length; i += clients) {
        try {
          outcomes[i] = await send(own, requests[i]);
        } catch (err) {
          errors.push(`request ${i}: ${(err as Error).message}`);
        }
      }
    }),
  );
  return { outcomes, errors, seconds: (performance.now() - t0) / 1000 };
}

async function main(): Promise<void> {
  const server = values['in-process'] ? await startInProcess() : await startChild();
  try {
    for (const m of models) {
      if (!server.models.includes(m)) throw new Error(`the server does not serve '${m}' (it serves ${server.models})`);
    }
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 600_000 });
    await send(client, requests[0]); // warm-up: first decodes allocate the contexts

    // 1. one at a time
    const t1 = performance.now();
    const alone: Outcome[] = [];
    for (const r of requests) alone.push(await send(client, r));
    const aloneS = (performance.now() - t1) / 1000;
    const rssBefore = server.rss();

    // 2. concurrent clients, request i on client i mod clients; --rounds times, RSS after each
    const rounds: { outcomes: (Outcome | null)[]; errors: string[]; seconds: number; rss: number }[] = [];
    for (let k = 0; k < roundsWanted; k++) rounds.push({ ...(await concurrentRound(server.url)), rss: server.rss() });
    const togetherS = rounds.reduce((s, r) => s + r.seconds, 0);
    const errors = rounds.flatMap((r) => r.errors);
    const done = rounds.flatMap((r) => r.outcomes.filter((o): o is Outcome => o !== null));
    const differing = rounds.flatMap((r) =>
      r.outcomes.map((o, i) => (o && o.text !== alone[i].text ? i : -1)).filter((i) => i >= 0),
    );
    const tokensAlone = alone.reduce((s, o) => s + o.tokens, 0);
    const tokensTogether = done.reduce((s, o) => s + o.tokens, 0);
    const [firstRss, lastRss] = [rounds[0].rss, rounds[rounds.length - 1].rss];
    const bad = await badRequests(server.url);
    const result = {
      note: 'one run on a shared 2-core machine (other jobs were running): compare the ratios, not the absolute numbers',
      config: {
        server: values['in-process'] ? 'in-process (RSS after a forced GC)' : 'child `thinkwhen serve`',
        clients,
        requests: total,
        rounds: roundsWanted,
        maxTokens,
        models,
        parallel,
        threads: process.env.THINKWHEN_THREADS ?? null,
      },
      errors: errors.length,
      errorSamples: errors.slice(0, 3),
      identical: differing.length === 0 && errors.length === 0,
      differing: differing.length,
      tokens: { oneClient: tokensAlone, concurrent: tokensTogether },
      tokensPerSecond: {
        oneClient: round(tokensAlone / aloneS),
        concurrent: round(tokensTogether / togetherS),
        ratio: round(tokensTogether / togetherS / (tokensAlone / aloneS), 2),
      },
      latencyMs: {
        oneClient: {
          p50: round(
            percentile(
              alone.map((o) => o.ms),
              50,
            ),
          ),
          p95: round(
            percentile(
              alone.map((o) => o.ms),
              95,
            ),
          ),
        },
        concurrent: {
          p50: round(
            percentile(
              done.map((o) => o.ms),
              50,
            ),
          ),
          p95: round(
            percentile(
              done.map((o) => o.ms),
              95,
            ),
          ),
        },
        concurrentFirstText: {
          p50: round(
            percentile(
              done.map((o) => o.firstMs),
              50,
            ),
          ),
          p95: round(
            percentile(
              done.map((o) => o.firstMs),
              95,
            ),
          ),
        },
      },
      seconds: { oneClient: round(aloneS), concurrentRounds: rounds.map((r) => round(r.seconds)) },
      serverRssMiB: {
        afterOneClient: round(rssBefore),
        afterEachRound: rounds.map((r) => round(r.rss)),
        /** from the first concurrent round (contexts allocated) to the last: what a leak would show */
        growthOverRounds: round((lastRss - firstRss) / firstRss, 4),
        growthFromOneClient: round((lastRss - rssBefore) / rssBefore, 4),
      },
      badRequests: bad,
    };
    const badOk = Object.values(bad).every((b) => b.status >= 400 && b.status < 500 && b.message);
    if (values.json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(
        `${clients} clients × ${total} requests × ${roundsWanted} rounds (${models.join(', ')}, ${maxTokens} tokens): ` +
          `${result.identical ? 'identical to one at a time' : `${differing.length} differ, ${errors.length} errors`}`,
      );
      console.log(
        `tokens/s: one client ${result.tokensPerSecond.oneClient}, concurrent ${result.tokensPerSecond.concurrent} (×${result.tokensPerSecond.ratio})`,
      );
      console.log(
        `latency ms: p50 ${result.latencyMs.concurrent.p50}, p95 ${result.latencyMs.concurrent.p95} (one client: ${result.latencyMs.oneClient.p50}, ${result.latencyMs.oneClient.p95})`,
      );
      console.log(
        `server RSS MiB: ${result.serverRssMiB.afterOneClient} (one client) → ${result.serverRssMiB.afterEachRound.join(' → ')} (rounds; ${(100 * result.serverRssMiB.growthOverRounds).toFixed(1)} % over the rounds)`,
      );
      for (const [name, b] of Object.entries(bad)) console.log(`${name}: ${b.status} ${b.code}: ${b.message}`);
    }
    if (!result.identical || !badOk) process.exitCode = 1;
  } finally {
    await server.stop();
  }
}

await main();
