// `vectors eval`: what does each vector do? At the held-out example prompts of a latent (text
// that, in the thinking model's trace, is followed by a sentence of that latent), the base model is
// steered with c·(bias + v) at the apply site, at every position of the prompt (the hybrid's window
// 0), for every c of a sweep, and continues greedily; the first sentence of the continuation is
// labelled by a caller-given labeller (the organism: its parser's type; real models: the thinking
// model's SAE reading). By default the vector picks only the first token and the base model writes
// the rest unsteered, as in the hybrid, where a vector steers the one token being chosen and is
// not persisted (`window: 'all'` keeps it on every generated position too). Controls at the same
// c: bias only, a random vector of the same norm as v (with and without the bias), and the
// unsteered model. rate_* = the fraction of prompts whose next sentence has the latent's label.
// Generation runs inside a KV-cached decode with explicit hooks, so every steered row really is
// steered (the paper's flip-rate script steered nothing, method.md §2.9).
import { type Context, type GenerationHook, generate, type Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { Rng } from '../rng.ts';
import { splitForAnnotation } from '../traces/sentences.ts';
import type { StoredExample } from './train.ts';
import { type VectorSet, vectorNorm } from './vector-set.ts';

export type Condition = 'vector' | 'bias' | 'random' | 'random_bias';
export type SteerWindow = 'decision' | 'all';

export interface SweepPoint {
  coef: number;
  vector: number;
  bias: number | null;
  random: number;
  random_bias: number | null;
}

export interface CategoryEval {
  latent: number;
  title: string;
  /** the label the latent's sentences mostly have (the target of the rates) */
  type: string | null;
  n: number;
  best_coef: number;
  rate_vector: number;
  rate_bias: number | null;
  rate_random: number;
  rate_random_bias: number | null;
  rate_unsteered: number;
  sweep: SweepPoint[];
  /** a few continuations at best_coef, for reading */
  samples: Array<{ prompt_tail: string; unsteered: string; steered: string }>;
}

export interface VectorEvalResult {
  method: string;
  window: SteerWindow;
  layer: number;
  apply_site: string;
  coefs: number[];
  categories: CategoryEval[];
  /** latents of the set without a vector, with the reason */
  skipped: Array<{ latent: number; title: string; reason: string }>;
  seconds: number;
}

export interface VectorEvalOptions {
  model: Model;
  set: VectorSet;
  /** the set's held-out examples (examples.jsonl rows with split 'heldout') */
  examples: readonly StoredExample[];
  /** the label a latent's sentences mostly have */
  targetLabel: (latent: number) => string | null;
  /** labels of continuation sentences (null: unlabelled) */
  label: (items: Array<{ example: StoredExample; sentence: string }>) => Promise<Array<string | null>>;
  coefs: number[];
  /** tokens generated per continuation (enough for one sentence); default 48 */
  maxTokens?: number;
  /** 'decision' (default): the vector picks the first token only; 'all': it stays on every position */
  window?: SteerWindow;
  /** stop strings that end a sentence early (a saving only: the first sentence is taken either way) */
  stop?: string[];
  /** at most this many prompts per latent (default all) */
  limit?: number;
  /** the random control's seed */
  seed?: number;
  addSpecial?: boolean;
  threads?: number;
  /** sequences decoded together (default 16) */
  parallel?: number;
  onProgress?: (line: string) => void;
}

/** The first sentence of a continuation (the annotation splitter's first piece). */
export function firstSentence(text: string): string {
  return splitForAnnotation(text)[0]?.text ?? '';
}

function randomLike(v: Float32Array, seed: number): Float32Array {
  const rng = new Rng(seed);
  const r = Float32Array.from(v, () => rng.normal());
  const k = vectorNorm(v) / vectorNorm(r);
  return r.map((x) => x * k);
}

function scaled(coef: number, ...vs: Array<Float32Array | null>): Float32Array {
  const n = vs.find((v) => v)!.length;
  const out = new Float32Array(n);
  for (const v of vs) if (v) for (let i = 0; i < n; i++) out[i] += coef * v[i];
  return out;
}

/**
 * Greedy continuations. 'decision': one steered forward over the prompt picks the first token, and
 * the base model continues unsteered from there (how the hybrid uses a vector: for the one token
 * it is asked to choose, never persisted). 'all': the vector stays on every position, prompt and
 * generated. `rests` memoises the unsteered continuation of (prompt index, first token): greedy
 * decoding makes it the same whatever steered the first token, and most conditions pick the same
 * first tokens, so each is decoded once per latent.
 */
async function continuations(
  ctx: Context,
  prompts: Int32Array[],
  hook: string,
  delta: Float32Array | null,
  o: { maxTokens: number; parallel: number; window: SteerWindow; stop?: string[]; rests: Map<string, number[]> },
): Promise<string[]> {
  const model = ctx.model;
  const out: string[] = [];
  const hooks: GenerationHook[] = delta ? [{ hook, add: () => delta }] : [];
  for (let i = 0; i < prompts.length; i += o.parallel) {
    const batch = prompts.slice(i, i + o.parallel);
    if (o.window === 'all' || !delta) {
      const res = await generate(
        ctx,
        batch.map((prompt) => ({ prompt, maxTokens: o.maxTokens, stop: o.stop })),
        { hooks },
      );
      for (const r of res) out.push(r.text);
      continue;
    }
    const first = await generate(
      ctx,
      batch.map((prompt) => ({ prompt, maxTokens: 1 })),
      { hooks },
    );
    const keys = first.map((f, k) => `${i + k}:${f.tokens.join(',')}`);
    const todo = [...new Set(keys)].filter((key) => !o.rests.has(key));
    const rest =
      todo.length === 0
        ? []
        : await generate(
            ctx,
            todo.map((key) => {
              const k = keys.indexOf(key);
              return {
                prompt: Int32Array.from([...batch[k], ...first[k].tokens]),
                maxTokens: o.maxTokens - 1,
                stop: o.stop,
              };
            }),
          );
    todo.forEach((key, j) => {
      o.rests.set(key, [...rest[j].tokens]);
    });
    first.forEach((f, k) => {
      out.push(model.detokenize([...f.tokens, ...(o.rests.get(keys[k]) ?? [])]));
    });
  }
  return out;
}

export async function evaluateVectors(o: VectorEvalOptions): Promise<VectorEvalResult> {
  const t0 = performance.now();
  const { model, set } = o;
  const log = o.onProgress ?? (() => {});
  if (o.coefs.length === 0 || o.coefs.some((c) => !Number.isFinite(c))) {
    throw new ThinkwhenError('BAD_COEFS', `coefficients must be finite numbers, got [${o.coefs.join(', ')}]`);
  }
  const coefs = [...new Set(o.coefs)].sort((a, b) => a - b); // ascending: ties go to the smaller c
  const maxTokens = o.maxTokens ?? 48;
  const window = o.window ?? 'decision';
  const parallel = o.parallel ?? 16;
  const addSpecial = o.addSpecial ?? true;
  const byLatent = new Map<number, StoredExample[]>();
  for (const e of o.examples) {
    if (e.split !== 'heldout' || !set.vectors.has(e.latent)) continue;
    const list = byLatent.get(e.latent) ?? [];
    if (list.length < (o.limit ?? Number.POSITIVE_INFINITY)) list.push(e);
    byLatent.set(e.latent, list);
  }
  const tokenized = [...byLatent.values()].flat().map((e) => model.tokenize(e.prompt, { addSpecial }));
  const longest = Math.max(1, ...tokenized.map((t) => t.length));
  const ctx = model.createContext({
    nCtx: Math.min(parallel, Math.max(1, tokenized.length)) * (longest + maxTokens + 1),
    nBatch: 512,
    nSeqMax: parallel,
    threads: o.threads,
  });
  const categories: CategoryEval[] = [];
  // a vector with no held-out prompt cannot be measured: it gets a row in `skipped`, with why
  const unmeasured: Array<{ latent: number; title: string; reason: string }> = [];
  try {
    for (const [latent, v] of [...set.vectors].sort((a, b) => a[0] - b[0])) {
      const examples = byLatent.get(latent) ?? [];
      const title = set.titles.get(latent) ?? `latent ${latent}`;
      const type = o.targetLabel(latent);
      if (examples.length === 0) {
        log(`vectors eval: latent ${latent} has no held-out example; not evaluated`);
        unmeasured.push({ latent, title, reason: 'a vector, but no held-out example to evaluate it on' });
        continue;
      }
      const prompts = examples.map((e) => model.tokenize(e.prompt, { addSpecial }));
      const rests = new Map<string, number[]>();
      const rateOf = async (delta: Float32Array | null) => {
        const texts = await continuations(ctx, prompts, set.applyHook, delta, {
          maxTokens,
          parallel,
          window,
          stop: o.stop,
          rests,
        });
        const sentences = texts.map(firstSentence);
        const labels = await o.label(examples.map((example, i) => ({ example, sentence: sentences[i] })));
        const hits = labels.filter((l) => l !== null && l === type).length;
        return { rate: hits / examples.length, sentences };
      };
      const random = randomLike(v, (o.seed ?? 0) * 1000003 + latent);
      const unsteered = await rateOf(null);
      const sweep: SweepPoint[] = [];
      const steeredAt: string[][] = [];
      for (const c of coefs) {
        const vec = await rateOf(scaled(c, set.bias, v));
        steeredAt.push(vec.sentences);
        sweep.push({
          coef: c,
          vector: vec.rate,
          bias: set.bias ? (await rateOf(scaled(c, set.bias))).rate : null,
          random: (await rateOf(scaled(c, random))).rate,
          random_bias: set.bias ? (await rateOf(scaled(c, set.bias, random))).rate : null,
        });
        log(
          `vectors eval: latent ${latent} (${type ?? 'no label'}) c=${c}: vector ${sweep.at(-1)!.vector.toFixed(3)}, random ${sweep.at(-1)!.random.toFixed(3)}`,
        );
      }
      let best = 0;
      sweep.forEach((p, i) => {
        if (p.vector > sweep[best].vector) best = i;
      });
      const b = sweep[best];
      categories.push({
        latent,
        title,
        type,
        n: examples.length,
        best_coef: b.coef,
        rate_vector: b.vector,
        rate_bias: b.bias,
        rate_random: b.random,
        rate_random_bias: b.random_bias,
        rate_unsteered: unsteered.rate,
        sweep,
        samples: examples.slice(0, 3).map((e, i) => ({
          prompt_tail: e.prompt.slice(-80),
          unsteered: unsteered.sentences[i],
          steered: steeredAt[best][i],
        })),
      });
    }
  } finally {
    ctx.free();
  }
  return {
    method: set.manifest.method,
    window,
    layer: set.layer,
    apply_site: set.applyHook,
    coefs,
    categories,
    skipped: [
      ...[...set.skipped].map(([latent, reason]) => ({
        latent,
        title: set.titles.get(latent) ?? `latent ${latent}`,
        reason,
      })),
      ...unmeasured,
    ].sort((a, b) => a.latent - b.latent),
    seconds: (performance.now() - t0) / 1000,
  };
}
