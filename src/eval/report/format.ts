// Number formatting shared by the HTML and markdown renderers, so both print the same figures.
import type { RunSummary } from './summarize.ts';

export const pct = (x: number | null | undefined, digits = 1): string =>
  x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : `${(x * 100).toFixed(digits)}%`;

export const num = (x: number | null | undefined, digits = 0): string =>
  x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits);

export function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return 'n/a';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  const m = s / 60;
  return m < 120 ? `${m.toFixed(1)} min` : `${(m / 60).toFixed(1)} h`;
}

export function pValue(p: number): string {
  return p < 1e-4 ? p.toExponential(1) : p.toFixed(4);
}

export function datasetLabel(r: RunSummary): string {
  const d = r.dataset;
  if (!d) return 'unknown';
  const slice = d.start || d.limit !== null ? ` [${d.start}:${d.limit === null ? '' : d.start + d.limit}]` : '';
  return `${d.name}/${d.split}${slice}`;
}

/** The k columns shown: the union over runs, at most six, always including 1. */
export function reportKs(runs: RunSummary[]): number[] {
  const ks = [...new Set(runs.flatMap((r) => r.passAtK.map((p) => p.k)))].sort((a, b) => a - b);
  return ks.length <= 6 ? ks : [...ks.slice(0, 5), ks[ks.length - 1]];
}

export function passAt(r: RunSummary, k: number): string {
  const p = r.passAtK.find((x) => x.k === k);
  return p ? pct(p.value) : '';
}

/** One row of the runs table as plain strings (escaped later by the renderer). */
export function runRow(r: RunSummary, ks: number[]): string[] {
  const a = r.accuracy;
  return [
    r.name,
    r.role ?? '',
    datasetLabel(r),
    `${r.gradedProblems}/${r.expectedProblems ?? r.problems}${r.complete ? '' : ' (incomplete)'}`,
    String(r.samplesPerProblem),
    Number.isFinite(a.p) ? `${pct(a.p)} [${pct(a.lo)}, ${pct(a.hi)}]` : 'n/a',
    ...ks.map((k) => passAt(r, k)),
    num(r.completionTokens.mean),
    pct(r.steeredFraction),
    pct(r.truncated),
    r.cost === null ? '' : r.cost.toFixed(2),
    duration(r.timing.wallMs),
  ];
}

export function runHeader(ks: number[]): string[] {
  return [
    'run',
    'role',
    'dataset',
    'graded',
    'samples',
    'accuracy [95% CI]',
    ...ks.map((k) => `pass@${k}`),
    'mean tokens',
    'steered',
    'truncated',
    'cost',
    'wall time',
  ];
}
