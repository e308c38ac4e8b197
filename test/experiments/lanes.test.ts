// runInLanes: how many jobs run at once, results by job index, a stop signal that reaches every
// lane, and the first error rethrown only after the other lanes stopped.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runInLanes } from '../../src/experiments/lanes.ts';

const tick = () => new Promise((r) => setTimeout(r, 5));

/** A job that runs `steps` ticks, stopping early when the lanes' signal aborts. */
const stepper = (log: string[]) => async (job: { name: string; steps: number }, signal: AbortSignal) => {
  log.push(`start ${job.name}`);
  let done = 0;
  while (done < job.steps && !signal.aborted) {
    await tick();
    done++;
  }
  log.push(`end ${job.name}`);
  return { name: job.name, done, interrupted: done < job.steps };
};

describe('runInLanes', () => {
  it('runs at most `lanes` jobs at once, the next one as soon as a lane is free; results by job index', async () => {
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const results = await runInLanes([6, 1, 1, 1, 2], 2, async (steps, _signal) => {
      running++;
      most = Math.max(most, running);
      for (let i = 0; i < steps; i++) await tick();
      running--;
      order.push(steps);
      return steps * 10;
    });
    assert.equal(most, 2);
    assert.deepEqual(results, [60, 10, 10, 10, 20]);
    // the long job holds one lane while the other takes the short ones
    assert.deepEqual(order, [1, 1, 1, 2, 6]);
  });

  it('never runs more lanes than jobs, and one lane runs them in order', async () => {
    const log: string[] = [];
    const jobs = [
      { name: 'a', steps: 2 },
      { name: 'b', steps: 1 },
    ];
    await runInLanes(jobs, 1, stepper(log));
    assert.deepEqual(log, ['start a', 'end a', 'start b', 'end b']);
    assert.deepEqual(await runInLanes([], 4, stepper(log)), []);
  });

  it('an abort reaches every running job and starts no new one; unstarted jobs leave holes', async () => {
    const log: string[] = [];
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 30);
    const jobs = ['a', 'b', 'c', 'd'].map((name) => ({ name, steps: 1000 }));
    const results = await runInLanes(jobs, 2, stepper(log), {
      signal: stop.signal,
      stopAfter: (r) => r.interrupted,
    });
    assert.deepEqual(log.sort(), ['end a', 'end b', 'start a', 'start b']);
    assert.equal(results.length, 4);
    assert.ok(results[0]?.interrupted && results[1]?.interrupted);
    assert.equal(results[2], undefined);
    assert.equal(results[3], undefined);
  });

  it('an already aborted signal runs nothing', async () => {
    const log: string[] = [];
    const results = await runInLanes([{ name: 'a', steps: 1 }], 2, stepper(log), { signal: AbortSignal.abort() });
    assert.deepEqual(log, []);
    assert.deepEqual(results, [undefined]);
  });

  it('a job that throws stops the other lanes first, then its error is rethrown (the first one)', async () => {
    const log: string[] = [];
    const run = stepper(log);
    const jobs = [
      { name: 'long', steps: 1000 },
      { name: 'bad', steps: 2 },
      { name: 'bad2', steps: 1 },
      { name: 'never', steps: 1 },
    ];
    await assert.rejects(
      runInLanes(jobs, 2, async (job, signal) => {
        if (job.name.startsWith('bad')) {
          await run({ ...job, steps: job.steps }, signal);
          throw new Error(`${job.name} failed`);
        }
        return run(job, signal);
      }),
      /^Error: bad failed$/,
    );
    // the long job had stopped (its end logged) before the error came out; nothing started after
    assert.deepEqual(log, ['start long', 'start bad', 'end bad', 'end long']);
  });
});
