// The markdown version of the report: the same tables, for READMEs, issues and terminals.

import { pct, pValue, reportKs, runHeader, runRow } from './format.ts';
import type { Report } from './index.ts';
import { categoryTable, systemsTable } from './systems.ts';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** `text` leading columns are names (left-aligned); the rest are numbers. */
function table(header: string[], rows: string[][], text = 1): string {
  return [
    `| ${header.map(cell).join(' | ')} |`,
    `|${header.map((_, i) => (i < text ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

export function renderMarkdown(report: Report): string {
  const ks = reportKs(report.runs);
  const c = report.comparison;
  const out = [
    `# ${report.title}`,
    '',
    table(
      runHeader(ks),
      report.runs.map((r) => runRow(r, ks)),
      3,
    ),
  ];
  const sys = report.systems;
  if (sys?.rows.length) {
    const t = systemsTable(sys);
    out.push('', '## Systems: base, thinking, hybrid and controls', '', table(t.header, t.rows, 2));
    const cat = categoryTable(sys);
    if (cat) out.push('', '### Steered tokens per category', '', table(cat.header, cat.rows, 1));
  }
  if (sys?.passAtK.length) {
    const n = Math.max(...sys.passAtK.map((p) => p.samples));
    const ks = Array.from({ length: n }, (_, i) => i + 1);
    out.push(
      '',
      '## pass@k (unbiased estimator)',
      '',
      table(
        ['run', ...ks.map((k) => `k=${k}`)],
        sys.passAtK.map((p) => [p.name, ...ks.map((k) => pct(p.points.find((x) => x.k === k)?.value))]),
        1,
      ),
    );
  }
  if (c.gaps.length) {
    out.push(
      '',
      '## Gap recovered',
      '',
      table(
        ['hybrid', 'problems', 'base', 'thinking', 'hybrid acc', 'recovered', 'signed', 'note'],
        c.gaps.map((g) => [
          g.hybrid,
          String(g.n),
          pct(g.accuracies.base),
          pct(g.accuracies.thinking),
          pct(g.accuracies.hybrid),
          pct(g.result.recovered),
          pct(g.result.signed),
          g.result.reason ?? '',
        ]),
        1,
      ),
    );
  }
  if (c.pairs.length) {
    out.push(
      '',
      '## Paired comparisons (McNemar, first sample)',
      '',
      table(
        ['A', 'B', 'problems', 'only A', 'only B', 'p'],
        c.pairs.map((p) => [
          p.a,
          p.b,
          String(p.result.n),
          String(p.result.onlyA),
          String(p.result.onlyB),
          pValue(p.result.p),
        ]),
        2,
      ),
    );
  }
  if (c.warnings.length) out.push('', '## Warnings', '', ...c.warnings.map((w) => `- ${w}`));
  return `${out.join('\n')}\n`;
}
