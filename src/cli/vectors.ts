import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { checkModelFile, type PairPreset, PRESET_NAMES, PRESETS } from '../experiments/presets.ts';
import { readControlVector, writeControlVector } from '../gguf/control-vector.ts';
import { metaValue, readGguf } from '../gguf/read.ts';
import { evaluateVectors, type VectorEvalResult } from '../steer/eval.ts';
import { latentLabel, saeLabeller } from '../steer/sae-label.ts';
import { latentsOf, majorityLabels, readSelectionFile, readSources } from '../steer/sources.ts';
import {
  defaultSteerLayer,
  PAPER_TRAIN_SETTINGS,
  readExamples,
  trainVectorSet,
  type VectorTrainSettings,
} from '../steer/train.ts';
import {
  biasFile,
  controlVectorLayer,
  defaultSites,
  latentFile,
  loadVectorSet,
  type ModelRef,
  modelRef,
  steeringDelta,
  type VectorSetManifest,
  vectorNorm,
  writeFileAtomic,
  writeManifest,
  writeVectorFile,
} from '../steer/vector-set.ts';
import { readTraces } from '../traces/generate.ts';
import type { Command } from './command.ts';
import {
  choice,
  defineCommand,
  defineGroup,
  flag,
  int,
  ints,
  num,
  nums,
  text,
  texts,
  threads,
  type Values,
} from './options.ts';
import { ORGANISM_COEFS, organismInputs, organismLabel, organismSettings } from './vectors-organism.ts';

const progress = (line: string) => console.error(line);

function bad(message: string, fix: string): ThinkwhenError {
  return new ThinkwhenError('BAD_ARGUMENT', message, fix);
}

// ---------------------------------------------------------------------------------------------
// Option tables. Options shared by several subcommands are declared once here.

const method = choice({
  help: 'optimised: the paper’s trained vectors; diffmean: difference of means (gradient-free, seconds)',
  choices: ['optimised', 'diffmean'],
  default: 'optimised',
});
const thinking = choice({
  help: 'the text the annotation was made on: marker = the thinking span, generated = the whole output',
  choices: ['marker', 'generated'],
  default: 'marker',
});
const MAX_EXAMPLES = 10_000_000;

/** Training settings (each overrides the default: the paper's, the preset's or the organism's). */
const SETTINGS = {
  layer: int({
    arg: 'L',
    help: 'steering layer: the vectors act at blocks.L.hook_resid_post (default: the preset’s, else floor(0.375 · n_layer); 1 with --organism)',
    min: 1,
    max: 4095,
  }),
  'same-site': flag('train at blocks.L.hook_resid_post too (default: the paper’s resid_pre L, one block earlier)'),
  'steer-rows': choice({
    help: 'rows the vector is added at in training: target (the paper; the first target token gets no gradient) or predictors (one row earlier; the default with --organism)',
    choices: ['target', 'predictors'],
  }),
  latents: ints({
    arg: 'LIST',
    help: 'train only these latents (the others are recorded as skipped)',
    min: 0,
    max: 1e6,
  }),
  'base-prompt': text({
    arg: 'TEXT',
    help: 'the base model’s prompt, {question} marks the question (default: the paper’s)',
  }),
  'n-train': int({ help: 'training examples per latent (paper 2048; organism 32)', min: 1, max: MAX_EXAMPLES }),
  'n-heldout': int({ help: 'held-out examples per latent (paper 512; organism 32)', min: 0, max: MAX_EXAMPLES }),
  'n-bias': int({ help: 'bias examples (paper 2048; organism 16)', min: 0, max: MAX_EXAMPLES }),
  'min-words': int({ help: 'words a category target needs (paper 7; organism 4)', min: 0, max: 100_000 }),
  'bias-min-words': int({ help: 'words a bias target needs (paper 20)', min: 0, max: 1_000_000 }),
  'min-examples': int({
    help: 'a latent with fewer usable examples gets no vector, on record (default 10)',
    min: 1,
    max: MAX_EXAMPLES,
  }),
  batch: int({ help: 'minibatch of the category vectors (and of the bias unless --batch-bias)', min: 1, max: 4096 }),
  'batch-bias': int({ help: 'minibatch of the bias vector', min: 1, max: 4096 }),
  epochs: int({ help: 'at most this many epochs (paper 50; organism 5)', min: 1, max: 100_000 }),
  lr: num({ arg: 'X', help: 'Adam learning rate (paper 0.01; organism 0.1)', min: 1e-9, max: 10 }),
  seed: int({ help: 'initialisation seed (default 0)', min: 0, max: 2 ** 32 - 1 }),
};

/** The model organism's inputs (src/organism/models; a workspace folder of its own). */
const ORGANISM = {
  organism: flag('work on the shipped model organism: taxonomy workspace, annotation and ground truth built in'),
  dir: text({ arg: 'DIR', help: 'with --organism: the workspace (default runs/organism)' }),
  models: text({ arg: 'DIR', help: 'with --organism: a folder with another base.gguf + thinking.gguf pair' }),
  problems: int({
    help: 'with --organism: held-out problems when the taxonomy workspace is built',
    min: 1,
    max: 1_000_000,
  }),
};

type Given = Record<string, unknown>;

/** The options of `names` the user gave (a flag counts when set). */
function given(values: Given, names: readonly string[]): string[] {
  return names.filter((n) => values[n] !== undefined && values[n] !== false);
}

/** Refuses options that do nothing in this mode, rather than ignoring them. */
function refuse(values: Given, names: readonly string[], why: string, fix: string): void {
  const g = given(values, names);
  if (g.length) throw bad(`${g.map((n) => `--${n}`).join(', ')} ${g.length > 1 ? 'do' : 'does'} nothing ${why}`, fix);
}

// ---------------------------------------------------------------------------------------------
// Settings

/** Command-line overrides of the settings. */
function withOverrides(s: VectorTrainSettings, v: Values<typeof SETTINGS>): VectorTrainSettings {
  return {
    ...s,
    layer: v.layer ?? s.layer,
    same_site: v['same-site'] || s.same_site,
    base_prompt: v['base-prompt'] ?? s.base_prompt,
    n_train: v['n-train'] ?? s.n_train,
    n_heldout: v['n-heldout'] ?? s.n_heldout,
    n_bias: v['n-bias'] ?? s.n_bias,
    min_words: v['min-words'] ?? s.min_words,
    bias_min_words: v['bias-min-words'] ?? s.bias_min_words,
    min_examples: v['min-examples'] ?? s.min_examples,
    batch_category: v.batch ?? s.batch_category,
    batch_bias: v['batch-bias'] ?? v.batch ?? s.batch_bias,
    epochs: v.epochs ?? s.epochs,
    lr: v.lr ?? s.lr,
    seed: v.seed ?? s.seed,
    steer_rows: v['steer-rows'] ?? s.steer_rows,
    latents: v.latents ?? s.latents,
  };
}

const squash = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');

/**
 * The paper pair (src/experiments/presets.ts) whose base model this is: same depth and width, and
 * the base repository's name in the GGUF's name or file name (the first pair wins for a base model
 * shared by two pairs: the same layer, the R1 pair's minibatch).
 */
function pairOfBase(path: string, ref: ModelRef): PairPreset | null {
  const hay = `${squash(String(metaValue(readGguf(path), 'general.name') ?? ''))} ${squash(basename(path))}`;
  return (
    PRESETS.find(
      (p) =>
        p.modelsDir === null &&
        p.base.nLayer === ref.nLayer &&
        p.base.nEmbd === ref.nEmbd &&
        hay.includes(squash(p.base.repo.split('/').at(-1) ?? '')),
    ) ?? null
  );
}

// ---------------------------------------------------------------------------------------------
// Printing

const fmtEpoch = (what: string, e: { epoch: number; trainLoss: number; vectorNorm: number }, epochs: number) => {
  const line = `vectors train: ${what} epoch ${e.epoch + 1}/${epochs} loss ${e.trainLoss.toFixed(4)} |v| ${e.vectorNorm.toFixed(2)}`;
  if (process.stderr.isTTY) process.stderr.write(`\r${line.padEnd(78)}${e.epoch + 1 === epochs ? '\n' : ''}`);
  else console.error(line);
};

function printSet(m: VectorSetManifest): void {
  const curve = (c: number[]) =>
    c.length ? `${c[0].toFixed(3)} → ${Math.min(...c).toFixed(3)} (${c.length} epochs)` : '-';
  const lines = [
    `${m.method} vectors for ${m.model.file} (${m.model.arch}, n_embd ${m.model.nEmbd}); trained at ${m.train_site}, applied at ${m.apply_site}`,
    m.bias
      ? `  bias       |v| ${m.bias.norm.toFixed(3)}  n_train ${m.bias.n_train}  loss ${curve(m.bias.loss_curve)}`
      : '  no bias vector',
    ...m.categories.map(
      (c) =>
        `  latent ${String(c.latent).padEnd(3)} |v| ${c.norm.toFixed(3)}  n_train ${c.n_train}  held out ${c.n_heldout}  loss ${curve(c.loss_curve)}  ${c.title}`,
    ),
    ...m.skipped.map((s) => `  latent ${String(s.latent).padEnd(3)} no vector: ${s.reason}  ${s.title}`),
  ];
  console.log(lines.join('\n'));
}

const f3 = (x: number | null) => (x === null ? '   -  ' : x.toFixed(3).padStart(6));

function printEval(r: VectorEvalResult): void {
  const lines = [
    `method ${r.method}, applied at ${r.apply_site} (window ${r.window}), coefficients ${r.coefs.join(', ')}`,
    'latent  type        n   coef  vector    bias  random  rnd+bias  unsteered  title',
    ...r.categories.map(
      (c) =>
        `${String(c.latent).padStart(6)}  ${String(c.type ?? '-').padEnd(9)} ${String(c.n).padStart(4)}  ${String(c.best_coef).padStart(5)}  ${f3(c.rate_vector)}  ${f3(c.rate_bias)}  ${f3(c.rate_random)}    ${f3(c.rate_random_bias)}     ${f3(c.rate_unsteered)}  ${c.title}`,
    ),
    ...r.skipped.map((s) => `${String(s.latent).padStart(6)}  no vector: ${s.reason}  ${s.title}`),
  ];
  console.log(lines.join('\n'));
}

/** The eval table: for --json the must-show fields first, then the sweep, the losses and samples. */
function evalJson(r: VectorEvalResult, m: VectorSetManifest) {
  const seconds = [m.bias, ...m.categories].reduce((t, e) => t + Number(e?.seconds ?? 0), 0);
  const entry = new Map(m.categories.map((c) => [c.latent, c]));
  return {
    categories: r.categories.map((c) => ({
      latent: c.latent,
      title: c.title,
      type: c.type,
      n: c.n,
      best_coef: c.best_coef,
      rate_vector: c.rate_vector,
      rate_bias: c.rate_bias,
      rate_random: c.rate_random,
      rate_random_bias: c.rate_random_bias,
      rate_unsteered: c.rate_unsteered,
      sweep: c.sweep,
      norm: entry.get(c.latent)?.norm ?? null,
      heldout_loss_before: entry.get(c.latent)?.heldout_loss_before ?? null,
      heldout_loss_after: entry.get(c.latent)?.heldout_loss_after ?? null,
      samples: c.samples,
    })),
    method: r.method,
    window: r.window,
    layer: r.layer,
    apply_site: r.apply_site,
    coefs: r.coefs,
    skipped: r.skipped,
    seconds: r.seconds,
    // what the table was measured on
    model: { file: m.model.file, sha256: m.model.sha256 },
    taxonomy: m.sae,
    train_site: m.train_site,
    settings: m.settings,
    train_seconds: seconds + Number(m.examples_seconds ?? 0) + Number(m.seconds ?? 0),
  };
}

// ---------------------------------------------------------------------------------------------
// train

const TRAIN = {
  model: text({ arg: 'FILE', help: 'the base model to steer (GGUF)' }),
  traces: text({ arg: 'FILE', help: 'the thinking model’s traces (thinkwhen traces --out)' }),
  annotated: text({ arg: 'FILE', help: 'their annotation (thinkwhen taxonomy annotate --out)' }),
  taxonomy: text({ arg: 'DIR', help: 'the taxonomy directory (selection.json: latents and titles)' }),
  out: text({
    arg: 'DIR',
    help: 'the vector set (created; the same command resumes it; another set there is refused, never overwritten). With --organism default DIR/vectors-METHOD',
  }),
  method,
  thinking,
  preset: choice({
    help: `the pair preset whose layer and minibatch to use: ${PRESET_NAMES.join(', ')} (default: detected from the base model’s name and shape)`,
    arg: 'NAME',
    choices: PRESET_NAMES,
  }),
  ...SETTINGS,
  ...ORGANISM,
  threads: threads(),
  json: flag('print the manifest as JSON'),
};

const REAL_INPUTS = ['model', 'traces', 'annotated', 'taxonomy', 'preset'] as const;
const ORGANISM_ONLY = ['dir', 'models', 'problems'] as const;

async function trainOrganism(
  values: Values<typeof SETTINGS> & Values<typeof ORGANISM> & { method: VectorTrainSettings['method'] },
  out: string | undefined,
  threadCount: number | undefined,
): Promise<{ out: string; manifest: VectorSetManifest; base: string }> {
  const dir = values.dir ?? join('runs', 'organism');
  const inputs = await organismInputs({
    dir,
    models: values.models,
    problems: values.problems,
    threads: threadCount,
    onProgress: progress,
  });
  const setDir = out ?? join(dir, `vectors-${values.method}`);
  const t0 = performance.now();
  const manifest = await trainVectorSet(
    {
      modelPath: inputs.base,
      sources: inputs.sources,
      latents: inputs.latents,
      sae: inputs.sae,
      out: setDir,
      settings: withOverrides(organismSettings(values.method), values),
    },
    { threads: threadCount, onProgress: progress, onEpoch: fmtEpoch },
  );
  progress(`vectors train: ${setDir} ready (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return { out: setDir, manifest, base: inputs.base };
}

function need<T>(v: T | undefined, flag: string, fix: string): T {
  if (v === undefined) throw bad(`${flag} is required`, fix);
  return v;
}

const train = defineCommand({
  name: 'vectors train',
  summary: 'extract examples and train the bias + one vector per latent (resumable)',
  usage:
    '--model FILE --traces FILE --annotated FILE --taxonomy DIR --out DIR [options] | --organism [--method M] [options]',
  description: `Trains the paper's steering vectors for a base model (docs/method.md §2.6, §2.9;
docs/vectors.md): one bias vector and, with the bias frozen beside it, one vector per latent of
the taxonomy, each trained so that adding it to the base model's residual stream makes the base
model write the thinking model's sentences of that latent.

Examples are extracted as the paper's code does: bias = (base prompt, whole thinking) of
annotated responses with ≥ 20 words, seeded shuffle; category = every annotated segment but the
last, prompt = all text before it, ending at a sentence boundary; per latent the 4·N most active
by the SAE, then hardest first by the base model's perplexity, first N train, next held out. A
latent with fewer usable examples than --min-examples gets no vector, and that is recorded.

Optimiser: Adam lr 1e-2, cosine to 0, ≤ 50 epochs, logits × 0.7, base-10 loss, early stopping on
the training loss (patience 10), seeded unit-norm start. Trained at blocks.L.hook_resid_pre and
applied at blocks.L.hook_resid_post, as the paper (--same-site: both at resid_post). Prints the
estimated tokens × epochs and time before it starts. Rerun the same command to resume at the
first unfinished vector. --method diffmean: difference of means (docs/method.md §8) instead.

The set is a directory: manifest.json + one llama.cpp control-vector GGUF per vector.
--organism: the shipped model organism end to end (taxonomy workspace if missing, annotation,
training) with the organism's defaults: layer 1, min words 4, 32 train / 32 held-out / 16 bias
examples, batch 4, 5 epochs, lr 0.1, --steer-rows predictors (docs/vectors.md says why).`,
  options: TRAIN,
  examples: [
    'thinkwhen vectors train --organism',
    'thinkwhen vectors train --organism --method diffmean',
    'thinkwhen vectors train --model base.gguf --traces runs/traces.jsonl --annotated runs/annotated.jsonl \\',
    '    --taxonomy runs/tax --out runs/vectors',
  ],
  async run({ values }) {
    if (values.organism) {
      refuse(values, REAL_INPUTS, 'with --organism (it brings its own models, traces and taxonomy)', 'drop them');
      const { manifest } = await trainOrganism(values, values.out, values.threads);
      if (values.json) console.log(JSON.stringify(manifest));
      else printSet(manifest);
      return 0;
    }
    refuse(values, ORGANISM_ONLY, 'without --organism', 'add --organism, or drop them');
    const modelPath = need(values.model, '--model', 'pass the base model GGUF (or --organism)');
    const taxonomy = need(
      values.taxonomy,
      '--taxonomy',
      'pass the taxonomy directory (thinkwhen taxonomy score --dir)',
    );
    const tracesPath = need(values.traces, '--traces', 'pass the thinking traces (thinkwhen traces --out)');
    const annotated = need(values.annotated, '--annotated', 'pass the annotated traces (thinkwhen taxonomy annotate)');
    const out = need(values.out, '--out', 'name the vector-set directory to write');
    const ref = await modelRef(modelPath);
    const preset = values.preset ? PRESETS.find((p) => p.name === values.preset)! : pairOfBase(modelPath, ref);
    if (values.preset) checkModelFile(preset!, 'base', modelPath);
    if (preset) {
      progress(
        `vectors train: preset ${preset.name} (layer ${preset.steerLayer}, minibatch ${preset.batchBias}/${preset.batchCategory})`,
      );
    }
    const selection = readSelectionFile(taxonomy);
    const base: VectorTrainSettings = {
      ...PAPER_TRAIN_SETTINGS,
      method: values.method,
      layer: preset?.steerLayer ?? defaultSteerLayer(ref.nLayer),
      batch_bias: preset?.batchBias ?? PAPER_TRAIN_SETTINGS.batch_bias,
      batch_category: preset?.batchCategory ?? PAPER_TRAIN_SETTINGS.batch_category,
    };
    const manifest = await trainVectorSet(
      {
        modelPath,
        sources: await readSources(tracesPath, annotated, values.thinking),
        latents: latentsOf(selection),
        sae: {
          taxonomy,
          sae: selection.sae,
          layer: selection.layer,
          k: selection.k,
          traces: tracesPath,
          annotated,
          thinking: values.thinking,
        },
        out,
        settings: withOverrides(base, values),
      },
      { threads: values.threads, onProgress: progress, onEpoch: fmtEpoch },
    );
    if (values.json) console.log(JSON.stringify(manifest));
    else printSet(manifest);
    return 0;
  },
});

// ---------------------------------------------------------------------------------------------
// eval

const EVAL = {
  vectors: text({
    arg: 'DIR',
    help: 'the vector set (with --organism default DIR/vectors-METHOD, trained when needed)',
  }),
  model: text({ arg: 'FILE', help: 'the base model the set was trained on' }),
  coefs: nums({
    arg: 'LIST',
    help: 'coefficients c of c·(bias + v) (default 0.25,0.5,1,2; 1,2,4,8 with --organism)',
    min: -1000,
    max: 1000,
    example: '0.5,1,2',
  }),
  'max-tokens': int({ help: 'tokens per continuation (default 48; 24 with --organism)', min: 2, max: 4096 }),
  window: choice({
    help: 'decision: the vector picks the first token and the base model writes the rest unsteered (the hybrid’s use); all: the vector stays on every generated position',
    choices: ['decision', 'all'],
    default: 'decision',
  }),
  limit: int({ help: 'at most N held-out prompts per latent (default all)', min: 1, max: MAX_EXAMPLES }),
  label: choice({
    help: 'how a real model’s sentences are labelled: sae = the taxonomy’s SAE on the thinking model’s reading (needs --thinking-model, --taxonomy, --traces)',
    choices: ['sae'],
  }),
  'thinking-model': text({ arg: 'FILE', help: 'with --label sae: the thinking model (GGUF)' }),
  taxonomy: text({ arg: 'DIR', help: 'with --label sae: the taxonomy directory' }),
  traces: text({ arg: 'FILE', help: 'with --label sae: the thinking traces the set was trained from' }),
  thinking,
  method,
  ...SETTINGS,
  ...ORGANISM,
  threads: threads(),
  json: flag('print the table as JSON (it is also written to the set as eval.json)'),
};

const REAL_EVAL_INPUTS = ['model', 'label', 'thinking-model', 'taxonomy', 'traces'] as const;

const evaluate = defineCommand({
  name: 'vectors eval',
  summary: 'what does each vector do? steer at held-out prompts, label the next sentence, with controls',
  usage: '--vectors DIR --model FILE --label sae --thinking-model FILE --taxonomy DIR --traces FILE | --organism',
  description: `Measures what each vector does. At the held-out example prompts of each latent (text after
which the thinking model wrote a sentence of that latent), the base model is steered with
c·(bias + v) at every prompt position for every c of --coefs and continues greedily; the first
sentence of the continuation gets a label. Controls at the same c: bias only, a random vector of
the vector's norm (with and without the bias), and the unsteered model.

Per latent: type = the label most of the latent's sentences have; rate_vector = the fraction of
prompts whose next sentence has that type at best_coef (the c with the highest rate; ties: the
smaller c); rate_bias, rate_random, rate_random_bias at the same c; rate_unsteered. The table is
also written to the set as eval.json. Labels: on the organism its parser's type (ground truth);
on real models --label sae, the taxonomy's SAE reading the steered sentence in the thinking model.

--organism trains the set first when it is missing (so the training options apply there).`,
  options: EVAL,
  examples: [
    'thinkwhen vectors eval --organism --json',
    'thinkwhen vectors eval --organism --method diffmean --json',
    'thinkwhen vectors eval --vectors runs/vectors --model base.gguf --label sae \\',
    '    --thinking-model thinking.gguf --taxonomy runs/tax --traces runs/traces.jsonl',
  ],
  async run({ values }) {
    const threadCount = values.threads;
    let dir: string;
    let modelPath: string;
    let targetLabel: (latent: number) => string | null;
    let label: Parameters<typeof evaluateVectors>[0]['label'];
    let thinkingModel: Model | null = null;
    if (values.organism) {
      refuse(values, REAL_EVAL_INPUTS, 'with --organism (its parser is the ground truth)', 'drop them');
      const trained = await trainOrganism(values, values.vectors, threadCount);
      dir = trained.out;
      modelPath = trained.base;
      const inputs = await organismInputs({
        dir: values.dir ?? join('runs', 'organism'),
        models: values.models,
        threads: threadCount,
      });
      const majority = majorityLabels(inputs.sources, organismLabel);
      targetLabel = (latent) => majority.get(latent) ?? null;
      label = async (items) => items.map((i) => organismLabel(i.sentence));
    } else {
      refuse(values, ORGANISM_ONLY, 'without --organism', 'add --organism, or drop them');
      refuse(values, Object.keys(SETTINGS), 'without --organism (eval trains nothing)', 'pass them to vectors train');
      dir = need(values.vectors, '--vectors', 'pass the vector-set directory (or --organism)');
      modelPath = need(values.model, '--model', 'pass the base model the vectors were trained on');
      if (values.label !== 'sae') {
        throw bad(
          'real models have no ground truth: pass --label sae (with --thinking-model, --taxonomy, --traces)',
          'add --label sae, or use --organism',
        );
      }
      const taxonomy = need(values.taxonomy, '--taxonomy', 'pass the taxonomy directory');
      const tracesPath = need(values.traces, '--traces', 'pass the thinking traces');
      const thinkingPath = need(values['thinking-model'], '--thinking-model', 'pass the thinking model (GGUF)');
      const selection = readSelectionFile(taxonomy);
      const m = (await loadVectorSet(dir)).manifest;
      const settings = m.settings as VectorTrainSettings | undefined;
      thinkingModel = await Model.load(thinkingPath);
      label = await saeLabeller({
        thinkingModel,
        sae: selection.sae,
        layer: selection.layer,
        traces: (await readTraces(tracesPath)).records,
        basePrompt: settings?.base_prompt ?? PAPER_TRAIN_SETTINGS.base_prompt,
        thinking: values.thinking,
        threads: threadCount,
      });
      targetLabel = latentLabel;
    }
    const model = await Model.load(modelPath);
    try {
      const set = await loadVectorSet(dir, model);
      for (const w of set.warnings) progress(`vectors eval: warning: ${w}`);
      const settings = set.manifest.settings as VectorTrainSettings | undefined;
      const r = await evaluateVectors({
        model,
        set,
        examples: readExamples(dir),
        targetLabel,
        label,
        coefs: values.coefs ?? (values.organism ? ORGANISM_COEFS : [0.25, 0.5, 1, 2]),
        maxTokens: values['max-tokens'] ?? (values.organism ? 24 : undefined),
        limit: values.limit,
        window: values.window,
        // The organism writes one sentence per line (at most 15 tokens in 200 traces of its thinking model).
        ...(values.organism ? { stop: ['\n'] } : {}),
        addSpecial: settings?.add_special ?? true,
        threads: threadCount,
        onProgress: progress,
      });
      const out = evalJson(r, set.manifest);
      writeFileAtomic(join(dir, 'eval.json'), `${JSON.stringify(out, null, 2)}\n`);
      if (values.json) console.log(JSON.stringify(out));
      else printEval(r);
    } finally {
      model.free();
      thinkingModel?.free();
    }
    return 0;
  },
});

// ---------------------------------------------------------------------------------------------
// show, import, export

const setDirOf = (positionals: string[], vectors: string | undefined) =>
  positionals[0] ??
  need(vectors, 'a vector-set directory', 'give it as the argument, e.g. runs/organism/vectors-optimised');

const show = defineCommand({
  name: 'vectors show',
  summary: 'a set’s vectors, norms, example counts, loss curves and skipped latents',
  usage: 'DIR [--json]',
  description: `Prints a vector set: where it was trained and where it acts, the bias and each latent's
vector with its norm, example counts and training-loss curve, and every latent without a vector
with the reason. The set is checked as the hybrid loads it (files, norms, layers, NaNs).`,
  options: {
    vectors: text({ arg: 'DIR', help: 'the set (or give it as the argument)' }),
    json: flag('print the manifest as JSON'),
  },
  positionals: { min: 0, max: 1, fix: 'pass one vector-set directory' },
  examples: ['thinkwhen vectors show runs/organism/vectors-optimised'],
  async run({ values, positionals }) {
    const set = await loadVectorSet(setDirOf(positionals, values.vectors));
    if (values.json) console.log(JSON.stringify(set.manifest));
    else printSet(set.manifest);
    return 0;
  },
});

const importSet = defineCommand({
  name: 'vectors import',
  summary: 'build a set from control-vector GGUFs (repeng, llama.cpp, EasySteer)',
  usage: '--model FILE --out DIR [--bias FILE] [--layer L] [--title LATENT=TEXT]... LATENT=FILE...',
  description: `Builds a vector set from control-vector GGUFs written by repeng (export_gguf), llama.cpp's
cvector-generator or EasySteer: LATENT=FILE names the latent a file steers towards, --bias FILE
the bias. All three tools mean direction.L = added to the output of block L, i.e.
blocks.L.hook_resid_post, so the set's train and apply site are both that. A file holding several
layers needs --layer L; every file must give the same layer and the model's width.`,
  options: {
    model: text({ arg: 'FILE', help: 'the model the vectors are for (GGUF)', required: true }),
    out: text({ arg: 'DIR', help: 'the new set (must not exist, or be empty)', required: true }),
    bias: text({ arg: 'FILE', help: 'a control vector to use as the bias' }),
    layer: int({ arg: 'L', help: 'the layer to take from multi-layer files', min: 1, max: 4095 }),
    title: texts({ arg: 'LATENT=TEXT', help: 'a latent’s title (default: the file name)' }),
    json: flag('print the manifest as JSON'),
  },
  positionals: { min: 0, fix: 'pass LATENT=FILE arguments, e.g. 3=verify.gguf' },
  examples: [
    'thinkwhen vectors import --model base.gguf --out runs/imported --bias happy.gguf 3=verify.gguf 5=wait.gguf',
    'thinkwhen vectors import --model base.gguf --out runs/imported --layer 12 --title 3="Verifying" 3=all-layers.gguf',
  ],
  async run({ values, positionals }) {
    const { model: modelPath, out } = values;
    if (existsSync(out) && readdirSync(out).length > 0) {
      throw new ThinkwhenError(
        'OUT_NOT_EMPTY',
        `${out} exists and is not empty; nothing is overwritten`,
        'pick a new --out',
      );
    }
    const pairs = positionals.map((p) => {
      const m = /^(\d+)=(.+)$/.exec(p);
      if (!m) throw bad(`'${p}' is not LATENT=FILE`, 'e.g. 3=verify.gguf');
      return { latent: Number(m[1]), path: m[2] };
    });
    if (pairs.length === 0 && !values.bias) {
      throw bad('nothing to import', 'pass LATENT=FILE arguments and/or --bias FILE');
    }
    const seen = new Set<number>();
    for (const p of pairs) {
      if (seen.has(p.latent)) throw bad(`latent ${p.latent} is given twice`, 'give each latent one file');
      seen.add(p.latent);
    }
    const titles = new Map(
      values.title.map((t) => {
        const m = /^(\d+)=(.*)$/.exec(t);
        if (!m) throw bad(`--title '${t}' is not LATENT=TEXT`, 'e.g. --title 3=Verifying');
        return [Number(m[1]), m[2]] as const;
      }),
    );
    const ref = await modelRef(modelPath);
    // Every file must give the same single layer (or --layer picks it from multi-layer files).
    const pick = (path: string): { layer: number; v: Float32Array; method?: string } => {
      const cv = readControlVector(path);
      if (cv.nEmbd !== ref.nEmbd) {
        throw new ThinkwhenError(
          'VECTOR_WIDTH',
          `${path} has width ${cv.nEmbd}; ${modelPath} has n_embd ${ref.nEmbd}`,
          'import vectors made for this model',
        );
      }
      const layers = [...cv.directions.keys()].sort((a, b) => a - b);
      const layer = values.layer ?? (layers.length === 1 ? layers[0] : undefined);
      if (layer === undefined) throw bad(`${path} holds layers ${layers.join(', ')}`, 'pick one with --layer L');
      const v = cv.directions.get(layer);
      if (!v)
        throw bad(
          `${path} has no direction.${layer} (it holds ${layers.join(', ')})`,
          'pick one of those with --layer',
        );
      if (layer < 1 || layer >= ref.nLayer) {
        throw new ThinkwhenError(
          'LAYER_OUT_OF_RANGE',
          `${path}: direction.${layer} cannot be a llama.cpp control vector of a ${ref.nLayer}-layer model (layers 1..${ref.nLayer - 1})`,
          'pick another layer with --layer',
        );
      }
      return { layer, v, method: cv.method };
    };
    const picked = pairs.map((p) => ({ ...p, ...pick(p.path) }));
    const biasPicked = values.bias ? pick(values.bias) : null;
    const layers = new Set([...picked.map((p) => p.layer), ...(biasPicked ? [biasPicked.layer] : [])]);
    if (layers.size !== 1) {
      throw bad(`the files act at different layers (${[...layers].join(', ')})`, 'a set has one layer: pass --layer L');
    }
    const layer = [...layers][0];
    mkdirSync(out, { recursive: true });
    const manifest: VectorSetManifest = {
      format: 'thinkwhen-vectors/1',
      method: 'imported',
      model: ref,
      layer,
      ...defaultSites(layer, true),
      bias: null,
      categories: [],
      skipped: [],
      sae: null,
      complete: true,
      imported_from: [
        ...(values.bias ? [{ bias: values.bias }] : []),
        ...pairs.map((p) => ({ latent: p.latent, file: p.path })),
      ],
    };
    if (biasPicked && values.bias) {
      writeVectorFile(out, biasFile, manifest, biasPicked.v);
      manifest.bias = {
        file: biasFile,
        norm: vectorNorm(biasPicked.v),
        n_train: 0,
        loss_curve: [],
        source: basename(values.bias),
      };
    }
    for (const p of picked.sort((a, b) => a.latent - b.latent)) {
      writeVectorFile(out, latentFile(p.latent), manifest, p.v);
      manifest.categories.push({
        latent: p.latent,
        title: titles.get(p.latent) ?? basename(p.path, '.gguf'),
        file: latentFile(p.latent),
        norm: vectorNorm(p.v),
        n_train: 0,
        n_heldout: 0,
        loss_curve: [],
        source: basename(p.path),
        ...(p.method ? { source_method: p.method } : {}),
      });
    }
    writeManifest(out, manifest);
    await loadVectorSet(out); // the set must load as written
    if (values.json) console.log(JSON.stringify(manifest));
    else printSet(manifest);
    return 0;
  },
});

const exportVector = defineCommand({
  name: 'vectors export',
  summary: 'one GGUF holding c·(bias + v) of a latent, for llama.cpp’s --control-vector',
  usage: 'DIR --latent K|bias --out FILE [--coef C]',
  description: `Writes one llama.cpp control-vector GGUF holding c·(bias + v_K) of a set (or c·bias with
--latent bias), summed in float32 in the order llama.cpp sums --control-vector-scaled files, so
llama-cli --control-vector FILE steers exactly as the hybrid's hook does.`,
  options: {
    vectors: text({ arg: 'DIR', help: 'the set (or give it as the argument)' }),
    latent: text({ arg: 'K', help: 'a latent id of the set, or bias for the bias alone', required: true }),
    out: text({ arg: 'FILE', help: 'the GGUF to write (must not exist)', required: true }),
    coef: num({ arg: 'C', help: 'the coefficient c', min: -1000, max: 1000, default: 1 }),
  },
  positionals: { min: 0, max: 1, fix: 'pass one vector-set directory' },
  examples: ['thinkwhen vectors export runs/organism/vectors-optimised --latent 9 --coef 4 --out verify.gguf'],
  async run({ values, positionals }) {
    const dir = setDirOf(positionals, values.vectors);
    const { out, coef, latent: which } = values;
    if (which !== 'bias' && !/^\d{1,9}$/.test(which)) {
      throw bad(
        `--latent expects a latent id (an integer ≥ 0) or bias, got '${which}'`,
        'see thinkwhen vectors show DIR',
      );
    }
    if (existsSync(out))
      throw new ThinkwhenError('OUT_EXISTS', `${out} exists; it is not overwritten`, 'pick a new --out');
    const set = await loadVectorSet(dir);
    let v: Float32Array;
    if (which === 'bias') {
      if (!set.bias) throw bad(`${dir} has no bias vector`, 'export a latent instead (thinkwhen vectors show DIR)');
      v = set.bias.map((x) => x * coef);
    } else {
      const latent = Number(which);
      if (!set.vectors.has(latent)) {
        const why = set.skipped.get(latent);
        throw bad(
          `${dir} has no vector for latent ${latent}${why ? ` (${why})` : ''}`,
          `use one of ${[...set.vectors.keys()].join(', ') || 'none: the set has no latent vectors'}`,
        );
      }
      v = steeringDelta(set, latent, coef).vector;
    }
    const slot = controlVectorLayer(set.applyHook);
    writeControlVector(out, { modelHint: set.manifest.model.arch, nEmbd: v.length, directions: new Map([[slot, v]]) });
    console.log(
      `${out}: direction.${slot} = ${coef}·(${which === 'bias' ? 'bias' : `${set.bias ? 'bias + ' : ''}latent ${which}`}), |v| ${vectorNorm(v).toFixed(3)}; llama-cli --control-vector ${out}`,
    );
    return 0;
  },
});

export const command: Command = defineGroup({
  name: 'vectors',
  summary: 'train, evaluate, show, import and export steering vectors',
  description: `Steering vectors for the base model (docs/method.md §2.6, §8): one bias vector and one vector
per taxonomy latent, written as a vector set, a directory with manifest.json and one llama.cpp
control-vector GGUF per vector (docs/vectors.md). train builds a set (the paper's optimised
vectors, or --method diffmean); eval measures what each vector does, with controls; show, import
and export read and write sets. --organism runs train and eval on the shipped model organism.`,
  subcommands: [train, evaluate, show, importSet, exportVector],
  examples: [
    'thinkwhen vectors eval --organism --json',
    'thinkwhen vectors eval --organism --method diffmean --json',
    'thinkwhen vectors show runs/organism/vectors-optimised',
  ],
});
