// Inline SVG plots for the HTML report: no scripts, no fonts, no external resources.
import type { GapEntry } from './compare.ts';
import type { RunSummary } from './summarize.ts';

export const PALETTE = ['#3366cc', '#dc3912', '#109618', '#ff9900', '#990099', '#0099c6', '#dd4477', '#66aa00'];

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const f = (x: number) => (Math.round(x * 10) / 10).toString();
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function svgOpen(w: number, h: number, label: string, cls: string): string {
  return `<svg class="plot ${cls}" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(label)}"><title>${esc(label)}</title>`;
}

function xAxis(
  x0: number,
  x1: number,
  y: number,
  lo: number,
  hi: number,
  ticks: number[],
  fmt: (v: number) => string,
): string {
  const sx = (v: number) => x0 + ((v - lo) / (hi - lo)) * (x1 - x0);
  let out = `<line x1="${x0}" y1="${y}" x2="${x1}" y2="${y}" class="axis"/>`;
  for (const t of ticks) {
    out += `<line x1="${f(sx(t))}" y1="${y}" x2="${f(sx(t))}" y2="${y + 4}" class="axis"/>`;
    out += `<text x="${f(sx(t))}" y="${y + 16}" text-anchor="middle" class="tick">${esc(fmt(t))}</text>`;
  }
  return out;
}

/** One row per run: accuracy point with its Wilson 95 % interval. */
export function accuracyPlot(runs: RunSummary[]): string {
  const left = 170;
  const right = 620;
  const row = 26;
  const h = 40 + runs.length * row + 30;
  const sx = (v: number) => left + v * (right - left);
  let out = svgOpen(660, h, 'Accuracy with Wilson 95% intervals', 'accuracy');
  for (let t = 0; t <= 1; t += 0.2)
    out += `<line x1="${f(sx(t))}" y1="24" x2="${f(sx(t))}" y2="${h - 30}" class="grid"/>`;
  runs.forEach((r, i) => {
    const y = 40 + i * row;
    const a = r.accuracy;
    const color = PALETTE[i % PALETTE.length];
    out += `<text x="${left - 8}" y="${y + 4}" text-anchor="end" class="label">${esc(r.name)}</text>`;
    if (Number.isFinite(a.p)) {
      out += `<line x1="${f(sx(a.lo))}" y1="${y}" x2="${f(sx(a.hi))}" y2="${y}" stroke="${color}" stroke-width="2"/>`;
      out += `<line x1="${f(sx(a.lo))}" y1="${y - 5}" x2="${f(sx(a.lo))}" y2="${y + 5}" stroke="${color}" stroke-width="2"/>`;
      out += `<line x1="${f(sx(a.hi))}" y1="${y - 5}" x2="${f(sx(a.hi))}" y2="${y + 5}" stroke="${color}" stroke-width="2"/>`;
      out += `<circle cx="${f(sx(a.p))}" cy="${y}" r="4.5" fill="${color}"><title>${esc(`${r.name}: ${pct(a.p)} [${pct(a.lo)}, ${pct(a.hi)}], n=${a.n}`)}</title></circle>`;
    } else {
      out += `<text x="${left + 4}" y="${y + 4}" class="tick">no grades</text>`;
    }
  });
  out += xAxis(left, right, h - 30, 0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1], (v) => `${Math.round(v * 100)}%`);
  out += `<text x="${(left + right) / 2}" y="16" text-anchor="middle" class="heading">accuracy (pass@1), 95% Wilson interval</text>`;
  return `${out}</svg>`;
}

/** Per hybrid: base, thinking and hybrid accuracies on one axis, with the gap shaded and the recovered share printed. */
export function gapPlot(gaps: GapEntry[]): string {
  const left = 170;
  const right = 510;
  const row = 44;
  const h = 40 + gaps.length * row + 30;
  const all = gaps
    .flatMap((g) => [g.accuracies.base, g.accuracies.thinking, g.accuracies.hybrid])
    .filter(Number.isFinite);
  const lo = Math.max(0, Math.floor((Math.min(...all) - 0.05) * 10) / 10);
  const hi = Math.min(1, Math.ceil((Math.max(...all) + 0.05) * 10) / 10);
  const sx = (v: number) => left + ((v - lo) / (hi - lo || 1)) * (right - left);
  let out = svgOpen(660, h, 'Gap recovered by each hybrid run', 'gap');
  gaps.forEach((g, i) => {
    const y = 44 + i * row;
    const { base, thinking, hybrid } = g.accuracies;
    out += `<text x="${left - 8}" y="${y + 4}" text-anchor="end" class="label">${esc(g.hybrid)}</text>`;
    out += `<rect x="${f(sx(Math.min(base, thinking)))}" y="${y - 8}" width="${f(Math.abs(sx(thinking) - sx(base)))}" height="16" class="gapband"/>`;
    const mark = (v: number, cls: string, text: string) =>
      `<line x1="${f(sx(v))}" y1="${y - 12}" x2="${f(sx(v))}" y2="${y + 12}" class="${cls}"/><text x="${f(sx(v))}" y="${y - 15}" text-anchor="middle" class="tick">${esc(text)}</text>`;
    out += mark(base, 'mbase', 'B');
    out += mark(thinking, 'mthink', 'T');
    out += `<circle cx="${f(sx(hybrid))}" cy="${y}" r="5" class="mhybrid"><title>${esc(`${g.hybrid}: ${pct(hybrid)}`)}</title></circle>`;
    const rec = g.result.recovered;
    out += `<text x="${right + 12}" y="${y + 4}" class="label">${rec === null ? 'n/a' : `${(rec * 100).toFixed(1)}% recovered`}</text>`;
  });
  const ticks: number[] = [];
  for (let t = lo; t <= hi + 1e-9; t += 0.1) ticks.push(Math.round(t * 10) / 10);
  out += xAxis(left, right, h - 30, lo, hi, ticks, (v) => `${Math.round(v * 100)}%`);
  out += `<text x="${(left + right) / 2}" y="16" text-anchor="middle" class="heading">B = base, T = thinking, dot = hybrid (problems shared by all three)</text>`;
  return `${out}</svg>`;
}

/** pass@k against k (log scale) with bootstrap bands. */
export function passAtKPlot(runs: RunSummary[]): string {
  const left = 60;
  const right = 480;
  const top = 30;
  const bottom = 250;
  const maxK = Math.max(...runs.flatMap((r) => r.passAtK.map((p) => p.k)), 2);
  const sx = (k: number) => left + (Math.log2(k) / Math.log2(maxK)) * (right - left);
  const sy = (v: number) => bottom - v * (bottom - top);
  let out = svgOpen(660, 290, 'pass@k curves', 'passk');
  for (let v = 0; v <= 1.0001; v += 0.25) {
    out += `<line x1="${left}" y1="${f(sy(v))}" x2="${right}" y2="${f(sy(v))}" class="grid"/>`;
    out += `<text x="${left - 6}" y="${f(sy(v) + 4)}" text-anchor="end" class="tick">${Math.round(v * 100)}%</text>`;
  }
  const ks: number[] = [];
  for (let k = 1; k <= maxK; k *= 2) ks.push(k);
  out += xAxis(left, right, bottom, 0, Math.log2(maxK), ks.map(Math.log2), (v) => String(2 ** v));
  runs.forEach((r, i) => {
    if (r.passAtK.length === 0) return;
    const color = PALETTE[i % PALETTE.length];
    const upper = r.passAtK.map((p) => `${f(sx(p.k))},${f(sy(p.hi))}`);
    const lower = r.passAtK.map((p) => `${f(sx(p.k))},${f(sy(p.lo))}`).reverse();
    out += `<polygon points="${[...upper, ...lower].join(' ')}" fill="${color}" fill-opacity="0.15" stroke="none"/>`;
    out += `<polyline points="${r.passAtK.map((p) => `${f(sx(p.k))},${f(sy(p.value))}`).join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`;
    for (const p of r.passAtK) {
      out += `<circle cx="${f(sx(p.k))}" cy="${f(sy(p.value))}" r="3" fill="${color}"><title>${esc(`${r.name} pass@${p.k} = ${pct(p.value)}`)}</title></circle>`;
    }
    out += `<rect x="${right + 20}" y="${top + i * 20 - 8}" width="12" height="12" fill="${color}"/>`;
    out += `<text x="${right + 38}" y="${top + i * 20 + 2}" class="label">${esc(r.name)}</text>`;
  });
  out += `<text x="${(left + right) / 2}" y="${bottom + 34}" text-anchor="middle" class="tick">k (samples)</text>`;
  out += `<text x="${(left + right) / 2}" y="16" text-anchor="middle" class="heading">unbiased pass@k, 95% bootstrap band over problems</text>`;
  return `${out}</svg>`;
}
