// `thinkwhen demo` on a few problems: every system of the table, pass@k, the report, the
// JSON shape, resuming, the same table whether the runs go two at a time or one after another,
// and the latent pair's clear error when its model is not there.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEMO_SYSTEMS } from '../../src/experiments/demo.ts';
import { organismModelPaths } from '../../src/organism/index.ts';
import { cli } from '../helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-demo-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

// 7 problems: the 7th held-out problem is the first that needs a verification (where the pair disagrees)
const quick = ['--problems', '7', '--pass-problems', '2', '--samples', '3', '--threads', '1'];

/** The `--json` table without its wall time. */
const table = (json: { seconds: number }) => ({ ...json, seconds: undefined });

describe('thinkwhen demo', () => {
  let twoLanes: { seconds: number } | null = null;

  it('runs every system and control, pass@k, one report; --json as the issue; a rerun resumes', async () => {
    const out = join(tmp, 'demo');
    const r = await cli(['demo', ...quick, '--lanes', '2', '--out', out, '--json']);
    assert.equal(r.code, 0, r.err);
    const json = JSON.parse(r.out);
    twoLanes = json;
    assert.deepEqual(Object.keys(json).sort(), ['models', 'pair', 'pass_at_k', 'seconds', 'systems']);
    assert.equal(json.pair, 'default');
    assert.match(json.models.base.sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(Object.keys(json.systems).sort(), [...DEMO_SYSTEMS].sort());
    for (const [name, row] of Object.entries(json.systems) as [string, Record<string, number | null>][]) {
      assert.deepEqual(Object.keys(row).sort(), ['acc', 'gap_recovered', 'n', 'steered_mean', 'steered_token'], name);
      assert.equal(row.n, 7, name);
      assert.ok((row.acc as number) >= 0 && (row.acc as number) <= 1, name);
      const hybrid = name !== 'base' && name !== 'thinking';
      assert.equal(row.steered_mean === null, !hybrid, name);
    }
    assert.equal(json.systems.thinking.acc, 1, 'the thinking model solves these');
    assert.equal(json.systems.oracle.steered_mean > 0, true, 'the oracle replaces some base tokens');
    assert.deepEqual(Object.keys(json.pass_at_k).sort(), ['base', 'hybrid', 'thinking']);
    for (const system of ['base', 'thinking', 'hybrid']) {
      assert.deepEqual(Object.keys(json.pass_at_k[system]), ['1', '2', '3'], system);
      assert.ok(json.pass_at_k[system]['3'] >= json.pass_at_k[system]['1'], system);
    }
    assert.match(r.err, /SAE and vectors: the shipped ones/);
    const html = readFileSync(join(out, 'report', 'report.html'), 'utf8');
    for (const name of ['selection_only', 'random_firing', 'pass@k']) assert.ok(html.includes(name), name);

    // a rerun continues: nothing new to generate, same numbers
    const again = await cli(['demo', ...quick, '--out', out]);
    assert.equal(again.code, 0, again.err);
    assert.match(again.err, /0 generated now/);
    assert.doesNotMatch(again.err, /[1-9]\d* generated now/);
    assert.match(again.out, /^system\s+accuracy/);
    assert.match(again.out, /report: .*report\.html/);
    // every run's result on a line of its own, in the report's order whatever order they ran in
    const finished = again.err.split('\n').filter((l) => / generated now /.test(l));
    assert.equal(finished.length, DEMO_SYSTEMS.length + 3);
    const report = JSON.parse(readFileSync(join(out, 'report', 'report.json'), 'utf8'));
    const rows = report.systems.rows.map((row: { name: string }) => row.name);
    assert.deepEqual(rows.slice(0, DEMO_SYSTEMS.length), [...DEMO_SYSTEMS]);
  });

  it('gives the same table with the runs one after another (--lanes 1) as two at a time', async () => {
    assert.ok(twoLanes, 'the test above ran the demo on two lanes');
    const r = await cli(['demo', ...quick, '--lanes', '1', '--out', join(tmp, 'one-lane'), '--json']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(table(JSON.parse(r.out)), table(twoLanes));
  });

  it('says clearly when the base-latent model is not there', async () => {
    const models = join(tmp, 'two-models');
    mkdirSync(models);
    const paths = organismModelPaths();
    copyFileSync(paths.base, join(models, 'base.gguf'));
    copyFileSync(paths.thinking, join(models, 'thinking.gguf'));
    const r = await cli(['demo', '--pair', 'latent', '--models', models, ...quick, '--out', join(tmp, 'latent')]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /base-latent organism model .*base-latent\.gguf is not there/);
    assert.match(r.err, /thinkwhen organism build/);
    assert.equal(existsSync(join(tmp, 'latent', 'runs')), false);
  });
});
