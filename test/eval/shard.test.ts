// --shard i/n and --shard auto/n (src/eval/shard.ts): the index of a Kubernetes Indexed Job or a Slurm
// array, and a clear BAD_SHARD for everything that would run the wrong problems.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ThinkwhenError } from '../../src/errors.ts';
import { resolveShard } from '../../src/eval/shard.ts';
import { RunStore } from '../../src/eval/store.ts';
import { cli } from '../helpers/cli.ts';

/** The BAD_SHARD message resolveShard throws (fails the test when it does not throw). */
function refusal(spec: string, env: NodeJS.ProcessEnv): string {
  try {
    resolveShard(spec, env);
  } catch (err) {
    assert.ok(err instanceof ThinkwhenError);
    assert.equal(err.code, 'BAD_SHARD');
    assert.ok(err.fix, 'a fix is given');
    return err.message;
  }
  assert.fail(`--shard ${spec} with ${JSON.stringify(env)} was accepted`);
}

describe('resolveShard', () => {
  it('takes i/n as written, whatever the environment says', () => {
    assert.deepEqual(resolveShard('2/4', { JOB_COMPLETION_INDEX: '0' }), {
      shard: { index: 2, count: 4 },
      source: null,
    });
    assert.match(refusal('5/4', {}), /bad shard '5\/4'/);
  });

  it('auto/n: the 0-based index of a Kubernetes Indexed Job is shard index + 1', () => {
    assert.deepEqual(resolveShard('auto/4', { JOB_COMPLETION_INDEX: '0' }), {
      shard: { index: 1, count: 4 },
      source: 'JOB_COMPLETION_INDEX=0',
    });
    assert.deepEqual(resolveShard('auto/4', { JOB_COMPLETION_INDEX: '3' }).shard, { index: 4, count: 4 });
  });

  it('auto/n: a Slurm array task, minus SLURM_ARRAY_TASK_MIN when set', () => {
    assert.deepEqual(resolveShard('auto/4', { SLURM_ARRAY_TASK_ID: '2' }).shard, { index: 3, count: 4 });
    // --array=1-4
    const r = resolveShard('auto/4', {
      SLURM_ARRAY_TASK_ID: '4',
      SLURM_ARRAY_TASK_MIN: '1',
      SLURM_ARRAY_TASK_COUNT: '4',
    });
    assert.deepEqual(r, { shard: { index: 4, count: 4 }, source: 'SLURM_ARRAY_TASK_ID=4 - SLURM_ARRAY_TASK_MIN=1' });
    // --array=10-13
    assert.deepEqual(resolveShard('auto/4', { SLURM_ARRAY_TASK_ID: '10', SLURM_ARRAY_TASK_MIN: '10' }).shard, {
      index: 1,
      count: 4,
    });
  });

  it('auto/n: both set and equal is fine; both set and different is refused', () => {
    const env = { JOB_COMPLETION_INDEX: '1', SLURM_ARRAY_TASK_ID: '1' };
    assert.deepEqual(resolveShard('auto/2', env).shard, { index: 2, count: 2 });
    assert.match(
      refusal('auto/4', { JOB_COMPLETION_INDEX: '1', SLURM_ARRAY_TASK_ID: '2' }),
      /JOB_COMPLETION_INDEX=1 and SLURM_ARRAY_TASK_ID=2 give different shard indices \(1 and 2\)/,
    );
  });

  it('auto/n: refuses a missing, non-integer or too large index, and a Slurm array of another size', () => {
    assert.match(refusal('auto/4', {}), /neither JOB_COMPLETION_INDEX .* nor SLURM_ARRAY_TASK_ID .* is set/);
    assert.match(refusal('auto/4', { JOB_COMPLETION_INDEX: '' }), /neither/);
    for (const bad of ['-1', '1.5', 'two', '0x2', '1e3', '99999999999999999999']) {
      assert.match(
        refusal('auto/4', { JOB_COMPLETION_INDEX: bad }),
        /JOB_COMPLETION_INDEX='.*' is not a non-negative integer/,
      );
      assert.match(
        refusal('auto/4', { SLURM_ARRAY_TASK_ID: bad }),
        /SLURM_ARRAY_TASK_ID='.*' is not a non-negative integer/,
      );
    }
    assert.match(
      refusal('auto/4', { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: 'x' }),
      /SLURM_ARRAY_TASK_MIN='x'/,
    );
    assert.match(
      refusal('auto/4', { JOB_COMPLETION_INDEX: '4' }),
      /JOB_COMPLETION_INDEX=4 is shard index 4, but there are only 4 shards \(indices 0 to 3\)/,
    );
    // --array=1-8 with auto/4: task 5 has no shard
    assert.match(refusal('auto/4', { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '1' }), /only 4 shards/);
    // a rerun of tasks 3 and 5 of a 4-task array (--array=3,5) would map them to shards 1 and 3
    assert.match(
      refusal('auto/4', { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '3', SLURM_ARRAY_TASK_COUNT: '2' }),
      /the Slurm array has 2 tasks \(SLURM_ARRAY_TASK_COUNT\), not 4/,
    );
    assert.match(
      refusal('auto/4', { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: '2' }),
      /below SLURM_ARRAY_TASK_MIN/,
    );
    // --array=0-6:2 and --array=0,2,3,5: 4 tasks, but shards 2 and 4 (or 2) would have none
    for (const max of ['6', '5']) {
      const env = {
        SLURM_ARRAY_TASK_ID: '2',
        SLURM_ARRAY_TASK_MIN: '0',
        SLURM_ARRAY_TASK_MAX: max,
        SLURM_ARRAY_TASK_COUNT: '4',
      };
      assert.match(refusal('auto/4', env), new RegExp(`task ids are not consecutive \\(4 tasks from 0 to ${max}\\)`));
    }
    // --array=0-3%2 (throttled) is a plain 4-task array
    const throttled = { SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '3', SLURM_ARRAY_TASK_COUNT: '4' };
    assert.deepEqual(resolveShard('auto/4', { ...throttled, SLURM_ARRAY_TASK_ID: '3' }).shard, { index: 4, count: 4 });
  });

  it('auto/n: refuses a bad n', () => {
    for (const bad of ['auto/0', 'auto/', 'auto/x', 'auto/-2', 'auto/2.5', 'auto']) {
      assert.match(refusal(bad, { JOB_COMPLETION_INDEX: '0' }), /bad shard/);
    }
  });
});

describe('thinkwhen run --shard auto/2, then thinkwhen merge', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-shard-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const args = ['run', '--system', 'base', '--limit', '6', '--max-tokens', '40'];

  /** `thinkwhen run …` as a job engine starts it: a child process whose environment holds the index. */
  function jobTask(out: string, env: Record<string, string>): { code: number | null; err: string } {
    const r = spawnSync(process.execPath, ['bin/thinkwhen.js', ...args, '--shard', 'auto/2', '--out', out], {
      env: { ...process.env, JOB_COMPLETION_INDEX: '', SLURM_ARRAY_TASK_ID: '', ...env },
      encoding: 'utf8',
    });
    return { code: r.status, err: r.stderr };
  }

  it('two tasks (a Kubernetes index, a Slurm task) merge into the store of an unsharded run', async () => {
    const shards = [join(tmp, 'k8s.sqlite'), join(tmp, 'slurm.sqlite')];
    const first = jobTask(shards[0], { JOB_COMPLETION_INDEX: '0' });
    assert.equal(first.code, 0, first.err);
    assert.match(first.err, /shard 1\/2 \(from JOB_COMPLETION_INDEX=0\)/);
    const second = jobTask(shards[1], {
      SLURM_ARRAY_TASK_ID: '2',
      SLURM_ARRAY_TASK_MIN: '1',
      SLURM_ARRAY_TASK_MAX: '2',
      SLURM_ARRAY_TASK_COUNT: '2',
    });
    assert.equal(second.code, 0, second.err);
    assert.match(second.err, /shard 2\/2 \(from SLURM_ARRAY_TASK_ID=2 - SLURM_ARRAY_TASK_MIN=1\)/);

    const whole = join(tmp, 'whole.sqlite');
    assert.equal((await cli([...args, '--out', whole])).code, 0);
    const merged = join(tmp, 'merged.sqlite');
    const m = await cli(['merge', merged, ...shards]);
    assert.equal(m.code, 0, m.err);
    const [a, b, s1, s2] = [whole, merged, ...shards].map(stored);
    assert.equal(a.size, 6);
    assert.ok(s1.size > 0 && s2.size > 0 && s1.size + s2.size === 6, `shards of ${s1.size} and ${s2.size}`);
    assert.deepEqual(b, a);
    assert.doesNotMatch(m.err, /warning/);

    // merging as the shards finish: a warning names the missing shard until it is there
    const partial = join(tmp, 'partial.sqlite');
    const p1 = await cli(['merge', partial, shards[0]]);
    assert.equal(p1.code, 0, p1.err);
    assert.match(p1.err, /warning: shard 2\/2 of this run is not among the inputs/);
    const p2 = await cli(['merge', partial, shards[1]]);
    assert.doesNotMatch(p2.err, /warning/);
    assert.deepEqual(stored(partial), a);
  });

  it('a task without an index writes nothing and says how to give one', () => {
    const out = join(tmp, 'none.sqlite');
    const r = jobTask(out, {});
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /neither JOB_COMPLETION_INDEX .* nor SLURM_ARRAY_TASK_ID .* is set/);
    assert.equal(existsSync(out), false);
  });
});

/** Every stored generation and grade of a run store, keyed by problem and sample. */
function stored(path: string): Map<string, string> {
  const s = RunStore.openReadonly(path);
  try {
    const grades = new Map([...s.grades('rules-math')].map((g) => [`${g.problemId}#${g.sampleIndex}`, g.correct]));
    return new Map(
      [...s.generations()].map((g) => {
        const key = `${g.problemId}#${g.sampleIndex}`;
        return [key, JSON.stringify([g.text, grades.get(key)])];
      }),
    );
  } finally {
    s.close();
  }
}

describe('docs/scale-out.md', () => {
  const docs = readFileSync('docs/scale-out.md', 'utf8');
  const block = (lang: string) => {
    const m = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(docs);
    assert.ok(m, `a ${lang} block`);
    return m[1];
  };

  it('the Indexed Job: completions = n of --shard auto/n, one store per index', () => {
    const job = block('yaml');
    const n = Number(/--shard auto\/(\d+)/.exec(job)?.[1]);
    assert.match(job, /completionMode: Indexed/);
    assert.match(job, new RegExp(`completions: ${n}\\b`));
    assert.match(job, /--out \S*\$JOB_COMPLETION_INDEX\S*\.sqlite/);
  });

  it('the sbatch script: valid bash, --array=0-(n-1) for --shard auto/n, one store per task', () => {
    const script = block('bash');
    const n = Number(/--shard auto\/(\d+)/.exec(script)?.[1]);
    assert.match(script, new RegExp(`#SBATCH --array=0-${n - 1}\\b`));
    assert.match(script, /--out \S*\$SLURM_ARRAY_TASK_ID\S*\.sqlite/);
    const check = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
  });
});
