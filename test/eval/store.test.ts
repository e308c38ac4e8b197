import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ThinkwhenError } from '../../src/errors.ts';
import type { Problem } from '../../src/eval/datasets.ts';
import { mergeStores } from '../../src/eval/merge.ts';
import { parseShard, RunStore, selectShard, shardOf } from '../../src/eval/store.ts';
import { buildFakeRun, gsm8kProblems, repoRoot } from './fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-store-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const problems: Problem[] = ['a', 'b', 'c'].map((id, i) => ({
  id,
  question: `q${id}`,
  answer: String(i),
  meta: { index: i },
}));

describe('run store', () => {
  it('uses WAL, records generations once, round-trips tokens, annotations and grades', () => {
    const path = join(tmp, 'basic.sqlite');
    const s = RunStore.open(path, { config: { name: 'x', samplesPerProblem: 2 } });
    assert.equal(s.db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(s.pending(problems).length, 6);
    assert.equal(
      s.recordGeneration({
        problemId: 'a',
        sampleIndex: 0,
        text: 'first',
        tokens: [1, -2, 151000],
        annotations: { steered: [true, false, true] },
        steeredTokens: 2,
        startedAt: 1000,
        finishedAt: 1500,
        grades: [
          { grader: 'strict', correct: false, extracted: null },
          { grader: 'flexible', correct: true, extracted: '0' },
        ],
      }),
      true,
    );
    assert.equal(s.recordGeneration({ problemId: 'a', sampleIndex: 0, text: 'second try' }), false);
    assert.deepEqual(
      s.pending(problems).map((p) => `${p.problem.id}${p.sampleIndex}`),
      ['a1', 'b0', 'b1', 'c0', 'c1'],
    );
    const [g] = [...s.generations()];
    assert.equal(g.text, 'first');
    assert.deepEqual([...g.tokens!], [1, -2, 151000]);
    assert.equal(g.completionTokens, 3);
    assert.deepEqual(g.annotations, { steered: [true, false, true] });
    assert.equal(g.durationMs, 500);
    assert.deepEqual(s.graders(), ['flexible', 'strict']);
    assert.equal(s.grades('flexible')[0].correct, true);
    s.recordGrade({ problemId: 'a', sampleIndex: 0, grader: 'strict', correct: true });
    assert.equal(s.grades('strict')[0].correct, true);
    assert.equal(s.counts().grades, 2);
    assert.equal(s.done(), false);
    for (const { problem, sampleIndex } of s.pending(problems))
      s.recordGeneration({ problemId: problem.id, sampleIndex, text: 't' });
    assert.equal(s.done(), true);
    assert.deepEqual(
      s.problems().map((p) => p.id),
      ['a', 'b', 'c'],
    );
    s.close();
  });

  it('refuses to resume with a different config, dataset or shard', () => {
    const path = join(tmp, 'cfg.sqlite');
    RunStore.open(path, {
      config: { name: 'x', samplesPerProblem: 1, temperature: 0 },
      shard: { index: 1, count: 2 },
    }).close();
    assert.throws(
      () => RunStore.open(path, { config: { name: 'x', samplesPerProblem: 1, temperature: 0.6 } }),
      (e: Error) =>
        e instanceof ThinkwhenError && e.code === 'RUN_CONFIG_MISMATCH' && /temperature \(0 vs 0\.6\)/.test(e.message),
    );
    assert.throws(
      () =>
        RunStore.open(path, {
          config: { temperature: 0, samplesPerProblem: 1, name: 'x' },
          shard: { index: 2, count: 2 },
        }),
      (e: Error) => e instanceof ThinkwhenError && e.code === 'RUN_SHARD_MISMATCH',
    );
    // Key order does not matter.
    RunStore.open(path, { config: { temperature: 0, samplesPerProblem: 1, name: 'x' } }).close();
    assert.throws(() => RunStore.openReadonly(join(tmp, 'missing.sqlite')), /no run store/);
  });

  it('parses shards and assigns problems deterministically', () => {
    assert.deepEqual(parseShard('2/4'), { index: 2, count: 4 });
    for (const bad of ['0/4', '5/4', '1/0', 'x', '1-4']) assert.throws(() => parseShard(bad), ThinkwhenError);
    assert.equal(shardOf('gsm8k/test/0', 4), shardOf('gsm8k/test/0', 4));
    const ids = Array.from({ length: 400 }, (_, i) => ({ id: `gsm8k/test/${i}` }));
    const sizes = [1, 2, 3, 4].map((index) => selectShard(ids, { index, count: 4 }).length);
    assert.equal(
      sizes.reduce((a, b) => a + b),
      400,
    );
    for (const n of sizes) assert.ok(n > 70 && n < 130, `unbalanced shards ${sizes}`);
    assert.equal(selectShard(ids, null).length, 400);
  });
});

describe('resume after kill -9', () => {
  const writer = join(repoRoot, 'test/eval/helpers/store-writer.ts');
  function run(
    args: string[],
    killAfter?: number,
    env: Record<string, string> = {},
  ): Promise<{ lines: string[]; signal: NodeJS.Signals | null }> {
    return new Promise((ok, fail) => {
      const child = spawn(process.execPath, ['--import', 'tsx', writer, ...args], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
      });
      const lines: string[] = [];
      let buf = '';
      let err = '';
      let acked = 0;
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const parts = buf.split('\n');
        buf = parts.pop()!;
        for (const l of parts) {
          lines.push(l);
          if (l.startsWith('ok ') && ++acked === killAfter) child.kill('SIGKILL');
        }
      });
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      child.on('error', fail);
      child.on('close', (code, signal) => {
        if (code !== 0 && signal !== 'SIGKILL') fail(new Error(`writer exited ${code}: ${err}`));
        else ok({ lines, signal });
      });
    });
  }

  it('loses no acknowledged generation and never double-counts', async () => {
    const path = join(tmp, 'killed.sqlite');
    const nProblems = 80;
    const nSamples = 4;
    const first = await run([path, String(nProblems), String(nSamples)], 40);
    assert.equal(first.signal, 'SIGKILL');
    assert.ok(!first.lines.some((l) => l.startsWith('done')), 'the writer must be killed mid-run');
    const acked = first.lines.filter((l) => l.startsWith('ok ')).map((l) => l.slice(3));

    const mid = RunStore.openReadonly(path);
    const stored = new Set([...mid.generations()].map((g) => `${g.problemId} ${g.sampleIndex}`));
    mid.close();
    for (const k of acked) assert.ok(stored.has(k), `acknowledged generation ${k} was lost`);
    assert.ok(stored.size < nProblems * nSamples);

    const second = await run([path, String(nProblems), String(nSamples), '--replay', '10']);
    assert.equal(second.signal, null);
    assert.ok(second.lines.includes('replayed 10 inserted 0'), second.lines.slice(0, 3).join('|'));
    assert.ok(second.lines.includes(`pending ${nProblems * nSamples - stored.size}`));
    const inserted = Number(second.lines.find((l) => l.startsWith('done'))!.split(' ')[2]);
    assert.equal(stored.size + inserted, nProblems * nSamples);

    const s = RunStore.openReadonly(path);
    const rows = s.db
      .prepare('SELECT problem_id, sample_index, count(*) AS n FROM generations GROUP BY problem_id, sample_index')
      .all() as { problem_id: string; sample_index: number; n: number }[];
    assert.equal(rows.length, nProblems * nSamples);
    assert.ok(rows.every((r) => r.n === 1));
    for (const g of s.generations()) {
      assert.equal(g.text, `generation of ${g.problemId} sample ${g.sampleIndex}`);
      assert.equal(g.tokens!.length, 3000);
      assert.equal((g.annotations as { category: number[] }).category.length, 3000);
    }
    assert.equal(s.counts().grades, nProblems * nSamples);
    assert.equal(s.counts().sessions, 2);
    assert.equal(s.db.pragma('integrity_check', { simple: true }), 'ok');
    s.close();
  });
});

describe('the .sqlite file alone holds the run (WAL checkpoints)', () => {
  const writer = join(repoRoot, 'test/eval/helpers/store-writer.ts');
  const keys = (path: string) => {
    const s = RunStore.openReadonly(path);
    const k = new Set([...s.generations()].map((g) => `${g.problemId} ${g.sampleIndex}`));
    s.close();
    return k;
  };

  it("a killed run's .sqlite copied without its -wal still has every checkpointed generation", async () => {
    const path = join(tmp, 'wal-killed.sqlite');
    const acked = await new Promise<string[]>((ok, fail) => {
      const child = spawn(process.execPath, ['--import', 'tsx', writer, path, '40', '2'], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, CHECKPOINT_MS: '0' },
      });
      const got: string[] = [];
      let buf = '';
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const parts = buf.split('\n');
        buf = parts.pop()!;
        for (const l of parts) if (l.startsWith('ok ') && got.push(l.slice(3)) === 15) child.kill('SIGKILL');
      });
      child.on('error', fail);
      child.on('close', () => ok(got));
    });
    assert.ok(statSync(`${path}-wal`).size > 0, 'the killed writer left a -wal file');
    const copy = join(tmp, 'wal-copy.sqlite');
    copyFileSync(path, copy); // the .sqlite only, as a user copying "the run file" would
    const stored = keys(copy);
    for (const k of acked) assert.ok(stored.has(k), `generation ${k} is only in the -wal`);
  });

  it('a write reaches the .sqlite within the checkpoint interval even when no other write follows', async () => {
    const path = join(tmp, 'wal-idle.sqlite');
    const s = RunStore.open(path, { config: { name: 'wal', samplesPerProblem: 1 }, checkpointEveryMs: 200 });
    s.recordGeneration({ problemId: 'a', sampleIndex: 0, text: 'first' });
    s.recordGeneration({ problemId: 'b', sampleIndex: 0, text: 'second' });
    await new Promise((r) => setTimeout(r, 400)); // the run is busy elsewhere (generating), nothing written
    const copy = join(tmp, 'wal-idle-copy.sqlite');
    copyFileSync(path, copy);
    assert.equal(keys(copy).size, 2);
    s.close();
  });

  it('closing a store empties its -wal into the .sqlite even while a reader has the file open', () => {
    const path = join(tmp, 'wal-closed.sqlite');
    const s = RunStore.open(path, { config: { name: 'wal', samplesPerProblem: 1 } });
    const reader = RunStore.openReadonly(path); // e.g. a report running meanwhile
    for (const p of problems) s.recordGeneration({ problemId: p.id, sampleIndex: 0, text: `g ${p.id}` });
    s.close();
    const copy = join(tmp, 'wal-closed-copy.sqlite');
    copyFileSync(path, copy);
    reader.close();
    assert.equal(keys(copy).size, problems.length);
  });
});

describe('shard and merge', () => {
  it('round-trips: the shards partition the problems and the merge holds every generation once', async () => {
    const { problems: ps, info } = await gsm8kProblems(60);
    const opts = { name: 'hybrid', role: 'hybrid' as const, accuracy: 0.7, problems: ps, samplesPerProblem: 3 };
    const shards = await Promise.all(
      [1, 2, 3].map((index) =>
        buildFakeRun(join(tmp, `shard${index}.sqlite`), { ...opts, seed: index, shard: { index, count: 3 } }, info),
      ),
    );
    const byShard = shards.map((p) => {
      const s = RunStore.openReadonly(p);
      const gens = new Map([...s.generations()].map((g) => [`${g.problemId}#${g.sampleIndex}`, g.text]));
      const ids = s.problems().map((x) => x.id);
      assert.equal(s.done(), true);
      s.close();
      return { gens, ids };
    });
    const allIds = byShard.flatMap((x) => x.ids);
    assert.equal(allIds.length, 60, 'shards overlap or miss problems');
    assert.equal(new Set(allIds).size, 60);

    const out = join(tmp, 'merged.sqlite');
    const r = mergeStores(out, shards);
    assert.equal(r.generations, 180);
    assert.equal(r.problems, 60);
    assert.equal(r.duplicates, 0);
    const m = RunStore.openReadonly(out);
    assert.equal(m.done(), true);
    assert.equal(m.shard, null);
    assert.equal(m.dataset?.sha256, info.sha256);
    assert.equal(m.counts().grades, 180);
    for (const g of m.generations()) {
      const src = byShard.find((x) => x.gens.has(`${g.problemId}#${g.sampleIndex}`));
      assert.equal(g.text, src?.gens.get(`${g.problemId}#${g.sampleIndex}`));
    }
    m.close();

    // Merging the same inputs again changes nothing.
    const again = mergeStores(out, shards);
    assert.equal(again.generations, 180);
    assert.equal(again.duplicates, 180);
    assert.equal(again.conflicts, 0);
    assert.deepEqual(
      again.inputs.map((x) => x.added),
      [0, 0, 0],
    );
  });

  it('refuses mismatched configs and datasets, writing nothing', async () => {
    const { problems: ps, info } = await gsm8kProblems(20);
    const a = await buildFakeRun(join(tmp, 'a.sqlite'), { name: 'b', role: 'base', accuracy: 0.5, problems: ps }, info);
    const b = await buildFakeRun(
      join(tmp, 'b.sqlite'),
      { name: 'b', role: 'base', accuracy: 0.5, problems: ps, extraConfig: { temperature: 0.7 } },
      info,
    );
    const c = await buildFakeRun(
      join(tmp, 'c.sqlite'),
      { name: 'b', role: 'base', accuracy: 0.5, problems: ps },
      { ...info, limit: 30 },
    );
    const out = join(tmp, 'refused.sqlite');
    assert.throws(
      () => mergeStores(out, [a, b]),
      (e: Error) =>
        e instanceof ThinkwhenError &&
        e.code === 'MERGE_CONFIG_MISMATCH' &&
        /different run configs \(temperature: 0 vs 0\.7\)/.test(e.message),
    );
    assert.throws(
      () => mergeStores(out, [a, c]),
      (e: Error) =>
        e instanceof ThinkwhenError && e.code === 'MERGE_DATASET_MISMATCH' && /limit: 20 vs 30/.test(e.message),
    );
    assert.equal(existsSync(out), false);
    assert.throws(() => mergeStores(a, [a]), /also an input/);
  });
});
