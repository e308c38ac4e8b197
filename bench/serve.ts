// `thinkwhen serve` under load, as a user runs it: a child `thinkwhen serve` with its defaults (the
// shipped organism: base, thinking, hybrid), driven through the official `openai` client. One run:
//  1. one client: each of --distinct requests sent one at a time (greedy, streamed) → the reference
//     texts and the one-client tokens/s;
//  2. --clients concurrent streaming clients send --requests requests between them (request k is
//     distinct request k mod --distinct; each client takes the next k when its last one ends, so
//     --clients requests are in flight until the end) → zero errors, every text identical to its
//     one-at-a-time text, aggregate tokens/s (ratio to step 1; the same model mix), latency p50/p95
//     per model (whole request and first text);
//  3. the server's RSS (/proc/PID/status) each time another --block requests have ended: growth from
//     the first block (contexts allocated) to the last is what a leak would show. It includes garbage
//     V8 has not collected yet, so --in-process serves base and thinking from this process instead and
//     reads RSS after a forced GC (node --expose-gc);
//  4. bad requests (malformed JSON, unknown model, negative max_tokens, a vector of the wrong width)
//     each answered with a 4xx and a message.
// Exits 1 when an output differs, a request fails, or a bad request is not a 4xx.
//
// The default is the full load test of issue 13: 64 clients, 1,000 requests alternating between base
// and thinking, 64 tokens each (a few minutes on one shared core). --models base,thinking,hybrid puts
// the hybrid in the mix: it runs each request alone (--hybrid-parallel 2 at once), so it dominates the
// run (8–11 min on one shared core). --small is a quick check (8 clients, 48 requests):
//   THINKWHEN_THREADS=1 nice -n 10 node --import tsx bench/serve.ts --json > bench/results/serve.json
//   THINKWHEN_THREADS=1 nice -n 10 node --import tsx bench/serve.ts --models base,thinking,hybrid --json > bench/results/serve-hybrid.json
//   THINKWHEN_THREADS=1 nice -n 10 node --expose-gc --import tsx bench/serve.ts --in-process --json > bench/results/serve-in-process.json
//   THINKWHEN_THREADS=1 nice -n 15 node --import tsx bench/serve.ts --small
// Options: --clients 64 --requests 1000 --distinct 100 --block 100 --max-tokens 64 --models base,thinking
//   --parallel 8 (the server's --parallel)
import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { parseArgs } from 'node:util';
import OpenAI from 'openai';
import { Model } from '../src/engine/index.ts';
import { generateProblems, organismModelPaths } from '../src/organism/index.ts';
import { PlainModel } from '../src/serve/models.ts';
import { startServer } from '../src/serve/server.ts';
import { VectorLibrary } from '../src/serve/steering.ts';
import { startServeChild } from '../test/helpers/serve-child.ts';

const { values } = parseArgs({
  options: {
    small: { type: 'boolean', default: false },
    clients: { type: 'string' },
    requests: { type: 'string' },
    distinct: { type: 'string' },
    block: { type: 'string' },
    'max-tokens': { type: 'string', default: '64' },
    models: { type: 'string', default: 'base,thinking' },
    parallel: { type: 'string', default: '8' },
    'in-process': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const inProcess = values['in-process'];
const size = values.small
  ? { clients: '8', requests: '48', distinct: '12', block: '12' }
  : { clients: '64', requests: '1000', distinct: '100', block: '100' };
const positive = (name: string, v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: a positive integer was expected, got ${v}`);
  return n;
};
const clients = positive('clients', values.clients ?? size.clients);
const total = positive('requests', values.requests ?? size.requests);
const distinct = Math.min(total, positive('distinct', values.distinct ?? size.distinct));
const block = positive('block', values.block ?? size.block);
const maxTokens = positive('max-tokens', values['max-tokens']);
const parallel = positive('parallel', values.parallel);
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

const requests: Request[] = generateProblems('test', distinct, 17).map((p, i) => ({
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

/** Starts `thinkwhen serve --port 0` as a child process (its defaults otherwise: queue 64 per model). */
async function startChild(): Promise<Served> {
  const s = await startServeChild(['--parallel', String(parallel)], 120_000);
  for (const l of s.stderr().split('\n').filter(Boolean)) console.error(`[server] ${l}`);
  return {
    url: s.url,
    models: s.models.split(', '),
    rss: () => childRssMiB(s.child.pid!),
    stop: async () => {
      await s.stop();
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
  const plain = { parallel, queue: clients, library: new VectorLibrary([]) };
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

/** The environment that shapes the run: threads, and glibc's malloc settings (the server inherits them). */
function envSetting(): string {
  return Object.entries(process.env)
    .filter(([k]) => k === 'THINKWHEN_THREADS' || k.startsWith('MALLOC_'))
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(' ');
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
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const round = (x: number, digits = 1) => Number(x.toFixed(digits));
const p50p95 = (xs: number[]) => ({ p50: round(percentile(xs, 50)), p95: round(percentile(xs, 95)) });

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

interface Load {
  /** outcome of request k (distinct request k mod distinct), null when it failed */
  outcomes: (Outcome | null)[];
  errors: string[];
  seconds: number;
  /** the server's RSS each time another `block` requests had ended */
  rss: { ended: number; mib: number }[];
}

/** --requests requests from --clients concurrent clients (each its own connection pool), RSS per block. */
async function underLoad(server: Served): Promise<Load> {
  const outcomes: (Outcome | null)[] = new Array(total).fill(null);
  const errors: string[] = [];
  const rss: Load['rss'] = [];
  let next = 0;
  let ended = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      const own = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 600_000 });
      while (next < total) {
        const k = next++;
        try {
          outcomes[k] = await send(own, requests[k % distinct]);
        } catch (err) {
          errors.push(`request ${k}: ${(err as Error).message}`);
        }
        if (++ended % block === 0 || ended === total) rss.push({ ended, mib: round(server.rss()) });
      }
    }),
  );
  return { outcomes, errors, seconds: (performance.now() - t0) / 1000, rss };
}

async function main(): Promise<void> {
  const server = inProcess ? await startInProcess() : await startChild();
  try {
    for (const m of models) {
      if (!server.models.includes(m)) throw new Error(`the server does not serve '${m}' (it serves ${server.models})`);
    }
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 600_000 });
    for (const r of requests.slice(0, models.length)) await send(client, r); // warm-up: first decodes allocate

    // 1. one at a time
    const t1 = performance.now();
    const alone: Outcome[] = [];
    for (const r of requests) alone.push(await send(client, r));
    const aloneS = (performance.now() - t1) / 1000;
    const rssAlone = server.rss();

    // 2, 3. under load
    const load = await underLoad(server);
    const done = load.outcomes.flatMap((o, k) => (o ? [{ k, o }] : []));
    const differing = done.filter(({ k, o }) => o.text !== alone[k % distinct].text).map(({ k }) => k);
    // the same model mix on both sides: total is a multiple of distinct, or close to one
    const tokensAlone = alone.reduce((s, o) => s + o.tokens, 0);
    const tokensLoad = done.reduce((s, { o }) => s + o.tokens, 0);
    const perModel = Object.fromEntries(
      models.map((m) => {
        const mine = done.filter(({ k }) => requests[k % distinct].model === m).map(({ o }) => o);
        const mineAlone = alone.filter((_, i) => requests[i].model === m);
        return [
          m,
          {
            requests: mine.length,
            latencyMs: p50p95(mine.map((o) => o.ms)),
            firstTextMs: p50p95(mine.map((o) => o.firstMs)),
            oneClientLatencyMs: p50p95(mineAlone.map((o) => o.ms)),
          },
        ];
      }),
    );
    const [first, last] = [load.rss[0].mib, load.rss[load.rss.length - 1].mib];
    const bad = await badRequests(server.url);
    const result = {
      note: 'one run on a shared 2-core machine (other jobs were running): compare the ratios, not the absolute numbers',
      command: `${envSetting()} nice -n ${getPriority()} node ${process.execArgv.join(' ')} bench/serve.ts ${process.argv.slice(2).join(' ')}`,
      config: {
        server: inProcess ? 'in-process (RSS after a forced GC)' : 'child `thinkwhen serve` (its defaults)',
        clients,
        requests: total,
        distinct,
        block,
        maxTokens,
        models,
        parallel,
        threads: process.env.THINKWHEN_THREADS ?? null,
        nice: getPriority(),
      },
      errors: load.errors.length,
      errorSamples: load.errors.slice(0, 3),
      completed: done.length,
      identical: differing.length === 0 && load.errors.length === 0,
      differing: differing.length,
      tokens: { oneClient: tokensAlone, concurrent: tokensLoad },
      tokensPerSecond: {
        oneClient: round(tokensAlone / aloneS),
        concurrent: round(tokensLoad / load.seconds),
        ratio: round(tokensLoad / load.seconds / (tokensAlone / aloneS), 2),
      },
      perModel,
      seconds: { oneClient: round(aloneS), concurrent: round(load.seconds) },
      serverRssMiB: {
        afterOneClient: round(rssAlone),
        /** after each block of `block` ended requests under load */
        blocks: load.rss,
        /** first block (contexts allocated) → last block: what a leak would show */
        growthFirstToLastBlock: round((last - first) / first, 4),
        maxOverFirstBlock: round(Math.max(...load.rss.map((r) => r.mib)) / first - 1, 4),
      },
      badRequests: bad,
    };
    const badOk = Object.values(bad).every((b) => b.status >= 400 && b.status < 500 && b.message);
    if (values.json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(
        `${clients} clients, ${total} requests (${distinct} distinct; ${models.join(', ')}; ${maxTokens} tokens): ` +
          `${result.identical ? 'all identical to one at a time' : `${differing.length} differ, ${load.errors.length} errors`}`,
      );
      for (const e of result.errorSamples) console.log(`  ${e}`);
      console.log(
        `tokens/s: one client ${result.tokensPerSecond.oneClient}, ${clients} clients ${result.tokensPerSecond.concurrent} (×${result.tokensPerSecond.ratio})`,
      );
      for (const [m, s] of Object.entries(perModel)) {
        console.log(
          `${m}: latency ms p50 ${s.latencyMs.p50}, p95 ${s.latencyMs.p95}; first text p50 ${s.firstTextMs.p50}, p95 ${s.firstTextMs.p95} (one client: p50 ${s.oneClientLatencyMs.p50})`,
        );
      }
      console.log(
        `server RSS MiB: ${result.serverRssMiB.afterOneClient} (one client) → ${load.rss.map((r) => r.mib).join(' → ')} ` +
          `(per ${block} requests; ${(100 * result.serverRssMiB.growthFirstToLastBlock).toFixed(1)} % first to last block)`,
      );
      for (const [name, b] of Object.entries(bad)) console.log(`${name}: ${b.status} ${b.code}: ${b.message}`);
    }
    if (!result.identical || !badOk) process.exitCode = 1;
  } finally {
    await server.stop();
  }
}

await main();
