// Builds a report from run stores and writes it as HTML, JSON and markdown.
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ThinkwhenError } from '../../errors.ts';
import { type Comparison, compareRuns } from './compare.ts';
import { renderHtml } from './html.ts';
import { renderMarkdown } from './markdown.ts';
import { type RunSummary, type SummarizeOptions, summarizeRun } from './summarize.ts';
import { type SystemsSection, systemsSection } from './systems.ts';

export interface Report {
  title: string;
  generatedAt: string;
  runs: RunSummary[];
  comparison: Comparison;
  /** base, thinking, hybrid and controls side by side, category usage, pass@k curves (null: nothing to compare) */
  systems: SystemsSection | null;
}

export interface BuildOptions extends SummarizeOptions {
  title?: string;
  /** Override each run's role, in the order of the paths (`base`, `thinking`, `hybrid`, or '' to keep). */
  roles?: string[];
  onProgress?: (done: number, total: number, path: string) => void;
}

export function buildReport(paths: string[], opts: BuildOptions = {}): Report {
  if (paths.length === 0)
    throw new ThinkwhenError('REPORT_NO_RUNS', 'no run stores given', 'name at least one run file');
  if (opts.roles && opts.roles.length !== paths.length) {
    throw new ThinkwhenError(
      'REPORT_ROLES',
      `--roles has ${opts.roles.length} entries for ${paths.length} runs`,
      'give one role per run, in order',
    );
  }
  const data = paths.map((p, i) => {
    opts.onProgress?.(i, paths.length, p);
    const d = summarizeRun(p, opts);
    const role = opts.roles?.[i];
    if (role) d.summary.role = role;
    return d;
  });
  opts.onProgress?.(paths.length, paths.length, '');
  // A pass@k no run can give would silently vanish from every table.
  const most = Math.max(0, ...data.map((d) => d.maxK));
  const tooLarge = opts.ks?.filter((k) => k > most) ?? [];
  if (tooLarge.length) {
    throw new ThinkwhenError(
      'REPORT_K_TOO_LARGE',
      `pass@${tooLarge[0]} needs ${tooLarge[0]} graded samples per problem; the runs have at most ${most}`,
      most ? `use k values from 1 to ${most}` : 'grade the runs first',
    );
  }
  // Names label table rows and plot series, so two runs must not share one.
  const seen = new Map<string, number>();
  for (const d of data) {
    const n = (seen.get(d.summary.name) ?? 0) + 1;
    seen.set(d.summary.name, n);
    if (n > 1) d.summary.name = `${d.summary.name} (${n})`;
  }
  const comparison = compareRuns(data);
  return {
    title: opts.title ?? 'thinkwhen evaluation',
    generatedAt: new Date().toISOString(),
    runs: data.map((d) => d.summary),
    comparison,
    systems: systemsSection(data, comparison.gaps, { bootstrap: opts.bootstrap }),
  };
}

export interface WrittenReport {
  html: string;
  json: string;
  markdown: string;
}

export function writeReport(report: Report, outDir: string): WrittenReport {
  const dir = resolve(outDir);
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new ThinkwhenError('NOT_A_FOLDER', `--out ${outDir} is a file, not a folder`, 'give --out a folder path');
  }
  mkdirSync(dir, { recursive: true });
  const files = { html: join(dir, 'report.html'), json: join(dir, 'report.json'), markdown: join(dir, 'report.md') };
  writeFileSync(files.html, renderHtml(report));
  // JSON.stringify writes NaN as null, which is what a missing number should read as.
  writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(files.markdown, renderMarkdown(report));
  return files;
}

export { type Comparison, compareRuns } from './compare.ts';
export { type RunSummary, summarizeRun } from './summarize.ts';
export { type SystemsSection, systemsSection } from './systems.ts';
