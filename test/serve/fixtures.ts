// What the server tests run on: the shipped organism pair (real GGUFs, real llama.cpp) with a random
// SAE and random steering vectors for the hybrid (src/hybrid/synthetic.ts: the tests check the
// serving, not the vectors), served on a free port of 127.0.0.1.
import { Model } from '../../src/engine/index.ts';
import type { HybridOptions, HybridPair } from '../../src/hybrid/index.ts';
import { randomSae, randomVectors } from '../../src/hybrid/synthetic.ts';
import { generateProblems, organismModelPaths } from '../../src/organism/index.ts';
import { HybridModel } from '../../src/serve/hybrid.ts';
import { PlainModel, type ServedModel } from '../../src/serve/models.ts';
import { type RunningServer, type ServerOptions, startServer } from '../../src/serve/server.ts';
import { VectorLibrary } from '../../src/serve/steering.ts';

let loaded: Promise<{ base: Model; thinking: Model }> | null = null;

/** The organism's base and thinking models, loaded once per test file. */
export function organism(): Promise<{ base: Model; thinking: Model }> {
  loaded ??= (async () => {
    const p = organismModelPaths();
    return { base: await Model.load(p.base), thinking: await Model.load(p.thinking) };
  })();
  return loaded;
}

/** The organism with a random 6-latent SAE at layer 2 and random vectors at layer 2. */
export async function hybridPair(): Promise<HybridPair> {
  const { base, thinking } = await organism();
  return {
    base,
    thinking,
    sae: randomSae(128, 6, 3),
    saeLayer: 2,
    vectors: randomVectors(128, 2, 6, { biasNorm: 2, norm: 8 }),
  };
}

/** A small grid, so that a hybrid request takes a fraction of a second. */
export const HYBRID_DEFAULTS: HybridOptions = {
  policy: 'paper',
  grid: { coefficients: [0.5, 2], windows: [0, -1, -15] },
  speculate: 4,
};

export interface ServeOptions extends ServerOptions {
  parallel?: number;
  queue?: number;
  hybridParallel?: number;
  vectorDirs?: string[];
}

/** Starts a server with base, thinking and hybrid on a free port. */
export async function serve(o: ServeOptions = {}): Promise<RunningServer> {
  const { base, thinking } = await organism();
  const library = new VectorLibrary(o.vectorDirs ?? []);
  const plain = { parallel: o.parallel ?? 4, queue: o.queue ?? 16, library };
  const models: ServedModel[] = [
    new PlainModel('base', 'base', base, plain),
    new PlainModel('thinking', 'thinking', thinking, plain),
    new HybridModel('hybrid', await hybridPair(), {
      parallel: o.hybridParallel ?? 2,
      queue: o.queue ?? 16,
      basePrompt: 'chat',
      thinkingPrompt: 'chat',
      defaults: HYBRID_DEFAULTS,
    }),
  ];
  return startServer(models, { port: 0, ...o });
}

/** Organism questions (held-out split). */
// seed 79: the first two problems need a verification at their first step (the organism v2 pair disagrees only there)
export function questions(n: number, seed = 79): string[] {
  return generateProblems('test', n, seed).map((p) => p.question);
}

/** An error response (or any JSON body, read through the fields a test names). */
export interface ErrorJson {
  error: { message: string; type: string; param: string | null; code: string; fix: string };
  [key: string]: unknown;
}

/** A raw HTTP request: status, headers and parsed JSON (or text) body. */
export async function post(
  url: string,
  body: string | object,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; json: ErrorJson; text: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = {} as ErrorJson;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, json, text };
}
