/**
 * LLM labelling of SAE latents and the paper's taxonomy scores (docs/method.md §2.4):
 *  - titles: per latent, its sentences ranked by the dense activation z_j (all if ≤ 200, else the top 100
 *    plus 100 random others), shuffled; 3 random full traces as context (re-drawn per repetition);
 *    `repetitions` (5) independent category sets; the taxonomy used downstream is repetition 0;
 *  - accuracy/F1: per category 40 in-cluster + 160 other sentences (of 200, 20 %), shuffled, ≤ 50 per
 *    prompt, Yes/No each; per-category precision/recall/F1/accuracy, macro average;
 *  - completeness: 200 random sentences rated 0–10 against their assigned category; confidence = mean/10;
 *  - semantic orthogonality: every pair rated 0–10 for similarity; orth = 1 − s/10; score = share of
 *    pairs with orth > 0.5;
 *  - final score = mean(avg F1, avg confidence, semantic orthogonality); over repetitions: mean and 95 %
 *    t-interval.
 * Responses that stay malformed after the client's retries are recorded as parsing errors and left out,
 * as the reference does; transport failures (unreachable endpoint, bad key) propagate.
 */
import { ThinkwhenError } from '../errors.ts';
import { type ChatParams, type LlmClient, parseJsonContent } from '../llm/client.ts';
import {
  accuracyPrompt,
  clusterDescriptionPrompt,
  completenessPrompt,
  numberedSentences,
  semanticSimilarityPrompt,
  traceExamplesText,
} from './prompts.ts';
import { Rng } from './sae.ts';

export interface Category {
  /** Latent index j (key "idx{j}" downstream). */
  id: number;
  title: string;
  description: string;
}

export interface LlmCallSettings {
  model?: string;
  params?: ChatParams;
}

/** The reference's title model settings (o4-mini; o-series forces temperature 1). */
export const TITLE_SETTINGS: Required<LlmCallSettings> = {
  model: 'o4-mini',
  params: { temperature: 1.0, max_completion_tokens: 28000 },
};

/** The reference's evaluator settings (gpt-4.1-mini, temperature 1e-19, JSON mode). */
export const EVALUATOR_SETTINGS: Required<LlmCallSettings> = {
  model: 'gpt-4.1-mini',
  params: { temperature: 1e-19, response_format: { type: 'json_object' } },
};

/** k distinct elements drawn uniformly (Python random.sample semantics, seeded). */
export function sample<T>(items: readonly T[], k: number, rng: Rng): T[] {
  const pool = items.slice();
  const n = Math.min(k, pool.length);
  for (let i = 0; i < n; i++) {
    const j = i + rng.int(pool.length - i);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, n);
}

function requireSentences(sentences: readonly string[], labels: ArrayLike<number>): void {
  if (sentences.length === 0) {
    throw new ThinkwhenError(
      'no-sentences',
      'there are no sentences to label (the traces are empty or no sentence has 3+ words)',
      'generate traces with thinking text first, or check the trace file',
    );
  }
  if (labels.length !== sentences.length) {
    throw new ThinkwhenError(
      'length-mismatch',
      `${sentences.length} sentences but ${labels.length} labels`,
      'label the same sentences the SAE was applied to',
    );
  }
}

/** Example sentence indices for the title prompt of latent j (see module comment). */
export function selectTitleExamples(
  dense: Float32Array,
  latents: number,
  labels: ArrayLike<number>,
  j: number,
  rng: Rng,
  limits = { all: 200, top: 100, random: 100 },
): number[] {
  const members: number[] = [];
  for (let i = 0; i < labels.length; i++) if (labels[i] === j) members.push(i);
  members.sort((a, b) => dense[b * latents + j] - dense[a * latents + j] || a - b);
  const chosen =
    members.length <= limits.all
      ? members
      : [...members.slice(0, limits.top), ...sample(members.slice(limits.top), limits.random, rng)];
  rng.shuffle(chosen);
  return chosen;
}

/** The reference's regexes: `Title:\s*(.*?)(?:\n|$)` and the same for Description. */
export function parseTitleResponse(text: string): { title: string; description: string } {
  const title = text.match(/Title:\s*(.*?)(?:\n|$)/)?.[1]?.trim();
  const description = text.match(/Description:\s*(.*?)(?:\n|$)/)?.[1]?.trim();
  return { title: title || 'Unnamed Cluster', description: description || 'No description available' };
}

export interface TitleInput {
  sentences: readonly string[];
  /** Dense SAE pre-activations, row-major [sentences, latents]. */
  dense: Float32Array;
  latents: number;
  labels: ArrayLike<number>;
  /** Full thinking traces for the context block. */
  traces: readonly string[];
}

/** Category sets, one per repetition; empty latents get no category. */
export async function generateCategoryTitles(
  client: LlmClient,
  input: TitleInput,
  options: { repetitions?: number; traceExamples?: number; seed?: number; settings?: LlmCallSettings } = {},
): Promise<Category[][]> {
  requireSentences(input.sentences, input.labels);
  const rng = new Rng(options.seed ?? 0);
  const settings = { ...TITLE_SETTINGS, ...options.settings };
  const examples = Array.from({ length: input.latents }, (_, j) =>
    selectTitleExamples(input.dense, input.latents, input.labels, j, rng).map((i) => input.sentences[i]),
  );
  const repetitions: Category[][] = [];
  for (let rep = 0; rep < (options.repetitions ?? 5); rep++) {
    const context = traceExamplesText(sample(input.traces, options.traceExamples ?? 3, rng) as string[]);
    const calls = examples.map(async (list, j): Promise<Category | null> => {
      if (list.length === 0) return null;
      const prompt = clusterDescriptionPrompt(list, context);
      const { value } = await client.chat([{ role: 'user', content: prompt }], {
        model: settings.model,
        params: settings.params,
        parse: parseTitleResponse,
        // Each repetition is its own cached call even when the prompt repeats.
        cacheTag: `repetition-${rep}`,
      });
      return { id: j, ...value };
    });
    repetitions.push((await Promise.all(calls)).filter((c): c is Category => c !== null));
  }
  return repetitions;
}

export interface ClassificationMetrics {
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  truePositives: number;
  falsePositives: number;
  trueNegatives: number;
  falseNegatives: number;
}

export interface AccuracyResult {
  perCategory: Record<string, ClassificationMetrics>;
  avg: { accuracy: number; precision: number; recall: number; f1: number };
  parsingErrors: Array<{ category: number; chunk: number; error: string }>;
}

interface Classification {
  sentence_id: number;
  belongs_to_category: unknown;
}

function parseClassifications(content: string): Classification[] {
  const json = parseJsonContent(content);
  const list = json.classifications;
  if (!Array.isArray(list)) throw new Error('no "classifications" array');
  return list as Classification[];
}

/** Failures the reference records and moves past (malformed output after all retries). */
function isParseFailure(err: unknown): err is ThinkwhenError {
  return err instanceof ThinkwhenError && err.code === 'llm-failed';
}

export async function accuracyAutograder(
  client: LlmClient,
  sentences: readonly string[],
  labels: ArrayLike<number>,
  categories: readonly Category[],
  options: {
    examples?: number;
    targetFraction?: number;
    maxPerPrompt?: number;
    seed?: number;
    settings?: LlmCallSettings;
  } = {},
): Promise<AccuracyResult> {
  requireSentences(sentences, labels);
  const rng = new Rng(options.seed ?? 1);
  const total = options.examples ?? 200;
  const maxPerPrompt = options.maxPerPrompt ?? 50;
  const settings = { ...EVALUATOR_SETTINGS, ...options.settings };
  const parsingErrors: AccuracyResult['parsingErrors'] = [];
  const perCategory: Record<string, ClassificationMetrics> = {};

  await Promise.all(
    categories.map(async (cat) => {
      const inside: number[] = [];
      const outside: number[] = [];
      for (let i = 0; i < labels.length; i++) (labels[i] === cat.id ? inside : outside).push(i);
      const fromCluster = Math.max(1, Math.floor(total * (options.targetFraction ?? 0.2)));
      const chosenIn = sample(inside, Math.min(inside.length, fromCluster), rng);
      const chosenOut = sample(outside, Math.min(outside.length, total - fromCluster), rng);
      const tests = [...chosenIn.map((i) => ({ i, truth: 'Yes' })), ...chosenOut.map((i) => ({ i, truth: 'No' }))];
      rng.shuffle(tests);
      const chunks: (typeof tests)[] = [];
      for (let s = 0; s < tests.length; s += maxPerPrompt) chunks.push(tests.slice(s, s + maxPerPrompt));
      const answers = await Promise.all(
        chunks.map(async (chunk, chunkIdx) => {
          const prompt = accuracyPrompt(
            cat.title,
            cat.description,
            numberedSentences(chunk.map((t) => sentences[t.i])),
          );
          try {
            const { value } = await client.chat([{ role: 'user', content: prompt }], {
              model: settings.model,
              params: settings.params,
              parse: parseClassifications,
            });
            return value
              .filter((c) => Number.isInteger(c.sentence_id) && c.sentence_id >= 0 && c.sentence_id < chunk.length)
              .map((c) => ({ belongs: c.belongs_to_category, truth: chunk[c.sentence_id].truth }));
          } catch (err) {
            if (!isParseFailure(err)) throw err;
            parsingErrors.push({ category: cat.id, chunk: chunkIdx, error: err.message });
            return [];
          }
        }),
      );
      const items = answers.flat();
      if (items.length === 0) return;
      let tp = 0;
      let fp = 0;
      let tn = 0;
      let fn = 0;
      for (const { belongs, truth } of items) {
        if (belongs === 'Yes' && truth === 'Yes') tp++;
        else if (belongs === 'Yes') fp++;
        else if (belongs === 'No' && truth === 'Yes') fn++;
        else if (belongs === 'No') tn++;
      }
      const precision = tp + fp > 0 ? tp / (tp + fp) : 0;
      const recall = tp + fn > 0 ? tp / (tp + fn) : 0;
      perCategory[String(cat.id)] = {
        accuracy: (tp + tn) / items.length,
        precision,
        recall,
        f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0,
        truePositives: tp,
        falsePositives: fp,
        trueNegatives: tn,
        falseNegatives: fn,
      };
    }),
  );
  const valid = Object.values(perCategory);
  const mean = (f: (m: ClassificationMetrics) => number) =>
    valid.length ? valid.reduce((s, m) => s + f(m), 0) / valid.length : 0;
  return {
    perCategory,
    avg: {
      accuracy: mean((m) => m.accuracy),
      precision: mean((m) => m.precision),
      recall: mean((m) => m.recall),
      f1: mean((m) => m.f1),
    },
    parsingErrors,
  };
}

export interface CompletenessResult {
  /** Mean 0–10 score over evaluated sentences. */
  avgScore: number;
  /** avgScore / 10 (the final-score component). */
  avgConfidence: number;
  perCategory: Record<string, number>;
  evaluated: number;
  parsingErrors: number;
}

function parseScore(field: string) {
  return (content: string): number => {
    const raw = parseJsonContent(content)[field];
    const value = typeof raw === 'number' ? raw : Number.parseInt(String(raw), 10);
    if (!Number.isFinite(value)) throw new Error(`"${field}" is not a number`);
    // The reference clamps out-of-range scores to 0..10 (truncating to an integer).
    return value < 0 || value > 10 ? Math.max(0, Math.min(10, Math.trunc(value))) : value;
  };
}

export async function completenessAutograder(
  client: LlmClient,
  sentences: readonly string[],
  labels: ArrayLike<number>,
  categories: readonly Category[],
  options: { samples?: number; seed?: number; settings?: LlmCallSettings } = {},
): Promise<CompletenessResult> {
  requireSentences(sentences, labels);
  const rng = new Rng(options.seed ?? 2);
  const settings = { ...EVALUATOR_SETTINGS, ...options.settings };
  const byId = new Map(categories.map((c) => [c.id, c]));
  const all = Array.from({ length: sentences.length }, (_, i) => i);
  const chosen = all.length > (options.samples ?? 200) ? sample(all, options.samples ?? 200, rng) : all;
  let parsingErrors = 0;
  const scored = await Promise.all(
    chosen
      .filter((i) => byId.has(labels[i]))
      .map(async (i) => {
        const cat = byId.get(labels[i])!;
        try {
          const { value } = await client.chat(
            [{ role: 'user', content: completenessPrompt(sentences[i], cat.title, cat.description) }],
            { model: settings.model, params: settings.params, parse: parseScore('completeness_score') },
          );
          return { id: cat.id, score: value };
        } catch (err) {
          if (!isParseFailure(err)) throw err;
          parsingErrors++;
          return null;
        }
      }),
  );
  const ok = scored.filter((s): s is { id: number; score: number } => s !== null);
  const avgScore = ok.length ? ok.reduce((s, x) => s + x.score, 0) / ok.length : 0;
  const perCategory: Record<string, number> = {};
  for (const cat of categories) {
    const mine = ok.filter((s) => s.id === cat.id);
    if (mine.length) perCategory[String(cat.id)] = mine.reduce((s, x) => s + x.score, 0) / mine.length;
  }
  return { avgScore, avgConfidence: avgScore / 10, perCategory, evaluated: ok.length, parsingErrors };
}

export interface OrthogonalityResult {
  pairs: Array<{ a: number; b: number; similarity: number; orthogonality: number }>;
  /** Share of pairs with orthogonality > 0.5. */
  score: number;
  meanOrthogonality: number;
  parsingErrors: number;
}

export async function semanticOrthogonality(
  client: LlmClient,
  categories: readonly Category[],
  options: { settings?: LlmCallSettings } = {},
): Promise<OrthogonalityResult> {
  const settings = { ...EVALUATOR_SETTINGS, ...options.settings };
  const jobs: Array<[Category, Category]> = [];
  for (let i = 0; i < categories.length; i++) {
    for (let j = i + 1; j < categories.length; j++) jobs.push([categories[i], categories[j]]);
  }
  let parsingErrors = 0;
  const rated = await Promise.all(
    jobs.map(async ([a, b]) => {
      try {
        const { value } = await client.chat(
          [{ role: 'user', content: semanticSimilarityPrompt(a.title, a.description, b.title, b.description) }],
          { model: settings.model, params: settings.params, parse: parseScore('similarity_score') },
        );
        return { a: a.id, b: b.id, similarity: value, orthogonality: 1 - value / 10 };
      } catch (err) {
        if (!isParseFailure(err)) throw err;
        parsingErrors++;
        return null;
      }
    }),
  );
  const pairs = rated.filter((p): p is NonNullable<typeof p> => p !== null);
  return {
    pairs,
    score: pairs.length ? pairs.filter((p) => p.orthogonality > 0.5).length / pairs.length : 0,
    meanOrthogonality: pairs.length ? pairs.reduce((s, p) => s + p.orthogonality, 0) / pairs.length : 0,
    parsingErrors,
  };
}

export interface TaxonomyScore {
  avgF1: number;
  avgConfidence: number;
  semanticOrthogonality: number;
  finalScore: number;
  accuracy: AccuracyResult;
  completeness: CompletenessResult;
  orthogonality: OrthogonalityResult;
}

/** All three autograders for one category set, and the final score. */
export async function scoreTaxonomy(
  client: LlmClient,
  sentences: readonly string[],
  labels: ArrayLike<number>,
  categories: readonly Category[],
  options: { seed?: number; settings?: LlmCallSettings; examples?: number; samples?: number } = {},
): Promise<TaxonomyScore> {
  const seed = options.seed ?? 0;
  const [accuracy, completeness, orthogonality] = await Promise.all([
    accuracyAutograder(client, sentences, labels, categories, { ...options, seed: seed * 3 + 1 }),
    completenessAutograder(client, sentences, labels, categories, { ...options, seed: seed * 3 + 2 }),
    semanticOrthogonality(client, categories, options),
  ]);
  const avgF1 = accuracy.avg.f1;
  const avgConfidence = completeness.avgConfidence;
  const semantic = orthogonality.score;
  return {
    avgF1,
    avgConfidence,
    semanticOrthogonality: semantic,
    finalScore: (avgF1 + avgConfidence + semantic) / 3,
    accuracy,
    completeness,
    orthogonality,
  };
}

/** Two-sided 97.5 % Student-t quantiles for 1–30 degrees of freedom. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11,
  2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** Mean and 95 % t-interval over repetitions (interval collapses to the mean for one value). */
export function summarise(values: number[]): { mean: number; low: number; high: number; n: number } {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, low: Number.NaN, high: Number.NaN, n };
  const mean = values.reduce((s, v) => s + v, 0) / n;
  if (n === 1) return { mean, low: mean, high: mean, n };
  const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
  const half = (n - 1 <= 30 ? T975[n - 2] : 1.96) * (sd / Math.sqrt(n));
  return { mean, low: mean - half, high: mean + half, n };
}
