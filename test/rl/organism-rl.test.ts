// `thinkwhen organism rl --quick` end to end (the real CLI, the shipped organism, llama.cpp sampling,
// the trainer), and the GRPO loop's resume after a crash.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { corpusPolicy } from '../../src/organism/corpus.ts';
import { generateProblems, organismModelPaths, promptText } from '../../src/organism/index.ts';
import { makeTrace } from '../../src/organism/language.ts';
import { rewardOf, sampleMetrics } from '../../src/organism/rl.ts';
import { type GrpoStepStats, groupAdvantages, trainGrpo } from '../../src/rl/grpo.ts';
import { Rng } from '../../src/rng.ts';

const run = promisify(execFile);
const bin = join(import.meta.dirname, '..', '..', 'bin', 'thinkwhen.js');

test('organism rl --quick: trains, writes thinking-rl.gguf, prints the line; a rerun returns at once', async () => {
  const work = mkdtempSync(join(tmpdir(), 'tw-rl-'));
  try {
    const env = { ...process.env, THINKWHEN_THREADS: '1' };
    const args = [bin, 'organism', 'rl', '--quick', '--json', '--work', work];
    const first = await run(process.execPath, args, { env, maxBuffer: 1 << 24 });
    const line = JSON.parse(first.stdout.trim());
    for (const k of ['acc', 'p_verify_needed', 'p_verify_not_needed', 'base_acc']) {
      assert.ok(line[k] >= 0 && line[k] <= 1, `${k} = ${line[k]}`);
    }
    // organism eval's knows-how, on held-out operations, before and after RL
    for (const k of ['knows_how_verify_heldout', 'base_knows_how_verify_heldout']) {
      assert.ok(line[k] >= 0 && line[k] <= 1, `${k} = ${line[k]}`);
    }
    assert.equal(line.steps, 3);
    assert.equal(line.organism, 'v2', 'the shipped models are the v2 organism (build.json beside them)');
    for (const m of ['base', 'rl']) {
      assert.deepEqual(Object.keys(line.pass_at_k[m]), ['1', '4']);
      const p = line.pass_at_k[m];
      assert.ok(p['1'] >= 0 && p['1'] <= p['4'] && p['4'] <= 1, `${m} pass@k not monotone: ${JSON.stringify(p)}`);
    }
    // the base model verifies with probability ~0.15 in its corpus, needed or not: P(Check) is small
    // but not zero, and about the same either way
    for (const k of ['base_p_verify_needed', 'base_p_verify_not_needed']) {
      assert.ok(line[k] > 0.01 && line[k] < 0.5, `${k} = ${line[k]}`);
    }
    assert.ok(existsSync(join(work, 'thinking-rl.gguf')));
    const rec = JSON.parse(readFileSync(join(work, 'thinking-rl.gguf.grpo.json'), 'utf8'));
    assert.equal(rec.history.length, 3);
    for (const s of rec.history as GrpoStepStats[]) {
      assert.ok(s.reward >= 0 && s.reward <= 1 && s.length > 10 && Number.isFinite(s.loss), JSON.stringify(s));
      // with the answer reward, the share of right answers is the reward itself
      assert.equal(s.metrics?.correct, s.reward, JSON.stringify(s));
      assert.ok(s.metrics.quick_wrong_verified <= s.metrics.quick_wrong, JSON.stringify(s));
    }
    // the line's training curves are the record's steps
    const steps = rec.history as GrpoStepStats[];
    assert.deepEqual(
      line.train_by_step.reward,
      steps.map((s) => Math.round(s.reward * 1000) / 1000),
    );
    assert.deepEqual(line.train_by_step.correct, line.train_by_step.reward);
    assert.equal(line.train_by_step.verify_rate_not_needed.length, 3);
    assert.equal(line.kl_coef, 0);
    assert.deepEqual(line.train_by_step.kl, [null, null, null], 'no KL penalty, no reference model: no KL measured');
    assert.ok(!existsSync(join(work, 'thinking-rl.gguf.ckpt.json')), 'the checkpoint is removed at the end');

    const t0 = performance.now();
    const again = await run(process.execPath, args, { env, maxBuffer: 1 << 24 });
    const seconds = (performance.now() - t0) / 1000;
    assert.deepEqual(JSON.parse(again.stdout.trim()), line);
    assert.match(again.stderr, /finished before/);
    assert.ok(seconds < 20, `the rerun took ${seconds} s`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('grpo: a run that crashed resumes from its checkpoint with the same history', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-grpo-'));
  const task = {
    problems: (step: number, count: number) => generateProblems('train', count, 100 + step),
    prompt: (p: ReturnType<typeof generateProblems>[number]) => promptText(p.question),
    reward: (p: ReturnType<typeof generateProblems>[number], c: { text: string }) => rewardOf('answer', p, c.text),
  };
  const opts = {
    policy: organismModelPaths().base,
    out: join(dir, 'policy.gguf'),
    steps: 3,
    problemsPerStep: 2,
    groupSize: 3,
    maxTokens: 200,
    tokenCost: 0.001,
    lr: 1e-4,
    checkpointEvery: 1,
    seed: 5,
    threads: 1,
  };
  try {
    const seen: GrpoStepStats[] = [];
    await assert.rejects(
      trainGrpo(task, {
        ...opts,
        onStep: (s) => {
          seen.push(s);
          if (s.step === 2) throw new Error('simulated crash');
        },
      }),
      /simulated crash/,
    );
    assert.ok(existsSync(`${opts.out}.ckpt.json`), 'checkpoint of step 1 kept');
    const r = await trainGrpo(task, opts);
    assert.equal(r.resumedFrom, 1);
    assert.equal(r.history.length, 3);
    const strip = ({ seconds: _, ...s }: GrpoStepStats) => s;
    assert.deepEqual(strip(r.history[0]), strip(seen[0]));
    // step 2 is redone from the same weights, problems and seeds: the same samples
    assert.deepEqual(strip(r.history[1]), strip(seen[1]));
    await assert.rejects(trainGrpo(task, { ...opts, lr: 2e-4 }), /other settings/);
    const foreign = join(dir, 'foreign.gguf');
    writeFileSync(foreign, 'not ours');
    await assert.rejects(trainGrpo(task, { ...opts, out: foreign }), /not overwritten/);
    assert.equal(readFileSync(foreign, 'utf8'), 'not ours');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('grpo: group advantages', () => {
  assert.deepEqual(groupAdvantages([1, 1, 1], 'std'), [0, 0, 0]);
  assert.deepEqual(groupAdvantages([1, 0], 'mean'), [0.5, -0.5]);
  const a = groupAdvantages([1, 0, 0, 0], 'std');
  assert.ok(Math.abs(a[0] - Math.sqrt(3)) < 1e-12 && Math.abs(a.reduce((x, y) => x + y, 0)) < 1e-12);
});

test('organism rl rewards: answer, format, random', () => {
  const [p] = generateProblems('test', 1, 3);
  const right = `So the answer is \\boxed{${p.answer}}.`;
  const wrong = `The answer is \\boxed{${p.answer + 1}}.`;
  assert.equal(rewardOf('answer', p, right), 1);
  assert.equal(rewardOf('answer', p, wrong), 0);
  assert.equal(rewardOf('format', p, wrong), 1);
  assert.equal(rewardOf('format', p, 'no box'), 0);
  const coins = Array.from({ length: 200 }, (_, i) => rewardOf('random', p, `${wrong} ${i}`));
  const ones = coins.filter((x) => x === 1).length;
  assert.ok(ones > 70 && ones < 130, `${ones} of 200 coin flips`);
  assert.equal(rewardOf('random', p, wrong), rewardOf('random', p, wrong), 'the same completion, the same coin');
});

test('organism rl sample metrics: right answer, quick results wrong/right and which were verified', () => {
  const [p] = generateProblems('test', 1, 3);
  const none = sampleMetrics(p, 'no trace at all');
  assert.deepEqual(none, {
    correct: 0,
    quick_right: 0,
    quick_right_verified: 0,
    quick_wrong: 0,
    quick_wrong_verified: 0,
  });
  // the ground-truth thinking trace verifies exactly its wrong quick results and is right
  const t = makeTrace(p, corpusPolicy('thinking'), new Rng(0));
  const m = sampleMetrics(p, t.sentences.map((s) => s.text).join('\n'));
  assert.equal(m.correct, 1);
  assert.equal(m.quick_wrong + m.quick_right, p.ops.length);
  assert.ok(m.quick_wrong > 0, 'this problem needs a carry or borrow somewhere');
  assert.equal(m.quick_wrong_verified, m.quick_wrong);
  assert.equal(m.quick_right_verified, 0);
});
