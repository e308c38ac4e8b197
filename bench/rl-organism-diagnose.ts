// Where an organism model's reward comes from at temperature 1 (the temperature RL samples at):
// samples of fixed training problems, split by what the trace did with its quick computations.
// Compares models side by side on the same problems and seeds (e.g. the base model and an RL
// checkpoint), so that a change in reward is not the noise of different batches.
// Run: node --import tsx bench/rl-organism-diagnose.ts [--problems 40] [--samples 8] [MODEL.gguf ...]
// (default model: the shipped base model)
import { parseArgs } from 'node:util';
import { analyzeTrace, generateProblems, organismModelPaths, promptText } from '../src/organism/index.ts';
import { rewardOf } from '../src/organism/rl.ts';
import { sampleCompletions } from '../src/rl/sample.ts';

const { values, positionals } = parseArgs({
  options: { problems: { type: 'string', default: '40' }, samples: { type: 'string', default: '8' } },
  allowPositionals: true,
});
const problems = generateProblems('train', Number(values.problems), 77);
const G = Number(values.samples);
for (const model of positionals.length ? positionals : [organismModelPaths().base]) {
  const reqs = problems.flatMap((p, i) =>
    Array.from({ length: G }, (_, g) => ({ prompt: promptText(p.question), seed: i * 1000 + g })),
  );
  const c = await sampleCompletions(model, reqs, { temperature: 1, maxTokens: 320 });
  const groups = new Map<string, [number, number]>();
  const add = (k: string, r: number) => {
    const g = groups.get(k) ?? [0, 0];
    groups.set(k, [g[0] + r, g[1] + 1]);
  };
  const steps = { wrong: 0, wrongVerified: 0, right: 0, rightVerified: 0 };
  let reward = 0;
  let tokens = 0;
  c.forEach((x, k) => {
    const r = rewardOf('answer', problems[Math.floor(k / G)], x.text);
    reward += r;
    tokens += x.tokens.length;
    const a = analyzeTrace(x.text);
    for (const s of a.steps) {
      if (s.quickWrong) {
        steps.wrong++;
        if (s.verified) steps.wrongVerified++;
      } else {
        steps.right++;
        if (s.verified) steps.rightVerified++;
      }
    }
    const wrong = a.steps.filter((s) => s.quickWrong);
    add(
      wrong.length === 0
        ? 'no wrong quick result'
        : wrong.every((s) => s.verified)
          ? 'every wrong quick result verified'
          : 'a wrong quick result left unverified',
      r,
    );
    add(
      a.steps.some((s) => !s.quickWrong && s.verified) ? 'verified a right quick result' : 'verified no right one',
      r,
    );
  });
  console.log(
    `${model}: reward ${(reward / c.length).toFixed(3)} over ${c.length} samples, ${(tokens / c.length).toFixed(1)} tokens each`,
  );
  console.log(
    `  quick results wrong ${steps.wrong} (verified ${steps.wrongVerified}), right ${steps.right} (verified ${steps.rightVerified})`,
  );
  for (const [k, [s, n]] of groups)
    console.log(`  ${k.padEnd(38)} ${String(n).padStart(5)} samples, reward ${(s / n).toFixed(3)}`);
}
