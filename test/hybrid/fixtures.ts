// Pairs the hybrid tests run on: the shipped organism (one vocabulary) and two tiny random models
// with different tokenizers (a small SPM vocabulary and the real Qwen2 BPE one). The SAE and the
// steering vectors are random (synthetic.ts): the tests check the algorithm, not the vectors — except
// where a test needs steering that changes the organism's tokens (shippedOrganismPair).
import { Model } from '../../src/engine/index.ts';
import { resolveSae } from '../../src/experiments/hybrid.ts';
import { type PromptSpec, promptIds } from '../../src/experiments/prompts.ts';
import type { HybridPair, HybridProblem } from '../../src/hybrid/index.ts';
import { randomSae, randomVectors } from '../../src/hybrid/synthetic.ts';
import { organismArtifactPaths } from '../../src/organism/artifacts.ts';
import { generateProblems, organismModelPaths } from '../../src/organism/index.ts';
import { loadVectorSet } from '../../src/steer/vector-set.ts';
import { tinyLlama, tinyQwen2 } from '../helpers/models.ts';

let organism: Promise<{ base: Model; thinking: Model }> | null = null;

/** The organism with a random 6-latent SAE at layer 2 and random vectors at layer 2. */
export async function organismPair(overrides: Partial<HybridPair> = {}): Promise<HybridPair> {
  organism ??= (async () => {
    const p = organismModelPaths();
    return { base: await Model.load(p.base), thinking: await Model.load(p.thinking) };
  })();
  const { base, thinking } = await organism;
  return {
    base,
    thinking,
    sae: randomSae(128, 6, 3),
    saeLayer: 2,
    vectors: randomVectors(128, 2, 6, { biasNorm: 2, norm: 8 }),
    ...overrides,
  };
}

/** The organism pair with its shipped SAE and vectors: steering that changes the tokens the v2 pair disagrees on. */
export async function shippedOrganismPair(): Promise<HybridPair> {
  const pair = await organismPair();
  const dir = organismArtifactPaths().vectors;
  const sae = await resolveSae({ vectors: dir });
  return { ...pair, sae: sae.sae, saeLayer: sae.layer, vectors: await loadVectorSet(dir, pair.base) };
}

/** Problems with prompts encoded for a pair (`promptIds` of src/experiments/prompts.ts, as the CLI does). */
export function encodeProblems(
  pair: Pick<HybridPair, 'base' | 'thinking'>,
  questions: { id: string; question: string }[],
  spec: { base: PromptSpec; thinking: PromptSpec } = { base: 'paper', thinking: 'chat' },
): HybridProblem[] {
  return questions.map((q) => ({
    id: q.id,
    prompt: {
      base: promptIds(pair.base, spec.base, q.question),
      thinking: promptIds(pair.thinking, spec.thinking, q.question),
    },
  }));
}

/** Organism problems; both organism models speak ChatML: their own chat prompt on both sides. */
// seed 79: the first two problems need a verification at their first step (the organism v2 pair disagrees only there)
export function organismProblems(pair: HybridPair, n: number, seed = 79): HybridProblem[] {
  const qs = generateProblems('test', n, seed).map((p, i) => ({ id: `org-${seed}-${i}`, question: p.question }));
  return encodeProblems(pair, qs, { base: 'chat', thinking: 'chat' });
}

let cross: Promise<{ base: Model; thinking: Model }> | null = null;

/** Base: tiny llama with a small SPM vocabulary; thinking: tiny qwen2 with the Qwen2 BPE vocabulary. */
export async function crossTokenizerPair(): Promise<HybridPair> {
  cross ??= (async () => ({ base: await Model.load(tinyLlama()), thinking: await Model.load(tinyQwen2()) }))();
  const { base, thinking } = await cross;
  return {
    base,
    thinking,
    sae: randomSae(thinking.info.nEmbd, 4, 9),
    saeLayer: 1,
    vectors: randomVectors(base.info.nEmbd, 1, 4, { biasNorm: 1, norm: 6 }),
  };
}
