// The self-contained HTML report: inline CSS and inline SVG only, so it opens anywhere, offline.

import { datasetLabel, pct, pValue, reportKs, runHeader, runRow } from './format.ts';
import type { Report } from './index.ts';
import { accuracyPlot, esc, gapPlot, passAtKPlot } from './svg.ts';
import { categoryTable, systemsTable } from './systems.ts';

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222}
h1{font-size:22px;margin:0 0 4px}h3{font-size:15px;margin:18px 0 6px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin:0 0 16px}table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;white-space:nowrap}th{background:#f4f4f4}
th.l,td.l{text-align:left}.warn{background:#fff6e0;border:1px solid #f0c36d;padding:8px 12px}
.warn li{margin:2px 0}.plot{display:block;margin:8px 0;max-width:100%;height:auto}
.plot .axis{stroke:#555}.plot .grid{stroke:#eee}.plot text{font:12px system-ui,sans-serif;fill:#333}
.plot .heading{font-weight:600}.plot .tick{fill:#666;font-size:11px}.gapband{fill:#dde8f7}
.mbase{stroke:#dc3912;stroke-width:3}.mthink{stroke:#109618;stroke-width:3}.mhybrid{fill:#3366cc}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}details{margin:6px 0}code{font-size:12px}
`;

/** `text` leading columns hold names and are left-aligned; the rest are numbers. */
function table(header: string[], rows: string[][], id: string, text: number): string {
  const cls = (i: number) => (i < text ? ' class="l"' : '');
  const th = header.map((h, i) => `<th${cls(i)}>${esc(h)}</th>`).join('');
  const trs = rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table id="${id}"><thead><tr>${th}</tr></thead><tbody>\n${trs}\n</tbody></table>`;
}

export function renderHtml(report: Report): string {
  const runs = report.runs;
  const ks = reportKs(runs);
  const c = report.comparison;
  const parts: string[] = [];
  parts.push(`<h1>${esc(report.title)}</h1>`);
  parts.push(
    `<p class="sub">thinkwhen evaluation report, generated ${esc(report.generatedAt)} from ${runs.length} run${runs.length === 1 ? '' : 's'}.</p>`,
  );
  if (c.warnings.length)
    parts.push(`<ul class="warn" id="warnings">${c.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>`);

  parts.push('<h2>Runs</h2>');
  parts.push(
    table(
      runHeader(ks),
      runs.map((r) => runRow(r, ks)),
      'runs',
      3,
    ),
  );
  parts.push(
    '<p class="sub">Accuracy is the mean over problems of the share of correct samples (unbiased pass@1); ' +
      "the interval is Wilson's score interval over problems. pass@k uses the unbiased estimator of Chen et al. (2021).</p>",
  );
  parts.push(accuracyPlot(runs));

  const sys = report.systems;
  if (sys?.rows.length) {
    parts.push('<h2>Systems: base, thinking, hybrid and controls</h2>');
    const t = systemsTable(sys);
    parts.push(table(t.header, t.rows, 'systems', 2));
    parts.push(
      `<p class="sub">Greedy runs. Gap recovered against ${esc(sys.base ?? 'no base run')} and ${esc(sys.thinking ?? 'no thinking run')} ` +
        "(the paper's clamped formula, on the problems all three share). Steered: the share of generated tokens where the " +
        "hybrid steered, averaged per problem (the paper's headline) and over all tokens. McNemar: exact two-sided test " +
        'of each run against the base run on the problems both answered; "only this / only base" count the discordant problems.</p>',
    );
    const c = categoryTable(sys);
    if (c) {
      parts.push('<h3>Steered tokens per category</h3>');
      parts.push(table(c.header, c.rows, 'categories', 1));
    }
  }

  if (c.gaps.length) {
    parts.push('<h2>Gap recovered</h2>');
    parts.push(
      table(
        [
          'hybrid',
          'base',
          'thinking',
          'problems',
          'base acc',
          'thinking acc',
          'hybrid acc',
          'recovered',
          'signed',
          'toward thinking',
          'note',
        ],
        c.gaps.map((g) => [
          g.hybrid,
          g.base,
          g.thinking,
          String(g.n),
          pct(g.accuracies.base),
          pct(g.accuracies.thinking),
          pct(g.accuracies.hybrid),
          pct(g.result.recovered),
          pct(g.result.signed),
          pct(g.result.towardThinking),
          g.result.reason ?? '',
        ]),
        'gaps',
        3,
      ),
    );
    parts.push(
      '<p class="sub">recovered = max(0, (hybrid − min(base, thinking)) / |thinking − base|), as in the paper; ' +
        'signed drops the clamp; toward thinking = (hybrid − base)/(thinking − base).</p>',
    );
    parts.push(gapPlot(c.gaps));
  }

  if (runs.some((r) => r.passAtK.some((p) => p.k > 1))) {
    // sampled runs at every k from 1 to n (the systems section's curves), the others at their ks
    const full = new Map(sys?.passAtK.map((p) => [p.name, p.points]));
    parts.push('<h2>pass@k</h2>');
    parts.push(passAtKPlot(runs.map((r) => ({ ...r, passAtK: full.get(r.name) ?? r.passAtK }))));
  }

  if (c.pairs.length) {
    parts.push('<h2>Paired comparisons</h2>');
    parts.push(
      table(
        ['A', 'B', 'problems', 'A acc', 'B acc', 'both right', 'only A', 'only B', 'both wrong', 'McNemar p'],
        c.pairs.map((p) => [
          p.a,
          p.b,
          String(p.result.n),
          pct(p.result.accuracyA),
          pct(p.result.accuracyB),
          String(p.result.bothRight),
          String(p.result.onlyA),
          String(p.result.onlyB),
          String(p.result.bothWrong),
          pValue(p.result.p),
        ]),
        'pairs',
        2,
      ),
    );
    parts.push(
      '<p class="sub">First sample of each problem; exact two-sided McNemar (binomial) test on the discordant problems.</p>',
    );
  }

  parts.push('<h2>Run details</h2>');
  for (const r of runs) {
    const d = r.dataset;
    parts.push(
      `<details><summary>${esc(r.name)}: ${esc(datasetLabel(r))}, grader ${esc(r.grader ?? 'none')}</summary>` +
        `<p>store <code>${esc(r.path)}</code>${d ? `; data <code>${esc(d.source)}</code> sha256 <code>${esc(d.sha256)}</code>` : ''}; ` +
        `${r.timing.sessions} session(s)${r.shard ? `; shard ${r.shard.index}/${r.shard.count}` : ''}</p>` +
        `<pre>${esc(JSON.stringify(r.config, null, 2))}</pre></details>`,
    );
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(report.title)}</title><style>${CSS}</style></head>
<body>
${parts.join('\n')}
</body></html>
`;
}
