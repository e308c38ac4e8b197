// What `organism rl` measures, for any organism models side by side (e.g. the base model, an RL
// checkpoint, the distilled thinking model), with smaller sample counts than the command's default.
// Run: node --import tsx bench/rl-organism-measure.ts [--eval-n 100] [--pass-problems 8]
//        [--pass-samples 64] MODEL.gguf ...   (default models: the shipped base and thinking)
import { parseArgs } from 'node:util';
import { organismModelPaths } from '../src/organism/index.ts';
import { measureOrganismModel, RL_DEFAULT } from '../src/organism/rl.ts';

const { values, positionals } = parseArgs({
  options: {
    'eval-n': { type: 'string', default: '100' },
    'pass-problems': { type: 'string', default: '8' },
    'pass-samples': { type: 'string', default: '64' },
  },
  allowPositionals: true,
});
const cfg = {
  ...RL_DEFAULT,
  evalProblems: Number(values['eval-n']),
  passProblems: Number(values['pass-problems']),
  passSamples: Number(values['pass-samples']),
};
const models = positionals.length ? positionals : [organismModelPaths().base, organismModelPaths().thinking];
for (const model of models) {
  const t0 = performance.now();
  const m = await measureOrganismModel(model, cfg, { log: (l) => console.error(l) });
  console.log(
    JSON.stringify({
      model,
      acc: m.greedy.acc,
      p_verify_needed: m.pv.needed,
      p_verify_not_needed: m.pv.notNeeded,
      points: m.pv.points,
      verify_rate_needed: m.greedy.verifyRateNeeded,
      verify_rate_not_needed: m.greedy.verifyRateNotNeeded,
      knows_how: m.knowsHow,
      pass_at_k: m.passAtK,
      sentence_types: m.greedy.sentenceTypes,
      seconds: Math.round((performance.now() - t0) / 1000),
    }),
  );
}
