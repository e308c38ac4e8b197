// `vectors train`: the paper's steering vectors for one base model (method.md §2.6): examples
// extracted and selected as its code does (examples.ts), then the bias vector, then one vector per
// latent with the bias frozen beside it, each by Adam with the paper's defaults (src/train). The
// set directory is written as it goes: examples.jsonl, one control-vector GGUF per finished vector
// and manifest.json (complete: false until the last one), so a rerun of the same command resumes
// at the first unfinished vector. Difference-of-means sets share the examples and the format.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseHook } from '../engine/hooks.ts';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { readControlVector } from '../gguf/control-vector.ts';
import { Rng } from '../rng.ts';
import {
  type Example,
  exampleBatch,
  PAPER_VECTOR_DEFAULTS,
  Trainer,
  trainVector,
  type VectorEpoch,
} from '../train/index.ts';
import { diffMeanVectors } from './diffmean.ts';
import {
  activationPrefilter,
  basePromptFrom,
  biasExamples,
  categoryExamples,
  type ExampleSource,
  rankByPerplexity,
  type SelectedExample,
  type TextExample,
} from './examples.ts';
import { targetPerplexities } from './passes.ts';
import {
  biasFile,
  type CategoryEntry,
  defaultSites,
  latentFile,
  MANIFEST,
  type ModelRef,
  modelRef,
  type SkippedEntry,
  type VectorEntry,
  type VectorMethod,
  type VectorSetManifest,
  vectorNorm,
  writeFileAtomic,
  writeManifest,
  writeVectorFile,
} from './vector-set.ts';

export interface VectorTrainSettings {
  method: Exclude<VectorMethod, 'imported'>;
  /** apply layer L: applied at blocks.L.hook_resid_post */
  layer: number;
  /** train at blocks.L.hook_resid_post too (default: the paper's resid_pre L, method.md A3) */
  same_site: boolean;
  /** the base model's prompt, `{question}` replaced by the question */
  base_prompt: string;
  n_train: number;
  n_heldout: number;
  /** bias examples (paper: n_train) */
  n_bias: number;
  min_words: number;
  bias_min_words: number;
  /** a latent with fewer usable examples gets no vector (recorded in `skipped`) */
  min_examples: number;
  batch_bias: number;
  batch_category: number;
  epochs: number;
  lr: number;
  patience: number;
  min_delta: number;
  logit_scale: number;
  seed: number;
  /** the bias examples' shuffle (paper: random.seed(42)) */
  shuffle_seed: number;
  /** tokenise with the tokenizer's special tokens (BOS), as the paper's `tokenizer(s)` does */
  add_special: boolean;
  /**
   * rows the vectors are added at while training: 'target' (the paper) = the target tokens, so the
   * first target token, predicted from the unsteered last prompt row, gets no gradient;
   * 'predictors' = one row earlier, the rows whose outputs predict the target tokens
   */
  steer_rows: 'target' | 'predictors';
  /** train only these latents (null: all; the others are recorded as skipped) */
  latents: number[] | null;
}

export const PAPER_TRAIN_SETTINGS: Omit<VectorTrainSettings, 'layer' | 'method'> = {
  same_site: false,
  base_prompt:
    'Task: Answer the question below. Explain your reasoning step by step.\n\n\n\nQuestion:\n{question}\n\nStep by step answer:\n',
  n_train: 2048,
  n_heldout: 512,
  n_bias: 2048,
  min_words: 7,
  bias_min_words: 20,
  min_examples: 10,
  batch_bias: 2,
  batch_category: 2,
  epochs: PAPER_VECTOR_DEFAULTS.epochs,
  lr: PAPER_VECTOR_DEFAULTS.lr,
  patience: PAPER_VECTOR_DEFAULTS.patience,
  min_delta: PAPER_VECTOR_DEFAULTS.minDelta,
  logit_scale: PAPER_VECTOR_DEFAULTS.logitScale,
  seed: 0,
  shuffle_seed: 42,
  add_special: true,
  steer_rows: 'target',
  latents: null,
};

/**
 * The steering layer of a model without a preset: the paper's layers are 0.357–0.375 of the depth,
 * and floor(0.375 · n_layer) gives all four exactly (the pair presets, src/experiments/presets.ts,
 * hold the paper's own; the CLI passes them in as settings).
 */
export function defaultSteerLayer(nLayer: number): number {
  return Math.max(1, Math.floor(0.375 * nLayer));
}

export interface TrainSetInput {
  /** the base model to steer */
  modelPath: string;
  sources: ExampleSource[];
  /** every latent of the taxonomy (so that latents without examples are recorded too) */
  latents: Array<{ latent: number; title: string }>;
  sae: Record<string, unknown> | null;
  out: string;
  settings: VectorTrainSettings;
}

export interface TrainSetOptions {
  threads?: number;
  onProgress?: (line: string) => void;
  /** a line per epoch of every optimised vector */
  onEpoch?: (what: string, e: VectorEpoch, epochs: number) => void;
}

export interface StoredExample extends SelectedExample {
  split: 'train' | 'heldout';
}

const EXAMPLES = 'examples.jsonl';

function digest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/** The examples of a set (examples.jsonl), by latent (-1 = bias). */
export function readExamples(dir: string): StoredExample[] {
  const path = join(dir, EXAMPLES);
  if (!existsSync(path)) {
    throw new ThinkwhenError(
      'NO_EXAMPLES',
      `${dir} has no ${EXAMPLES}`,
      'pass a set written by `thinkwhen vectors train`',
    );
  }
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as StoredExample);
}

/** The existing manifest of `out` when it is this very run (resume); refuses anything else. */
function resumable(out: string, runKey: string): VectorSetManifest | null {
  if (!existsSync(out)) return null;
  const entries = readdirSync(out);
  if (entries.length === 0) return null;
  const path = join(out, MANIFEST);
  if (!existsSync(path)) {
    throw new ThinkwhenError(
      'OUT_NOT_EMPTY',
      `${out} exists and is not a vector set (no ${MANIFEST}); nothing there is overwritten`,
      'pick a new --out directory',
    );
  }
  const m = JSON.parse(readFileSync(path, 'utf8')) as VectorSetManifest;
  if (m.run_key !== runKey) {
    throw new ThinkwhenError(
      'OUT_NOT_EMPTY',
      `${out} holds a vector set made from other inputs or settings; it is not overwritten`,
      'pick a new --out directory, or delete that one',
    );
  }
  return m;
}

export interface ExtractedExamples {
  bias: TextExample[];
  byLatent: Map<number, { train: SelectedExample[]; heldOut: SelectedExample[] }>;
  skipped: SkippedEntry[];
}

/** Extraction and selection (needs the base model for the perplexities). */
export async function extractExamples(
  model: Model,
  input: Pick<TrainSetInput, 'sources' | 'latents' | 'settings'>,
  o: TrainSetOptions = {},
): Promise<ExtractedExamples> {
  const s = input.settings;
  const basePrompt = basePromptFrom(s.base_prompt);
  const all = categoryExamples(input.sources, { basePrompt, minWords: s.min_words });
  const rng = new Rng(s.shuffle_seed);
  const bias = biasExamples(input.sources, {
    basePrompt,
    minWords: s.bias_min_words,
    n: s.n_bias,
    shuffle: (n) => {
      const p = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rng.next() * (i + 1));
        [p[i], p[j]] = [p[j], p[i]];
      }
      return p;
    },
  });
  const byLatent = new Map<number, { train: SelectedExample[]; heldOut: SelectedExample[] }>();
  const skipped: SkippedEntry[] = [];
  const pools = new Map<number, TextExample[]>();
  for (const { latent, title } of input.latents) {
    const found = all.get(latent) ?? [];
    if (s.latents && !s.latents.includes(latent)) {
      skipped.push({ latent, title, reason: 'not among the requested latents' });
      continue;
    }
    if (found.length < s.min_examples) {
      skipped.push({
        latent,
        title,
        reason:
          found.length === 0
            ? `no usable example (a segment of ≥ ${s.min_words} words after a sentence boundary, not the last of its trace)`
            : `${found.length} usable examples < minimum ${s.min_examples}`,
      });
      continue;
    }
    pools.set(latent, activationPrefilter(found, s.n_train, s.n_heldout));
  }
  // One perplexity pass for every latent's pool: examples of one trace share its decode.
  const flat = [...pools.values()].flat();
  o.onProgress?.(`vectors train: base-model perplexity of ${flat.length} candidate examples of ${pools.size} latents…`);
  const ppl = await targetPerplexities(model, flat, { threads: o.threads, addSpecial: s.add_special });
  let at = 0;
  for (const [latent, pool] of pools) {
    byLatent.set(latent, rankByPerplexity(pool, ppl.slice(at, at + pool.length), s.n_train, s.n_heldout));
    at += pool.length;
  }
  return { bias, byLatent, skipped };
}

function storedExamples(x: ExtractedExamples): StoredExample[] {
  const out: StoredExample[] = x.bias.map((e) => ({ ...e, perplexity: 0, split: 'train' }));
  for (const { train, heldOut } of x.byLatent.values()) {
    out.push(...train.map((e) => ({ ...e, split: 'train' as const })));
    out.push(...heldOut.map((e) => ({ ...e, split: 'heldout' as const })));
  }
  return out;
}

function tokenized(vocab: Model, examples: readonly TextExample[], addSpecial: boolean): Example[] {
  return examples.map((e) => ({
    prompt: vocab.tokenize(e.prompt, { addSpecial }),
    target: vocab.tokenize(e.target, { addSpecial }),
  }));
}

const fmtTime = (s: number) =>
  s < 90 ? `${s.toFixed(0)} s` : s < 5400 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`;

/**
 * Trains (or resumes) a vector set. Returns its manifest. For `method: 'diffmean'` the vectors are
 * differences of means (diffmean.ts) over the same examples instead.
 */
export async function trainVectorSet(input: TrainSetInput, o: TrainSetOptions = {}): Promise<VectorSetManifest> {
  const s = input.settings;
  const log = o.onProgress ?? (() => {});
  const ref: ModelRef = await modelRef(input.modelPath);
  if (!Number.isInteger(s.layer) || s.layer < 1 || s.layer >= ref.nLayer) {
    throw new ThinkwhenError(
      'LAYER_OUT_OF_RANGE',
      `steering layer ${s.layer} is out of range: ${input.modelPath} has ${ref.nLayer} layers, and llama.cpp control vectors start at layer 1`,
      `pick a layer between 1 and ${ref.nLayer - 1}`,
    );
  }
  if (input.sources.length === 0) {
    throw new ThinkwhenError('NO_EXAMPLES', 'no annotated traces to take examples from', 'pass --annotated FILE');
  }
  const sites =
    s.method === 'diffmean'
      ? { train_site: defaultSites(s.layer).apply_site, apply_site: defaultSites(s.layer).apply_site }
      : defaultSites(s.layer, s.same_site);
  const runKey = digest({ model: ref.sha256, settings: s, sources: digest(input.sources), latents: input.latents });
  mkdirSync(input.out, { recursive: true });
  const previous = resumable(input.out, runKey);
  if (previous?.complete) {
    log(`vectors train: ${input.out} is already complete`);
    return previous;
  }
  const manifest: VectorSetManifest = previous ?? {
    format: 'thinkwhen-vectors/1',
    method: s.method,
    model: ref,
    layer: s.layer,
    ...sites,
    bias: null,
    categories: [],
    skipped: [],
    sae: input.sae,
    complete: false,
    settings: s,
    run_key: runKey,
    created: new Date().toISOString(),
  };

  // 1. Examples (kept in examples.jsonl, so a resumed run does not redo the perplexities).
  let stored: StoredExample[];
  if (previous && existsSync(join(input.out, EXAMPLES))) {
    stored = readExamples(input.out);
  } else {
    const t0 = performance.now();
    const model = await Model.load(input.modelPath);
    let x: ExtractedExamples;
    try {
      x = await extractExamples(model, input, o);
    } finally {
      model.free();
    }
    stored = storedExamples(x);
    writeFileAtomic(
      join(input.out, EXAMPLES),
      stored.map((e) => JSON.stringify(e)).join('\n') + (stored.length ? '\n' : ''),
    );
    manifest.skipped = x.skipped;
    manifest.examples_seconds = (performance.now() - t0) / 1000;
    writeManifest(input.out, manifest);
    log(
      `vectors train: ${x.bias.length} bias examples; ${x.byLatent.size} latents with examples, ${x.skipped.length} without a vector (${x.skipped.map((k) => `latent ${k.latent}: ${k.reason}`).join('; ') || 'none'})`,
    );
  }
  const bias = stored.filter((e) => e.latent === -1);
  const latents = [...new Set(stored.filter((e) => e.latent >= 0).map((e) => e.latent))].sort((a, b) => a - b);
  const titles = new Map(input.latents.map((l) => [l.latent, l.title]));
  const split = (latent: number, which: StoredExample['split']) =>
    stored.filter((e) => e.latent === latent && e.split === which);

  if (s.method === 'diffmean') {
    await diffMeanVectors(input, manifest, { bias, latents, titles, split }, o);
  } else {
    await optimise(input, manifest, { bias, latents, titles, split }, o);
  }
  manifest.complete = true;
  writeManifest(input.out, manifest);
  return manifest;
}

export interface ExampleSets {
  bias: StoredExample[];
  latents: number[];
  titles: Map<number, string>;
  split: (latent: number, which: StoredExample['split']) => StoredExample[];
}

async function optimise(input: TrainSetInput, manifest: VectorSetManifest, ex: ExampleSets, o: TrainSetOptions) {
  const s = input.settings;
  const log = o.onProgress ?? (() => {});
  const vocab = await Model.load(input.modelPath, { vocabOnly: true });
  const train = parseHook(manifest.train_site);
  const tr = Trainer.open(input.modelPath, { mode: 'vectors', threads: o.threads });
  try {
    const jobs = [
      ...(ex.bias.length ? [{ latent: -1, examples: ex.bias, heldOut: [] as StoredExample[] }] : []),
      ...ex.latents.map((latent) => ({
        latent,
        examples: ex.split(latent, 'train'),
        heldOut: ex.split(latent, 'heldout'),
      })),
    ].map((j) => ({
      ...j,
      train: tokenized(vocab, j.examples, s.add_special),
      held: tokenized(vocab, j.heldOut, s.add_special),
    }));
    if (jobs.length === 0) {
      throw new ThinkwhenError(
        'NO_EXAMPLES',
        `no vector to train: no bias example and no latent with ≥ ${s.min_examples} usable examples (${manifest.skipped.map((k) => `latent ${k.latent}: ${k.reason}`).join('; ')})`,
        'annotate more traces, or lower --min-examples / --min-words',
      );
    }
    // The estimate a user needs before committing to the run: one timed step of the first minibatch.
    const count = (xs: Example[]) => xs.reduce((n, e) => n + e.prompt.length + e.target.length, 0);
    const perEpoch = jobs.reduce((n, j) => n + count(j.train), 0);
    const probe = jobs[0].train.slice(0, jobs[0].latent === -1 ? s.batch_bias : s.batch_category);
    tr.setVectors([{ layer: train.layer, site: train.site, data: new Float32Array(tr.nEmbd) }]);
    const step = () =>
      tr.run({
        ...exampleBatch(probe, { steerRows: s.steer_rows }),
        logitScale: s.logit_scale,
        lossScale: 1,
        backward: true,
      });
    await step(); // the first run of a shape allocates its graph
    const t0 = performance.now();
    await step();
    tr.zeroGrad();
    const rate = count(probe) / ((performance.now() - t0) / 1000);
    log(
      `vectors train: ${jobs.length} vectors, ${(perEpoch / 1e3).toFixed(1)}k tokens per epoch in all × ≤ ${s.epochs} epochs = ≤ ${((perEpoch * s.epochs) / 1e6).toFixed(2)} M token passes; fwd+bwd measured ${rate.toFixed(0)} tok/s → ≤ ${fmtTime((perEpoch * s.epochs) / rate)} (early stopping usually ends sooner)`,
    );

    const biasEntry = manifest.bias;
    let biasVector: Float32Array | null = null;
    if (biasEntry) {
      biasVector = [...readControlVector(join(input.out, biasEntry.file)).directions.values()][0];
    }
    const done = new Set(manifest.categories.map((c) => c.latent));
    for (const [i, job] of jobs.entries()) {
      const isBias = job.latent === -1;
      if (isBias ? biasEntry : done.has(job.latent)) continue;
      const what = isBias ? 'bias' : `latent ${job.latent}`;
      const t1 = performance.now();
      log(
        `vectors train: ${what} (${i + 1}/${jobs.length}): ${job.examples.length} train, ${job.heldOut.length} held out`,
      );
      const res = await trainVector(tr, {
        layer: train.layer,
        site: train.site,
        train: job.train,
        heldOut: job.held,
        frozen: !isBias && biasVector ? [biasVector] : [],
        batchSize: isBias ? s.batch_bias : s.batch_category,
        epochs: s.epochs,
        adam: { lr: s.lr },
        logitScale: s.logit_scale,
        base10: true,
        patience: s.patience,
        minDelta: s.min_delta,
        seed: s.seed + job.latent + 1,
        batchOptions: { steerRows: s.steer_rows },
        onEpoch: (e) => o.onEpoch?.(what, e, s.epochs),
      });
      const file = isBias ? biasFile : latentFile(job.latent);
      writeVectorFile(input.out, file, manifest, res.vector);
      const entry: VectorEntry = {
        file,
        norm: vectorNorm(res.vector),
        n_train: job.examples.length,
        loss_curve: res.epochs.map((e) => e.trainLoss),
        best_epoch: res.bestEpoch,
        stopped_early: res.stoppedEarly,
        seconds: (performance.now() - t1) / 1000,
        ...(res.heldOutBefore === undefined
          ? {}
          : { heldout_loss_before: res.heldOutBefore, heldout_loss_after: res.heldOutAfter }),
      };
      if (isBias) {
        manifest.bias = entry;
        biasVector = res.vector;
      } else {
        const c: CategoryEntry = {
          latent: job.latent,
          title: ex.titles.get(job.latent) ?? `latent ${job.latent}`,
          ...entry,
          n_heldout: job.heldOut.length,
        };
        manifest.categories.push(c);
        manifest.categories.sort((a, b) => a.latent - b.latent);
      }
      writeManifest(input.out, manifest);
      log(
        `vectors train: ${what}: |v| ${entry.norm.toFixed(3)}, best epoch ${res.bestEpoch + 1}/${res.epochs.length}, loss ${res.bestLoss.toFixed(4)}` +
          (res.heldOutBefore === undefined
            ? ''
            : `, held-out loss ${res.heldOutBefore.toFixed(4)} → ${res.heldOutAfter!.toFixed(4)}`) +
          `, ${(entry.seconds as number).toFixed(1)} s`,
      );
    }
  } finally {
    tr.free();
    vocab.free();
  }
}
