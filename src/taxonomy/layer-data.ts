// One captured layer of a sentence-activation store, preprocessed as the SAE sees it (docs/method.md §2.2).
import { ThinkwhenError } from '../errors.ts';
import { type LoadedActivations, loadSentenceActivations } from './activation-store.ts';
import { centerAndNormalize } from './preprocess.ts';

export interface LayerData {
  layer: number;
  /** Centred, L2-normalised features, row-major [rows, dim]. */
  x: Float32Array;
  dim: number;
  rows: number;
  sentences: string[];
  traceIds: string[];
  /** Ground-truth types (null where unknown), when the store carries any. */
  truth: Array<string | null> | null;
  thinkingMean: Float32Array;
  raw: LoadedActivations;
}

/** One layer of a store, preprocessed as the SAE sees it (x = (a − μ_L)/‖a − μ_L‖). */
export async function loadLayer(dir: string, layer: number, expectedDim?: number): Promise<LayerData> {
  const raw = await loadSentenceActivations(dir, layer, { expectedDim });
  if (!raw.thinkingMean) {
    throw new ThinkwhenError(
      'no-mean',
      `${dir} has no thinking-span mean for layer ${layer}`,
      'recapture the activations (thinkwhen activations)',
    );
  }
  const x = centerAndNormalize(new Float32Array(raw.x), raw.dim, raw.thinkingMean);
  const labels = raw.records.map((r) => {
    const l = (r as { label?: unknown }).label;
    return typeof l === 'string' ? l : null;
  });
  return {
    layer,
    x,
    dim: raw.dim,
    rows: raw.rows,
    sentences: raw.records.map((r) => r.sentence),
    traceIds: raw.records.map((r) => r.traceId),
    truth: labels.some((l) => l !== null) ? labels : null,
    thinkingMean: raw.thinkingMean,
    raw,
  };
}
