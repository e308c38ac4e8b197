// The organism's shipped steering artifacts — the taxonomy's selected SAE and the base model's
// steering vectors — committed beside the models (src/organism/models/{sae,vectors}/) so that
// `thinkwhen hybrid --organism` and `thinkwhen demo` work on a fresh clone, and regenerated from
// seeds by `buildOrganismArtifacts` (the demo, or `organism build`).
//
// Seed hygiene: the traces the taxonomy and the vectors learn from are the thinking model's answers
// to TRAIN-split problems (ARTIFACT_SEED), never the held-out test problems that `organism eval`,
// `thinkwhen run --dataset organism` and the demo evaluate on.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { latentsOf, readSelectionFile, readSources } from '../steer/sources.ts';
import { PAPER_TRAIN_SETTINGS, trainVectorSet, type VectorTrainSettings } from '../steer/train.ts';
import { fileSha256, type VectorSetManifest, writeManifest } from '../steer/vector-set.ts';
import { annotateTraces } from '../taxonomy/annotate.ts';
import type { Grid } from '../taxonomy/evaluate.ts';
import { type Selection, writeSelection } from '../taxonomy/selection.ts';
import { readTraces } from '../traces/generate.ts';
import { measureReadout } from './artifacts-readout.ts';
import { type OrganismModelPaths, organismModelPaths } from './index.ts';
import { requireOrganismVocab } from './model-file.ts';
import { runOrganismChain } from './taxonomy.ts';
import { promptText } from './vocab.ts';

/** Generator seed of the train-split problems whose traces the artifacts learn from. */
export const ARTIFACT_SEED = 1107;
/** Train-split problems traced (the taxonomy chain's default size). */
export const ARTIFACT_PROBLEMS = 200;
/**
 * Latent counts of the SAE grid. The organism's trace language has six sentence types; counts
 * past 15 only split them further (and the grid's cost grows with every K).
 */
export const ARTIFACT_KS = [5, 6, 8, 10, 15];
/** Seed of the SAE grid (taxonomy train) and of the vectors' example shuffle and init. */
export const ARTIFACT_TRAIN_SEED = 0;

export const ARTIFACTS_FORMAT = 'thinkwhen-organism-artifacts/1';

/**
 * The organism's vector-training defaults (docs/vectors.md, "The organism", has the measurements
 * behind each). The paper's loss, coldness, schedule, early stopping, initialisation and sites are kept.
 *  - min_words 4: the trace language's shortest sentence ("The answer is \boxed{84}.") has 4 words;
 *    the paper's 7 would leave only column checks and backtracks.
 *  - n_train / n_heldout 32, n_bias 16, batch 4, 5 epochs: a few hundred sentences per category
 *    exist; this trains all vectors in minutes and leaves 32 held-out prompts per category.
 *  - steer_rows 'predictors': an organism category is decided by its first token ("Check", "Wait",
 *    "Then"), which the paper's rows never train (measured: rate 0 at every coefficient).
 *  - lr 0.1: 5 epochs of 8 steps are 40 Adam steps, against the paper's ~34,000 per vector; at lr
 *    0.01 the vector stays near its unit-norm start (|v| 1.4) and acts only at c = 8 (measured).
 *  - layer 1 (of 4): the paper's depth fraction, floor(0.375 · 4).
 */
export function organismSettings(method: VectorTrainSettings['method']): VectorTrainSettings {
  return {
    ...PAPER_TRAIN_SETTINGS,
    method,
    layer: 1,
    base_prompt: promptText('{question}'),
    n_train: 32,
    n_heldout: 32,
    n_bias: 16,
    min_words: 4,
    batch_bias: 4,
    batch_category: 4,
    epochs: 5,
    lr: 0.1,
    steer_rows: 'predictors',
  };
}

/** The organism's vectors act at larger coefficients than the paper's grid (docs/vectors.md). */
export const ORGANISM_COEFS = [1, 2, 4, 8];

/** The organism's two pairs: the default base model, or base-latent; both with the one thinking model. */
export type OrganismPair = 'default' | 'latent';

export interface ArtifactPaths {
  /** the folder the artifacts sit in */
  dir: string;
  /** the SAE folder: selection.json + sae.safetensors (a taxonomy folder for `--taxonomy`); shared by both pairs */
  sae: string;
  /** the pair's vector set (`--vectors`): vectors/ or vectors-latent/ */
  vectors: string;
  /** provenance and file hashes: artifacts.json or artifacts-latent.json */
  record: string;
}

/** Where a pair's artifacts live in `dir` (default: beside the shipped models). */
export function organismArtifactPaths(dir?: string, pair: OrganismPair = 'default'): ArtifactPaths {
  const d = dir ?? resolve(organismModelPaths().base, '..');
  const tail = pair === 'latent' ? '-latent' : '';
  return { dir: d, sae: join(d, 'sae'), vectors: join(d, `vectors${tail}`), record: join(d, `artifacts${tail}.json`) };
}

/** The base model of a pair. */
export function pairBaseModel(models: OrganismModelPaths, pair: OrganismPair): string {
  return pair === 'latent' ? models.baseLatent : models.base;
}

/** What `artifacts.json` records: the inputs (models, seeds) and a hash of every artifact file. */
export interface ArtifactRecord {
  format: typeof ARTIFACTS_FORMAT;
  models: { base: string; thinking: string };
  seeds: { problems: number; split: 'train'; count: number; ks: number[]; train: number };
  layer: number;
  k: number;
  /** the selected taxonomy's agreement with the trace language's sentence types */
  metrics: { ari: number; nmi: number; purity: number };
  /** folder-relative path → sha256 of every file whose bytes regeneration must reproduce */
  files: Record<string, string>;
  /** latents without a vector, with the reason */
  skipped: Array<{ latent: number; reason: string }>;
}

/** Why the artifacts in `paths` do not belong to the models in `models` (null: they do). */
export async function artifactsMismatch(
  paths: ArtifactPaths,
  models: { base: string; thinking: string },
): Promise<string | null> {
  if (!existsSync(paths.record)) return `no ${paths.record}`;
  let rec: ArtifactRecord;
  try {
    rec = JSON.parse(readFileSync(paths.record, 'utf8'));
  } catch (err) {
    return `${paths.record} is not JSON (${(err as Error).message})`;
  }
  if (rec.format !== ARTIFACTS_FORMAT) return `${paths.record} is not a ${ARTIFACTS_FORMAT} record`;
  for (const role of ['base', 'thinking'] as const) {
    if (!existsSync(models[role])) return `no ${role} model at ${models[role]}`;
    if ((await fileSha256(models[role])) !== rec.models[role])
      return `${basename(models[role])} is not the model they were made from`;
  }
  for (const [file, hash] of Object.entries(rec.files)) {
    const p = join(paths.dir, file);
    if (!existsSync(p)) return `${p} is missing`;
    if ((await fileSha256(p)) !== hash) return `${p} was changed after it was made`;
  }
  return null;
}

export interface BuildArtifactsOptions {
  /** the folder with the models (default: the shipped models) */
  models?: string;
  /** whose vectors: the default base model's or base-latent's (default 'default') */
  pair?: OrganismPair;
  /** where sae/, vectors/ and artifacts.json go (default: the models folder) */
  out?: string;
  /** workspace: traces, activations, the SAE grid, annotations, vectors (reruns resume) */
  work: string;
  /** CPU threads of the decodes; the SAE grid and vector training always use one, for bit-equal files */
  threads?: number;
  onProgress?: (line: string) => void;
}

export interface BuiltArtifacts {
  paths: ArtifactPaths;
  record: ArtifactRecord;
  seconds: number;
}

/** A folder `out` may replace: absent, or one of ours. */
function replaceable(dir: string, marker: string): void {
  if (existsSync(dir) && readdirSync(dir).length > 0 && !existsSync(join(dir, marker))) {
    throw new ThinkwhenError(
      'NOT_OUR_FILE',
      `${dir} exists and is not an organism artifact folder (no ${marker}); it is not overwritten`,
      'move it away or choose another --out',
    );
  }
}

/**
 * The SAE of the grid with the best readout at the pair's disagreements (src/organism/artifacts-readout.ts),
 * not the paper's interpretability score: the hybrid reads the category from one token's activation where
 * the two models disagree, and on the first organism the offline score's choice (layer 2, K 10) read the
 * wrong category at most verification points (docs/demo.md, "The first organism (v1)").
 */
export async function selectByReadout(
  models: { base: string; thinking: string },
  tracesPath: string,
  taxDir: string,
  grid: Grid,
  threads: number | undefined,
  log: (line: string) => void,
): Promise<Selection> {
  const cache = join(taxDir, 'readout.json');
  const pair = `${await fileSha256(models.base)} ${await fileSha256(models.thinking)}`;
  let readout: Record<string, number> | null = null;
  let positions: number | null = null;
  if (existsSync(cache)) {
    const cached = JSON.parse(readFileSync(cache, 'utf8'));
    if (cached.pair === pair) {
      readout = cached.readout;
      positions = cached.details?.positions ?? null;
    }
  }
  if (!readout) {
    log(`artifacts: readout of ${grid.entries.length} SAEs at the pair's disagreements on the train traces`);
    const base = await Model.load(models.base);
    const thinking = await Model.load(models.thinking);
    try {
      const traces = (await readTraces(tracesPath)).records;
      const r = await measureReadout({ base, thinking }, traces, grid.entries, { threads });
      readout = Object.fromEntries(r.entries.map((e) => [`${e.layer}/${e.k}`, e.readout]));
      positions = r.positions;
      const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
      log(
        `artifacts: ${r.positions} disagreement positions (${r.boundaryPositions} at a sentence start); readout (at sentence starts / inside): ${r.entries.map((e) => `L${e.layer} K${e.k} ${pct(e.readout)} (${pct(e.boundary)} / ${pct(e.inside)})`).join(', ')}`,
      );
      // the details stay beside the choice (docs/demo.md cites them)
      const details = { positions: r.positions, sentenceStarts: r.boundaryPositions, entries: r.entries };
      writeFileSync(cache, `${JSON.stringify({ pair, readout, details }, null, 2)}\n`);
    } finally {
      thinking.free();
      base.free();
    }
  }
  const measured = readout;
  const scored: Grid = {
    ...grid,
    entries: grid.entries.map((e) => ({ ...e, metrics: { ...e.metrics, readout: measured[`${e.layer}/${e.k}`] } })),
  };
  if (positions === 0) {
    // every readout is 0 %: it cannot choose (e.g. an RL model that still decodes like its base)
    log(
      "artifacts: the two models never disagree on the train traces, so no readout can choose: the SAE is selected by the paper's offline score; a hybrid of this pair steers only where they disagree, if anywhere",
    );
    return writeSelection(taxDir, scored, 'offline');
  }
  return writeSelection(taxDir, scored, 'readout');
}

/**
 * Regenerates the SAE and the vectors from seeds: traces of the thinking model on train-split
 * problems → sentence activations → SAE grid → selection → annotation → bias and category vectors
 * of the base model. Deterministic: the same models give the same bytes (the test compares them
 * with the committed files). The last step swaps the new folders in.
 */
export async function buildOrganismArtifacts(o: BuildArtifactsOptions): Promise<BuiltArtifacts> {
  const t0 = performance.now();
  const all = organismModelPaths(o.models);
  const pair = o.pair ?? 'default';
  const models = { base: pairBaseModel(all, pair), thinking: all.thinking };
  for (const path of [models.base, models.thinking]) {
    if (!existsSync(path)) {
      throw new ThinkwhenError(
        'ORGANISM_MISSING',
        `organism model not found: ${path}`,
        'run `thinkwhen organism build`',
      );
    }
    requireOrganismVocab(path); // the readout encodes the traces with the organism's vocabulary
  }
  const paths = organismArtifactPaths(o.out ?? resolve(all.base, '..'), pair);
  replaceable(paths.sae, 'selection.json');
  replaceable(paths.vectors, 'manifest.json');
  const log = o.onProgress ?? (() => {});
  const chainDir = join(o.work, 'taxonomy-chain');
  const chain = await runOrganismChain({
    dir: chainDir,
    model: models.thinking,
    split: 'train',
    problems: ARTIFACT_PROBLEMS,
    problemSeed: ARTIFACT_SEED,
    ks: ARTIFACT_KS,
    seed: ARTIFACT_TRAIN_SEED,
    threads: o.threads,
    onProgress: log,
  });
  const taxDir = join(chainDir, 'taxonomy');
  const tracesPath = join(chainDir, 'traces.jsonl');
  const selection = await selectByReadout(models, tracesPath, taxDir, chain.grid, o.threads, log);

  // Annotation of the traces with the selected SAE (the examples of the vectors).
  const annotatedPath = join(o.work, `annotated-layer${selection.layer}-k${selection.k}.jsonl`);
  if (!existsSync(annotatedPath)) {
    log(`artifacts: annotating the traces with the selected SAE (layer ${selection.layer}, K=${selection.k})`);
    const model = await Model.load(models.thinking);
    try {
      const traces = (await readTraces(tracesPath)).records;
      const annotated = await annotateTraces(model, traces, selection, { thinking: 'generated', threads: o.threads });
      const tmp = `${annotatedPath}.tmp-${process.pid}`;
      writeFileSync(tmp, annotated.map((a) => `${JSON.stringify(a)}\n`).join(''));
      renameSync(tmp, annotatedPath);
    } finally {
      model.free();
    }
  }
  const sources = await readSources(tracesPath, annotatedPath, 'generated');
  const vectorsWork = join(o.work, pair === 'latent' ? 'vectors-latent' : 'vectors');
  const manifest = await trainVectorSet(
    {
      modelPath: models.base,
      sources,
      latents: latentsOf(readSelectionFile(taxDir)),
      sae: { layer: selection.layer, k: selection.k },
      out: vectorsWork,
      settings: { ...organismSettings('optimised'), seed: ARTIFACT_TRAIN_SEED },
    },
    { threads: 1, onProgress: log },
  );

  // Assemble the shipped folders next to the final ones, then swap them in.
  mkdirSync(paths.dir, { recursive: true });
  const stage = join(paths.dir, `.artifacts-tmp-${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(join(stage, 'sae'), { recursive: true });
  const stageVectors = join(stage, basename(paths.vectors));
  mkdirSync(stageVectors, { recursive: true });
  copyFileSync(
    `${selection.sae.replace(/\.(safetensors|json)$/, '')}.safetensors`,
    join(stage, 'sae', 'sae.safetensors'),
  );
  const shippedSelection: Selection = { ...selection, activations: '', sae: 'sae' };
  writeFileSync(join(stage, 'sae', 'selection.json'), `${JSON.stringify(shippedSelection, null, 2)}\n`);
  const files = [manifest.bias?.file, ...manifest.categories.map((c) => c.file)].filter((f): f is string => !!f);
  for (const f of files) copyFileSync(join(vectorsWork, f), join(stageVectors, f));
  // Paths relative to the vector folder, so the folder works wherever the repository is.
  const shipped: VectorSetManifest = {
    ...manifest,
    model: { ...manifest.model, file: relative(paths.vectors, models.base) },
    sae: {
      sae: '../sae/sae',
      layer: selection.layer,
      k: selection.k,
      thinking: relative(paths.vectors, models.thinking),
    },
  };
  writeManifest(stageVectors, shipped);
  const record: ArtifactRecord = {
    format: ARTIFACTS_FORMAT,
    models: { base: await fileSha256(models.base), thinking: await fileSha256(models.thinking) },
    seeds: {
      problems: ARTIFACT_SEED,
      split: 'train',
      count: ARTIFACT_PROBLEMS,
      ks: ARTIFACT_KS,
      train: ARTIFACT_TRAIN_SEED,
    },
    layer: selection.layer,
    k: selection.k,
    // the selected SAE's own agreement (the chain's result describes its offline choice)
    metrics: {
      ari: selection.metrics.ari ?? Number.NaN,
      nmi: selection.metrics.nmi ?? Number.NaN,
      purity: selection.metrics.purity ?? Number.NaN,
    },
    files: Object.fromEntries([
      ['sae/sae.safetensors', await fileSha256(join(stage, 'sae', 'sae.safetensors'))],
      ...(await Promise.all(
        files.map(async (f) => [`${basename(paths.vectors)}/${f}`, await fileSha256(join(stageVectors, f))]),
      )),
    ]),
    skipped: manifest.skipped.map((s) => ({ latent: s.latent, reason: String(s.reason) })),
  };
  for (const d of [paths.sae, paths.vectors]) {
    rmSync(d, { recursive: true, force: true });
    renameSync(join(stage, basename(d)), d);
  }
  rmSync(stage, { recursive: true, force: true });
  writeFileSync(paths.record, `${JSON.stringify(record, null, 2)}\n`);
  return { paths, record, seconds: (performance.now() - t0) / 1000 };
}
