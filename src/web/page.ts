// The viewer's page: the summary drawn on the server (the report's tables and plots, a histogram of
// steered fractions) and the frame the client script (app.js) fills with problems and traces.
import type { Report } from '../eval/report/index.ts';
import { accuracyPlot, esc, PALETTE, passAtKPlot } from '../eval/report/svg.ts';
import { categoryTable, systemsTable } from '../eval/report/systems.ts';
import type { ViewerData } from './data.ts';

function table(header: string[], rows: string[][], id: string, text: number): string {
  const cls = (i: number) => (i < text ? ' class="l"' : '');
  const th = header.map((h, i) => `<th${cls(i)}>${esc(h)}</th>`).join('');
  const trs = rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table id="${id}"><thead><tr>${th}</tr></thead><tbody>\n${trs}\n</tbody></table>`;
}

/** Problems per steered-fraction bin (0–5 %, 5–10 %, …), one bar series per hybrid run. */
export function steeredHistogram(data: ViewerData): string {
  const runs = data.runs.map((r, k) => ({ r, k })).filter(({ r }) => r.role === 'hybrid');
  const bins = 20;
  const series = runs.map(({ r, k }) => {
    const counts = new Array<number>(bins).fill(0);
    for (const p of data.problems) {
      const c = p.systems[k];
      if (!c || c.steered === null || !c.length) continue;
      counts[Math.min(bins - 1, Math.floor((c.steered / c.length) * bins))]++;
    }
    return { name: r.name, counts };
  });
  if (!series.some((s) => s.counts.some((c) => c > 0))) return '';
  const w = 660;
  const h = 220;
  const left = 50;
  const right = w - 20;
  const top = 30;
  const bottom = h - 40;
  const most = Math.max(...series.flatMap((s) => s.counts));
  const bw = (right - left) / bins;
  let out = `<svg class="plot histogram" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="Steered fraction per problem"><title>Steered fraction per problem</title>`;
  out += `<text x="${left}" y="16" class="heading">problems per share of steered tokens</text>`;
  series.forEach((s, i) => {
    const sub = bw / series.length;
    s.counts.forEach((c, b) => {
      if (!c) return;
      const bh = ((bottom - top) * c) / most;
      const x = left + b * bw + i * sub;
      out += `<rect class="bar" x="${x.toFixed(1)}" y="${(bottom - bh).toFixed(1)}" width="${Math.max(1, sub - 1).toFixed(1)}" height="${bh.toFixed(1)}" fill="${PALETTE[i % PALETTE.length]}"><title>${esc(`${s.name}: ${c} problem${c === 1 ? '' : 's'} with ${b * 5}–${b * 5 + 5} % steered`)}</title></rect>`;
    });
  });
  out += `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" class="axis"/>`;
  for (let t = 0; t <= 100; t += 20) {
    const x = left + (t / 100) * (right - left);
    out += `<text x="${x.toFixed(1)}" y="${bottom + 16}" text-anchor="middle" class="tick">${t}%</text>`;
  }
  out += `<text x="${left - 6}" y="${top + 4}" text-anchor="end" class="tick">${most}</text>`;
  out += `<text x="${left - 6}" y="${bottom}" text-anchor="end" class="tick">0</text>`;
  return `${out}</svg>`;
}

export function renderPage(title: string, report: Report, data: ViewerData): string {
  const parts: string[] = [];
  const sys = report.systems;
  if (sys?.rows.length) {
    const t = systemsTable(sys);
    parts.push(table(t.header, t.rows, 'systems', 2));
  }
  parts.push(accuracyPlot(report.runs));
  const c = sys ? categoryTable(sys) : null;
  if (c) parts.push('<h3>Steered tokens per category</h3>', table(c.header, c.rows, 'categories', 1));
  parts.push(steeredHistogram(data));
  if (report.runs.some((r) => r.passAtK.some((p) => p.k > 1))) {
    const full = new Map(sys?.passAtK.map((p) => [p.name, p.points]));
    parts.push(passAtKPlot(report.runs.map((r) => ({ ...r, passAtK: full.get(r.name) ?? r.passAtK }))));
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title><link rel="stylesheet" href="/app.css"></head>
<body>
<header><h1>${esc(title)}</h1><p class="sub">${data.runs.length} run${data.runs.length === 1 ? '' : 's'}, ${data.problems.length} problems: ${data.runs.map((r) => esc(r.name)).join(', ')}</p></header>
<details id="summary" open><summary>Summary</summary>${parts.join('\n')}</details>
<main>
  <nav aria-label="problems">
    <form id="filters">
      <label>verdict <select id="verdict"><option value="all">all</option><option value="correct">correct</option><option value="incorrect">incorrect</option></select></label>
      <label>of <select id="verdict-run"></select></label>
      <label>category <select id="category"><option value="">any</option></select></label>
      <fieldset id="show-systems"><legend>systems</legend></fieldset>
    </form>
    <p id="count" class="sub"></p>
    <ul id="problems" role="listbox" tabindex="0" aria-label="problems (↑/↓ or j/k to move)"></ul>
  </nav>
  <section id="trace" aria-live="polite"><p class="sub">Choose a problem.</p></section>
</main>
<div id="tip" role="tooltip" hidden></div>
<script src="/app.js"></script>
</body></html>
`;
}
