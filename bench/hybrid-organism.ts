// The hybrid's throughput on the shipped organism, as `thinkwhen demo` runs it: the organism pair,
// its shipped SAE and vectors, its grid (coefficients 1, 2, 4, 8 × windows 0, −1, −15, −50, −100),
// its chat prompts and 320-token cap, the organism's test problems. Prints ms per generated token of
// the hybrid (paper policy) at each --batch, wall and process CPU time (the machine may be shared:
// CPU time is the steadier measure), next to ms per token of the base model and the thinking
// model generating alone on the same problems (one context, same batch), and the work counters.
//
//   THINKWHEN_THREADS=1 node --import tsx bench/hybrid-organism.ts [--problems 30] [--batch 1,8,32] [--speculate 4] [--policy paper] [--json]
import { parseArgs } from 'node:util';
import { generate, Model } from '../src/engine/index.ts';
import { organismDataset } from '../src/experiments/datasets.ts';
import { resolveSae } from '../src/experiments/hybrid.ts';
import { getPreset } from '../src/experiments/presets.ts';
import { promptIds } from '../src/experiments/prompts.ts';
import { type HybridPair, type HybridProblem, hybridRun, type PolicyName } from '../src/hybrid/index.ts';
import { organismModelPaths } from '../src/organism/index.ts';
import { loadVectorSet } from '../src/steer/vector-set.ts';

const { values } = parseArgs({
  options: {
    problems: { type: 'string', default: '30' },
    batch: { type: 'string', default: '1,8,32' },
    speculate: { type: 'string', default: '4' },
    policy: { type: 'string', default: 'paper' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(values.problems);
const BATCHES = values.batch.split(',').map(Number);
const log = (s: string) => console.error(s);

const preset = getPreset('organism');
const paths = organismModelPaths();
const vectorsDir = new URL('../src/organism/models/vectors', import.meta.url).pathname;
const base = await Model.load(paths.base);
const thinking = await Model.load(paths.thinking);
const sae = await resolveSae({ vectors: vectorsDir });
const pair: HybridPair = {
  base,
  thinking,
  sae: sae.sae,
  saeLayer: sae.layer,
  vectors: await loadVectorSet(vectorsDir, base),
};
const questions = organismDataset(N).problems;
const problems: HybridProblem[] = questions.map((p) => ({
  id: p.id,
  prompt: {
    base: promptIds(base, preset.basePrompt, p.question),
    thinking: promptIds(thinking, preset.thinkingPrompt, p.question),
  },
}));

/** Wall and process CPU ms since a start, per `n`. */
const clock = () => {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  return (n: number) => {
    const c = process.cpuUsage(c0);
    return { wall: (performance.now() - t0) / n, cpu: (c.user + c.system) / 1000 / n };
  };
};

/** ms per generated token (wall, CPU) of one model alone, `batch` problems per decode. */
async function alone(m: Model, prompts: number[][], batch: number): Promise<{ wall: number; cpu: number }> {
  const ctx = m.createContext({ nCtx: batch * 512, nBatch: 512, nSeqMax: batch });
  const per = clock();
  let tokens = 0;
  for (let i = 0; i < prompts.length; i += batch) {
    const out = await generate(
      ctx,
      prompts.slice(i, i + batch).map((prompt) => ({ prompt, maxTokens: preset.maxTokens })),
    );
    tokens += out.reduce((s, o) => s + o.tokens.length, 0);
  }
  ctx.free();
  return per(tokens);
}

const rows: Record<string, unknown>[] = [];
for (const batch of BATCHES) {
  log(`batch ${batch}: base alone, thinking alone, hybrid (${values.policy}, speculate ${values.speculate})…`);
  const baseMs = await alone(
    base,
    problems.map((p) => p.prompt.base),
    batch,
  );
  const thinkMs = await alone(
    thinking,
    problems.map((p) => p.prompt.thinking),
    batch,
  );
  const run = hybridRun(pair, problems, {
    policy: values.policy as PolicyName,
    grid: preset.grid,
    maxTokens: preset.maxTokens,
    speculate: Number(values.speculate),
    batch,
  });
  const per = clock();
  let tokens = 0;
  let steered = 0;
  for await (const ev of run.events) {
    if (ev.type !== 'token') continue;
    tokens++;
    if (ev.record.steered) steered++;
  }
  const hybridMs = per(tokens);
  const c = run.counters;
  const cpuShare = Object.fromEntries(Object.entries(c.cpuMs).map(([k, v]) => [k, v / tokens]));
  rows.push({
    batch,
    tokens,
    disagreement_rate: steered / tokens,
    hybrid_ms_per_token: hybridMs,
    base_ms_per_token: baseMs,
    thinking_ms_per_token: thinkMs,
    cpu_ratio_to_base_plus_thinking: hybridMs.cpu / (baseMs.cpu + thinkMs.cpu),
    rows_per_token: (c.baseRows + c.thinkingRows + c.windowRows + c.steeredRows) / tokens,
    decode_cpu_ms_per_token: cpuShare,
    counters: c,
  });
  log(JSON.stringify(rows[rows.length - 1]));
}
base.free();
thinking.free();
const result = {
  pair: 'organism (src/organism/models), shipped SAE and vectors, grid 1,2,4,8 × 0,−1,−15,−50,−100',
  problems: N,
  policy: values.policy,
  speculate: Number(values.speculate),
  threads: process.env.THINKWHEN_THREADS ?? 'all cores',
  rows,
};
console.log(JSON.stringify(result, null, values.json ? 0 : 2));
