/**
 * Stages 3–5 of the taxonomy over a sentence-activation store (method.md §2.3–2.5):
 *  - train: a Top-K SAE for every layer × K (default K = 5, 10, …, 50), on centred, L2-normalised sentence
 *    means; saved as `sae/sae_layer{L}_k{K}.{safetensors,json}`; resumable (trained ones are kept);
 *  - evaluate: every (layer, K) gets category titles (offline: distinctive words; LLM: the paper's
 *    prompts, `repetitions` sets) and metrics — without an LLM: variance explained, centroid
 *    orthogonality, cluster balance, seed stability (optional) and the offline judge's F1,
 *    completeness and orthogonality (LexicalJudge); with one: the paper's F1, completeness, semantic
 *    orthogonality and final score; with ground-truth sentence types: ARI, NMI and purity;
 *  - select: the (layer, K) maximising a chosen metric (paper: the LLM final score; offline: the
 *    offline judge's final score);
 *  - annotate: every trace sentence by sentence in the paper's format (§2.5).
 * Results live in one taxonomy directory: `grid.json` (all entries) and `selection.json` (the choice).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import type { LlmClient } from '../llm/client.ts';
import { TEST_SEED } from '../organism/eval.ts';
import { organismModelPaths } from '../organism/index.ts';
import { parseSentence } from '../organism/parser.ts';
import { generateProblems } from '../organism/task.ts';
import { generateTraces, readTraces, type TraceRecord } from '../traces/generate.ts';
import { splitForAnnotation } from '../traces/sentences.ts';
import { activationRows, tokenSpanOfChars } from '../traces/spans.ts';
import { type LoadedActivations, loadSentenceActivations, readManifest } from './activation-store.ts';
import {
  type CaptureSettings,
  captureRows,
  captureSentenceActivations,
  checkStoreAgainstModel,
  DEFAULT_CAPTURE_SETTINGS,
  tokenizeTrace,
  traceText,
} from './capture.ts';
import { type Category, generateCategoryTitles, type LlmCallSettings, scoreTaxonomy, summarise } from './labelling.ts';
import { resolveLayers } from './layers.ts';
import {
  adjustedRandIndex,
  centroidOrthogonality,
  clusterBalance,
  normalizedMutualInfo,
  purity,
  varianceExplained,
} from './metrics.ts';
import { offlineCategoryLabels } from './offline-labels.ts';
import { centerAndNormalize, meanOfRows, saeInputForLabelling } from './preprocess.ts';
import { DEFAULT_LATENT_COUNTS, loadSae, saveSae, type TopKSae, trainTopKSae } from './sae.ts';

// ---------------------------------------------------------------------------------------------------
// Data

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
      'NO_MEAN',
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

// ---------------------------------------------------------------------------------------------------
// Training

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
  if (ks.length === 0) throw new ThinkwhenError('BAD_K', 'no latent counts given', 'pass --k 5,10,15 or leave it out');
  for (const k of ks) {
    if (!Number.isInteger(k) || k < topK) {
      throw new ThinkwhenError(
        'BAD_K',
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
        'LAYER_OUT_OF_RANGE',
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
            'TOO_FEW_SENTENCES',
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

// ---------------------------------------------------------------------------------------------------
// Evaluation

export interface EntryMetrics {
  varianceExplained: number;
  centroidOrthogonality: number;
  /** Normalised entropy of cluster sizes (1 = even). */
  balance: number;
  largestShare: number;
  emptyClusters: number;
  /** Mean ARI between this SAE's labels and those of the extra-seed SAEs (null without them). */
  stability: number | null;
  /** The offline judge's three metrics (see LexicalJudge). */
  lexicalF1: number;
  lexicalCompleteness: number;
  lexicalOrthogonality: number;
  /** Their mean: the offline final score, the default selection metric without an LLM. */
  offlineScore: number;
  /** Against ground-truth sentence types (sentences with a known type only). */
  ari?: number;
  nmi?: number;
  purity?: number;
  labelledSentences?: number;
  /** The paper's LLM metrics (means over repetitions) and the 95 % interval of the final score. */
  avgF1?: number;
  avgConfidence?: number;
  semanticOrthogonality?: number;
  finalScore?: number;
  finalScoreLow?: number;
  finalScoreHigh?: number;
}

export interface CategoryInfo extends Category {
  size: number;
  /** Sentences with the highest dense activation of this latent among its members. */
  examples: string[];
  /** Most common ground-truth type among members, and its share (when types are known). */
  majorityType?: string;
  majorityShare?: number;
}

export interface GridEntry {
  layer: number;
  k: number;
  path: string;
  labelSource: 'offline' | 'llm';
  metrics: EntryMetrics;
  categories: CategoryInfo[];
}

export interface Grid {
  format: 'thinkwhen-taxonomy-grid/1';
  activations: string;
  sentences: number;
  groundTruth: boolean;
  entries: GridEntry[];
}

export interface LlmLabelling {
  client: LlmClient;
  titles?: LlmCallSettings;
  evaluator?: LlmCallSettings;
  /** Category sets per (layer, K) (paper: 5); the taxonomy is repetition 0. */
  repetitions?: number;
  seed?: number;
}

export interface EvaluateOptions {
  /** Without `llm`, offline titles and metrics only. */
  llm?: LlmLabelling;
  expectedDim?: number;
  examples?: number;
  onProgress?: (line: string) => void;
}

function topExamples(dense: Float32Array, k: number, labels: Int32Array, sentences: string[], j: number, n: number) {
  const members: number[] = [];
  for (let i = 0; i < labels.length; i++) if (labels[i] === j) members.push(i);
  members.sort((a, b) => dense[b * k + j] - dense[a * k + j] || a - b);
  return members.slice(0, n).map((i) => sentences[i]);
}

/** Ground-truth agreement over the sentences whose type is known. */
export function truthMetrics(truth: Array<string | null>, labels: ArrayLike<number>) {
  const t: number[] = [];
  const p: number[] = [];
  const ids = new Map<string, number>();
  truth.forEach((name, i) => {
    if (name === null) return;
    if (!ids.has(name)) ids.set(name, ids.size);
    t.push(ids.get(name)!);
    p.push(labels[i]);
  });
  if (t.length === 0) return null;
  return { ari: adjustedRandIndex(t, p), nmi: normalizedMutualInfo(t, p), purity: purity(t, p), labelled: t.length };
}

/** Titles, metrics and examples for every trained (layer, K); writes `<dir>/grid.json`. */
export async function evaluateGrid(
  activations: string,
  dir: string,
  trained: readonly TrainedEntry[],
  options: EvaluateOptions = {},
): Promise<Grid> {
  const entries: GridEntry[] = [];
  const byLayer = new Map<number, TrainedEntry[]>();
  for (const t of trained) byLayer.set(t.layer, [...(byLayer.get(t.layer) ?? []), t]);
  let sentences = 0;
  let groundTruth = false;
  for (const [layer, list] of byLayer) {
    const data = await loadLayer(activations, layer, options.expectedDim);
    sentences = data.rows;
    groundTruth = data.truth !== null;
    const traceTexts = await traceTextsOf(data);
    const judge = new LexicalJudge(data.sentences);
    for (const t of list) {
      const sae = await loadSae(t.path);
      if (sae.dim !== data.dim) {
        throw new ThinkwhenError(
          'WIDTH_MISMATCH',
          `the SAE ${t.path} has width ${sae.dim} but the activations in ${activations} have width ${data.dim}`,
          'train the SAEs on these activations (use a fresh taxonomy directory)',
        );
      }
      const entry = await evaluateEntry(sae, t, data, traceTexts, judge, options);
      entries.push(entry);
      const m = entry.metrics;
      options.onProgress?.(
        `taxonomy score: layer ${layer} K=${t.k}: offline ${m.offlineScore.toFixed(3)}` +
          (m.finalScore !== undefined ? `, final ${m.finalScore.toFixed(3)}` : '') +
          (m.ari !== undefined ? `, ARI ${m.ari.toFixed(3)}` : ''),
      );
    }
  }
  const grid: Grid = { format: 'thinkwhen-taxonomy-grid/1', activations, sentences, groundTruth, entries };
  await writeJsonAtomic(join(dir, 'grid.json'), grid);
  return grid;
}

/** Thinking texts of the traces behind a store (for the LLM title prompt's context), by trace id order. */
async function traceTextsOf(data: LayerData): Promise<string[]> {
  const byTrace = new Map<string, string[]>();
  data.sentences.forEach((s, i) => {
    const id = data.traceIds[i];
    byTrace.set(id, [...(byTrace.get(id) ?? []), s]);
  });
  return [...byTrace.values()].map((s) => s.join(' '));
}

async function evaluateEntry(
  sae: TopKSae,
  t: TrainedEntry,
  data: LayerData,
  traceTexts: string[],
  judge: LexicalJudge,
  options: EvaluateOptions,
): Promise<GridEntry> {
  const dense = sae.encodeDense(data.x);
  const k = sae.latents;
  const labels = new Int32Array(data.rows);
  for (let r = 0; r < data.rows; r++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (dense[r * k + j] > dense[r * k + best]) best = j;
    labels[r] = best;
  }
  const balance = clusterBalance(labels, k);
  let stability: number | null = null;
  if (t.stabilityPaths.length) {
    let sum = 0;
    for (const p of t.stabilityPaths) sum += adjustedRandIndex(labels, (await loadSae(p)).assign(data.x));
    stability = sum / t.stabilityPaths.length;
  }
  const centroidOrth = centroidOrthogonality(sae.centroids(), sae.dim);
  const lexical = judge.score(labels, k);
  const metrics: EntryMetrics = {
    varianceExplained: varianceExplained(data.x, sae.reconstruct(data.x), sae.dim),
    centroidOrthogonality: centroidOrth,
    balance: balance.normalizedEntropy,
    largestShare: balance.largestShare,
    emptyClusters: balance.empty,
    stability,
    lexicalF1: lexical.f1,
    lexicalCompleteness: lexical.completeness,
    lexicalOrthogonality: lexical.orthogonality,
    offlineScore: lexical.final,
  };
  if (data.truth) {
    const tm = truthMetrics(data.truth, labels);
    if (tm) {
      metrics.ari = tm.ari;
      metrics.nmi = tm.nmi;
      metrics.purity = tm.purity;
      metrics.labelledSentences = tm.labelled;
    }
  }
  const nExamples = options.examples ?? 5;
  let categories: Category[];
  let labelSource: GridEntry['labelSource'] = 'offline';
  if (options.llm) {
    const llm = options.llm;
    labelSource = 'llm';
    const sets = await generateCategoryTitles(
      llm.client,
      { sentences: data.sentences, dense, latents: k, labels, traces: traceTexts },
      { repetitions: llm.repetitions ?? 5, seed: llm.seed ?? 0, settings: llm.titles },
    );
    const scores = [];
    for (let rep = 0; rep < sets.length; rep++) {
      scores.push(
        await scoreTaxonomy(llm.client, data.sentences, labels, sets[rep], {
          seed: (llm.seed ?? 0) + rep,
          settings: llm.evaluator,
        }),
      );
    }
    const final = summarise(scores.map((s) => s.finalScore));
    metrics.avgF1 = mean(scores.map((s) => s.avgF1));
    metrics.avgConfidence = mean(scores.map((s) => s.avgConfidence));
    metrics.semanticOrthogonality = mean(scores.map((s) => s.semanticOrthogonality));
    metrics.finalScore = final.mean;
    metrics.finalScoreLow = final.low;
    metrics.finalScoreHigh = final.high;
    categories = sets[0] ?? [];
  } else {
    categories = offlineCategoryLabels(data.sentences, labels, k).map(({ id, title, description }) => ({
      id,
      title,
      description,
    }));
  }
  const byId = new Map(categories.map((c) => [c.id, c]));
  const infos: CategoryInfo[] = [];
  for (let j = 0; j < k; j++) {
    const c = byId.get(j) ?? {
      id: j,
      title: 'Unused',
      description: 'No sentence has this category as its strongest latent.',
    };
    const info: CategoryInfo = {
      ...c,
      size: balance.sizes[j],
      examples: topExamples(dense, k, labels, data.sentences, j, nExamples),
    };
    if (data.truth && balance.sizes[j] > 0) {
      const counts = new Map<string, number>();
      for (let i = 0; i < labels.length; i++) {
        const tl = data.truth[i];
        if (labels[i] === j && tl !== null) counts.set(tl, (counts.get(tl) ?? 0) + 1);
      }
      const top = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
      if (top) {
        info.majorityType = top[0];
        info.majorityShare = top[1] / balance.sizes[j];
      }
    }
    infos.push(info);
  }
  return { layer: t.layer, k, path: t.path, labelSource, metrics, categories: infos };
}

// ---------------------------------------------------------------------------------------------------
// The offline judge: the paper's three autograder metrics with a bag-of-words reader instead of an LLM

/** Lower-cased words, numbers as `<num>`, and every other non-space character as its own token. */
export function lexicalTokens(sentence: string): string[] {
  return (sentence.toLowerCase().match(/\p{L}+|\p{N}+|[^\s\p{L}\p{N}]/gu) ?? []).map((t) =>
    /^\p{N}+$/u.test(t) ? '<num>' : t,
  );
}

export interface LexicalScores {
  /** Macro F1 of a per-category naive-Bayes reader (this category vs the rest, equal priors). */
  f1: number;
  /** Mean fit of a sentence to its category: cosine between its tf-idf vector and the category's profile. */
  completeness: number;
  /** Share of category pairs whose tf-idf word profiles have 1 − cos > 0.5. */
  orthogonality: number;
  /** mean(f1, completeness, orthogonality), the offline final score. */
  final: number;
}

/**
 * Offline analogue of the paper's final score (§2.4), for selecting (layer, K) without an LLM. Each
 * category is "described" by its sentences' word distribution (multinomial, add-½ smoothing) and read
 * back by naive Bayes instead of an LLM:
 *  - F1: for each category, sentences are classified in/out by the log-likelihood ratio of its
 *    distribution against the other categories' pooled distribution; macro F1 over used categories;
 *  - completeness: how well a sentence fits its category, the cosine between its tf-idf vector and the
 *    category's tf-idf profile (mean word frequencies × idf), averaged over sentences;
 *  - orthogonality: pairs of categories whose tf-idf profiles differ (1 − cosine > 0.5), as a share.
 * Splitting one kind of sentence over several latents makes their profiles alike (orthogonality and
 * F1 fall); merging different kinds blurs a profile (completeness falls).
 */
export class LexicalJudge {
  private readonly docs: Int32Array[];
  private readonly vocab: number;
  private readonly idf: Float64Array;

  constructor(readonly sentences: readonly string[]) {
    const ids = new Map<string, number>();
    this.docs = sentences.map((s) =>
      Int32Array.from(lexicalTokens(s), (t) => {
        let id = ids.get(t);
        if (id === undefined) {
          id = ids.size;
          ids.set(t, id);
        }
        return id;
      }),
    );
    this.vocab = Math.max(1, ids.size);
    const df = new Float64Array(this.vocab);
    for (const d of this.docs) for (const v of new Set(d)) df[v]++;
    const n = Math.max(1, sentences.length);
    this.idf = Float64Array.from(df, (x) => (x > 0 ? Math.log(n / x) : 0));
  }

  score(labels: ArrayLike<number>, k: number): LexicalScores {
    const V = this.vocab;
    const n = this.docs.length;
    const alpha = 0.5;
    const counts = Array.from({ length: k }, () => new Float64Array(V));
    const totals = new Float64Array(k);
    const sizes = new Float64Array(k);
    const all = new Float64Array(V);
    this.docs.forEach((d, i) => {
      const c = labels[i];
      sizes[c]++;
      for (const v of d) {
        counts[c][v]++;
        all[v]++;
      }
      totals[c] += d.length;
    });
    const grand = totals.reduce((a, b) => a + b, 0);
    const live = [...Array(k).keys()].filter((c) => sizes[c] > 0);
    const logp = counts.map((cnt, c) => Float64Array.from(cnt, (x) => Math.log((x + alpha) / (totals[c] + alpha * V))));

    let f1 = 0;
    for (const c of live) {
      const rest = Float64Array.from(all, (x, v) =>
        Math.log((x - counts[c][v] + alpha) / (grand - totals[c] + alpha * V)),
      );
      let tp = 0;
      let fp = 0;
      let fn = 0;
      this.docs.forEach((d, i) => {
        let llr = 0;
        for (const v of d) llr += logp[c][v] - rest[v];
        const inside = labels[i] === c;
        if (llr > 0 && inside) tp++;
        else if (llr > 0) fp++;
        else if (inside) fn++;
      });
      const precision = tp + fp ? tp / (tp + fp) : 0;
      const recall = tp + fn ? tp / (tp + fn) : 0;
      f1 += precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    }
    f1 = live.length ? f1 / live.length : 0;

    const profiles = live.map((c) =>
      Float64Array.from(counts[c], (x, v) => (x / Math.max(1, totals[c])) * this.idf[v]),
    );
    let pairs = 0;
    let apart = 0;
    for (let a = 0; a < profiles.length; a++) {
      for (let b = a + 1; b < profiles.length; b++) {
        let dot = 0;
        let na = 0;
        let nb = 0;
        for (let v = 0; v < V; v++) {
          dot += profiles[a][v] * profiles[b][v];
          na += profiles[a][v] ** 2;
          nb += profiles[b][v] ** 2;
        }
        const cos = na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
        pairs++;
        if (1 - cos > 0.5) apart++;
      }
    }
    const orthogonality = pairs ? apart / pairs : 1;

    // Completeness: how well each sentence fits its category's profile (cosine of tf-idf vectors).
    const norms = profiles.map((p) => Math.sqrt(p.reduce((acc, x) => acc + x * x, 0)));
    const slot = new Int32Array(k).fill(-1);
    live.forEach((c, j) => {
      slot[c] = j;
    });
    let completeness = 0;
    const tf = new Map<number, number>();
    this.docs.forEach((d, i) => {
      const j = slot[labels[i]];
      tf.clear();
      for (const v of d) tf.set(v, (tf.get(v) ?? 0) + 1);
      let dot = 0;
      let sq = 0;
      for (const [v, c] of tf) {
        const w = c * this.idf[v];
        dot += w * profiles[j][v];
        sq += w * w;
      }
      if (sq > 0 && norms[j] > 0) completeness += dot / (Math.sqrt(sq) * norms[j]);
    });
    completeness = n ? completeness / n : 0;
    return { f1, completeness, orthogonality, final: (f1 + completeness + orthogonality) / 3 };
  }
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);

// ---------------------------------------------------------------------------------------------------
// Selection

export const SELECTION_METRICS = [
  'final',
  'offline',
  'stability',
  'variance-explained',
  'centroid-orthogonality',
  'balance',
  'lexical-f1',
  'lexical-completeness',
  'lexical-orthogonality',
  'f1',
  'completeness',
  'semantic-orthogonality',
  'ari',
  'nmi',
  'purity',
] as const;
export type SelectionMetric = (typeof SELECTION_METRICS)[number];

function metricValue(m: EntryMetrics, metric: SelectionMetric): number | undefined | null {
  switch (metric) {
    case 'final':
      return m.finalScore;
    case 'offline':
      return m.offlineScore;
    case 'stability':
      return m.stability;
    case 'variance-explained':
      return m.varianceExplained;
    case 'centroid-orthogonality':
      return m.centroidOrthogonality;
    case 'balance':
      return m.balance;
    case 'lexical-f1':
      return m.lexicalF1;
    case 'lexical-completeness':
      return m.lexicalCompleteness;
    case 'lexical-orthogonality':
      return m.lexicalOrthogonality;
    case 'f1':
      return m.avgF1;
    case 'completeness':
      return m.avgConfidence;
    case 'semantic-orthogonality':
      return m.semanticOrthogonality;
    case 'ari':
      return m.ari;
    case 'nmi':
      return m.nmi;
    case 'purity':
      return m.purity;
  }
}

export interface Selection {
  format: 'thinkwhen-taxonomy-selection/1';
  activations: string;
  metric: SelectionMetric;
  layer: number;
  k: number;
  sae: string;
  labelSource: 'offline' | 'llm';
  metrics: EntryMetrics;
  categories: CategoryInfo[];
}

/** The entry maximising `metric` (ties: smaller K, then smaller layer). */
export function selectEntry(grid: Grid, metric: SelectionMetric): GridEntry {
  if (!SELECTION_METRICS.includes(metric)) {
    throw new ThinkwhenError(
      'BAD_METRIC',
      `unknown selection metric "${metric}"`,
      `use one of ${SELECTION_METRICS.join(', ')}`,
    );
  }
  let best: GridEntry | null = null;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (const e of grid.entries) {
    const v = metricValue(e.metrics, metric);
    if (v === undefined || v === null || Number.isNaN(v)) continue;
    if (v > bestValue || (v === bestValue && best && (e.k < best.k || (e.k === best.k && e.layer < best.layer)))) {
      best = e;
      bestValue = v;
    }
  }
  if (!best) {
    const why =
      metric === 'final' || metric === 'f1' || metric === 'completeness' || metric === 'semantic-orthogonality'
        ? 'it needs LLM labelling (pass --llm-base-url/--llm-model, or select with --select offline)'
        : metric === 'ari' || metric === 'nmi' || metric === 'purity'
          ? 'it needs ground-truth sentence types in the activations'
          : 'no entry has it';
    throw new ThinkwhenError('NO_METRIC', `cannot select by "${metric}": ${why}`, 'choose another --select metric');
  }
  return best;
}

export async function writeSelection(dir: string, grid: Grid, metric: SelectionMetric): Promise<Selection> {
  const e = selectEntry(grid, metric);
  const selection: Selection = {
    format: 'thinkwhen-taxonomy-selection/1',
    activations: grid.activations,
    metric,
    layer: e.layer,
    k: e.k,
    sae: e.path,
    labelSource: e.labelSource,
    metrics: e.metrics,
    categories: e.categories,
  };
  await writeJsonAtomic(join(dir, 'selection.json'), selection);
  return selection;
}

export async function readGrid(dir: string): Promise<Grid> {
  const path = join(dir, 'grid.json');
  if (!existsSync(path)) {
    throw new ThinkwhenError(
      'NO_TAXONOMY',
      `${dir} has no grid.json: the taxonomy has not been scored there`,
      'run `thinkwhen taxonomy train` and `thinkwhen taxonomy score` with this --dir',
    );
  }
  return JSON.parse(await readFile(path, 'utf8')) as Grid;
}

export async function readSelection(dir: string): Promise<Selection> {
  const path = join(dir, 'selection.json');
  if (!existsSync(path)) {
    throw new ThinkwhenError(
      'NO_SELECTION',
      `${dir} has no selection.json: no (layer, K) has been chosen there`,
      'run `thinkwhen taxonomy score --dir DIR` first',
    );
  }
  return JSON.parse(await readFile(path, 'utf8')) as Selection;
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFile(`${path}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
}

// ---------------------------------------------------------------------------------------------------
// Annotation (§2.5)

export interface AnnotatedSentence {
  text: string;
  /** Latent index k (category "idx{k}"). */
  category: number;
  /** round(z_k, 2). */
  value: number;
  title?: string;
  charStart: number;
  charEnd: number;
}

export interface AnnotatedTrace {
  question_id: string;
  /** The paper's format: `["{z}:idx{k}"]{sentence}["end-section"]` per sentence, concatenated. */
  annotated_thinking: string;
  sentences: AnnotatedSentence[];
  /** Sentences of the annotation splitter that could not be placed in the tokens (skipped). */
  skipped: number;
}

export interface AnnotateOptions {
  /** A2: 'raw' sentence means (paper) or 'centred' with the training-time μ_L and L2 norm. */
  saeInput?: 'raw' | 'centred';
  context?: CaptureSettings['context'];
  thinking?: CaptureSettings['thinking'];
  bos?: CaptureSettings['bos'];
  threads?: number;
  nBatch?: number;
  onProgress?: (line: string) => void;
}

/** Python's `str(round(x, 2))` for a float. */
export function formatValue(x: number): string {
  const r = Math.round(x * 100) / 100;
  const s = String(r);
  return Number.isInteger(r) ? `${r}.0` : s;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The reference's locator: first `(?:^|[.?!;\n]|\n\n)\s*(sentence)` in the response; start of the group. */
export function locateForAnnotation(text: string, sentence: string): number {
  const re = new RegExp(`(?:^|(?:[.?!;\\n]|\\n\\n))\\s*(${escapeRegExp(sentence)})`, 'd');
  const m = re.exec(text);
  return m?.indices?.[1]?.[0] ?? -1;
}

/** Annotate traces with the selected SAE: one model pass per trace at the SAE layer. */
export async function annotateTraces(
  model: Model,
  traces: readonly TraceRecord[],
  selection: Pick<Selection, 'layer' | 'sae' | 'activations' | 'categories'>,
  options: AnnotateOptions = {},
): Promise<AnnotatedTrace[]> {
  const sae = await loadSae(selection.sae);
  const { nEmbd, nLayer } = model.info;
  if (sae.dim !== nEmbd) {
    throw new ThinkwhenError(
      'WIDTH_MISMATCH',
      `the SAE ${selection.sae} has width ${sae.dim} but ${model.info.path} has width ${nEmbd}`,
      'annotate with the thinking model whose activations trained the SAE',
    );
  }
  if (selection.layer >= nLayer) {
    throw new ThinkwhenError(
      'LAYER_OUT_OF_RANGE',
      `the selected layer ${selection.layer} is out of range: ${model.info.path} has ${nLayer} layers`,
      'annotate with the thinking model the taxonomy was built from',
    );
  }
  if (traces.length === 0) {
    throw new ThinkwhenError('NO_TRACES', 'the trace set is empty: there is nothing to annotate', 'pass a trace file');
  }
  let mean: Float32Array | undefined;
  if (options.saeInput === 'centred') {
    await checkStoreAgainstModel(selection.activations, model);
    mean = (await loadSentenceActivations(selection.activations, selection.layer)).thinkingMean ?? undefined;
  }
  const titles = new Map(selection.categories.map((c) => [c.id, c.title]));
  const settings: CaptureSettings = {
    ...DEFAULT_CAPTURE_SETTINGS,
    context: options.context ?? DEFAULT_CAPTURE_SETTINGS.context,
    thinking: options.thinking ?? DEFAULT_CAPTURE_SETTINGS.thinking,
    bos: options.bos ?? DEFAULT_CAPTURE_SETTINGS.bos,
  };
  const out: AnnotatedTrace[] = [];
  const plans = traces.map((trace) => {
    const { text, thinking: th } = traceText(trace, settings);
    const thinking = th.text;
    const { tokens, c2t } = tokenizeTrace(model, text, settings.bos);
    const placed: Array<{ text: string; charStart: number; rows: { start: number; end: number } }> = [];
    let skipped = 0;
    for (const s of splitForAnnotation(thinking)) {
      const pos = locateForAnnotation(text, s.text);
      const span = pos < 0 ? null : tokenSpanOfChars(c2t, pos, pos + s.text.length, 'last-char');
      const rows = span ? activationRows(span, true) : null;
      if (!rows) {
        skipped++;
        continue;
      }
      placed.push({ text: s.text, charStart: pos, rows });
    }
    return { trace, tokens, placed, skipped };
  });
  const longest = Math.max(1, ...plans.map((p) => Math.max(0, ...p.placed.map((x) => x.rows.end))));
  const ctx = model.createContext({
    nCtx: longest + 1,
    nBatch: Math.min(options.nBatch ?? 512, longest),
    nSeqMax: 1,
    threads: options.threads,
  });
  try {
    for (const p of plans) {
      const sentences: AnnotatedSentence[] = [];
      if (p.placed.length) {
        const lo = Math.min(...p.placed.map((x) => x.rows.start));
        const hi = Math.max(...p.placed.map((x) => x.rows.end));
        const h = (await captureRows(model, ctx, p.tokens, lo, hi, [selection.layer])).get(selection.layer)!;
        const a = new Float32Array(p.placed.length * nEmbd);
        p.placed.forEach((x, i) => {
          a.set(meanOfRows(h, nEmbd, { start: x.rows.start - lo, end: x.rows.end - lo }), i * nEmbd);
        });
        const input = saeInputForLabelling(a, nEmbd, { mode: options.saeInput ?? 'raw', mean });
        const z = sae.encodeDense(input);
        const k = sae.latents;
        p.placed.forEach((x, i) => {
          let best = 0;
          for (let j = 1; j < k; j++) if (z[i * k + j] > z[i * k + best]) best = j;
          sentences.push({
            text: x.text,
            category: best,
            value: Number(formatValue(z[i * k + best])),
            title: titles.get(best),
            charStart: x.charStart,
            charEnd: x.charStart + x.text.length,
          });
        });
      }
      const annotated = sentences
        .map((s) => `["${formatValue(s.value)}:idx${s.category}"]${s.text}["end-section"]`)
        .join('');
      out.push({ question_id: p.trace.id, annotated_thinking: annotated, sentences, skipped: p.skipped });
      options.onProgress?.(`taxonomy annotate: ${out.length}/${plans.length} traces`);
    }
  } finally {
    ctx.free();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The model organism: the whole chain with ground truth

/** The organism's ground truth: the type its trace-language parser gives a sentence (null: not one). */
export const organismLabeller = (sentence: string): string | null => parseSentence(sentence.trim()).type;

/** Where the organism's shipped thinking model lives. */
export function defaultOrganismModel(): string {
  return process.env.THINKWHEN_ORGANISM_THINKING ?? organismModelPaths().thinking;
}

export interface OrganismChainOptions {
  /** Workspace: traces.jsonl, activations/, taxonomy/ (reruns resume). */
  dir: string;
  /** Thinking model (default: the shipped organism). */
  model?: string;
  /** Held-out (test-split) problems to trace (default 200) and their generator seed (default: the organism's). */
  problems?: number;
  problemSeed?: number;
  maxTokens?: number;
  batch?: number;
  layers?: string;
  ks?: number[];
  select?: SelectionMetric;
  seed?: number;
  stabilitySeeds?: number[];
  threads?: number;
  llm?: LlmLabelling;
  onProgress?: (line: string) => void;
}

export interface OrganismChainResult {
  layer: number;
  k: number;
  ari: number;
  nmi: number;
  purity: number;
  selection: Selection;
  grid: Grid;
  traces: number;
  sentences: number;
  labelledSentences: number;
  /** The best ARI over the grid (an oracle bound on what selection could reach). */
  bestAri: { layer: number; k: number; ari: number };
}

/**
 * Traces of the organism's thinking model on held-out problems → sentence activations (thinking = the
 * model's output, ground truth from the trace-language parser) → SAE grid → selection (offline unless
 * an LLM is given) → ARI, NMI and purity of the selected taxonomy against the true sentence types.
 */
export async function runOrganismChain(o: OrganismChainOptions): Promise<OrganismChainResult> {
  const modelPath = o.model ?? defaultOrganismModel();
  if (!existsSync(modelPath)) {
    throw new ThinkwhenError(
      'NO_ORGANISM',
      `the model organism's thinking model is not at ${modelPath}`,
      'build it (thinkwhen organism build) or pass --organism-model PATH / set THINKWHEN_ORGANISM_THINKING',
    );
  }
  await mkdir(o.dir, { recursive: true });
  const model = await Model.load(modelPath);
  const tracesPath = join(o.dir, 'traces.jsonl');
  const actsDir = join(o.dir, 'activations');
  const taxDir = join(o.dir, 'taxonomy');
  let traces: TraceRecord[];
  let sentences: number;
  try {
    // The organism's own held-out problems and its evaluation's token cap (320).
    const problems = generateProblems('test', o.problems ?? 200, o.problemSeed ?? TEST_SEED);
    const maxTokens = o.maxTokens ?? 320;
    o.onProgress?.(`organism: ${problems.length} held-out problems, thinking model ${modelPath}`);
    await generateTraces(
      model,
      problems.map((p) => ({ id: p.id, question: p.question, meta: { answer: p.answer } })),
      tracesPath,
      { maxTokens, batch: o.batch ?? 16, threads: o.threads, onProgress: o.onProgress },
    );
    traces = (await readTraces(tracesPath)).records;
    const wanted = new Set(problems.map((p) => p.id));
    traces = traces.filter((t) => wanted.has(t.id));
    const capture = await captureSentenceActivations(model, traces, actsDir, {
      layers: resolveLayers(o.layers, model.info),
      thinking: 'generated',
      labeller: organismLabeller,
      threads: o.threads,
      onProgress: o.onProgress,
    });
    sentences = capture.sentences;
  } finally {
    model.free();
  }
  const trained = await trainTaxonomyGrid(actsDir, taxDir, {
    ks: o.ks,
    seed: o.seed,
    stabilitySeeds: o.stabilitySeeds,
    threads: o.threads,
    onProgress: o.onProgress,
  });
  const grid = await evaluateGrid(actsDir, taxDir, trained, { llm: o.llm, onProgress: o.onProgress });
  const selection = await writeSelection(taxDir, grid, o.select ?? (o.llm ? 'final' : 'offline'));
  const m = selection.metrics;
  if (m.ari === undefined || m.nmi === undefined || m.purity === undefined) {
    throw new ThinkwhenError(
      'NO_GROUND_TRUTH',
      'no captured sentence of the organism traces parses as a sentence of the trace language',
      'check that the organism model writes its trace language (see traces.jsonl in the workspace)',
    );
  }
  let bestAri = { layer: selection.layer, k: selection.k, ari: m.ari };
  for (const e of grid.entries) {
    if ((e.metrics.ari ?? -1) > bestAri.ari) bestAri = { layer: e.layer, k: e.k, ari: e.metrics.ari! };
  }
  return {
    layer: selection.layer,
    k: selection.k,
    ari: m.ari,
    nmi: m.nmi,
    purity: m.purity,
    selection,
    grid,
    traces: traces.length,
    sentences,
    labelledSentences: m.labelledSentences ?? 0,
    bestAri,
  };
}
