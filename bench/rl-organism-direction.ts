// Which way does the policy gradient point, before any drift? One GRPO step from the organism's base
// model on a large batch (default 160 training problems × 8 samples at temperature 1), for each
// reward setting, then P(Check) where verifying is needed and where it is not (the `organism rl`
// measurement, src/organism/rl.ts) of the stepped model against the base. A large batch makes the step
// close to the expected gradient's (sign) direction; with the same problems and seeds in every
// setting, the settings differ only in the reward. The last number is the *when* part of the step:
// how much the ratio P(Check | needed) / P(Check | not needed) moved.
// Run: node --import tsx bench/rl-organism-direction.ts [--problems 160] [--group 8] [--lr 1e-4] [--seed 1]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TEST_SEED } from '../src/organism/eval.ts';
import { generateProblems, organismModelPaths, type Problem, promptText } from '../src/organism/index.ts';
import { type RlReward, rewardOf, verifyProbabilities } from '../src/organism/rl.ts';
import { trainGrpo } from '../src/rl/grpo.ts';
import { sampleSeed } from '../src/rl/sample.ts';

const { values } = parseArgs({
  options: {
    problems: { type: 'string', default: '160' },
    group: { type: 'string', default: '8' },
    lr: { type: 'string', default: '1e-4' },
    seed: { type: 'string', default: '1' },
  },
});
const SETTINGS: { name: string; reward: RlReward; tokenCost: number }[] = [
  { name: 'answer, token cost 0.001', reward: 'answer', tokenCost: 0.001 },
  { name: 'answer, token cost 0', reward: 'answer', tokenCost: 0 },
  { name: 'random (coin), token cost 0', reward: 'random', tokenCost: 0 },
];
const base = organismModelPaths().base;
const evalSet = generateProblems('test', 200, TEST_SEED);
const dir = mkdtempSync(join(tmpdir(), 'tw-rl-direction-'));
const seed = Number(values.seed);
try {
  const before = await verifyProbabilities(base, evalSet, 1);
  console.log(
    `base: P(Check | needed) ${before.needed.toFixed(4)}, | not needed ${before.notNeeded.toFixed(4)} (${before.points[0]} / ${before.points[1]} points)`,
  );
  for (const s of SETTINGS) {
    const out = join(dir, `${s.reward}-${s.tokenCost}.gguf`);
    const r = await trainGrpo<Problem>(
      {
        problems: (step, count) => generateProblems('train', count, sampleSeed(seed, step)),
        prompt: (p) => promptText(p.question),
        reward: (p, c) => rewardOf(s.reward, p, c.text),
      },
      {
        policy: base,
        out,
        steps: 1,
        problemsPerStep: Number(values.problems),
        groupSize: Number(values.group),
        maxTokens: 320,
        tokenCost: s.tokenCost,
        advantage: 'mean',
        lr: Number(values.lr),
        seed,
        threads: 1,
      },
    );
    const after = await verifyProbabilities(out, evalSet, 1);
    const h = r.history[0];
    console.log(
      `${s.name}: reward ${h.reward.toFixed(3)}, ${h.flatGroups} flat groups; P(Check | needed) ${before.needed.toFixed(4)} → ${after.needed.toFixed(4)} (×${(after.needed / before.needed).toFixed(3)}), | not needed ${before.notNeeded.toFixed(4)} → ${after.notNeeded.toFixed(4)} (×${(after.notNeeded / before.notNeeded).toFixed(3)}); needed / not needed ×${(after.needed / after.notNeeded / (before.needed / before.notNeeded)).toFixed(3)}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
