// `thinkwhen demo`: the whole pipeline on the shipped model organism — the taxonomy SAE and the
// steering vectors (shipped, or regenerated from seeds when they do not match the models) → base,
// thinking, the hybrid and every control on held-out problems → pass@k of base, thinking and hybrid → one
// report. Every step writes into the workspace and resumes there.
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { ThinkwhenError } from '../errors.ts';
import { buildReport, type Report, type WrittenReport, writeReport } from '../eval/report/index.ts';
import { systemsTable } from '../eval/report/systems.ts';
import { POLICIES, type PolicyName } from '../hybrid/index.ts';
import {
  type ArtifactPaths,
  artifactsMismatch,
  buildOrganismArtifacts,
  type OrganismPair,
  organismArtifactPaths,
  pairBaseModel,
} from '../organism/artifacts.ts';
import { organismModelPaths } from '../organism/index.ts';
import { fileSha256, MANIFEST, type VectorSetManifest } from '../steer/vector-set.ts';
import { organismDataset, type RunDataset } from './datasets.ts';
import { runHybrid } from './hybrid.ts';
import { runInLanes } from './lanes.ts';
import { getPreset } from './presets.ts';
import { type RunResult, runSystem, type Sampling } from './run.ts';

/** The demo's systems, as `--json` names them: the hybrid is the paper's policy, the controls by their policy names. */
export const DEMO_SYSTEMS = ['base', 'thinking', 'hybrid', ...POLICIES.filter((p) => p !== 'paper')] as const;
export type DemoSystem = (typeof DEMO_SYSTEMS)[number];

export interface PassAtKSettings {
  /** held-out problems sampled (the first of the evaluation's problems) */
  problems: number;
  samples: number;
  temperature: number;
  seed: number;
}

export interface DemoOptions {
  pair: OrganismPair;
  /** held-out problems every greedy system runs on */
  problems: number;
  passAtK: PassAtKSettings;
  /** workspace: artifacts (when regenerated), runs/, report/ */
  out: string;
  /** the model folder (default: the shipped models) */
  models?: string;
  /** problems decoded together */
  parallel?: number;
  /** runs at once (default: one per core, at most libuv's worker threads: demoLanes) */
  lanes?: number;
  /** CPU threads per run (default: 1 with several lanes, else THINKWHEN_THREADS or all cores) */
  threads?: number;
  signal?: AbortSignal;
  /** a line about what happens next */
  onLog?: (line: string) => void;
  /** a run is about to start: `done` of `total` stored already (several runs may be under way at once) */
  onRunStart?: (name: string, total: number, done: number) => void;
  onRunAdvance?: (name: string, units: number, tokens: number) => void;
  onRunEnd?: (r: RunResult) => void;
}

export interface DemoSystemRow {
  acc: number;
  n: number;
  gap_recovered: number | null;
  steered_mean: number | null;
  steered_token: number | null;
}

export interface DemoResult {
  /** `--json`'s object */
  json: {
    systems: Partial<Record<DemoSystem, DemoSystemRow>>;
    pass_at_k: Partial<Record<'base' | 'thinking' | 'hybrid', Record<string, number>>>;
    seconds: number;
    /** which pair and which files (SHA-256) the numbers are of */
    pair: OrganismPair;
    models: { base: ModelFile; thinking: ModelFile };
  };
  report: Report;
  files: WrittenReport;
  /** the shipped artifacts, or the regenerated ones and why */
  artifacts: { paths: ArtifactPaths; regenerated: string | null };
  interrupted: boolean;
}

export interface ModelFile {
  file: string;
  sha256: string;
}

const modelFile = async (path: string): Promise<ModelFile> => ({
  file: basename(path),
  sha256: await fileSha256(path),
});

/** The pair's SAE and vectors: the shipped ones when they belong to the models, else regenerated in the workspace. */
async function demoArtifacts(o: DemoOptions, models: { base: string; thinking: string }) {
  const shipped = organismArtifactPaths(o.models, o.pair);
  const why = await artifactsMismatch(shipped, models);
  if (why === null) return { paths: shipped, regenerated: null };
  const local = organismArtifactPaths(join(o.out, 'artifacts'), o.pair);
  if ((await artifactsMismatch(local, models)) === null) return { paths: local, regenerated: why };
  o.onLog?.(
    `demo: the shipped SAE and vectors cannot be used (${why}); regenerating them from seeds into ${local.dir}`,
  );
  await buildOrganismArtifacts({
    models: o.models,
    pair: o.pair,
    out: local.dir,
    work: join(o.out, 'artifacts-work'),
    threads: o.threads,
    onProgress: o.onLog,
  });
  return { paths: local, regenerated: why };
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const t0 = Date.now();
  const all = organismModelPaths(o.models);
  const models = { base: pairBaseModel(all, o.pair), thinking: all.thinking };
  for (const path of [models.base, models.thinking]) {
    if (!existsSync(path)) {
      throw new ThinkwhenError(
        'ORGANISM_MISSING',
        `the ${o.pair === 'latent' && path === models.base ? 'base-latent ' : ''}organism model ${path} is not there${o.pair === 'latent' ? ' (the base-latent pair needs the v2 organism: base.gguf, base-latent.gguf, thinking.gguf)' : ''}`,
        o.pair === 'latent'
          ? 'build the three models with `thinkwhen organism build` (or run the default pair: drop --pair latent)'
          : 'build the models with `thinkwhen organism build`',
      );
    }
  }
  const artifacts = await demoArtifacts(o, models);
  // A latent the vectors could not be trained for (too few examples) steers with c·bias alone:
  // said here, and marked on every such token's record.
  const manifest: VectorSetManifest = JSON.parse(readFileSync(join(artifacts.paths.vectors, MANIFEST), 'utf8'));
  const skipped = manifest.skipped ?? [];
  if (skipped.length) {
    o.onLog?.(
      `demo: latent(s) ${skipped.map((s) => `${s.latent} (${s.reason})`).join(', ')} have no vector; their tokens steer with c·bias alone`,
    );
  }
  const preset = getPreset(o.pair === 'latent' ? 'organism-latent' : 'organism');
  const dataset = organismDataset(o.problems);
  const runsDir = join(o.out, 'runs');
  const lanes = o.lanes ?? demoLanes();
  if (lanes > LIBUV_THREADS) {
    o.onLog?.(
      `demo: ${lanes} lanes share libuv's ${LIBUV_THREADS} worker threads, so at most ${LIBUV_THREADS} runs decode at once; set UV_THREADPOOL_SIZE=${lanes} in the environment to run them all`,
    );
  }
  // The organism's models are tiny: the cores go to decodes side by side, one thread each.
  const threads = o.threads ?? (lanes > 1 ? 1 : undefined);
  const cores = availableParallelism();
  if (lanes > 1 && threads !== undefined && lanes * threads > cores) {
    o.onLog?.(
      `demo: ${lanes} lanes × ${threads} threads exceed the ${cores} cores; ggml's spinning threads will slow each other down (fewer --lanes or --threads 1)`,
    );
  }
  const common = (name: string, signal: AbortSignal) => ({
    preset,
    checked: true,
    modelsDir: o.models,
    out: join(runsDir, `${name}.sqlite`),
    name,
    parallel: o.parallel,
    threads,
    signal,
    onStart: (s: { total: number; done: number }) => o.onRunStart?.(name, s.total, s.done),
    onAdvance: (units: number, tokens: number) => o.onRunAdvance?.(name, units, tokens),
  });
  const hybridCommon = (name: string, signal: AbortSignal) => ({
    ...common(name, signal),
    parallel: hybridBatch(o.parallel),
    vectors: artifacts.paths.vectors,
    taxonomy: artifacts.paths.sae,
    missingVector: skipped.length ? ('bias' as const) : ('error' as const),
  });

  // The jobs in the report's order: base, thinking, the hybrid and its controls, then pass@k.
  const jobs: DemoJob[] = [];
  for (const system of ['base', 'thinking'] as const) {
    jobs.push({
      cost: o.problems * relativeCost(system),
      run: (signal) => runSystem({ ...common(system, signal), system, dataset }),
    });
  }
  for (const policy of POLICIES) {
    const name = policy === 'paper' ? 'hybrid' : policy;
    jobs.push({
      cost: o.problems * relativeCost(policy),
      run: (signal) => runHybrid({ ...hybridCommon(name, signal), dataset, policy: policy as PolicyName }),
    });
  }
  // pass@k: base, thinking and the hybrid (the paper's policy) sampled on the same problems with the same seeds.
  const k = o.passAtK;
  if (k.samples > 1 && k.problems > 0) {
    const sampled: RunDataset = organismDataset(Math.min(k.problems, o.problems));
    const sampling: Sampling = { samples: k.samples, temperature: k.temperature, topP: 1, seed: k.seed };
    const name = (system: string) => `${system}-n${k.samples}-t${k.temperature}`;
    const generations = sampled.problems.length * k.samples;
    for (const system of ['base', 'thinking'] as const) {
      jobs.push({
        cost: generations * relativeCost(system),
        run: (signal) => runSystem({ ...common(name(system), signal), system, dataset: sampled, sampling }),
      });
    }
    jobs.push({
      cost: generations * relativeCost('paper'),
      run: (signal) =>
        runHybrid({
          ...hybridCommon(name('hybrid'), signal),
          dataset: sampled,
          sampling,
          seed: k.seed,
          policy: 'paper',
        }),
    });
  }

  // Longest first, so the lanes run out of work together; the report keeps the jobs' order.
  const order = jobs.map((_, i) => i).sort((a, b) => jobs[b].cost - jobs[a].cost || a - b);
  const done = await runInLanes(
    order,
    lanes,
    async (i, signal) => {
      const r = await jobs[i].run(signal);
      o.onRunEnd?.(r);
      return r;
    },
    { signal: o.signal, stopAfter: (r) => r.interrupted },
  );
  const results: (RunResult | undefined)[] = new Array(jobs.length).fill(undefined);
  order.forEach((job, at) => {
    results[job] = done[at];
  });
  const paths = results.filter((r) => r !== undefined).map((r) => r.path);
  // a run stopped midway, or one that never started
  const interrupted = results.some((r) => r === undefined || r.interrupted);

  const report = buildReport(paths, { title: `thinkwhen demo: the model organism (${o.pair} pair)` });
  const files = writeReport(report, join(o.out, 'report'));
  const json = {
    ...demoJson(report, (Date.now() - t0) / 1000),
    pair: o.pair,
    models: { base: await modelFile(models.base), thinking: await modelFile(models.thinking) },
  };
  return { json, report, files, artifacts, interrupted };
}

/** One of the demo's runs; `cost` is its relative CPU time, to start the longest first. */
interface DemoJob {
  cost: number;
  run: (signal: AbortSignal) => Promise<RunResult>;
}

/**
 * Relative CPU time per generation, for the order only (docs/demo.md "Cost": per token one model
 * alone cost 1.2 ms, the two models in lockstep without steering 1.7 ms, the steering policies
 * 5.6–23 ms, since a disagreement decodes up to 20 steered candidates).
 */
function relativeCost(system: 'base' | 'thinking' | PolicyName): number {
  if (system === 'base' || system === 'thinking') return 1;
  if (system === 'selection_only' || system === 'oracle') return 2;
  return 10;
}

/** Decodes run on libuv's worker pool (node's UV_THREADPOOL_SIZE, 4 unless set before node starts). */
const LIBUV_THREADS = Number(process.env.UV_THREADPOOL_SIZE) || 4;

/** Default lanes: one per core, at most as many as libuv's worker threads (more would wait for one). */
export function demoLanes(): number {
  return Math.max(1, Math.min(availableParallelism(), LIBUV_THREADS));
}

/**
 * The hybrid systems decode at most HYBRID_BATCH problems together: on the organism a batch of 2
 * cost the least CPU per token and 8 the most (bench/results/hybrid-organism.json, docs/hybrid.md:
 * the shared KV cache makes every forked window row attend over all problems of the batch).
 */
const HYBRID_BATCH = 2;
const hybridBatch = (parallel: number | undefined) => Math.min(parallel ?? HYBRID_BATCH, HYBRID_BATCH);

/** `--json`'s object from the report's systems section. */
export function demoJson(report: Report, seconds: number): Omit<DemoResult['json'], 'pair' | 'models'> {
  const systems: DemoResult['json']['systems'] = {};
  const passAtK: DemoResult['json']['pass_at_k'] = {};
  const s = report.systems;
  for (const r of s?.rows ?? []) {
    if (!(DEMO_SYSTEMS as readonly string[]).includes(r.name)) continue;
    systems[r.name as DemoSystem] = {
      acc: r.accuracy.p,
      n: r.n,
      gap_recovered: r.gapRecovered,
      steered_mean: r.steeredMean,
      steered_token: r.steeredToken,
    };
  }
  for (const series of s?.passAtK ?? []) {
    const role = series.role;
    if (role !== 'base' && role !== 'thinking' && role !== 'hybrid') continue;
    passAtK[role] = Object.fromEntries(series.points.map((p) => [String(p.k), p.value]));
  }
  return { systems, pass_at_k: passAtK, seconds };
}

/** The systems table as aligned plain text (the terminal's view of the report). */
export function demoTable(report: Report): string {
  if (!report.systems) return '(no systems to compare)';
  const { header, rows } = systemsTable(report.systems);
  const keep = [0, 3, 4, 5, 6, 7, 8, 9]; // the role column repeats the name here
  const table = [header, ...rows].map((r) => keep.map((i) => r[i]));
  const widths = keep.map((_, j) => Math.max(...table.map((r) => r[j].length)));
  const line = (r: string[]) => r.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ');
  const out = [line(table[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...table.slice(1).map(line)];
  for (const series of report.systems.passAtK) {
    const ks = series.points.filter((p) => [1, 2, 4, 8, 16, 32, 64].includes(p.k) || p.k === series.samples);
    out.push(`pass@k ${series.name}: ${ks.map((p) => `@${p.k} ${(100 * p.value).toFixed(1)}%`).join(', ')}`);
  }
  return out.join('\n');
}
