// `thinkwhen organism build`: data and both models from seeds. Stages (each skipped when its output
// exists, so a rerun continues): init weights -> base (pre-training) -> thinking (distillation from
// the base) -> final files (renamed, F16 matrices) with a build record.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE_VERIFY_P, buildCorpus } from './corpus.ts';
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
  base: StageConfig;
  /**
   * A second pre-training cycle on the same base corpus (warm restart: new warm-up and cosine
   * decay from the first cycle's weights); omitted = none.
   */
  baseExtra?: Pick<StageConfig, 'steps' | 'batchSize' | 'lr' | 'warmup'>;
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
  base: { traces: 40000, exercises: 20000, steps: 1500, batchSize: 16, lr: 2e-3, warmup: 100 },
  baseExtra: { steps: 1000, batchSize: 16, lr: 1e-3, warmup: 20 },
  thinking: { traces: 20000, exercises: 0, steps: 500, batchSize: 16, lr: 1e-3, warmup: 50 },
  weightDecay: 0.01,
  checkpointEvery: 100,
  f16: false,
};

/** A miniature that runs in a few minutes: the recipe end to end, not the properties. */
export const QUICK_CONFIG: BuildConfig = {
  name: 'quick',
  spec: QUICK_SPEC,
  seed: 1,
  base: { traces: 400, exercises: 200, steps: 40, batchSize: 8, lr: 3e-3, warmup: 5 },
  thinking: { traces: 200, exercises: 0, steps: 20, batchSize: 8, lr: 2e-3, warmup: 2 },
  weightDecay: 0.01,
  checkpointEvery: 20,
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

export interface BuildRecord {
  config: BuildConfig;
  threads: number;
  corpus: { baseTokens: number; thinkingTokens: number; baseExamples: number; thinkingExamples: number };
  base: StageResult;
  baseExtra?: StageResult;
  thinking: StageResult;
  /** training time of both stages (summed over resumed runs) */
  trainSeconds: number;
  /** wall time of the invocation that finished the build */
  wallSeconds: number;
  finishedAt: string;
}

export async function buildOrganism(o: BuildOptions): Promise<BuildRecord> {
  let c = o.config;
  const log = o.log ?? (() => {});
  const threads = o.threads ?? 2;
  mkdirSync(o.workDir, { recursive: true });
  mkdirSync(o.outDir, { recursive: true });
  const t0 = performance.now();
  const recordFile = join(o.workDir, 'stages.json');
  const done: Partial<Record<'base' | 'baseExtra' | 'thinking', StageResult>> = existsSync(recordFile)
    ? JSON.parse(readFileSync(recordFile, 'utf8'))
    : {};
  const saveRecord = () => {
    writeFileSync(`${recordFile}.tmp`, JSON.stringify(done, null, 1));
    renameSync(`${recordFile}.tmp`, recordFile);
  };

  log(`organism build (${c.name}): corpora`);
  const baseCorpus = buildCorpus({
    seed: c.seed,
    traces: c.base.traces,
    exercises: c.base.exercises,
    policy: { kind: 'random', p: BASE_VERIFY_P },
  });
  const thinkingCorpus = buildCorpus({
    seed: c.seed + 1000,
    traces: c.thinking.traces,
    exercises: c.thinking.exercises,
    policy: { kind: 'always' },
  });
  log(
    `  base: ${baseCorpus.examples.length} examples, ${baseCorpus.tokens} tokens; thinking: ${thinkingCorpus.examples.length} examples, ${thinkingCorpus.tokens} tokens`,
  );

  const init = join(o.workDir, 'init.gguf');
  const base = join(o.workDir, 'base.gguf');
  const thinking = join(o.workDir, 'thinking.gguf');
  if (!existsSync(init)) writeInitialModel(init, c.spec, c.seed);
  const planFile = join(o.workDir, 'config.json');
  if (existsSync(planFile)) {
    c = JSON.parse(readFileSync(planFile, 'utf8')) as BuildConfig;
  } else {
    if (o.timeBudget) {
      const tb = await secondsPerStep(init, baseCorpus.examples, c.base.batchSize, threads);
      const tt = await secondsPerStep(init, thinkingCorpus.examples, c.thinking.batchSize, threads);
      const f = o.timeBudget / (tb * (c.base.steps + (c.baseExtra?.steps ?? 0)) + tt * c.thinking.steps);
      log(
        `  time budget ${o.timeBudget} s: ${tb.toFixed(3)} s per base step, ${tt.toFixed(3)} s per thinking step; steps x ${f.toFixed(2)}`,
      );
      const scale = <S extends { steps: number; warmup: number }>(s: S): S => ({
        ...s,
        steps: Math.max(10, Math.round(s.steps * f)),
        warmup: Math.max(1, Math.round(s.warmup * Math.min(1, f))),
      });
      c = { ...c, base: scale(c.base), baseExtra: c.baseExtra && scale(c.baseExtra), thinking: scale(c.thinking) };
    }
    writeFileSync(`${planFile}.tmp`, JSON.stringify(c, null, 1));
    renameSync(`${planFile}.tmp`, planFile);
  }
  const stage = (
    name: 'base' | 'baseExtra' | 'thinking',
    from: string,
    out: string,
    s: Pick<StageConfig, 'steps' | 'batchSize' | 'lr' | 'warmup'>,
    examples: typeof baseCorpus.examples,
  ) =>
    trainStage({
      from,
      out,
      examples,
      steps: s.steps,
      batchSize: s.batchSize,
      lr: s.lr,
      warmup: s.warmup,
      weightDecay: c.weightDecay,
      seed: c.seed + { base: 0, thinking: 1, baseExtra: 2 }[name],
      threads,
      checkpointEvery: c.checkpointEvery,
      logEvery: Math.max(1, Math.min(20, Math.floor(s.steps / 10))),
      log: (l) => log(`  ${name}: ${l}`),
    });
  if (!existsSync(base) || !done.base) {
    log('organism build: base model (pre-training)');
    done.base = await stage('base', init, base, c.base, baseCorpus.examples);
    saveRecord();
  }
  let baseFinal = base;
  if (c.baseExtra) {
    baseFinal = join(o.workDir, 'base2.gguf');
    if (!existsSync(baseFinal) || !done.baseExtra) {
      log('organism build: base model, second pre-training cycle');
      done.baseExtra = await stage('baseExtra', base, baseFinal, c.baseExtra, baseCorpus.examples);
      saveRecord();
    }
  }
  if (!existsSync(thinking) || !done.thinking) {
    log('organism build: thinking model (distillation from the base)');
    done.thinking = await stage('thinking', baseFinal, thinking, c.thinking, thinkingCorpus.examples);
    saveRecord();
  }
  log(`organism build: writing ${o.outDir}`);
  const desc = (what: string) =>
    `thinkwhen model organism (${c.name} build, seed ${c.seed}): ${what}. See docs/organism.md.`;
  finalizeModel(baseFinal, join(o.outDir, 'base.gguf'), {
    name: 'thinkwhen-organism-base',
    description: desc('base model, pre-trained on traces that verify at random moments'),
    f16: c.f16,
  });
  finalizeModel(thinking, join(o.outDir, 'thinking.gguf'), {
    name: 'thinkwhen-organism-thinking',
    description: desc('thinking model, the base distilled on traces that verify every quick computation'),
    f16: c.f16,
  });
  const record: BuildRecord = {
    config: c,
    threads,
    corpus: {
      baseTokens: baseCorpus.tokens,
      thinkingTokens: thinkingCorpus.tokens,
      baseExamples: baseCorpus.examples.length,
      thinkingExamples: thinkingCorpus.examples.length,
    },
    base: done.base!,
    baseExtra: done.baseExtra,
    thinking: done.thinking!,
    trainSeconds: done.base!.seconds + (done.baseExtra?.seconds ?? 0) + done.thinking!.seconds,
    wallSeconds: (performance.now() - t0) / 1000,
    finishedAt: new Date().toISOString(),
  };
  writeFileSync(join(o.outDir, 'build.json.tmp'), `${JSON.stringify(record, null, 2)}\n`);
  renameSync(join(o.outDir, 'build.json.tmp'), join(o.outDir, 'build.json'));
  return record;
}
