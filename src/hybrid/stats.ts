// Statistics of hybrid runs (docs/method.md §2.7, §2.9): the share of steered tokens per problem,
// then averaged over problems (the paper's headline "12 %"), and token-weighted; which
// categories, coefficients, windows and vector files the steered tokens used.
import type { TokenRecord } from './options.ts';

export interface ProblemStats {
  id: string;
  tokens: number;
  steered: number;
  /** steered / tokens (0 for an empty generation) */
  fraction: number;
}

export interface Usage {
  [key: string]: number;
}

export interface HybridStats {
  problems: number;
  tokens: number;
  steered: number;
  /** mean over problems of steered / generated: the paper's headline */
  steeredPerProblem: number;
  /** all steered tokens / all generated tokens */
  steeredTokenWeighted: number;
  meanTokens: number;
  /** steered tokens per latent ("latent: title" → count) */
  categories: Usage;
  coefficients: Usage;
  windows: Usage;
  /** steered tokens per vector applied (file names; bias-only fallbacks are listed as such) */
  vectors: Usage;
  /** steered tokens whose latent had no vector (c·bias alone) */
  missingVector: number;
  /** steered tokens whose emitted token is the base model's own greedy token */
  steeredToBaseToken: number;
  /** steered tokens whose emitted token scores the thinking model's top log-prob (steering reached its token) */
  steeredToThinkingToken: number;
  /** mean candidates evaluated per steered token (fewer than the grid after early exits) */
  meanCandidates: number;
  perProblem: ProblemStats[];
}

const bump = (u: Usage, k: string | number) => {
  u[k] = (u[k] ?? 0) + 1;
};

export function hybridStats(runs: { id: string; records: TokenRecord[] }[]): HybridStats {
  const s: HybridStats = {
    problems: runs.length,
    tokens: 0,
    steered: 0,
    steeredPerProblem: 0,
    steeredTokenWeighted: 0,
    meanTokens: 0,
    categories: {},
    coefficients: {},
    windows: {},
    vectors: {},
    missingVector: 0,
    steeredToBaseToken: 0,
    steeredToThinkingToken: 0,
    meanCandidates: 0,
    perProblem: [],
  };
  let candidates = 0;
  for (const run of runs) {
    let steered = 0;
    for (const r of run.records) {
      if (!r.steered) continue;
      steered++;
      bump(s.categories, r.title ? `${r.latent}: ${r.title}` : String(r.latent));
      if (r.coefficient !== undefined) bump(s.coefficients, r.coefficient);
      if (r.window !== undefined) bump(s.windows, r.window);
      if (r.vector) bump(s.vectors, r.vector);
      if (r.missingVector) s.missingVector++;
      if (r.source === 'base' && r.token === r.baseGreedy) s.steeredToBaseToken++;
      if (r.reachedThinking) s.steeredToThinkingToken++;
      candidates += r.candidates?.length ?? 0;
    }
    const tokens = run.records.length;
    s.tokens += tokens;
    s.steered += steered;
    s.perProblem.push({ id: run.id, tokens, steered, fraction: tokens ? steered / tokens : 0 });
  }
  if (runs.length) {
    s.steeredPerProblem = s.perProblem.reduce((a, p) => a + p.fraction, 0) / runs.length;
    s.meanTokens = s.tokens / runs.length;
  }
  if (s.tokens) s.steeredTokenWeighted = s.steered / s.tokens;
  if (s.steered) s.meanCandidates = candidates / s.steered;
  return s;
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

function top(u: Usage, n = 8): string {
  const e = Object.entries(u).sort((a, b) => b[1] - a[1]);
  const shown = e.slice(0, n).map(([k, v]) => `${k} ×${v}`);
  if (e.length > n) shown.push(`… ${e.length - n} more`);
  return shown.join(', ') || '—';
}

/** A few lines for a terminal. */
export function formatStats(s: HybridStats): string {
  return [
    `problems ${s.problems}, tokens ${s.tokens} (mean ${s.meanTokens.toFixed(1)})`,
    `steered: ${pct(s.steeredPerProblem)} per problem (mean), ${pct(s.steeredTokenWeighted)} token-weighted (${s.steered} tokens)`,
    `steered tokens that reached the thinking model's token: ${s.steeredToThinkingToken}; that kept the base model's own: ${s.steeredToBaseToken}; mean candidates evaluated: ${s.meanCandidates.toFixed(1)}`,
    `categories: ${top(s.categories)}`,
    `coefficients: ${top(s.coefficients, 10)}`,
    `windows: ${top(s.windows)}`,
    `vectors: ${top(s.vectors, 4)}${s.missingVector ? `; ${s.missingVector} steered with the bias alone (latent without a vector)` : ''}`,
  ].join('\n');
}
