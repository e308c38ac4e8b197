// `thinkwhen demo`: the whole pipeline on the shipped model organism — the taxonomy SAE and the
// steering vectors (shipped, or regenerated from seeds when they do not match the models) → base,
// thinking, the hybrid and every control on held-out problems → pass@k of base, thinking and hybrid → one
// report. Every step writes into the workspace and resumes there.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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
import { MANIFEST, type VectorSetManifest } from '../steer/vector-set.ts';
import { organismDataset, type RunDataset } from './datasets.ts';
import { runHybrid } from './hybrid.ts';
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
  threads?: number;
  signal?: AbortSignal;
  /** a line about what happens next */
  onLog?: (line: string) => void;
  /** a run is about to start: `done` of `total` stored already */
  onRunStart?: (name: string, total: number, done: number) => void;
  onRunAdvance?: (units: number, tokens: number) => void;
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
  };
  report: Report;
  files: WrittenReport;
  /** the shipped artifacts, or the regenerated ones and why */
  artifacts: { paths: ArtifactPaths; regenerated: string | null };
  interrupted: boolean;
}

/** The pair's SAE and vectors: the shipped ones when they belong to the models, else regenerated in the workspace. */
async function demoArtifacts(o: DemoOptions, models: { base: string; thinking: string }) {
  const shipped = organismArtifactPaths(o.models, o.pair);
  const why = artifactsMismatch(shipped, models);
  if (why === null) return { paths: shipped, regenerated: null };
  const local = organismArtifactPaths(join(o.out, 'artifacts'), o.pair);
  if (artifactsMismatch(local, models) === null) return { paths: local, regenerated: why };
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
  const paths: string[] = [];
  let interrupted = false;
  const common = (name: string) => ({
    preset,
    checked: true,
    modelsDir: o.models,
    out: join(runsDir, `${name}.sqlite`),
    name,
    parallel: o.parallel,
    threads: o.threads,
    signal: o.signal,
    onStart: (s: { total: number; done: number }) => o.onRunStart?.(name, s.total, s.done),
    onAdvance: o.onRunAdvance,
  });
  const finish = (r: RunResult) => {
    o.onRunEnd?.(r);
    paths.push(r.path);
    interrupted ||= r.interrupted;
  };

  for (const system of ['base', 'thinking'] as const) {
    if (interrupted) break;
    finish(await runSystem({ ...common(system), system, dataset }));
  }
  for (const policy of POLICIES) {
    if (interrupted) break;
    const name = policy === 'paper' ? 'hybrid' : policy;
    finish(
      await runHybrid({
        ...common(name),
        parallel: hybridBatch(o.parallel),
        dataset,
        policy: policy as PolicyName,
        vectors: artifacts.paths.vectors,
        taxonomy: artifacts.paths.sae,
        missingVector: skipped.length ? 'bias' : 'error',
      }),
    );
  }
  // pass@k: base, thinking and the hybrid (the paper's policy) sampled on the same problems with the same seeds.
  const k = o.passAtK;
  if (k.samples > 1 && k.problems > 0) {
    const sampled: RunDataset = organismDataset(Math.min(k.problems, o.problems));
    const sampling: Sampling = { samples: k.samples, temperature: k.temperature, topP: 1, seed: k.seed };
    const name = (system: string) => `${system}-n${k.samples}-t${k.temperature}`;
    for (const system of ['base', 'thinking'] as const) {
      if (interrupted) break;
      finish(await runSystem({ ...common(name(system)), system, dataset: sampled, sampling }));
    }
    if (!interrupted) {
      finish(
        await runHybrid({
          ...common(name('hybrid')),
          parallel: hybridBatch(o.parallel),
          dataset: sampled,
          sampling,
          seed: k.seed,
          policy: 'paper',
          vectors: artifacts.paths.vectors,
          taxonomy: artifacts.paths.sae,
          missingVector: skipped.length ? 'bias' : 'error',
        }),
      );
    }
  }

  const report = buildReport(paths, { title: `thinkwhen demo: the model organism (${o.pair} pair)` });
  const files = writeReport(report, join(o.out, 'report'));
  return { json: demoJson(report, (Date.now() - t0) / 1000), report, files, artifacts, interrupted };
}

/**
 * The hybrid systems decode at most HYBRID_BATCH problems together: on the organism a batch of 2
 * cost the least CPU per token and 8 the most (bench/results/hybrid-organism.json, docs/hybrid.md:
 * the shared KV cache makes every forked window row attend over all problems of the batch).
 */
const HYBRID_BATCH = 2;
const hybridBatch = (parallel: number | undefined) => Math.min(parallel ?? HYBRID_BATCH, HYBRID_BATCH);

/** `--json`'s object from the report's systems section. */
export function demoJson(report: Report, seconds: number): DemoResult['json'] {
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
