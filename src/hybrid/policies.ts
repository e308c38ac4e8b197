// What the hybrid does at a disagreement, per policy (docs/hybrid.md "Policies"):
//   paper          c·(bias + v_k) over the grid, k = SAE argmax, guardrail picks        (§2.7)
//   only_bias      c·bias over the grid                                                 (§2.8 ablation)
//   random_firing  k drawn uniformly from the latents that have vectors                 (§2.8 ablation)
//   random_vectors v_k replaced by a fixed random unit vector, bias kept                (§2.8 ablation)
//   norm_random    v_k replaced by a fixed random vector of ‖v_k‖, bias kept
//   selection_only no steering: the guardrail picks among the base model's top-N tokens (N = grid size)
//   pure_steering  no guardrail: one coefficient and window, the steered base token is emitted
//   oracle         the thinking model's greedy token is emitted (upper bound)
import { checkVector, hookTensor } from '../engine/hooks.ts';
import { ThinkwhenError } from '../errors.ts';
import { Rng } from '../rng.ts';
import { argmaxRows } from '../taxonomy/sae.ts';
import type { HybridPair, PolicyName, ResolvedOptions } from './options.ts';

export type PolicyKind = 'grid' | 'selection' | 'pure' | 'oracle';

export interface Steering {
  /** the bias part (null: none) and the category part (null: none) that the coefficient scales */
  bias: Float32Array | null;
  category: Float32Array | null;
  /** what the record names as applied */
  vector: string;
  /** the latent has no vector and c·bias stands in for it (missingVector 'bias') */
  missing: boolean;
}

export interface Policy {
  name: PolicyName;
  kind: PolicyKind;
  /** the hook the base model is steered at */
  hook: string;
  /** number of candidates the guardrail weighs (grid size; selection_only: top-N) */
  candidates: number;
  /** category of a disagreement step: SAE argmax of z, or a draw from `rng` (random_firing) */
  latent(z: Float32Array, rng: Rng): number;
  /** the steering for a latent (not for selection_only / oracle) */
  steering(latent: number): Steering;
  /** c·(bias + category vector) for a latent, cached */
  addVector(latent: number, coefficient: number): Float32Array;
  /** names what a latent steers with: latents that steer with the same vector share one name */
  vectorKey(latent: number): string;
}

const usesCategoryVectors = (p: PolicyName) =>
  p === 'paper' || p === 'random_vectors' || p === 'norm_random' || p === 'pure_steering';

function kindOf(p: PolicyName): PolicyKind {
  if (p === 'selection_only') return 'selection';
  if (p === 'pure_steering') return 'pure';
  if (p === 'oracle') return 'oracle';
  return 'grid';
}

/** FNV-1a of a string, for per-problem seeds that do not depend on batching or order. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The random stream of random_firing for one (problem, sample). */
export function problemRng(seed: number, problemId: string, sample = 0): Rng {
  const key = sample === 0 ? problemId : `${problemId}\u0000${sample}`;
  return new Rng((Math.imul(seed >>> 0, 0x9e3779b1) ^ hashString(key)) >>> 0);
}

function randomVector(n: number, seed: number, norm: number): Float32Array {
  const rng = new Rng(seed);
  const v = new Float64Array(n);
  let sq = 0;
  for (let i = 0; i < n; i++) {
    v[i] = rng.normal();
    sq += v[i] * v[i];
  }
  const s = norm / Math.sqrt(sq);
  return Float32Array.from(v, (x) => x * s);
}

function vectorNorm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

const bad = (msg: string, fix?: string) => new ThinkwhenError('BAD_HYBRID_PAIR', msg, fix);

/** Checks the pair against the policy and builds it. Anything ambiguous fails here, before any decode. */
export function makePolicy(pair: HybridPair, opts: ResolvedOptions): Policy {
  const { base, thinking, sae, saeLayer, vectors } = pair;
  const name = opts.policy;
  const nEmbd = base.info.nEmbd;
  if (sae.dim !== thinking.info.nEmbd) {
    throw bad(
      `the SAE reads ${sae.dim}-dimensional activations but the thinking model's residual stream has ${thinking.info.nEmbd}`,
      'use the SAE trained on this thinking model',
    );
  }
  if (!Number.isInteger(saeLayer) || saeLayer < 0 || saeLayer >= thinking.info.nLayer) {
    throw bad(
      `SAE layer ${saeLayer} is not a layer of the ${thinking.info.nLayer}-layer thinking model`,
      `give the layer the SAE was trained on (--sae-layer 0..${thinking.info.nLayer - 1}), or the SAE of this thinking model`,
    );
  }
  hookTensor(vectors.applyHook, base.info.nLayer); // throws on a bad hook or layer
  const files = new Map((vectors.manifest?.categories ?? []).map((c) => [c.latent, c.file]));
  const biasFile = vectors.manifest?.bias?.file ?? 'bias';
  if (vectors.bias) checkVector(vectors.bias, nEmbd, 'the bias vector');
  for (const [k, v] of vectors.vectors) checkVector(v, nEmbd, `the vector of latent ${k}`);
  for (const k of vectors.vectors.keys()) {
    if (!Number.isInteger(k) || k < 0 || k >= sae.latents) {
      throw bad(
        `the vector set has a vector for latent ${k}, but the SAE has latents 0..${sae.latents - 1}`,
        'use the vectors trained for this SAE',
      );
    }
  }
  if (name === 'only_bias' && !vectors.bias) {
    throw bad(
      'policy only_bias needs a bias vector, and the vector set has none',
      'train the set with its bias vector',
    );
  }
  if (name === 'random_firing' && vectors.vectors.size === 0) {
    throw bad('policy random_firing needs category vectors, and the vector set has none', 'train the category vectors');
  }
  if (usesCategoryVectors(name)) {
    const missing = [...Array(sae.latents).keys()].filter((k) => !vectors.vectors.has(k));
    if (missing.length && opts.missingVector === 'error') {
      const why = missing.map((k) => `${k}${vectors.skipped.has(k) ? ` (${vectors.skipped.get(k)})` : ''}`).join(', ');
      throw bad(
        `the SAE can pick latent(s) ${why}, which have no steering vector`,
        "train the missing vectors, or pass missingVector 'bias' (--missing-vector bias) to steer those tokens with c·bias alone, marked in the record",
      );
    }
    if (missing.length && !vectors.bias) {
      throw bad(
        `latent(s) ${missing.join(', ')} have no vector and the set has no bias to fall back to`,
        'train the missing vectors (or the bias vector)',
      );
    }
  }

  const biasPart = vectors.bias ? `${biasFile} + ` : '';
  const steerings = new Map<number, Steering>();
  const steering = (k: number): Steering => {
    let s = steerings.get(k);
    if (s) return s;
    const v = vectors.vectors.get(k) ?? null;
    if (name === 'only_bias' || (usesCategoryVectors(name) && !v)) {
      s = {
        bias: vectors.bias,
        category: null,
        vector: v || name === 'only_bias' ? biasFile : `${biasFile} (latent ${k} has no vector)`,
        missing: !v && name !== 'only_bias',
      };
    } else if (name === 'random_vectors' || name === 'norm_random') {
      const norm = name === 'random_vectors' ? 1 : vectorNorm(v!);
      const r = randomVector(nEmbd, (Math.imul(opts.seed >>> 0, 0x85ebca6b) ^ (k + 1)) >>> 0, norm);
      s = {
        bias: vectors.bias,
        category: r,
        vector: `${biasPart}${name === 'random_vectors' ? 'random unit vector' : `random vector of norm ${norm.toPrecision(4)}`} (seed ${opts.seed}, latent ${k})`,
        missing: false,
      };
    } else if (name === 'selection_only' || name === 'oracle') {
      s = { bias: null, category: null, vector: 'none', missing: false };
    } else {
      s = { bias: vectors.bias, category: v, vector: `${biasPart}${files.get(k) ?? `latent ${k}`}`, missing: false };
    }
    steerings.set(k, s);
    return s;
  };
  const scaled = new Map<string, Float32Array>();
  const available = [...vectors.vectors.keys()].sort((a, b) => a - b);
  const gridSize = opts.grid.coefficients.length * opts.grid.windows.length;
  return {
    name,
    kind: kindOf(name),
    hook: vectors.applyHook,
    candidates: kindOf(name) === 'pure' ? 1 : gridSize,
    latent(z, rng) {
      if (name === 'random_firing') return available[rng.int(available.length)];
      return argmaxRows(z, z.length)[0];
    },
    steering,
    vectorKey(k) {
      return steering(k).category ? `latent ${k}` : 'bias';
    },
    addVector(k, c) {
      const key = `${k}:${c}`;
      let v = scaled.get(key);
      if (!v) {
        v = scale(steering(k), c, nEmbd);
        scaled.set(key, v);
      }
      return v;
    },
  };
}

/**
 * c·(bias + v) as llama.cpp sums scaled control vectors (c·bias, then + c·v, in float32), so that
 * the hook and `--control-vector-scaled` give the same bits (src/steer/vector-set.ts steeringDelta).
 */
function scale(s: Steering, c: number, n: number): Float32Array {
  const out = new Float32Array(n);
  const cf = Math.fround(c);
  if (s.bias) for (let i = 0; i < n; i++) out[i] = Math.fround(cf * s.bias[i]);
  if (s.category) for (let i = 0; i < n; i++) out[i] = Math.fround(out[i] + Math.fround(cf * s.category[i]));
  return out;
}

/** The positions a window steers in a sequence of n tokens: [from, n). */
export function windowStart(window: number, n: number): number {
  return window === 0 ? 0 : Math.max(0, n + window);
}
