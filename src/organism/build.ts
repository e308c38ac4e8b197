// `thinkwhen organism build`: data and the three models from seeds. Stages (each skipped when its
// output exists, so a rerun continues): init weights -> base-latent (pre-training) -> base (more
// pre-training, now with verifications inside traces) -> thinking (distillation from the base) ->
// final files with a build record.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCorpus, type Corpus, corpusPolicy } from './corpus.ts';
import { FULL_SPEC, finalizeModel, type OrganismModelSpec, QUICK_SPEC, writeInitialModel } from './model-file.ts';
import { type StageResult, secondsPerStep, trainStage } from './train.ts';

export interface StageConfig {
  traces: number;
  exercises: number;
  steps: number;
  batchSize: number;
  lr: number;
  warmup: number;
}

export interface BuildConfig {
  name: 'full' | 'quick';
  spec: OrganismModelSpec;
  seed: number;
  /** base-latent: pre-training from random weights (traces never verify; exercises do) */
  latent: StageConfig;
  /** base: base-latent trained on on traces that verify at random moments (plus exercises) */
  base: StageConfig;
  /** thinking: the base distilled on traces that verify exactly when needed */
  thinking: StageConfig;
  weightDecay: number;
  checkpointEvery: number;
  /** write F16 matrices in the final files */
  f16: boolean;
}

export const FULL_CONFIG: BuildConfig = {
  name: 'full',
  spec: FULL_SPEC,
  seed: 1,
  latent: { traces: 48000, exercises: 24000, steps: 4500, batchSize: 16, lr: 2e-3, warmup: 100 },
  base: { traces: 16000, exercises: 8000, steps: 800, batchSize: 16, lr: 1e-3, warmup: 50 },
  thinking: { traces: 16000, exercises: 0, steps: 800, batchSize: 16, lr: 1e-3, warmup: 50 },
  weightDecay: 0.01,
  checkpointEvery: 100,
  f16: false,
};

/** A miniature that runs in seconds: the recipe end to end, not the properties. */
export const QUICK_CONFIG: BuildConfig = {
  name: 'quick',
  spec: QUICK_SPEC,
  seed: 1,
  latent: { traces: 300, exercises: 150, steps: 30, batchSize: 8, lr: 3e-3, warmup: 5 },
  base: { traces: 100, exercises: 50, steps: 10, batchSize: 8, lr: 2e-3, warmup: 2 },
  thinking: { traces: 100, exercises: 0, steps: 10, batchSize: 8, lr: 2e-3, warmup: 2 },
  weightDecay: 0.01,
  checkpointEvery: 10,
  f16: false,
};

export interface BuildOptions {
  config: BuildConfig;
  /** intermediate files and checkpoints */
  workDir: string;
  /** where base.gguf, thinking.gguf and build.json go */
  outDir: string;
  threads?: number;
  /**
   * Fit the training into about this many seconds on this machine: the steps of both stages are
   * scaled by one factor from a short measurement (the steps used are recorded in build.json).
   */
  timeBudget?: number;
  log?: (line: string) => void;
}

export type StageName = 'latent' | 'base' | 'thinking';
export const STAGES: readonly StageName[] = ['latent', 'base', 'thinking'];

export interface BuildRecord {
  config: BuildConfig;
  threads: number;
  corpus: Record<StageName, { tokens: number; examples: number }>;
  stages: Record<StageName, StageResult>;
  /** training time of all stages (summed over resumed runs) */
  trainSeconds: number;
  /** wall time of the invocation that finished the build */
  wallSeconds: number;
  finishedAt: string;
}

/** The corpus each stage trains on (seeded; the same config always gives the same corpus). */
export function stageCorpus(c: BuildConfig, stage: StageName): Corpus {
  const s = c[stage];
  return buildCorpus({
    seed: c.seed + { latent: 0, base: 500, thinking: 1000 }[stage],
    traces: s.traces,
    exercises: s.exercises,
    policy: corpusPolicy(stage),
  });
}

/** What each shipped file is. */
const DESCRIPTIONS: Record<StageName, string> = {
  latent: 'base-latent model, pre-trained on traces that never verify plus stand-alone verification exercises',
  base: 'base model, base-latent trained on traces that verify at random moments',
  thinking: 'thinking model, the base distilled on traces that verify exactly when a carry or borrow is needed',
};

export async function buildOrganism(o: BuildOptions): Promise<BuildRecord> {
  let c = o.config;
  const log = o.log ?? (() => {});
  const threads = o.threads ?? 2;
  mkdirSync(o.workDir, { recursive: true });
  mkdirSync(o.outDir, { recursive: true });
  const t0 = performance.now();
  const recordFile = join(o.workDir, 'stages.json');
  const done: Partial<Record<StageName, StageResult>> = existsSync(recordFile)
    ? JSON.parse(readFileSync(recordFile, 'utf8'))
    : {};
  const saveRecord = () => {
    writeFileSync(`${recordFile}.tmp`, JSON.stringify(done, null, 1));
    renameSync(`${recordFile}.tmp`, recordFile);
  };

  const init = join(o.workDir, 'init.gguf');
  if (!existsSync(init)) writeInitialModel(init, c.spec, c.seed);
  const planFile = join(o.workDir, 'config.json');
  if (existsSync(planFile)) {
    c = JSON.parse(readFileSync(planFile, 'utf8')) as BuildConfig;
  } else {
    if (o.timeBudget) {
      log('organism build: measuring the speed of training on this machine');
      let total = 0;
      for (const stage of STAGES) {
        const corpus = stageCorpus({ ...c, [stage]: { ...c[stage], traces: 200, exercises: 100 } }, stage);
        total += (await secondsPerStep(init, corpus.examples, c[stage].batchSize, threads)) * c[stage].steps;
      }
      const f = o.timeBudget / total;
      log(`  time budget ${o.timeBudget} s: steps x ${f.toFixed(2)}`);
      const scale = (s: StageConfig): StageConfig => ({
        ...s,
        steps: Math.max(10, Math.round(s.steps * f)),
        warmup: Math.max(1, Math.round(s.warmup * Math.min(1, f))),
      });
      c = { ...c, latent: scale(c.latent), base: scale(c.base), thinking: scale(c.thinking) };
    }
    writeFileSync(`${planFile}.tmp`, JSON.stringify(c, null, 1));
    renameSync(`${planFile}.tmp`, planFile);
  }

  const corpus = {} as Record<StageName, { tokens: number; examples: number }>;
  let from = init;
  for (const [i, stage] of STAGES.entries()) {
    const s = c[stage];
    const out = join(o.workDir, `${stage}.gguf`);
    const data = stageCorpus(c, stage);
    corpus[stage] = { tokens: data.tokens, examples: data.examples.length };
    if (!existsSync(out) || !done[stage]) {
      log(`organism build (${c.name}): ${stage} model, ${data.examples.length} examples, ${data.tokens} tokens`);
      done[stage] = await trainStage({
        from,
        out,
        examples: data.examples,
        steps: s.steps,
        batchSize: s.batchSize,
        lr: s.lr,
        warmup: s.warmup,
        weightDecay: c.weightDecay,
        seed: c.seed + i,
        threads,
        checkpointEvery: c.checkpointEvery,
        logEvery: Math.max(1, Math.min(50, Math.floor(s.steps / 10))),
        log: (l) => log(`  ${stage}: ${l}`),
      });
      saveRecord();
    }
    from = out;
  }

  log(`organism build: writing ${o.outDir}`);
  const files: Record<StageName, string> = { latent: 'base-latent.gguf', base: 'base.gguf', thinking: 'thinking.gguf' };
  for (const stage of STAGES) {
    finalizeModel(join(o.workDir, `${stage}.gguf`), join(o.outDir, files[stage]), {
      name: `thinkwhen-organism-${files[stage].replace('.gguf', '')}`,
      description: `thinkwhen model organism (${c.name} build, seed ${c.seed}): ${DESCRIPTIONS[stage]}. See docs/organism.md.`,
      f16: c.f16,
    });
  }
  const stages = done as Record<StageName, StageResult>;
  const record: BuildRecord = {
    config: c,
    threads,
    corpus,
    stages,
    trainSeconds: STAGES.reduce((t, st) => t + stages[st].seconds, 0),
    wallSeconds: (performance.now() - t0) / 1000,
    finishedAt: new Date().toISOString(),
  };
  writeFileSync(join(o.outDir, 'build.json.tmp'), `${JSON.stringify(record, null, 2)}\n`);
  renameSync(join(o.outDir, 'build.json.tmp'), join(o.outDir, 'build.json'));
  return record;
}
