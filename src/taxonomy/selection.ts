// Selection of the taxonomy (docs/method.md §2.4, ambiguity A8): the (layer, K) of the grid maximising a
// chosen metric (paper: the LLM final score; offline: the offline judge's), written to `<dir>/selection.json`.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ThinkwhenError } from '../errors.ts';
import type { CategoryInfo, EntryMetrics, Grid, GridEntry } from './evaluate.ts';
import { writeJsonAtomic } from './json-file.ts';

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
  'readout',
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
    case 'readout':
      return m.readout;
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
          : metric === 'readout'
            ? 'it needs both models of the pair (the organism measures it when it builds its artifacts)'
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
