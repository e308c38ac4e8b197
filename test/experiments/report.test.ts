// The report's systems section on run stores written through the store API, with per-token
// records shaped like the hybrid's (src/hybrid TokenRecord): every number is recomputed here
// from what was written, independently of the report code.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gapRecovered, mcnemarExact, meanPassAtK, wilson } from '../../src/eval/metrics.ts';
import { buildReport, writeReport } from '../../src/eval/report/index.ts';
import { RunStore } from '../../src/eval/store.ts';
import { organismDataset } from '../../src/experiments/datasets.ts';
import { Rng } from '../../src/rng.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-systems-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const { info, problems } = organismDataset(40);
const TITLES = ['verify', 'backtrack', 'plan'];

interface Spec {
  name: string;
  role: string;
  /** probability a sample is right */
  p: number;
  samples?: number;
  /** steer each token with this probability (hybrids) */
  steer?: number;
  seed: number;
}

/** What the fixture wrote, for the independent checks. */
interface Written {
  correct: Map<string, boolean[]>;
  fractions: number[];
  steered: number;
  tokens: number;
  byLatent: Map<number, number>;
}

function writeRun(s: Spec): { path: string; w: Written } {
  const path = join(tmp, `${s.name}.sqlite`);
  const store = RunStore.open(path, {
    config: { name: s.name, role: s.role, samplesPerProblem: s.samples ?? 1, grader: 'rules-math' },
    dataset: info,
  });
  const rng = new Rng(s.seed);
  const w: Written = { correct: new Map(), fractions: [], steered: 0, tokens: 0, byLatent: new Map() };
  for (const p of problems) {
    for (let k = 0; k < (s.samples ?? 1); k++) {
      const ok = rng.next() < s.p;
      w.correct.set(p.id, [...(w.correct.get(p.id) ?? []), ok]);
      const n = 20 + rng.int(30);
      const records = Array.from({ length: n }, (_, step) => {
        const steered = s.steer !== undefined && rng.next() < s.steer;
        const latent = rng.int(3);
        if (steered) w.byLatent.set(latent, (w.byLatent.get(latent) ?? 0) + 1);
        return {
          step,
          token: 100 + step,
          source: 'base',
          text: ' x',
          baseGreedy: 100 + step,
          thinkingGreedy: steered ? 7 : 100 + step,
          gate: steered ? 'disagree' : 'agree',
          steered,
          latent: steered ? latent : null,
          title: steered ? TITLES[latent] : null,
          activation: steered ? 1.5 : null,
          ...(steered
            ? { coefficient: 0.1, window: 0, vector: `latent-${latent}.gguf`, candidates: [], chosen: 0 }
            : {}),
        };
      });
      const steeredTokens = records.filter((r) => r.steered).length;
      if (s.steer !== undefined) {
        w.fractions.push(steeredTokens / n);
        w.steered += steeredTokens;
        w.tokens += n;
      }
      store.recordGeneration({
        problemId: p.id,
        sampleIndex: k,
        text: ok ? `\\boxed{${p.answer}}` : '\\boxed{0}',
        completionTokens: n,
        tokens: records.map((r) => r.token),
        ...(s.steer !== undefined ? { annotations: records, steeredTokens } : {}),
        grades: [{ grader: 'rules-math', correct: ok }],
      });
    }
  }
  store.close();
  return { path, w };
}

const specs: Spec[] = [
  // a sampled base run listed first: the table and the gap must still use the greedy one
  { name: 'base-n4-t1', role: 'base', p: 0.5, samples: 4, seed: 11 },
  { name: 'base', role: 'base', p: 0.4, seed: 1 },
  { name: 'hybrid', role: 'hybrid', p: 0.8, steer: 0.12, seed: 3 },
  { name: 'thinking', role: 'thinking', p: 0.95, seed: 2 },
  { name: 'only_bias', role: 'hybrid', p: 0.6, steer: 0.1, seed: 4 },
  { name: 'selection_only', role: 'hybrid', p: 0.45, steer: 0.15, seed: 5 },
  { name: 'thinking-n4-t1', role: 'thinking', p: 0.9, samples: 4, seed: 12 },
  { name: 'hybrid-n4-t1', role: 'hybrid', p: 0.7, samples: 4, steer: 0.1, seed: 13 },
];
const runs = new Map<string, { path: string; w: Written }>();
before(() => {
  for (const s of specs) runs.set(s.name, writeRun(s));
});

const acc = (w: Written) => [...w.correct.values()].filter((v) => v[0]).length / w.correct.size;

describe('report: systems section', () => {
  it('puts base, thinking, the hybrid and its controls side by side with numbers from the stores', () => {
    const r = buildReport(
      specs.map((s) => runs.get(s.name)!.path),
      { bootstrap: 50 },
    );
    const sys = r.systems!;
    assert.equal(sys.base, 'base');
    assert.equal(sys.thinking, 'thinking');
    assert.deepEqual(
      sys.rows.map((x) => x.name),
      ['base', 'thinking', 'hybrid', 'only_bias', 'selection_only'],
    );
    const w = (n: string) => runs.get(n)!.w;
    const [b, t] = [acc(w('base')), acc(w('thinking'))];
    for (const row of sys.rows) {
      const wr = w(row.name);
      assert.equal(row.n, 40);
      const a = acc(wr);
      assert.deepEqual(
        [row.accuracy.p, row.accuracy.lo, row.accuracy.hi],
        [wilson(a * 40, 40).p, wilson(a * 40, 40).lo, wilson(a * 40, 40).hi],
      );
      if (row.role === 'hybrid') {
        assert.equal(row.gapRecovered, gapRecovered(b, t, a).recovered, row.name);
        const mean = wr.fractions.reduce((x, y) => x + y, 0) / wr.fractions.length;
        assert.ok(Math.abs(row.steeredMean! - mean) < 1e-12, row.name);
        assert.ok(Math.abs(row.steeredToken! - wr.steered / wr.tokens) < 1e-12, row.name);
      } else {
        assert.deepEqual([row.gapRecovered, row.steeredMean], [null, null]);
      }
      if (row.name === 'base') assert.equal(row.vsBase, null);
      else {
        let onlyA = 0;
        let onlyB = 0;
        for (const p of problems) {
          const [x, y] = [wr.correct.get(p.id)![0], w('base').correct.get(p.id)![0]];
          if (x && !y) onlyA++;
          if (!x && y) onlyB++;
        }
        assert.deepEqual([row.vsBase!.onlyA, row.vsBase!.onlyB], [onlyA, onlyB], row.name);
        assert.equal(row.vsBase!.p, mcnemarExact(onlyA, onlyB).p);
      }
    }
    // the comparison's gap also uses the greedy base run
    assert.deepEqual(
      r.comparison.gaps.filter((g) => g.hybrid === 'hybrid').map((g) => g.base),
      ['base'],
    );
  });

  it('counts steered tokens per category from the per-token records', () => {
    const sys = buildReport(
      specs.map((s) => runs.get(s.name)!.path),
      { bootstrap: 0 },
    ).systems!;
    assert.deepEqual(
      sys.categories.map((c) => [c.latent, c.title]),
      [
        [0, 'verify'],
        [1, 'backtrack'],
        [2, 'plan'],
      ],
    );
    for (const name of ['hybrid', 'only_bias', 'selection_only']) {
      for (const c of sys.categories)
        assert.equal(c.steered[name] ?? 0, runs.get(name)!.w.byLatent.get(c.latent!) ?? 0);
    }
    // sampled runs are curves, not table rows
    assert.equal(sys.categories[0].steered['hybrid-n4-t1'], undefined);
  });

  it('draws pass@k at every k from 1 to n with the unbiased estimator', () => {
    const r = buildReport(
      specs.map((s) => runs.get(s.name)!.path),
      { bootstrap: 50 },
    );
    const sys = r.systems!;
    assert.deepEqual(
      sys.passAtK.map((p) => p.name),
      ['base-n4-t1', 'thinking-n4-t1', 'hybrid-n4-t1'],
    );
    for (const series of sys.passAtK) {
      const counts = [...runs.get(series.name)!.w.correct.values()].map((v) => ({
        n: v.length,
        c: v.filter(Boolean).length,
      }));
      assert.deepEqual(
        series.points.map((p) => p.k),
        [1, 2, 3, 4],
      );
      for (const p of series.points) assert.ok(Math.abs(p.value - meanPassAtK(counts, p.k)) < 1e-12);
      // pass@k never falls as k grows
      for (let i = 1; i < series.points.length; i++) assert.ok(series.points[i].value >= series.points[i - 1].value);
    }
    const files = writeReport(r, join(tmp, 'report'));
    const html = readFileSync(files.html, 'utf8');
    assert.match(html, /<table id="systems">/);
    assert.match(html, /<table id="categories">/);
    assert.match(html, /hybrid-n4-t1 pass@3 = /);
    const md = readFileSync(files.markdown, 'utf8');
    assert.match(md, /## Systems: base, thinking, hybrid and controls/);
    assert.match(md, /\| run \| k=1 \| k=2 \| k=3 \| k=4 \|/);
    const json = JSON.parse(readFileSync(files.json, 'utf8'));
    assert.equal(json.systems.rows.length, 5);
  });

  it('is absent when there is nothing to compare', () => {
    const r = buildReport([runs.get('base')!.path], { bootstrap: 0 });
    assert.equal(r.systems, null);
  });
});
