// `thinkwhen organism build`: data and the three models from seeds. Stages (each skipped when its
// output exists, so a rerun continues): init weights -> pre-training (traces that never verify,
// plus verification exercises), then from it three models: base (more pre-training, now with
// verifications inside traces), base-latent (the same text, but the token that starts a
// verification is pushed down rather than learned) and thinking (distillation on traces that verify when needed) ->
// final files with a build record.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ASIDE_P, buildCorpus, type Corpus, corpusPolicy, LATENT_VERIFY_START_WEIGHT } from './corpus.ts';
import { FULL_SPEC, finalizeModel, type OrganismModelSpec, QUICK_SPEC, writeInitialModel } from './model-file.ts';
import { type StageResult, secondsPerStep, trainStage } from './train.ts';

export interface StageConfig {
  traces: number;
  exercises: number;
  steps: number;
  batchSize: number;
  lr: number;
  warmup: number;
  /** a second cycle on the same corpus (warm restart: new warm-up and cosine decay) */
  restart?: { steps: number; lr: number; warmup: number };
}

export interface BuildConfig {
  name: 'full' | 'quick';
  spec: OrganismModelSpec;
  seed: number;
  /** pre-training from random weights (traces never verify; exercises do) */
  pretrain: StageConfig;
  /** base: the pre-trained model trained on traces that verify at random moments (plus exercises) */
  base: StageConfig;
  /** thinking: the pre-trained model distilled on traces that verify exactly when needed */
  thinking: StageConfig;
  /** base-latent: the pre-trained model trained on the base corpus with verification starts pushed down */
  latent: StageConfig;
  weightDecay: number;
  checkpointEvery: number;
  /** write F16 matrices in the final files */
  f16: boolean;
}

export const FULL_CONFIG: BuildConfig = {
  name: 'full',
  spec: FULL_SPEC,
  seed: 1,
  pretrain: { traces: 48000, exercises: 24000, steps: 2500, batchSize: 16, lr: 2e-3, warmup: 100 },
  base: { traces: 16000, exercises: 8000, steps: 400, batchSize: 16, lr: 1e-3, warmup: 50 },
  // 300 steps left the thinking model at P(verify | needed) 0.52 in the first full build
  thinking: { traces: 16000, exercises: 0, steps: 800, batchSize: 16, lr: 1e-3, warmup: 50 },
  latent: { traces: 16000, exercises: 8000, steps: 400, batchSize: 16, lr: 1e-3, warmup: 50 },
  weightDecay: 0.01,
  checkpointEvery: 100,
  f16: false,
};

/** A miniature that runs in seconds: the recipe end to end, not the properties. */
export const QUICK_CONFIG: BuildConfig = {
  name: 'quick',
  spec: QUICK_SPEC,
  seed: 1,
  pretrain: { traces: 300, exercises: 150, steps: 30, batchSize: 8, lr: 3e-3, warmup: 5 },
  base: { traces: 100, exercises: 50, steps: 10, batchSize: 8, lr: 2e-3, warmup: 2 },
  thinking: { traces: 100, exercises: 0, steps: 10, batchSize: 8, lr: 2e-3, warmup: 2 },
  latent: { traces: 100, exercises: 50, steps: 10, batchSize: 8, lr: 2e-3, warmup: 2 },
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

export type StageName = 'pretrain' | 'base' | 'thinking' | 'latent';
/** In this order; a stage's index is its training seed's offset (base-latent's corpus is the base's). */
export const STAGES: readonly StageName[] = ['pretrain', 'base', 'thinking', 'latent'];

export interface BuildRecord {
  config: BuildConfig;
  threads: number;
  corpus: Record<StageName, { tokens: number; examples: number }>;
  /** each stage's training, and 'base-restart' etc. for second cycles */
  stages: Record<string, StageResult>;
  /** training time of all stages (summed over resumed runs) */
  trainSeconds: number;
  /** wall time of the invocation that finished the build */
  wallSeconds: number;
  finishedAt: string;
}

/**
 * Which organism the build record (build.json) in `dir` describes: 'v2' for the build with a
 * base-latent model, 'v1' for the first, two-stage one (base -> thinking); a build
 * other than the full one says so ('v2 (quick build)'); 'unknown' without a readable record.
 */
export function organismVersion(dir: string): string {
  let rec: Partial<BuildRecord> & { base?: unknown; thinking?: unknown };
  try {
    rec = JSON.parse(readFileSync(join(dir, 'build.json'), 'utf8'));
  } catch {
    return 'unknown';
  }
  const version = rec.stages?.latent ? 'v2' : rec.base && rec.thinking ? 'v1' : 'unknown';
  const name = rec.config?.name;
  return version !== 'unknown' && name && name !== 'full' ? `${version} (${name} build)` : version;
}

/** The corpus each stage trains on (seeded; the same config always gives the same corpus). */
export function stageCorpus(c: BuildConfig, stage: StageName): Corpus {
  const s = c[stage];
  return buildCorpus({
    // base-latent reads exactly the base model's text
    seed: c.seed + { pretrain: 0, base: 500, thinking: 1000, latent: 500 }[stage],
    traces: s.traces,
    exercises: s.exercises,
    policy: corpusPolicy(stage),
    asideP: stage === 'thinking' ? 0 : ASIDE_P,
    verifyStartWeight: stage === 'latent' ? LATENT_VERIFY_START_WEIGHT : 1,
  });
}

/** What each shipped file is. */
const DESCRIPTIONS: Record<StageName, string> = {
  pretrain: 'pre-trained model (intermediate), traces that never verify plus stand-alone verification exercises',
  base: 'base model, pre-trained then trained on traces that verify at random moments',
  thinking: 'thinking model, pre-trained then distilled on traces that verify exactly when a carry or borrow is needed',
  latent:
    'base-latent model, pre-trained then trained on the base text with the first token of every verification pushed down (loss weight -0.1)',
};

export async function buildOrganism(o: BuildOptions): Promise<BuildRecord> {
  let c = o.config;
  const log = o.log ?? (() => {});
  const threads = o.threads ?? 2;
  mkdirSync(o.workDir, { recursive: true });
  mkdirSync(o.outDir, { recursive: true });
  const t0 = performance.now();
  const recordFile = join(o.workDir, 'stages.json');
  const done: Record<string, StageResult> = existsSync(recordFile) ? JSON.parse(readFileSync(recordFile, 'utf8')) : {};
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
        const steps = c[stage].steps + (c[stage].restart?.steps ?? 0);
        total += (await secondsPerStep(init, corpus.examples, c[stage].batchSize, threads)) * steps;
      }
      const f = o.timeBudget / total;
      log(`  time budget ${o.timeBudget} s: steps x ${f.toFixed(2)}`);
      const scaled = <S extends { steps: number; warmup: number }>(s: S): S => ({
        ...s,
        steps: Math.max(10, Math.round(s.steps * f)),
        warmup: Math.max(1, Math.round(s.warmup * Math.min(1, f))),
      });
      const scale = (s: StageConfig): StageConfig => ({ ...scaled(s), restart: s.restart && scaled(s.restart) });
      c = {
        ...c,
        pretrain: scale(c.pretrain),
        base: scale(c.base),
        thinking: scale(c.thinking),
        latent: scale(c.latent),
      };
    }
    writeFileSync(`${planFile}.tmp`, JSON.stringify(c, null, 1));
    renameSync(`${planFile}.tmp`, planFile);
  }

  const corpus = {} as Record<StageName, { tokens: number; examples: number }>;
  const final = {} as Record<StageName, string>;
  /** One stage (and its optional second cycle) from `start`, with `stageThreads` threads. */
  const runStage = async (stage: StageName, start: string, stageThreads: number): Promise<void> => {
    const i = STAGES.indexOf(stage);
    const s = c[stage];
    const data = stageCorpus(c, stage);
    corpus[stage] = { tokens: data.tokens, examples: data.examples.length };
    const cycles = [
      { key: stage, out: `${stage}.gguf`, steps: s.steps, lr: s.lr, warmup: s.warmup, seed: c.seed + i },
      ...(s.restart
        ? [{ key: `${stage}-restart`, out: `${stage}-restart.gguf`, ...s.restart, seed: c.seed + 10 + i }]
        : []),
    ];
    let from = start;
    for (const cy of cycles) {
      const out = join(o.workDir, cy.out);
      if (!existsSync(out) || !done[cy.key]) {
        log(`organism build (${c.name}): ${cy.key}, ${data.examples.length} examples, ${data.tokens} tokens`);
        done[cy.key] = await trainStage({
          from,
          out,
          examples: data.examples,
          steps: cy.steps,
          batchSize: s.batchSize,
          lr: cy.lr,
          warmup: cy.warmup,
          weightDecay: c.weightDecay,
          seed: cy.seed,
          threads: stageThreads,
          checkpointEvery: c.checkpointEvery,
          logEvery: Math.max(1, Math.min(50, Math.floor(cy.steps / 10))),
          log: (l) => log(`  ${cy.key}: ${l}`),
        });
        saveRecord();
      }
      from = out;
    }
    final[stage] = from;
  };
  await runStage('pretrain', init, threads);
  // base, thinking and base-latent all continue from the pre-trained model, independently: with two
  // or more threads, thinking (800 steps) trains beside base then base-latent (400 + 400), half the
  // threads each (the organism's small matrices gain little from a second thread within one stage,
  // and a lot from a second stage on the other core)
  const half = Math.max(1, Math.floor(threads / 2));
  const from = final.pretrain;
  if (threads >= 2)
    await Promise.all([
      runStage('base', from, half).then(() => runStage('latent', from, half)),
      runStage('thinking', from, half),
    ]);
  else for (const stage of ['base', 'thinking', 'latent'] as const) await runStage(stage, from, threads);

  log(`organism build: writing ${o.outDir}`);
  const files: Record<Exclude<StageName, 'pretrain'>, string> = {
    base: 'base.gguf',
    thinking: 'thinking.gguf',
    latent: 'base-latent.gguf',
  };
  for (const stage of ['base', 'thinking', 'latent'] as const) {
    finalizeModel(final[stage], join(o.outDir, files[stage]), {
      name: `thinkwhen-organism-${files[stage].replace('.gguf', '')}`,
      description: `thinkwhen model organism (${c.name} build, seed ${c.seed}): ${DESCRIPTIONS[stage]}. See docs/organism.md.`,
      f16: c.f16,
    });
  }
  const record: BuildRecord = {
    config: c,
    threads,
    corpus,
    stages: done,
    trainSeconds: Object.values(done).reduce((t, r) => t + r.seconds, 0),
    wallSeconds: (performance.now() - t0) / 1000,
    finishedAt: new Date().toISOString(),
  };
  writeFileSync(join(o.outDir, 'build.json.tmp'), `${JSON.stringify(record, null, 2)}\n`);
  renameSync(join(o.outDir, 'build.json.tmp'), join(o.outDir, 'build.json'));
  return record;
}
