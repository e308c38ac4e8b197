// Stage 3 (docs/method.md §2.3): a Top-K SAE for every layer × K of a sentence-activation store, saved as
// `<dir>/sae/sae_layer{L}_k{K}[_seed{S}].{safetensors,json}`. Trained ones are kept, so a rerun resumes.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ThinkwhenError } from '../errors.ts';
import { readManifest } from './activation-store.ts';
import { type LayerData, loadLayer } from './layer-data.ts';
import { DEFAULT_LATENT_COUNTS, saveSae, trainTopKSae } from './sae.ts';

export interface TrainOptions {
  /** Layers of the store to use (default: all captured). */
  layers?: number[];
  /** Latent counts K (default 5…50 step 5). */
  ks?: number[];
  seed?: number;
  topK?: number;
  maxEpochs?: number;
  patience?: number;
  threads?: number;
  /** Extra seeds trained per (layer, K) for the stability metric (default none). */
  stabilitySeeds?: number[];
  /** The model's width, when known (checked against the store). */
  expectedDim?: number;
  onProgress?: (line: string) => void;
}

export const saeBase = (dir: string, layer: number, k: number, seed?: number) =>
  join(dir, 'sae', `sae_layer${layer}_k${k}${seed === undefined ? '' : `_seed${seed}`}`);

export interface TrainedEntry {
  layer: number;
  k: number;
  path: string;
  /** Paths of the extra-seed SAEs. */
  stabilityPaths: string[];
}

/** Check K values: integers ≥ top-k (3). */
export function checkKs(ks: readonly number[], topK = 3): number[] {
  if (ks.length === 0) throw new ThinkwhenError('bad-k', 'no latent counts given', 'pass --k 5,10,15 or leave it out');
  for (const k of ks) {
    if (!Number.isInteger(k) || k < topK) {
      throw new ThinkwhenError(
        'bad-k',
        `latent count ${k} is not an integer ≥ ${topK} (the SAE keeps the top ${topK} latents)`,
        `use K values of at least ${topK}`,
      );
    }
  }
  return [...new Set(ks)].sort((a, b) => a - b);
}

async function storeLayers(activations: string, requested: number[] | undefined): Promise<number[]> {
  const manifest = await readManifest(activations);
  if (!requested) return manifest.layers;
  for (const l of requested) {
    if (!manifest.layers.includes(l)) {
      throw new ThinkwhenError(
        'layer-out-of-range',
        `layer ${l} was not captured in ${activations} (captured: ${manifest.layers.join(', ')})`,
        'pick captured layers, or capture this one with thinkwhen activations --layers',
      );
    }
  }
  return requested;
}

/** Train every missing SAE of the grid into `<dir>/sae`. */
export async function trainTaxonomyGrid(
  activations: string,
  dir: string,
  options: TrainOptions = {},
): Promise<TrainedEntry[]> {
  const layers = await storeLayers(activations, options.layers);
  const ks = checkKs(options.ks ?? DEFAULT_LATENT_COUNTS, options.topK ?? 3);
  const seed = options.seed ?? 0;
  const extra = options.stabilitySeeds ?? [];
  await mkdir(join(dir, 'sae'), { recursive: true });
  const out: TrainedEntry[] = [];
  const total = layers.length * ks.length;
  let n = 0;
  for (const layer of layers) {
    let data: LayerData | null = null;
    for (const k of ks) {
      n++;
      const path = `${saeBase(dir, layer, k)}.safetensors`;
      const stabilityPaths = extra.map((s) => `${saeBase(dir, layer, k, s)}.safetensors`);
      const jobs: Array<[string, number]> = [
        [path, seed],
        ...extra.map((s, i) => [stabilityPaths[i], s] as [string, number]),
      ];
      for (const [p, s] of jobs) {
        if (existsSync(p) && existsSync(p.replace(/\.safetensors$/, '.json'))) continue;
        data ??= await loadLayer(activations, layer, options.expectedDim);
        if (data.rows < k) {
          throw new ThinkwhenError(
            'too-few-sentences',
            `layer ${layer} has ${data.rows} sentences, fewer than K = ${k} latents`,
            'generate more traces or use smaller K values (--k)',
          );
        }
        const t0 = Date.now();
        const sae = await trainTopKSae(data.x, data.dim, {
          latents: k,
          seed: s,
          topK: options.topK,
          maxEpochs: options.maxEpochs,
          patience: options.patience,
          threads: options.threads,
        });
        sae.config.layer = layer;
        sae.config.activations = activations;
        await saveSae(p.replace(/\.safetensors$/, ''), sae);
        options.onProgress?.(
          `taxonomy train: layer ${layer} K=${k} seed ${s} (${n}/${total}): ${sae.config.epochs} epochs, loss ${sae.config.bestLoss.toFixed(4)}, ${((Date.now() - t0) / 1000).toFixed(1)} s`,
        );
      }
      out.push({ layer, k, path, stabilityPaths });
    }
  }
  return out;
}
