// TEST DATA ONLY. Builds run stores filled with synthetic generations through the public store API,
// standing in for the generation stage until it exists. Nothing here is a model output.
import { join } from 'node:path';
import { loadDataset, type Problem } from '../../src/eval/datasets.ts';
import { type RunConfig, RunStore, type Shard, selectShard } from '../../src/eval/store.ts';
import { Rng } from '../../src/rng.ts';

export const repoRoot = join(import.meta.dirname, '..', '..');
export const sharedData = join(repoRoot, '..', 'shared', 'data');

export interface FakeRunOptions {
  name: string;
  /** `base`, `thinking`, `hybrid` drive gap recovered; anything else is just a label. */
  role: string;
  /** Probability that one sample is correct, before per-problem difficulty. */
  accuracy: number;
  problems: Problem[];
  samplesPerProblem?: number;
  seed?: number;
  shard?: Shard;
  /** Extra config keys (to provoke merge refusals). */
  extraConfig?: Record<string, unknown>;
}

export async function gsm8kProblems(limit: number) {
  return loadDataset({ dataset: 'gsm8k', dataDir: sharedData, limit });
}

/** Fixed per-problem difficulty in [-0.25, 0.25], shared by every system so their errors correlate as real ones do. */
function difficulty(id: string): number {
  let h = 2166136261;
  for (const ch of id) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return ((h >>> 0) / 4294967296 - 0.5) / 2;
}

export function fakeConfig(o: FakeRunOptions): RunConfig {
  return {
    name: o.name,
    role: o.role,
    samplesPerProblem: o.samplesPerProblem ?? 1,
    model: `test-fixture-${o.role}`,
    temperature: (o.samplesPerProblem ?? 1) > 1 ? 0.6 : 0,
    maxNewTokens: 2000,
    ...o.extraConfig,
  };
}

/** Writes a complete fake run to `path` and returns the path. */
export async function buildFakeRun(
  path: string,
  o: FakeRunOptions,
  dataset?: Awaited<ReturnType<typeof gsm8kProblems>>['info'],
) {
  const rng = new Rng(o.seed ?? 7);
  const rand = () => rng.next();
  const store = RunStore.open(path, { config: fakeConfig(o), ...(dataset ? { dataset } : {}), shard: o.shard ?? null });
  try {
    const problems = selectShard(o.problems, o.shard);
    let t = Date.UTC(2025, 0, 1);
    for (const { problem, sampleIndex } of store.pending(problems)) {
      const p = Math.min(1, Math.max(0, o.accuracy - difficulty(problem.id)));
      const correct = rand() < p;
      const answer = correct
        ? problem.answer
        : String(Number(problem.answer.replace(/,/g, '')) + 1 + Math.floor(rand() * 9));
      const n = 40 + Math.floor(rand() * 400);
      const tokens = Array.from({ length: n }, () => Math.floor(rand() * 150000));
      const steered = o.role === 'hybrid' ? tokens.map((): number => (rand() < 0.12 ? 1 : 0)) : undefined;
      const started = t;
      t += 1000 + Math.floor(rand() * 5000);
      store.recordGeneration({
        problemId: problem.id,
        sampleIndex,
        text: `[TEST DATA: synthetic ${o.role} generation]\nStep 1: ...\nThe answer is ${answer}.`,
        promptTokens: 60 + Math.floor(problem.question.length / 4),
        tokens,
        annotations: steered ? { steered, category: tokens.map((x) => x % 15) } : undefined,
        steeredTokens: steered?.reduce((a, b) => a + b, 0),
        finishReason: rand() < 0.05 ? 'length' : 'stop',
        startedAt: started,
        finishedAt: t,
        grades: [{ grader: 'fixture-exact', correct, extracted: answer }],
      });
    }
  } finally {
    store.close();
  }
  return path;
}
