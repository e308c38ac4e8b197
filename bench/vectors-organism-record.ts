// The stored record of docs/vectors.md's organism tables (bench/results/vectors-organism.json) and
// the Markdown those tables are printed as: bench/vectors-organism.ts writes both, and
// test/steer/organism-record.test.ts checks that the docs hold exactly what the record says.
import type { CategoryEval, SweepPoint } from '../src/steer/eval.ts';

export const RECORD_PATH = 'bench/results/vectors-organism.json';
export const RECORD_FORMAT = 'thinkwhen-vectors-organism-record/1';

/** One row of `thinkwhen vectors eval --json`: the eval's row plus the manifest's norm and losses. */
export interface EvalRow extends Omit<CategoryEval, 'samples'> {
  norm: number | null;
  heldout_loss_before: number | null;
  heldout_loss_after: number | null;
}

export interface EvalTable {
  categories: EvalRow[];
  method: string;
  window: string;
  coefs: number[];
  skipped: Array<{ latent: number; title: string; reason: string }>;
  seconds: number;
  model: { file: string; sha256: string };
  taxonomy: { k: number; layer: number };
  train_seconds: number;
}

export interface ModelFile {
  file: string;
  sha256: string;
}

export interface OrganismRecord {
  format: string;
  /** the commands that measured each table */
  commands: Record<'optimised' | 'diffmean', string>;
  /** the organism files the numbers are from (base_latent: null when the organism had none) */
  organism: { base: ModelFile; thinking: ModelFile; base_latent: ModelFile | null };
  machine: string;
  optimised: EvalTable;
  diffmean: EvalTable;
}

const rate = (x: number | null) => (x === null ? '—' : x.toFixed(2));
const loss = (x: number | null) => (x === null ? '—' : x.toFixed(4));

/** The Markdown table of one method: every coefficient of the sweep, the controls and the losses. */
export function methodTable(t: EvalTable): string {
  const cs = t.coefs.join(' / ');
  const across = (r: EvalRow, k: keyof Omit<SweepPoint, 'coef'>) =>
    r.sweep[0][k] === null ? '—' : r.sweep.map((p) => rate(p[k])).join(' / ');
  const lines = [
    `| latent | title | type | n | vector, c = ${cs} | bias | random | random + bias | unsteered | best c | ‖v‖ | held-out loss before → after |`,
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...t.categories.map(
      (r) =>
        `| ${r.latent} | ${r.title} | ${r.type ?? '—'} | ${r.n} | ${across(r, 'vector')} | ${across(r, 'bias')} | ${across(r, 'random')} | ${across(r, 'random_bias')} | ${rate(r.rate_unsteered)} | ${r.best_coef} | ${r.norm === null ? '—' : r.norm.toFixed(2)} | ${r.heldout_loss_before === null ? '—' : `${loss(r.heldout_loss_before)} → ${loss(r.heldout_loss_after)}`} |`,
    ),
  ];
  return lines.join('\n');
}

/** The issue's must-show columns at each vector's best coefficient. */
export function summaryTable(rec: OrganismRecord): string {
  const lines = [
    '| method | latent | type | n | best c | rate_vector | rate_bias | rate_random | rate_random_bias | rate_unsteered |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const method of ['optimised', 'diffmean'] as const) {
    for (const r of rec[method].categories) {
      lines.push(
        `| ${method} | ${r.latent} | ${r.type ?? '—'} | ${r.n} | ${r.best_coef} | ${rate(r.rate_vector)} | ${rate(r.rate_bias)} | ${rate(r.rate_random)} | ${rate(r.rate_random_bias)} | ${rate(r.rate_unsteered)} |`,
      );
    }
  }
  return lines.join('\n');
}
