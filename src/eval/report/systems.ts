// The hybrid table of a report (docs/method.md §2.8, §3): base, thinking, the hybrid and its
// controls side by side — accuracy with Wilson intervals, gap recovered, % of tokens steered (per
// problem and token-weighted), exact McNemar against the base model, tokens per problem — the
// categories each hybrid steered with, and pass@k curves (every k from 1 to n) of sampled runs.
import { type Interval, type PairedComparison, type PassAtKPoint, pairedComparison, passAtKCurve } from '../metrics.ts';
import type { GapEntry } from './compare.ts';
import { pct, pValue } from './format.ts';
import type { CategoryUsage, RunData } from './summarize.ts';

export interface SystemRow {
  name: string;
  role: string | null;
  /** graded problems */
  n: number;
  accuracy: Interval & { correct: number; n: number };
  /** the paper's gap recovered (hybrid rows), and the same without the clamp at 0 */
  gapRecovered: number | null;
  gapSigned: number | null;
  /** per-generation mean of steered / generated tokens, and all steered / all generated */
  steeredMean: number | null;
  steeredToken: number | null;
  /** this run (A) against the base run (B), first sample of each problem */
  vsBase: PairedComparison | null;
  tokensMean: number;
}

export interface CategoryRow {
  latent: number | null;
  title: string | null;
  /** run name → steered tokens in this category */
  steered: Record<string, number>;
}

export interface PassAtKSeries {
  name: string;
  role: string | null;
  samples: number;
  points: PassAtKPoint[];
}

export interface SystemsSection {
  /** the runs the gap and McNemar columns are measured against */
  base: string | null;
  thinking: string | null;
  rows: SystemRow[];
  categories: CategoryRow[];
  passAtK: PassAtKSeries[];
}

const ROLE_ORDER = ['base', 'thinking', 'hybrid'];
const rank = (role: string | null) => {
  const i = ROLE_ORDER.indexOf(role ?? '');
  return i < 0 ? ROLE_ORDER.length : i;
};

/**
 * The section, or null when there is nothing to compare (no greedy run besides a base run, and no
 * sampled run). Greedy runs (one sample per problem) fill the table; sampled runs the pass@k curves.
 */
export function systemsSection(
  runs: RunData[],
  gaps: GapEntry[],
  opts: { bootstrap?: number } = {},
): SystemsSection | null {
  const greedy = runs
    .filter((r) => r.summary.samplesPerProblem === 1)
    .map((r, i) => ({ r, i }))
    .sort((a, b) => rank(a.r.summary.role) - rank(b.r.summary.role) || a.i - b.i)
    .map((x) => x.r);
  const sampled = runs.filter((r) => r.summary.samplesPerProblem > 1);
  const hybrids = greedy.filter((r) => r.summary.role === 'hybrid');
  const base = greedy.find((r) => r.summary.role === 'base') ?? null;
  const thinking = greedy.find((r) => r.summary.role === 'thinking') ?? null;
  if (!hybrids.length && !(base && thinking) && !sampled.length) return null;

  const rows: SystemRow[] = greedy.map((r) => {
    const s = r.summary;
    const gap = gaps.find((g) => g.hybrid === s.name && g.base === base?.summary.name);
    return {
      name: s.name,
      role: s.role,
      n: s.gradedProblems,
      accuracy: s.accuracy,
      gapRecovered: gap ? gap.result.recovered : null,
      gapSigned: gap ? gap.result.signed : null,
      steeredMean: s.steering ? s.steering.perProblemMean : null,
      steeredToken: s.steering ? s.steering.tokenWeighted : null,
      vsBase: base && r !== base ? pairedComparison(r.firstSample, base.firstSample) : null,
      tokensMean: s.completionTokens.mean,
    };
  });

  const byKey = new Map<string, CategoryRow>();
  for (const r of hybrids) {
    for (const c of r.summary.steering?.categories ?? []) {
      const key = `${c.latent}\u0000${c.title}`;
      const row = byKey.get(key) ?? { latent: c.latent, title: c.title, steered: {} };
      row.steered[r.summary.name] = c.steered;
      byKey.set(key, row);
    }
  }
  const categories = [...byKey.values()].sort((a, b) => (a.latent ?? -1) - (b.latent ?? -1));

  const passAtK = sampled
    .filter((r) => r.sampleCounts.length > 0)
    .map((r) => {
      const n = Math.min(...r.sampleCounts.map((c) => c.n));
      const ks = Array.from({ length: n }, (_, i) => i + 1);
      return {
        name: r.summary.name,
        role: r.summary.role,
        samples: n,
        points: passAtKCurve(r.sampleCounts, ks, { bootstrap: opts.bootstrap ?? 1000, seed: 1 }),
      };
    });
  return { base: base?.summary.name ?? null, thinking: thinking?.summary.name ?? null, rows, categories, passAtK };
}

/** Column headers and string cells of the systems table (the HTML and markdown renderers share them). */
export function systemsTable(s: SystemsSection): { header: string[]; rows: string[][] } {
  const header = [
    'system',
    'role',
    'problems',
    'accuracy [95% CI]',
    'gap recovered',
    'steered (per problem)',
    'steered (token-weighted)',
    `only this / only ${s.base ?? 'base'}`,
    'McNemar p',
    'tokens per problem',
  ];
  const rows = s.rows.map((r) => [
    r.name,
    r.role ?? '',
    String(r.n),
    Number.isFinite(r.accuracy.p) ? `${pct(r.accuracy.p)} [${pct(r.accuracy.lo)}, ${pct(r.accuracy.hi)}]` : 'n/a',
    r.gapRecovered === null
      ? ''
      : `${pct(r.gapRecovered)}${r.gapSigned !== null && r.gapSigned < 0 ? ` (signed ${pct(r.gapSigned)})` : ''}`,
    r.steeredMean === null ? '' : pct(r.steeredMean),
    r.steeredToken === null ? '' : pct(r.steeredToken),
    r.vsBase ? `${r.vsBase.onlyA} / ${r.vsBase.onlyB}` : '',
    r.vsBase ? pValue(r.vsBase.p) : '',
    Number.isFinite(r.tokensMean) ? r.tokensMean.toFixed(0) : 'n/a',
  ]);
  return { header, rows };
}

/** Steered tokens per category: count and share of each hybrid run's steered tokens. */
export function categoryTable(s: SystemsSection): { header: string[]; rows: string[][] } | null {
  if (!s.categories.length) return null;
  const runs = s.rows.filter((r) => r.role === 'hybrid').map((r) => r.name);
  const totals = Object.fromEntries(
    runs.map((n) => [n, s.categories.reduce((sum, c) => sum + (c.steered[n] ?? 0), 0)]),
  );
  const label = (c: Pick<CategoryUsage, 'latent' | 'title'>) =>
    c.latent === null ? (c.title ?? 'no category') : `${c.latent}${c.title ? `: ${c.title}` : ''}`;
  return {
    header: ['category', ...runs],
    rows: s.categories.map((c) => [
      label(c),
      ...runs.map((n) => {
        const k = c.steered[n] ?? 0;
        return totals[n] ? `${k} (${pct(k / totals[n])})` : '';
      }),
    ]),
  };
}
