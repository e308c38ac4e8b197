// Cross-run numbers: the paper's gap recovered (base/thinking/hybrid roles) and paired McNemar tests,
// both computed on the problems the runs have in common so that they compare like with like.
import { type GapRecovered, gapRecovered, type PairedComparison, pairedComparison } from '../metrics.ts';
import type { RunData } from './summarize.ts';

export interface GapEntry {
  base: string;
  thinking: string;
  hybrid: string;
  /** Problems graded in all three runs. */
  n: number;
  accuracies: { base: number; thinking: number; hybrid: number };
  result: GapRecovered;
}

export interface PairEntry {
  a: string;
  b: string;
  result: PairedComparison;
}

export interface Comparison {
  gaps: GapEntry[];
  pairs: PairEntry[];
  warnings: string[];
}

function meanOver(m: Map<string, number>, ids: string[]): number {
  if (ids.length === 0) return Number.NaN;
  let s = 0;
  for (const id of ids) s += m.get(id)!;
  return s / ids.length;
}

export function compareRuns(runs: RunData[]): Comparison {
  const warnings: string[] = [];
  const gaps: GapEntry[] = [];
  // Greedy runs (one sample per problem) first: the gap is the paper's greedy comparison.
  const byRole = (r: string) =>
    runs
      .filter((x) => x.summary.role === r)
      .sort((a, b) => Number(a.summary.samplesPerProblem > 1) - Number(b.summary.samplesPerProblem > 1));
  const [bases, thinkings, hybrids] = [byRole('base'), byRole('thinking'), byRole('hybrid')];
  if (bases.length > 1)
    warnings.push(`${bases.length} runs have role 'base'; gap recovered uses ${bases[0].summary.name}`);
  if (thinkings.length > 1)
    warnings.push(`${thinkings.length} runs have role 'thinking'; gap recovered uses ${thinkings[0].summary.name}`);
  if (hybrids.length && (!bases.length || !thinkings.length)) {
    warnings.push('gap recovered needs one base and one thinking run besides the hybrid (set config.role or --roles)');
  }
  if (bases.length && thinkings.length) {
    const [b, t] = [bases[0], thinkings[0]];
    for (const h of hybrids) {
      const ids = [...h.perProblem.keys()].filter((id) => b.perProblem.has(id) && t.perProblem.has(id));
      const acc = {
        base: meanOver(b.perProblem, ids),
        thinking: meanOver(t.perProblem, ids),
        hybrid: meanOver(h.perProblem, ids),
      };
      const n = ids.length;
      const sizes = [b, t, h].map((r) => r.perProblem.size);
      if (sizes.some((s) => s !== n)) {
        warnings.push(
          `gap recovered for ${h.summary.name} uses the ${n} problems graded in all three runs (of ${sizes.join('/')})`,
        );
      }
      gaps.push({
        base: b.summary.name,
        thinking: t.summary.name,
        hybrid: h.summary.name,
        n,
        accuracies: acc,
        result: n ? gapRecovered(acc.base, acc.thinking, acc.hybrid) : gapRecovered(Number.NaN, Number.NaN, Number.NaN),
      });
    }
  }

  const pairs: PairEntry[] = [];
  for (let i = 0; i < runs.length; i++) {
    for (let j = i + 1; j < runs.length; j++) {
      const result = pairedComparison(runs[i].firstSample, runs[j].firstSample);
      if (result.n > 0) pairs.push({ a: runs[i].summary.name, b: runs[j].summary.name, result });
    }
  }

  const shas = new Set(runs.map((r) => r.summary.dataset?.sha256 ?? 'unknown'));
  if (shas.size > 1) warnings.push('the runs were made on different dataset files (sha256 differ): compare with care');
  for (const r of runs) {
    const s = r.summary;
    if (!s.complete) {
      warnings.push(
        `${s.name} is incomplete: ${s.gradedProblems} graded of ${s.expectedProblems ?? s.problems} problems, ${s.generations} generations`,
      );
    }
    if (!s.grader) warnings.push(`${s.name} has no grades`);
  }
  return { gaps, pairs, warnings };
}
