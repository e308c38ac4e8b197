/**
 * Candidate layers for sentence activations (docs/method.md §2.2) and the paper's per-model settings (§4).
 * Layers are 0-based decoder-block indices; the activation is the block's output (resid_post).
 */
import { basename } from 'node:path';
import { ThinkwhenError } from '../errors.ts';

export interface PaperPreset {
  name: string;
  /** The thinking model this preset belongs to. */
  model: string;
  nLayer: number;
  /** Candidate layers of `train-saes/run.sh`. */
  layers: number[];
  /** The (layer, K) chosen in `generate-responses/run_annotation.sh`. */
  saeLayer: number;
  k: number;
  /** Lower-case alphanumeric fragments that identify the model in its GGUF name or file name. */
  match: string[];
}

export const PAPER_PRESETS: PaperPreset[] = [
  {
    name: 'r1-qwen-1.5b',
    model: 'deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B',
    nLayer: 28,
    layers: [4, 8, 12, 16, 20, 24],
    saeLayer: 4,
    k: 15,
    match: ['distillqwen15b'],
  },
  {
    name: 'r1-llama-8b',
    model: 'deepseek-ai/DeepSeek-R1-Distill-Llama-8B',
    nLayer: 32,
    layers: [6, 10, 14, 18, 22, 26],
    saeLayer: 6,
    k: 15,
    match: ['distillllama8b'],
  },
  {
    name: 'r1-qwen-14b',
    model: 'deepseek-ai/DeepSeek-R1-Distill-Qwen-14B',
    nLayer: 48,
    layers: [8, 14, 20, 26, 32, 38],
    saeLayer: 38,
    k: 5,
    match: ['distillqwen14b'],
  },
  {
    name: 'r1-qwen-32b',
    model: 'deepseek-ai/DeepSeek-R1-Distill-Qwen-32B',
    nLayer: 64,
    layers: [9, 18, 27, 36, 45, 54],
    saeLayer: 27,
    k: 15,
    match: ['distillqwen32b'],
  },
  {
    name: 'qwq-32b',
    model: 'Qwen/QwQ-32B',
    nLayer: 64,
    layers: [9, 18, 27, 36, 45, 54],
    saeLayer: 27,
    k: 10,
    match: ['qwq32b'],
  },
  {
    name: 'r1-llama-70b',
    model: 'deepseek-ai/DeepSeek-R1-Distill-Llama-70B',
    nLayer: 80,
    layers: [11, 22, 33, 44, 55, 66],
    saeLayer: 11,
    k: 10,
    match: ['distillllama70b'],
  },
];

/**
 * `count` evenly spaced layers: round(i · nLayer / (count + 1)) for i = 1..count (for 28 layers this is
 * the paper's 4, 8, …, 24). A model with no more layers than `count` gets all of them.
 */
export function evenlySpacedLayers(nLayer: number, count = 6): number[] {
  if (!Number.isInteger(nLayer) || nLayer < 1) {
    throw new ThinkwhenError('bad-model', `a model needs at least one layer, got ${nLayer}`);
  }
  if (nLayer <= count) return Array.from({ length: nLayer }, (_, i) => i);
  const out = new Set<number>();
  for (let i = 1; i <= count; i++) out.add(Math.min(nLayer - 1, Math.round((i * nLayer) / (count + 1))));
  return [...out].sort((a, b) => a - b);
}

const squash = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');

/** The paper's preset for a model, recognised from its GGUF name or file name and its depth. */
export function detectPreset(info: { name: string; path: string; nLayer: number }): PaperPreset | null {
  const hay = `${squash(info.name)} ${squash(basename(info.path))}`;
  return PAPER_PRESETS.find((p) => p.nLayer === info.nLayer && p.match.some((m) => hay.includes(m))) ?? null;
}

/** Every layer must be an integer in 0..nLayer−1; returns them sorted and deduplicated. */
export function checkLayers(layers: readonly number[], nLayer: number): number[] {
  if (layers.length === 0) {
    throw new ThinkwhenError('bad-layers', 'no layers given', `pass layers between 0 and ${nLayer - 1}`);
  }
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= nLayer) {
      throw new ThinkwhenError(
        'layer-out-of-range',
        `layer ${l} is out of range: this model has ${nLayer} layers (0..${nLayer - 1})`,
        `pick layers between 0 and ${nLayer - 1} (or leave --layers out for six evenly spaced ones)`,
      );
    }
  }
  return [...new Set(layers)].sort((a, b) => a - b);
}

/**
 * Resolve a `--layers` value against a model:
 *  - undefined / 'even' / 'even:N': N (6) evenly spaced layers;
 *  - 'paper': the paper's list for this model (error when the model is not one of the paper's);
 *  - 'preset:NAME': a named paper preset (its depth must match the model);
 *  - '4,8,12': an explicit list.
 */
export function resolveLayers(
  spec: string | undefined,
  info: { name: string; path: string; nLayer: number },
): number[] {
  const s = (spec ?? 'even').trim();
  if (s === 'even' || s.startsWith('even:')) {
    const count = s === 'even' ? 6 : Number(s.slice(5));
    if (!Number.isInteger(count) || count < 1) {
      throw new ThinkwhenError('bad-layers', `bad layer count in "${s}"`, 'use even:N with N ≥ 1');
    }
    return evenlySpacedLayers(info.nLayer, count);
  }
  if (s === 'paper' || s.startsWith('preset:')) {
    const preset = s === 'paper' ? detectPreset(info) : (PAPER_PRESETS.find((p) => p.name === s.slice(7)) ?? null);
    if (!preset) {
      throw new ThinkwhenError(
        'no-preset',
        s === 'paper'
          ? `${info.name || basename(info.path)} (${info.nLayer} layers) is not one of the paper's thinking models`
          : `unknown preset "${s.slice(7)}"`,
        `use one of ${PAPER_PRESETS.map((p) => `preset:${p.name}`).join(', ')}, 'even', or an explicit list`,
      );
    }
    return checkLayers(preset.layers, info.nLayer);
  }
  const parts = s.split(',').map((x) => x.trim());
  const layers = parts.map((x) => {
    if (!/^-?\d+$/.test(x)) {
      throw new ThinkwhenError(
        'bad-layers',
        `"${x}" is not a layer number`,
        "pass a comma-separated list such as 4,8,12, 'even', 'even:N', 'paper' or 'preset:NAME'",
      );
    }
    return Number(x);
  });
  return checkLayers(layers, info.nLayer);
}
