// The paper's per-pair steering settings (method.md §4): steering layer of the base model and the
// minibatch of the bias and category vectors. A model without a preset gets the paper's depth
// fraction (layer = floor(0.375 · n_layer), which reproduces all four paper layers) and minibatch 2.
import { basename } from 'node:path';

export interface VectorPreset {
  name: string;
  base: string;
  thinking: string;
  nLayer: number;
  layer: number;
  batchBias: number;
  batchCategory: number;
  /** lower-case alphanumeric fragments of the GGUF name or file name */
  match: string[];
}

export const VECTOR_PRESETS: VectorPreset[] = [
  {
    name: 'qwen2.5-math-1.5b',
    base: 'Qwen/Qwen2.5-Math-1.5B',
    thinking: 'deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B',
    nLayer: 28,
    layer: 10,
    batchBias: 3,
    batchCategory: 3,
    match: ['qwen25math15b'],
  },
  {
    name: 'llama-3.1-8b',
    base: 'meta-llama/Llama-3.1-8B',
    thinking: 'deepseek-ai/DeepSeek-R1-Distill-Llama-8B',
    nLayer: 32,
    layer: 12,
    batchBias: 4,
    batchCategory: 4,
    match: ['llama318b'],
  },
  {
    name: 'qwen2.5-14b',
    base: 'Qwen/Qwen2.5-14B',
    thinking: 'deepseek-ai/DeepSeek-R1-Distill-Qwen-14B',
    nLayer: 48,
    layer: 18,
    batchBias: 2,
    batchCategory: 4,
    match: ['qwen2514b'],
  },
  {
    // The hyperparameter JSON of the run (2 / 1); the run script says 4 / 4 (method.md A9).
    name: 'qwen2.5-32b',
    base: 'Qwen/Qwen2.5-32B',
    thinking: 'deepseek-ai/DeepSeek-R1-Distill-Qwen-32B',
    nLayer: 64,
    layer: 24,
    batchBias: 2,
    batchCategory: 1,
    match: ['qwen2532b'],
  },
  {
    name: 'qwen2.5-32b-qwq',
    base: 'Qwen/Qwen2.5-32B',
    thinking: 'Qwen/QwQ-32B',
    nLayer: 64,
    layer: 24,
    batchBias: 1,
    batchCategory: 1,
    match: [],
  },
];

const squash = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');

/** The preset of a base model, recognised from its GGUF name or file name and its depth. */
export function detectVectorPreset(info: { name: string; path: string; nLayer: number }): VectorPreset | null {
  const hay = `${squash(info.name)} ${squash(basename(info.path))}`;
  return VECTOR_PRESETS.find((p) => p.nLayer === info.nLayer && p.match.some((m) => hay.includes(m))) ?? null;
}

/** The paper's steering layers are 0.357–0.375 of the depth; floor(0.375 n) gives all four exactly. */
export function defaultSteerLayer(nLayer: number): number {
  return Math.max(1, Math.floor(0.375 * nLayer));
}
