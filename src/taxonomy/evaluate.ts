/**
 * Stage 4 (docs/method.md §2.4): titles, metrics and examples for every trained (layer, K), written to
 * `<dir>/grid.json`. Without an LLM: offline titles (distinctive words), variance explained, centroid
 * orthogonality, cluster balance, seed stability (optional) and the offline judge's F1, completeness and
 * orthogonality (lexical-judge.ts). With one: the paper's titles and autograders (labelling.ts). With
 * ground-truth sentence types in the store: ARI, NMI and purity.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ThinkwhenError } from '../errors.ts';
import type { LlmClient } from '../llm/client.ts';
import { writeJsonAtomic } from './json-file.ts';
import { type Category, generateCategoryTitles, type LlmCallSettings, scoreTaxonomy, summarise } from './labelling.ts';
import { type LayerData, loadLayer } from './layer-data.ts';
import { LexicalJudge } from './lexical-judge.ts';
import {
  adjustedRandIndex,
  centroidOrthogonality,
  clusterBalance,
  normalizedMutualInfo,
  purity,
  varianceExplained,
} from './metrics.ts';
import { offlineCategoryLabels } from './offline-labels.ts';
import { argmaxRows, loadSae, type TopKSae } from './sae.ts';
import type { TrainedEntry } from './train-grid.ts';

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
  /**
   * Share of the pair's disagreement positions where the SAE's argmax on the single token's activation
   * equals its label of the sentence being written (src/organism/artifacts-readout.ts; needs the base model).
   */
  readout?: number;
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
  const labels = argmaxRows(dense, k);
  const balance = clusterBalance(labels, k);
  let stability: number | null = null;
  if (t.stabilityPaths.length) {
    let sum = 0;
    for (const p of t.stabilityPaths) sum += adjustedRandIndex(labels, (await loadSae(p)).assign(data.x));
    stability = sum / t.stabilityPaths.length;
  }
  const lexical = judge.score(labels, k);
  const metrics: EntryMetrics = {
    varianceExplained: varianceExplained(data.x, sae.reconstruct(data.x), sae.dim),
    centroidOrthogonality: centroidOrthogonality(sae.centroids(), sae.dim),
    balance: balance.normalizedEntropy,
    largestShare: balance.largestShare,
    emptyClusters: balance.empty,
    stability,
    lexicalF1: lexical.f1,
    lexicalCompleteness: lexical.completeness,
    lexicalOrthogonality: lexical.orthogonality,
    offlineScore: lexical.final,
  };
  const tm = data.truth ? truthMetrics(data.truth, labels) : null;
  if (tm) {
    metrics.ari = tm.ari;
    metrics.nmi = tm.nmi;
    metrics.purity = tm.purity;
    metrics.labelledSentences = tm.labelled;
  }
  let categories: Category[];
  if (options.llm) {
    const llm = await llmLabelling(options.llm, data, dense, k, labels, traceTexts);
    Object.assign(metrics, llm.metrics);
    categories = llm.categories;
  } else {
    categories = offlineCategoryLabels(data.sentences, labels, k).map(({ id, title, description }) => ({
      id,
      title,
      description,
    }));
  }
  const infos = describeCategories(categories, k, balance.sizes, dense, labels, data, options.examples ?? 5);
  return { layer: t.layer, k, path: t.path, labelSource: options.llm ? 'llm' : 'offline', metrics, categories: infos };
}

/** The paper's titles (`repetitions` sets; the taxonomy is set 0) and autograder scores over the sets. */
async function llmLabelling(
  llm: LlmLabelling,
  data: LayerData,
  dense: Float32Array,
  k: number,
  labels: Int32Array,
  traceTexts: string[],
): Promise<{ categories: Category[]; metrics: Partial<EntryMetrics> }> {
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
  return {
    categories: sets[0] ?? [],
    metrics: {
      avgF1: mean(scores.map((s) => s.avgF1)),
      avgConfidence: mean(scores.map((s) => s.avgConfidence)),
      semanticOrthogonality: mean(scores.map((s) => s.semanticOrthogonality)),
      finalScore: final.mean,
      finalScoreLow: final.low,
      finalScoreHigh: final.high,
    },
  };
}

/** Every latent 0…K−1 with its title, size, top examples and (with ground truth) its majority type. */
function describeCategories(
  categories: Category[],
  k: number,
  sizes: ArrayLike<number>,
  dense: Float32Array,
  labels: Int32Array,
  data: LayerData,
  nExamples: number,
): CategoryInfo[] {
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
      size: sizes[j],
      examples: topExamples(dense, k, labels, data.sentences, j, nExamples),
    };
    if (data.truth && sizes[j] > 0) {
      const counts = new Map<string, number>();
      for (let i = 0; i < labels.length; i++) {
        const tl = data.truth[i];
        if (labels[i] === j && tl !== null) counts.set(tl, (counts.get(tl) ?? 0) + 1);
      }
      const top = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
      if (top) {
        info.majorityType = top[0];
        info.majorityShare = top[1] / sizes[j];
      }
    }
    infos.push(info);
  }
  return infos;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
