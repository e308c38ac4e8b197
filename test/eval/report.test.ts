import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gapRecovered, meanPassAtK } from '../../src/eval/metrics.ts';
import { buildReport, writeReport } from '../../src/eval/report/index.ts';
import { RunStore } from '../../src/eval/store.ts';
import { buildFakeRun, gsm8kProblems, repoRoot } from './fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-report-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Accuracy recomputed straight from the store's grades, independently of the report code. */
function storeAccuracy(path: string): number {
  const s = RunStore.openReadonly(path);
  const by = new Map<string, boolean[]>();
  for (const g of s.grades()) by.set(g.problemId, [...(by.get(g.problemId) ?? []), g.correct]);
  s.close();
  let sum = 0;
  for (const v of by.values()) sum += v.filter(Boolean).length / v.length;
  return sum / by.size;
}

let runs: Record<'base' | 'thinking' | 'hybrid' | 'sampled', string>;
before(async () => {
  const { problems, info } = await gsm8kProblems(40);
  runs = {
    base: await buildFakeRun(
      join(tmp, 'base.sqlite'),
      { name: 'base', role: 'base', accuracy: 0.4, problems, seed: 1 },
      info,
    ),
    thinking: await buildFakeRun(
      join(tmp, 'thinking.sqlite'),
      { name: 'thinking', role: 'thinking', accuracy: 0.85, problems, seed: 2 },
      info,
    ),
    hybrid: await buildFakeRun(
      join(tmp, 'hybrid.sqlite'),
      { name: 'hybrid', role: 'hybrid', accuracy: 0.65, problems, seed: 3 },
      info,
    ),
    sampled: await buildFakeRun(
      join(tmp, 'sampled.sqlite'),
      { name: 'sampled', role: 'thinking-sampled', accuracy: 0.55, problems, samplesPerProblem: 4, seed: 4 },
      info,
    ),
  };
});

describe('report', () => {
  it('computes accuracy, gap recovered and pass@k that agree with the stores', () => {
    const r = buildReport([runs.base, runs.thinking, runs.hybrid, runs.sampled], { bootstrap: 100 });
    assert.equal(r.runs.length, 4);
    const acc = Object.fromEntries(r.runs.map((x) => [x.name, x.accuracy.p]));
    for (const k of ['base', 'thinking', 'hybrid', 'sampled'] as const)
      assert.ok(Math.abs(acc[k] - storeAccuracy(runs[k])) < 1e-12, k);
    assert.equal(r.comparison.gaps.length, 1);
    const g = r.comparison.gaps[0];
    assert.equal(g.n, 40);
    assert.deepEqual(g.result, gapRecovered(acc.base, acc.thinking, acc.hybrid));
    assert.ok(g.result.recovered! > 0);
    // pass@k of the sampled run from its grades.
    const s = RunStore.openReadonly(runs.sampled);
    const by = new Map<string, number>();
    for (const x of s.grades()) by.set(x.problemId, (by.get(x.problemId) ?? 0) + (x.correct ? 1 : 0));
    s.close();
    const counts = [...by.values()].map((c) => ({ n: 4, c }));
    const sampled = r.runs.find((x) => x.name === 'sampled')!;
    assert.deepEqual(
      sampled.passAtK.map((p) => p.k),
      [1, 2, 4],
    );
    for (const p of sampled.passAtK) assert.ok(Math.abs(p.value - meanPassAtK(counts, p.k)) < 1e-12);
    const hybrid = r.runs.find((x) => x.name === 'hybrid')!;
    assert.ok(hybrid.steeredFraction! > 0.05 && hybrid.steeredFraction! < 0.2);
    assert.equal(hybrid.complete, true);
    assert.equal(r.comparison.pairs.length, 6);
    assert.deepEqual(r.comparison.warnings, []);
  });

  it('role overrides, equal accuracies and incomplete runs are reported, not hidden', async () => {
    const r = buildReport([runs.base, runs.base, runs.hybrid], { roles: ['base', 'thinking', ''], bootstrap: 0 });
    assert.deepEqual(
      r.runs.map((x) => x.name),
      ['base', 'base (2)', 'hybrid'],
    );
    assert.equal(r.comparison.gaps[0].result.recovered, null);
    assert.match(r.comparison.gaps[0].result.reason!, /equal/);
    const { problems, info } = await gsm8kProblems(40);
    const partial = join(tmp, 'partial.sqlite');
    await buildFakeRun(
      partial,
      { name: 'partial', role: 'hybrid', accuracy: 0.6, problems: problems.slice(0, 10) },
      info,
    );
    const r2 = buildReport([runs.base, runs.thinking, partial], { bootstrap: 0 });
    assert.equal(r2.comparison.gaps[0].n, 10);
    assert.ok(r2.comparison.warnings.some((w) => /partial is incomplete: 10 graded of 40/.test(w)));
    assert.ok(r2.comparison.warnings.some((w) => /uses the 10 problems graded in all three/.test(w)));
    assert.throws(() => buildReport([runs.base], { roles: ['base', 'x'] }), /one role per run/);
  });

  it('writes self-contained HTML, JSON and markdown', () => {
    const r = buildReport([runs.base, runs.thinking, runs.hybrid, runs.sampled], {
      bootstrap: 100,
      price: { inputPerMTok: 1, outputPerMTok: 2 },
    });
    const files = writeReport(r, join(tmp, 'out'));
    const html = readFileSync(files.html, 'utf8');
    assert.equal((html.match(/<svg /g) ?? []).length, 3);
    for (const bad of [
      /<script/i,
      /<link/i,
      /\bsrc=/i,
      /url\(/i,
      /@import/i,
      /https?:\/\/(?!www\.w3\.org\/2000\/svg)/,
    ]) {
      assert.doesNotMatch(html, bad);
    }
    // headers + rows of the runs, systems (greedy runs), gaps and pairs tables
    assert.equal((html.match(/<tr>/g) ?? []).length, 1 + 4 + 1 + 3 + 1 + 1 + 1 + 6);
    const json = JSON.parse(readFileSync(files.json, 'utf8'));
    assert.equal(json.runs.length, 4);
    assert.equal(json.comparison.gaps[0].result.recovered, r.comparison.gaps[0].result.recovered);
    assert.ok(json.runs[0].cost > 0);
    const md = readFileSync(files.markdown, 'utf8');
    assert.match(md, /^# thinkwhen evaluation/);
    const runLines = md.split('\n').filter((l) => /^\| \w+ \| [\w-]+ \| gsm8k\/test \[0:40\] \| 40\/40 \|/.test(l));
    assert.equal(runLines.length, 4);
    assert.match(md, /## Gap recovered/);
  });

  it('is reachable from the CLI, with usable errors and help', () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [join(repoRoot, 'bin/thinkwhen.js'), ...args], { cwd: tmp, encoding: 'utf8' });
    const out = join(tmp, 'cli-out');
    const ok = cli('report', runs.base, runs.thinking, runs.hybrid, '--out', out, '--k', '1', '--bootstrap', '10');
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /\| hybrid \| hybrid \|/);
    assert.ok(existsSync(join(out, 'report.html')));
    const none = cli('report');
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no run stores given/);
    const missing = cli('report', join(tmp, 'nope.sqlite'));
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no run store at .*fix: give the .sqlite file a `thinkwhen run --out FILE` wrote/);
    assert.match(cli('report', '--help').stdout, /Examples:/);
    const merged = cli('merge', join(tmp, 'm.sqlite'), runs.base);
    assert.equal(merged.status, 0, merged.stderr);
    const refused = cli('merge', join(tmp, 'm2.sqlite'), runs.base, runs.hybrid);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /refusing to merge: .* different run configs/);
  });
});
