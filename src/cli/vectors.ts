import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { readControlVector, writeControlVector } from '../gguf/control-vector.ts';
import { metaValue, readGguf } from '../gguf/read.ts';
import { evaluateVectors, type VectorEvalResult } from '../steer/eval.ts';
import { defaultSteerLayer, detectVectorPreset, VECTOR_PRESETS } from '../steer/presets.ts';
import { latentLabel, saeLabeller } from '../steer/sae-label.ts';
import { latentsOf, majorityLabels, readSelectionFile, readSources } from '../steer/sources.ts';
import { PAPER_TRAIN_SETTINGS, readExamples, trainVectorSet, type VectorTrainSettings } from '../steer/train.ts';
import {
  biasFile,
  controlVectorLayer,
  defaultSites,
  latentFile,
  loadVectorSet,
  modelRef,
  steeringDelta,
  type VectorSetManifest,
  vectorNorm,
  writeManifest,
  writeVectorFile,
} from '../steer/vector-set.ts';
import { readTraces } from '../traces/generate.ts';
import { int, oneOf } from './args.ts';
import type { Command } from './command.ts';
import { ORGANISM_COEFS, organismInputs, organismLabel, organismSettings } from './vectors-organism.ts';

const help = `thinkwhen vectors <train|eval|show|import|export> [options]

Steering vectors for the base model (method.md §2.6, §8): one bias vector and one vector per
taxonomy latent, written as a vector set — a directory with manifest.json and one llama.cpp
control-vector GGUF per vector (docs/vectors.md).

train     extract examples from annotated thinking traces exactly as the paper's code does,
          then train the bias vector and, with the bias frozen, one vector per latent (Adam
          lr 1e-2, cosine to 0, ≤ 50 epochs, logits × 0.7, base-10 loss, early stopping on the
          training loss with patience 10). Prints the estimated tokens × epochs and time first.
          Resumable: rerun the same command and it continues at the first unfinished vector.
          --method diffmean: difference of means instead (method.md §8; seconds, no bias).
eval      at held-out prompts of each latent, steer the base model with c·(bias + v) for every
          c of --coefs and label the next sentence; controls: bias only, a random vector of
          the same norm (with and without the bias), unsteered. Prints rate_* per latent.
show      a set's vectors, norms, example counts, loss curves and skipped latents.
import    build a set from control-vector GGUFs of repeng, llama.cpp cvector-generator or
          EasySteer (direction.L acts at blocks.L.hook_resid_post in all three).
export    one GGUF holding c·(bias + v) of a latent, for llama.cpp's --control-vector.

train:
  --model FILE          the base model to steer
  --traces FILE         the thinking model's traces (thinkwhen traces)
  --annotated FILE      their annotation (thinkwhen taxonomy annotate)
  --taxonomy DIR        the taxonomy directory (selection.json: latents and titles)
  --out DIR             the vector set (created; an existing set is resumed, never overwritten)
  --method M            optimised (default) | diffmean
  --thinking marker|generated   the text the annotation was made on (default marker)
  --layer L             steering layer: vectors apply at blocks.L.hook_resid_post
                        (default: the model's --preset, else floor(0.375 · n_layer))
  --same-site           also train at blocks.L.hook_resid_post (default: the paper's
                        resid_pre L, one block earlier than where they apply, method.md A3)
  --steer-rows R        target (the paper: the vector sits on the target tokens, so the
                        first one gets no gradient) | predictors (one row earlier: the
                        rows that predict the target, including the last prompt row)
  --latents LIST        train only these latents (the others are recorded as skipped)
  --preset NAME         ${VECTOR_PRESETS.map((p) => p.name).join(', ')}
                        (layer and minibatch of the paper's pair; detected from the model name)
  --base-prompt TEXT    the base model's prompt with {question} (default: the paper's)
  --n-train N (2048)  --n-heldout N (512)  --n-bias N (2048)
  --min-words N (7)     words a category target needs   --bias-min-words N (20)
  --min-examples N (10) a latent with fewer usable examples gets no vector (recorded)
  --batch N / --batch-bias N    minibatch (default: the preset's, else 2)
  --epochs N (50)  --lr X (0.01)  --seed N (0)
  --threads N           CPU threads
  --json                print the manifest

eval:
  --vectors DIR         the set      --model FILE   the base model it was trained on
  --coefs LIST          coefficients (default 0.25,0.5,1,2)
  --max-tokens N        tokens per continuation (default 48)
  --window W            decision (default: the vector, on every prompt position, picks the
                        first token; the base writes the rest unsteered, as in the hybrid)
                        | all (the vector stays on every generated position too)
  --limit N             held-out prompts per latent (default all)
  --label sae           label sentences with the taxonomy's SAE, read by the thinking model:
  --thinking-model FILE --taxonomy DIR --traces FILE (needed with --label sae)
  --json                the table as JSON (also written to DIR/eval.json)

show DIR [--json]
import --model FILE --out DIR [--layer L] [--bias FILE] LATENT=FILE... [--title LATENT=TEXT]
export DIR --latent K --out FILE [--coef C]   (--latent bias: the bias alone)

The model organism (src/organism/models; workspace --dir, default runs/organism):
  vectors train --organism [--method M]   taxonomy chain if missing, annotation, training
  vectors eval --organism [--method M] [--json]
                        trains when needed, then labels each next sentence with the
                        organism's parser. Organism defaults (docs/vectors.md): layer 1,
                        min words 4, 32 train / 32 held-out / 16 bias examples, batch 4,
                        5 epochs, lr 0.1, --steer-rows predictors, coefficients 1,2,4,8.
                        --models DIR another base.gguf + thinking.gguf pair;
                        --problems N held-out problems for a new taxonomy workspace.

Examples:
  thinkwhen vectors train --model base.gguf --traces runs/traces.jsonl \\
      --annotated runs/annotated.jsonl --taxonomy runs/tax --out runs/vectors
  thinkwhen vectors eval --vectors runs/vectors --model base.gguf --label sae \\
      --thinking-model thinking.gguf --taxonomy runs/tax --traces runs/traces.jsonl
  thinkwhen vectors eval --organism --json
  thinkwhen vectors eval --organism --method diffmean --json
`;

const OPTIONS = {
  model: { type: 'string' },
  traces: { type: 'string' },
  annotated: { type: 'string' },
  taxonomy: { type: 'string' },
  out: { type: 'string' },
  method: { type: 'string' },
  thinking: { type: 'string' },
  layer: { type: 'string' },
  'same-site': { type: 'boolean' },
  'steer-rows': { type: 'string' },
  latents: { type: 'string' },
  preset: { type: 'string' },
  'base-prompt': { type: 'string' },
  'n-train': { type: 'string' },
  'n-heldout': { type: 'string' },
  'n-bias': { type: 'string' },
  'min-words': { type: 'string' },
  'bias-min-words': { type: 'string' },
  'min-examples': { type: 'string' },
  batch: { type: 'string' },
  'batch-bias': { type: 'string' },
  epochs: { type: 'string' },
  lr: { type: 'string' },
  seed: { type: 'string' },
  threads: { type: 'string' },
  json: { type: 'boolean' },
  vectors: { type: 'string' },
  coefs: { type: 'string' },
  'max-tokens': { type: 'string' },
  window: { type: 'string' },
  limit: { type: 'string' },
  label: { type: 'string' },
  'thinking-model': { type: 'string' },
  bias: { type: 'string' },
  title: { type: 'string', multiple: true },
  latent: { type: 'string' },
  coef: { type: 'string' },
  organism: { type: 'boolean' },
  dir: { type: 'string' },
  models: { type: 'string' },
  problems: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

export const command: Command = {
  name: 'vectors',
  summary: 'train, evaluate, show, import and export steering vectors',
  help: () => help,
  async run(argv) {
    const [sub, ...rest] = argv;
    const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true, strict: true });
    if (sub === 'train') return train(values);
    if (sub === 'eval') return evaluate(values);
    if (sub === 'show') return show(values, positionals);
    if (sub === 'import') return importSet(values, positionals);
    if (sub === 'export') return exportVector(values, positionals);
    throw new ThinkwhenError(
      'BAD_ARGUMENT',
      `unknown subcommand '${sub ?? ''}'`,
      'use train, eval, show, import or export (see `thinkwhen vectors --help`)',
    );
  },
};

const progress = (line: string) => console.error(line);

function need(v: string | undefined, name: string, what: string): string {
  if (!v) throw new ThinkwhenError('BAD_ARGUMENT', `--${name} is required`, what);
  return v;
}

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x <= 0)
    throw new ThinkwhenError('BAD_ARGUMENT', `--${name} expects a number > 0, got '${v}'`);
  return x;
}

function coefsOf(v: string | undefined): number[] {
  if (v === undefined) return [0.25, 0.5, 1, 2];
  return v.split(',').map((x) => {
    const c = Number(x.trim());
    if (!Number.isFinite(c))
      throw new ThinkwhenError('BAD_ARGUMENT', `--coefs expects numbers separated by commas, got '${v}'`);
    return c;
  });
}

const methodOf = (values: Values) =>
  (oneOf(values.method, 'method', ['optimised', 'diffmean'] as const) ?? 'optimised') as VectorTrainSettings['method'];

/** Command-line overrides of the settings. */
function withOverrides(s: VectorTrainSettings, values: Values): VectorTrainSettings {
  const batch = int(values.batch, 'batch', 1);
  return {
    ...s,
    layer: int(values.layer, 'layer', 1) ?? s.layer,
    same_site: values['same-site'] ?? s.same_site,
    base_prompt: values['base-prompt'] ?? s.base_prompt,
    n_train: int(values['n-train'], 'n-train', 1) ?? s.n_train,
    n_heldout: int(values['n-heldout'], 'n-heldout', 0) ?? s.n_heldout,
    n_bias: int(values['n-bias'], 'n-bias', 0) ?? s.n_bias,
    min_words: int(values['min-words'], 'min-words', 0) ?? s.min_words,
    bias_min_words: int(values['bias-min-words'], 'bias-min-words', 0) ?? s.bias_min_words,
    min_examples: int(values['min-examples'], 'min-examples', 1) ?? s.min_examples,
    batch_category: batch ?? s.batch_category,
    batch_bias: int(values['batch-bias'], 'batch-bias', 1) ?? batch ?? s.batch_bias,
    epochs: int(values.epochs, 'epochs', 1) ?? s.epochs,
    lr: num(values.lr, 'lr') ?? s.lr,
    seed: int(values.seed, 'seed', 0) ?? s.seed,
    steer_rows: oneOf(values['steer-rows'], 'steer-rows', ['target', 'predictors'] as const) ?? s.steer_rows,
    latents:
      values.latents === undefined ? s.latents : values.latents.split(',').map((x) => int(x.trim(), 'latents', 0)!),
  };
}

const fmtEpoch = (what: string, e: { epoch: number; trainLoss: number; vectorNorm: number }, epochs: number) => {
  const line = `vectors train: ${what} epoch ${e.epoch + 1}/${epochs} loss ${e.trainLoss.toFixed(4)} |v| ${e.vectorNorm.toFixed(2)}`;
  if (process.stderr.isTTY) process.stderr.write(`\r${line.padEnd(78)}${e.epoch + 1 === epochs ? '\n' : ''}`);
  else console.error(line);
};

function organismDir(values: Values): string {
  return values.dir ?? join('runs', 'organism');
}

async function trainOrganism(values: Values): Promise<{ out: string; manifest: VectorSetManifest; base: string }> {
  const threads = int(values.threads, 'threads', 1);
  const dir = organismDir(values);
  const inputs = await organismInputs({
    dir,
    models: values.models,
    problems: int(values.problems, 'problems', 1),
    threads,
    onProgress: progress,
  });
  const method = methodOf(values);
  const out = values.out ?? join(dir, `vectors-${method}`);
  const t0 = performance.now();
  const manifest = await trainVectorSet(
    {
      modelPath: inputs.base,
      sources: inputs.sources,
      latents: inputs.latents,
      sae: inputs.sae,
      out,
      settings: withOverrides(organismSettings(method), values),
    },
    { threads, onProgress: progress, onEpoch: fmtEpoch },
  );
  progress(`vectors train: ${out} ready (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return { out, manifest, base: inputs.base };
}

async function train(values: Values): Promise<number> {
  if (values.organism) {
    const { manifest } = await trainOrganism(values);
    if (values.json) console.log(JSON.stringify(manifest));
    else printSet(manifest);
    return 0;
  }
  const modelPath = need(values.model, 'model', 'pass the base model GGUF');
  const taxonomy = need(values.taxonomy, 'taxonomy', 'pass the taxonomy directory (thinkwhen taxonomy score --dir)');
  const tracesPath = need(values.traces, 'traces', 'pass the thinking traces (thinkwhen traces --out)');
  const annotated = need(
    values.annotated,
    'annotated',
    'pass the annotated traces (thinkwhen taxonomy annotate --out)',
  );
  const out = need(values.out, 'out', 'name the vector-set directory to write');
  const thinking = oneOf(values.thinking, 'thinking', ['marker', 'generated'] as const) ?? 'marker';
  const selection = readSelectionFile(taxonomy);
  const ref = await modelRef(modelPath);
  const preset = values.preset
    ? VECTOR_PRESETS.find((p) => p.name === values.preset)
    : detectVectorPreset({
        name: String(metaValue(readGguf(modelPath), 'general.name') ?? ''),
        path: modelPath,
        nLayer: ref.nLayer,
      });
  if (values.preset && !preset) {
    throw new ThinkwhenError(
      'BAD_ARGUMENT',
      `unknown --preset ${values.preset}`,
      `use one of ${VECTOR_PRESETS.map((p) => p.name).join(', ')}`,
    );
  }
  if (preset)
    progress(
      `vectors train: preset ${preset.name} (layer ${preset.layer}, minibatch ${preset.batchBias}/${preset.batchCategory})`,
    );
  const base: VectorTrainSettings = {
    ...PAPER_TRAIN_SETTINGS,
    method: methodOf(values),
    layer: preset?.layer ?? defaultSteerLayer(ref.nLayer),
    batch_bias: preset?.batchBias ?? PAPER_TRAIN_SETTINGS.batch_bias,
    batch_category: preset?.batchCategory ?? PAPER_TRAIN_SETTINGS.batch_category,
  };
  const manifest = await trainVectorSet(
    {
      modelPath,
      sources: await readSources(tracesPath, annotated, thinking),
      latents: latentsOf(selection),
      sae: {
        taxonomy,
        sae: selection.sae,
        layer: selection.layer,
        k: selection.k,
        traces: tracesPath,
        annotated,
        thinking,
      },
      out,
      settings: withOverrides(base, values),
    },
    { threads: int(values.threads, 'threads', 1), onProgress: progress, onEpoch: fmtEpoch },
  );
  if (values.json) console.log(JSON.stringify(manifest));
  else printSet(manifest);
  return 0;
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

/** The eval table: for --json the must-show fields first, then the sweep and samples. */
function evalJson(r: VectorEvalResult, m: VectorSetManifest) {
  const seconds = [m.bias, ...m.categories].reduce((t, e) => t + Number(e?.seconds ?? 0), 0);
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

function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

async function evaluate(values: Values): Promise<number> {
  const threads = int(values.threads, 'threads', 1);
  const coefs = values.coefs === undefined && values.organism ? ORGANISM_COEFS : coefsOf(values.coefs);
  const maxTokens = int(values['max-tokens'], 'max-tokens', 2) ?? (values.organism ? 24 : undefined);
  const limit = int(values.limit, 'limit', 1);
  let dir: string;
  let modelPath: string;
  let targetLabel: (latent: number) => string | null;
  let label: Parameters<typeof evaluateVectors>[0]['label'];
  let thinkingModel: Model | null = null;
  if (values.organism) {
    const trained = await trainOrganism(values);
    dir = trained.out;
    modelPath = trained.base;
    const inputs = await organismInputs({ dir: organismDir(values), models: values.models, threads });
    const majority = majorityLabels(inputs.sources, organismLabel);
    targetLabel = (latent) => majority.get(latent) ?? null;
    label = async (items) => items.map((i) => organismLabel(i.sentence));
  } else {
    dir = need(values.vectors, 'vectors', 'pass the vector-set directory');
    modelPath = need(values.model, 'model', 'pass the base model the vectors were trained on');
    if (values.label !== 'sae') {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        'real models have no ground truth: pass --label sae (with --thinking-model, --taxonomy, --traces)',
        'or use --organism',
      );
    }
    const taxonomy = need(values.taxonomy, 'taxonomy', 'pass the taxonomy directory');
    const selection = readSelectionFile(taxonomy);
    const m = (await loadVectorSet(dir)).manifest;
    const settings = m.settings as VectorTrainSettings | undefined;
    thinkingModel = await Model.load(need(values['thinking-model'], 'thinking-model', 'pass the thinking model'));
    label = await saeLabeller({
      thinkingModel,
      sae: selection.sae,
      layer: selection.layer,
      traces: (await readTraces(need(values.traces, 'traces', 'pass the thinking traces'))).records,
      basePrompt: settings?.base_prompt ?? PAPER_TRAIN_SETTINGS.base_prompt,
      thinking: oneOf(values.thinking, 'thinking', ['marker', 'generated'] as const) ?? 'marker',
      threads,
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
      coefs,
      maxTokens,
      limit,
      window: oneOf(values.window, 'window', ['decision', 'all'] as const),
      // The organism writes one sentence per line (at most 15 tokens in 200 traces of its thinking model).
      ...(values.organism ? { stop: ['\n'] } : {}),
      addSpecial: settings?.add_special ?? true,
      threads,
      onProgress: progress,
    });
    const out = evalJson(r, set.manifest);
    writeJsonAtomic(join(dir, 'eval.json'), out);
    if (values.json) console.log(JSON.stringify(out));
    else printEval(r);
  } finally {
    model.free();
    thinkingModel?.free();
  }
  return 0;
}

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

async function show(values: Values, positionals: string[]): Promise<number> {
  const dir = positionals[0] ?? need(values.vectors, 'vectors', 'pass the vector-set directory');
  const set = await loadVectorSet(dir);
  if (values.json) console.log(JSON.stringify(set.manifest));
  else printSet(set.manifest);
  return 0;
}

async function importSet(values: Values, positionals: string[]): Promise<number> {
  const modelPath = need(values.model, 'model', 'pass the model the vectors are for');
  const out = need(values.out, 'out', 'name the vector-set directory to write');
  if (existsSync(out) && readdirSync(out).length > 0) {
    throw new ThinkwhenError(
      'OUT_NOT_EMPTY',
      `${out} exists and is not empty; nothing is overwritten`,
      'pick a new --out',
    );
  }
  const pairs = positionals.map((p) => {
    const m = /^(\d+)=(.+)$/.exec(p);
    if (!m) throw new ThinkwhenError('BAD_ARGUMENT', `'${p}' is not LATENT=FILE`, 'e.g. 3=verify.gguf');
    return { latent: Number(m[1]), path: m[2] };
  });
  if (pairs.length === 0 && !values.bias) {
    throw new ThinkwhenError('BAD_ARGUMENT', 'nothing to import', 'pass LATENT=FILE arguments and/or --bias FILE');
  }
  const titles = new Map(
    (values.title ?? []).map((t) => {
      const m = /^(\d+)=(.*)$/.exec(t);
      if (!m) throw new ThinkwhenError('BAD_ARGUMENT', `--title '${t}' is not LATENT=TEXT`);
      return [Number(m[1]), m[2]] as const;
    }),
  );
  const ref = await modelRef(modelPath);
  const wanted = int(values.layer, 'layer', 1);
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
    const layer = wanted ?? (layers.length === 1 ? layers[0] : undefined);
    if (layer === undefined) {
      throw new ThinkwhenError('BAD_ARGUMENT', `${path} holds layers ${layers.join(', ')}`, 'pick one with --layer L');
    }
    const v = cv.directions.get(layer);
    if (!v)
      throw new ThinkwhenError('BAD_ARGUMENT', `${path} has no direction.${layer} (it holds ${layers.join(', ')})`);
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
    throw new ThinkwhenError(
      'BAD_ARGUMENT',
      `the files act at different layers (${[...layers].join(', ')})`,
      'a set has one layer: pass --layer L',
    );
  }
  const seen = new Set<number>();
  for (const p of picked) {
    if (seen.has(p.latent)) throw new ThinkwhenError('BAD_ARGUMENT', `latent ${p.latent} is given twice`);
    seen.add(p.latent);
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
  if (biasPicked) {
    writeVectorFile(out, biasFile, manifest, biasPicked.v);
    manifest.bias = {
      file: biasFile,
      norm: vectorNorm(biasPicked.v),
      n_train: 0,
      loss_curve: [],
      source: basename(values.bias!),
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
}

async function exportVector(values: Values, positionals: string[]): Promise<number> {
  const dir = positionals[0] ?? need(values.vectors, 'vectors', 'pass the vector-set directory');
  const out = need(values.out, 'out', 'name the GGUF file to write');
  const which = need(values.latent, 'latent', "pass a latent id, or 'bias'");
  if (existsSync(out))
    throw new ThinkwhenError('OUT_EXISTS', `${out} exists; it is not overwritten`, 'pick a new --out');
  const coef = values.coef === undefined ? 1 : Number(values.coef);
  if (!Number.isFinite(coef)) throw new ThinkwhenError('BAD_ARGUMENT', `--coef expects a number, got '${values.coef}'`);
  const set = await loadVectorSet(dir);
  let v: Float32Array;
  if (which === 'bias') {
    if (!set.bias) throw new ThinkwhenError('BAD_ARGUMENT', `${dir} has no bias vector`);
    v = set.bias.map((x) => x * coef);
  } else {
    const latent = int(which, 'latent', 0)!;
    if (!set.vectors.has(latent)) {
      const why = set.skipped.get(latent);
      throw new ThinkwhenError('BAD_ARGUMENT', `${dir} has no vector for latent ${latent}${why ? ` (${why})` : ''}`);
    }
    v = steeringDelta(set, latent, coef).vector;
  }
  const slot = controlVectorLayer(set.applyHook);
  writeControlVector(out, { modelHint: set.manifest.model.arch, nEmbd: v.length, directions: new Map([[slot, v]]) });
  console.log(
    `${out}: direction.${slot} = ${coef}·(${which === 'bias' ? 'bias' : `${set.bias ? 'bias + ' : ''}latent ${which}`}), |v| ${vectorNorm(v).toFixed(3)}; llama-cli --control-vector ${out}`,
  );
  return 0;
}
