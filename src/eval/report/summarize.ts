// Reduces one run store to the numbers a report shows: accuracy (Wilson), pass@k, tokens, steering, cost, time.
import { ThinkwhenError } from '../../errors.ts';
import type { DatasetInfo } from '../datasets.ts';
import {
  defaultKs,
  type Interval,
  type PassAtKPoint,
  type Price,
  passAtKCurve,
  cost as priceOf,
  type SampleCount,
  type TokenStats,
  tokenStats,
  wilson,
} from '../metrics.ts';
import { type RunConfig, RunStore, type Shard } from '../store.ts';

export interface RunSummary {
  path: string;
  name: string;
  role: string | null;
  config: RunConfig;
  dataset: DatasetInfo | null;
  shard: Shard | null;
  /** Grader whose verdicts the numbers use (a store may hold several). */
  grader: string | null;
  graders: string[];
  /** Problems registered in the store, and those the dataset slice has (null when unknown). */
  problems: number;
  expectedProblems: number | null;
  samplesPerProblem: number;
  generations: number;
  /** Problems with at least one graded sample: the accuracy denominator. */
  gradedProblems: number;
  /** True when every problem of the slice has all its samples generated and graded. */
  complete: boolean;
  /**
   * Mean over problems of (correct samples / graded samples) = unbiased pass@1. The interval is Wilson's
   * with one trial per problem (exact for one sample per problem; with several it treats each problem's
   * success fraction as one trial).
   */
  accuracy: Interval & { correct: number; n: number };
  passAtK: PassAtKPoint[];
  completionTokens: TokenStats;
  promptTokens: number;
  /** Steered tokens / generated tokens over generations that report steering; null when none do. */
  steeredFraction: number | null;
  /** Per-generation steering and its categories, for runs that report steering (hybrids). */
  steering: SteeringSummary | null;
  /** Fraction of generations that stopped at the token limit. */
  truncated: number;
  cost: number | null;
  timing: { generationMs: number; meanMs: number | null; wallMs: number | null; sessions: number };
}

export interface CategoryUsage {
  /** SAE latent (null: tokens steered without a category, e.g. selection-only) */
  latent: number | null;
  title: string | null;
  /** steered tokens in this category */
  steered: number;
}

export interface SteeringSummary {
  /** generations that report steering */
  generations: number;
  /** mean over generations of steered / generated tokens: the paper's headline (docs/method.md §2.7) */
  perProblemMean: number;
  /** all steered tokens / all generated tokens */
  tokenWeighted: number;
  /** steered tokens per category, most used first; empty when the run stored no per-token records */
  categories: CategoryUsage[];
}

export interface SummarizeOptions {
  grader?: string;
  ks?: number[];
  price?: Price;
  bootstrap?: number;
}

export interface RunData {
  summary: RunSummary;
  /** problem id → per-problem success fraction. */
  perProblem: Map<string, number>;
  /** problem id → correctness of sample 0 (the greedy sample), for paired tests. */
  firstSample: Map<string, boolean>;
  /** The largest k pass@k can be computed for: the fewest graded samples of any problem (0 if none). */
  maxK: number;
  /** graded samples and correct ones per problem, for pass@k at any k */
  sampleCounts: SampleCount[];
}

/** Per-token records of a generation's annotations: an array of them, or `{records: [...]}`. */
function tokenRecords(annotations: unknown): { steered?: unknown; latent?: unknown; title?: unknown }[] {
  const list = Array.isArray(annotations)
    ? annotations
    : annotations && typeof annotations === 'object' && Array.isArray((annotations as { records?: unknown }).records)
      ? (annotations as { records: unknown[] }).records
      : [];
  return list.filter((r): r is Record<string, unknown> => r !== null && typeof r === 'object');
}

function pickGrader(path: string, graders: string[], config: RunConfig, wanted?: string): string | null {
  if (wanted) {
    if (graders.includes(wanted)) return wanted;
    throw new ThinkwhenError(
      'UNKNOWN_GRADER',
      `${path} has no grades by '${wanted}'`,
      graders.length ? `use one of its graders: ${graders.join(', ')}` : 'grade the run first',
    );
  }
  if (typeof config.grader === 'string' && graders.includes(config.grader)) return config.grader;
  return graders[0] ?? null;
}

export function summarizeRun(path: string, opts: SummarizeOptions = {}): RunData {
  const store = RunStore.openReadonly(path);
  try {
    const graders = store.graders();
    const grader = pickGrader(path, graders, store.config, opts.grader);
    const counts = store.counts();
    const perSample = new Map<string, Map<number, boolean>>();
    for (const g of grader ? store.grades(grader) : []) {
      const m = perSample.get(g.problemId) ?? new Map<number, boolean>();
      perSample.set(g.problemId, m);
      m.set(g.sampleIndex, g.correct);
    }
    const perProblem = new Map<string, number>();
    const firstSample = new Map<string, boolean>();
    const sampleCounts: SampleCount[] = [];
    let correctSum = 0;
    for (const [id, m] of perSample) {
      const c = [...m.values()].filter(Boolean).length;
      perProblem.set(id, c / m.size);
      correctSum += c / m.size;
      sampleCounts.push({ n: m.size, c });
      const s0 = m.get(0);
      if (s0 !== undefined) firstSample.set(id, s0);
    }
    const graded = perProblem.size;
    const ks = (opts.ks ?? defaultKs(sampleCounts)).filter((k) => sampleCounts.every((s) => s.n >= k));

    const completion: number[] = [];
    let promptTokens = 0;
    let steered = 0;
    let steerable = 0;
    const fractions: number[] = [];
    const categories = new Map<string, CategoryUsage>();
    let truncated = 0;
    let generationMs = 0;
    let timed = 0;
    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    for (const g of store.generations()) {
      if (g.completionTokens !== null) completion.push(g.completionTokens);
      promptTokens += g.promptTokens ?? 0;
      if (g.steeredTokens !== null && g.completionTokens !== null) {
        steered += g.steeredTokens;
        steerable += g.completionTokens;
        fractions.push(g.completionTokens ? g.steeredTokens / g.completionTokens : 0);
        for (const r of tokenRecords(g.annotations)) {
          if (r.steered !== true) continue;
          const latent = typeof r.latent === 'number' ? r.latent : null;
          const title = typeof r.title === 'string' ? r.title : null;
          const key = `${latent}\u0000${title}`;
          const c = categories.get(key) ?? { latent, title, steered: 0 };
          c.steered++;
          categories.set(key, c);
        }
      }
      if (g.finishReason === 'length') truncated++;
      if (g.durationMs !== null) {
        generationMs += g.durationMs;
        timed++;
      }
      if (g.startedAt !== null) first = Math.min(first, g.startedAt);
      if (g.finishedAt !== null) last = Math.max(last, g.finishedAt);
    }
    const tokens = tokenStats(completion);
    const expected = store.dataset ? store.dataset.count : null;
    const spp = store.config.samplesPerProblem;
    const w = wilson(correctSum, graded);
    const summary: RunSummary = {
      path: store.path,
      name: store.config.name,
      role: typeof store.config.role === 'string' ? store.config.role : null,
      config: store.config,
      dataset: store.dataset,
      shard: store.shard,
      grader,
      graders,
      problems: counts.problems,
      expectedProblems: expected,
      samplesPerProblem: spp,
      generations: counts.generations,
      gradedProblems: graded,
      complete:
        (expected === null || counts.problems >= expected) &&
        counts.generations >= counts.problems * spp &&
        [...perSample.values()].reduce((s, m) => s + m.size, 0) >= counts.problems * spp,
      accuracy: { ...w, correct: correctSum, n: graded },
      passAtK: graded ? passAtKCurve(sampleCounts, ks, { bootstrap: opts.bootstrap ?? 1000, seed: 1 }) : [],
      completionTokens: tokens,
      promptTokens,
      steeredFraction: steerable ? steered / steerable : null,
      steering: fractions.length
        ? {
            generations: fractions.length,
            perProblemMean: fractions.reduce((a, b) => a + b, 0) / fractions.length,
            tokenWeighted: steerable ? steered / steerable : 0,
            categories: [...categories.values()].sort(
              (a, b) => b.steered - a.steered || (a.latent ?? -1) - (b.latent ?? -1),
            ),
          }
        : null,
      truncated: counts.generations ? truncated / counts.generations : 0,
      cost: opts.price ? priceOf(promptTokens, tokens.total, opts.price) : null,
      timing: {
        generationMs,
        meanMs: timed ? generationMs / timed : null,
        wallMs: Number.isFinite(first) && Number.isFinite(last) ? last - first : null,
        sessions: counts.sessions,
      },
    };
    const maxK = sampleCounts.length ? sampleCounts.reduce((m, x) => Math.min(m, x.n), Number.POSITIVE_INFINITY) : 0;
    return { summary, perProblem, firstSample, maxK, sampleCounts };
  } finally {
    store.close();
  }
}
