import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { readGguf } from '../gguf/read.ts';
import { LlmClient } from '../llm/client.ts';
import { runOrganismChain } from '../organism/taxonomy.ts';
import { annotateTraces } from '../taxonomy/annotate.ts';
import { evaluateGrid, type Grid, type LlmLabelling, readGrid } from '../taxonomy/evaluate.ts';
import { EVALUATOR_SETTINGS, TITLE_SETTINGS } from '../taxonomy/labelling.ts';
import { readSelection, SELECTION_METRICS, type Selection, writeSelection } from '../taxonomy/selection.ts';
import { saeBase, type TrainOptions, trainTaxonomyGrid } from '../taxonomy/train-grid.ts';
import { readTraces } from '../traces/generate.ts';
import type { Command } from './command.ts';
import { choice, defineCommand, defineGroup, flag, int, ints, text, threads, type Values } from './options.ts';

const progress = (line: string) => console.error(line);

// ---------------------------------------------------------------------------------------------
// Option tables. Options shared by several subcommands are declared once here.

const dir = text({ arg: 'DIR', help: 'taxonomy directory', required: true });
const json = flag('machine-readable output');
const activations = text({
  arg: 'DIR',
  help: 'activation store from `thinkwhen activations` (default: the one DIR/taxonomy.json names)',
});
const kList = ints({
  arg: 'LIST',
  help: 'latent counts K (default 5,10,...,50); the SAE keeps the top 3 latents, so K ≥ 3',
  min: 3,
  max: 4096,
});
const seed = int({ help: 'SAE seed (default 0)', min: 0, max: 2 ** 32 - 1 });
const TRAIN_OPTIONS = {
  dir,
  activations,
  json,
  layers: ints({ arg: 'LIST', help: 'captured layers to use (default: all in the store)', min: 0, max: 4095 }),
  k: kList,
  seed,
  'stability-seeds': ints({
    arg: 'LIST',
    help: 'extra seeds for the stability metric, or none (default none)',
    min: 0,
    max: 2 ** 32 - 1,
    empty: 'none',
  }),
  'max-epochs': int({ help: 'SAE training epochs at most (default 300)', min: 1, max: 100_000 }),
  patience: int({ help: 'epochs without improvement before stopping (default 10)', min: 1, max: 100_000 }),
  threads: threads('SAE training threads (default 2)'),
  model: text({ arg: 'FILE', help: "check the store's width against this model (GGUF)" }),
};

const SCORE_OPTIONS = {
  ...TRAIN_OPTIONS,
  dir: text({ arg: 'DIR', help: 'taxonomy directory (required, except with --organism: default runs/organism)' }),
  layers: text({
    arg: 'LIST',
    help: 'captured layers to use (default: all in the store); with --organism a layer spec as for `thinkwhen activations --layers`',
  }),
  select: choice({
    arg: 'METRIC',
    help: 'selection metric (default: final with an LLM, else offline; ari/nmi/purity are oracles that use the ground truth)',
    // readout needs both models of a pair: the organism measures it when it builds its artifacts
    choices: SELECTION_METRICS.filter((m) => m !== 'readout'),
  }),
  'llm-base-url': text({ arg: 'URL', help: 'OpenAI-compatible endpoint (default $OPENAI_BASE_URL)' }),
  'llm-api-key': text({ arg: 'KEY', help: 'API key (default $OPENAI_API_KEY)' }),
  'llm-model': text({
    arg: 'NAME',
    help: "model for titles and grading (default: the paper's o4-mini titles, gpt-4.1-mini grading)",
  }),
  'title-model': text({ arg: 'NAME', help: 'model for titles only' }),
  'eval-model': text({ arg: 'NAME', help: 'model for grading only' }),
  repetitions: int({ help: 'category sets per (layer, K) (default 5)', min: 1, max: 100 }),
  'llm-retries': int({ help: 'retries per call (default 6)', min: 0, max: 100 }),
  'llm-concurrency': int({ help: 'requests in flight (default 8)', min: 1, max: 256 }),
  organism: flag(
    'run the whole chain on the model organism (traces of its thinking model on held-out problems, activations, SAEs, selection) and report ARI/NMI/purity against the true sentence types; --dir is its workspace (reruns resume)',
  ),
  'organism-model': text({ arg: 'FILE', help: 'thinking model (default: src/organism/models/thinking.gguf)' }),
  problems: int({ help: 'held-out problems (default 200)', min: 1, max: 100_000 }),
};

const pickLayer = int({ arg: 'L', help: 'a trained layer (with --k) instead of the selection', min: 0, max: 4095 });
const pickK = int({ arg: 'K', help: 'a trained K (with --layer) instead of the selection', min: 3, max: 4096 });

const SHOW_OPTIONS = {
  dir,
  json,
  layer: pickLayer,
  k: pickK,
  examples: int({ help: 'examples per category', min: 0, max: 1000, default: 3 }),
};

const ANNOTATE_OPTIONS = {
  dir,
  model: text({ arg: 'FILE', help: 'the thinking model (GGUF)', required: true }),
  traces: text({ arg: 'FILE', help: 'trace JSONL to annotate', required: true }),
  out: text({
    arg: 'FILE',
    help: 'annotated JSONL to write (an existing file must be an earlier annotation)',
    required: true,
  }),
  layer: pickLayer,
  k: pickK,
  'sae-input': choice({
    help: "raw sentence means (the paper's annotation) or centred + normalised as in training (ambiguity A2)",
    choices: ['raw', 'centred'],
    default: 'raw',
  }),
  context: choice({ help: 'as for `thinkwhen activations`', choices: ['full', 'generated'] }),
  thinking: choice({ help: 'as for `thinkwhen activations`', choices: ['marker', 'generated'] }),
  threads: threads(),
};

// ---------------------------------------------------------------------------------------------

interface TaxonomyConfig {
  activations: string;
}

async function activationsFor(given: string | undefined, dir: string): Promise<string> {
  if (given) return given;
  const path = join(dir, 'taxonomy.json');
  if (existsSync(path)) return (JSON.parse(await readFile(path, 'utf8')) as TaxonomyConfig).activations;
  throw new ThinkwhenError(
    'BAD_ARGUMENT',
    `--activations is required (${dir} has no taxonomy.json naming a store)`,
    'pass --activations DIR (the output of thinkwhen activations)',
  );
}

/** The residual width of --model, read from its GGUF header (no weights loaded). */
function expectedDim(model: string | undefined): number | undefined {
  if (!model) return undefined;
  if (!existsSync(model)) {
    throw new ThinkwhenError('MODEL_NOT_FOUND', `model file not found: ${model}`, 'check the --model path');
  }
  const gguf = readGguf(model);
  const arch = String(gguf.metadata.get('general.architecture')?.value ?? '');
  const dim = Number(gguf.metadata.get(`${arch}.embedding_length`)?.value);
  if (!Number.isInteger(dim) || dim <= 0) {
    throw new ThinkwhenError('NOT_A_MODEL', `${model} has no ${arch}.embedding_length`, 'pass a model GGUF');
  }
  return dim;
}

function trainOptions(
  values: Omit<Values<typeof TRAIN_OPTIONS>, 'layers' | 'dir'> & { layers: number[] | undefined },
  dim: number | undefined,
): TrainOptions {
  return {
    layers: values.layers,
    ks: values.k,
    seed: values.seed,
    stabilitySeeds: values['stability-seeds'],
    maxEpochs: values['max-epochs'],
    patience: values.patience,
    threads: values.threads,
    expectedDim: dim,
    onProgress: progress,
  };
}

function llmFrom(values: Values<typeof SCORE_OPTIONS>, dir: string): LlmLabelling | undefined {
  const wanted = values['llm-base-url'] || values['llm-model'] || values['title-model'] || values['eval-model'];
  if (!wanted) return undefined;
  const client = new LlmClient({
    baseUrl: values['llm-base-url'],
    apiKey: values['llm-api-key'],
    cacheDir: join(dir, 'llm-cache'),
    maxRetries: values['llm-retries'],
    concurrency: values['llm-concurrency'],
  });
  const titleModel = values['title-model'] ?? values['llm-model'];
  const evalModel = values['eval-model'] ?? values['llm-model'];
  return {
    client,
    titles: titleModel ? { model: titleModel, params: { temperature: 1.0 } } : TITLE_SETTINGS,
    evaluator: evalModel ? { ...EVALUATOR_SETTINGS, model: evalModel } : EVALUATOR_SETTINGS,
    repetitions: values.repetitions,
    seed: values.seed,
  };
}

const fmt = (x: number | null | undefined) => (x === undefined || x === null ? '-' : x.toFixed(3));

function gridTable(grid: Grid, selection: Selection): string {
  const llm = grid.entries.some((e) => e.metrics.finalScore !== undefined);
  const head = [
    'layer',
    'K',
    'var.expl',
    'c.orth',
    'balance',
    'stability',
    'lex.F1',
    'lex.comp',
    'lex.orth',
    'offline',
  ];
  if (llm) head.push('F1', 'complete', 's.orth', 'final');
  if (grid.groundTruth) head.push('ARI', 'NMI', 'purity');
  const rows = grid.entries.map((e) => {
    const m = e.metrics;
    const r = [String(e.layer), String(e.k), fmt(m.varianceExplained), fmt(m.centroidOrthogonality), fmt(m.balance)];
    r.push(fmt(m.stability), fmt(m.lexicalF1), fmt(m.lexicalCompleteness), fmt(m.lexicalOrthogonality));
    r.push(fmt(m.offlineScore));
    if (llm) r.push(fmt(m.avgF1), fmt(m.avgConfidence), fmt(m.semanticOrthogonality), fmt(m.finalScore));
    if (grid.groundTruth) r.push(fmt(m.ari), fmt(m.nmi), fmt(m.purity));
    const mark = e.layer === selection.layer && e.k === selection.k ? ' <- selected' : '';
    return r.map((c) => c.padStart(9)).join(' ') + mark;
  });
  return [head.map((c) => c.padStart(9)).join(' '), ...rows].join('\n');
}

/** --layer and --k pick a trained entry together. */
function picked(values: { layer: number | undefined; k: number | undefined }): { layer: number; k: number } | null {
  if (values.layer === undefined && values.k === undefined) return null;
  if (values.layer === undefined || values.k === undefined) {
    throw new ThinkwhenError('BAD_ARGUMENT', '--layer and --k go together', 'pass both, or neither for the selection');
  }
  return { layer: values.layer, k: values.k };
}

async function gridEntry(dir: string, want: { layer: number; k: number }) {
  const grid = await readGrid(dir);
  const e = grid.entries.find((x) => x.layer === want.layer && x.k === want.k);
  if (!e) {
    throw new ThinkwhenError(
      'NO_ENTRY',
      `${dir} has no scored entry for layer ${want.layer}, K=${want.k} (scored: ${grid.entries.map((x) => `${x.layer}/${x.k}`).join(', ')})`,
      'pass --layer and --k of a scored entry',
    );
  }
  return e;
}

/**
 * Refuses to overwrite `path` unless it is empty or its first line is an annotation record: --out
 * must never wipe a file someone else wrote (the traces, say).
 */
function claimAnnotationFile(path: string): void {
  if (!existsSync(path)) return;
  if (!statSync(path).isFile()) {
    throw new ThinkwhenError('NOT_OUR_FILE', `${path} is not a file`, 'give --out a file path');
  }
  const first = readFileSync(path, 'utf8').split('\n', 1)[0];
  let ours = first === '';
  try {
    const x = JSON.parse(first) as Record<string, unknown>;
    ours = typeof x.question_id === 'string' && typeof x.annotated_thinking === 'string';
  } catch {}
  if (!ours) {
    throw new ThinkwhenError(
      'NOT_OUR_FILE',
      `${path} exists and is not an annotation written by thinkwhen taxonomy annotate; it was left untouched`,
      'write to a new --out file, or move that file away',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Subcommands

const train = defineCommand({
  name: 'taxonomy train',
  summary: 'train a Top-K SAE for every layer × K of an activation store (resumable)',
  usage: '--activations DIR --dir DIR [options]',
  description: `Trains the paper's TinySAE (top-3 of K latents, no ReLU, FVU loss, Adam lr
2e-4/sqrt(K/2^14), batch 512, ≤300 epochs, patience 10) for every layer × K, on
centred + L2-normalised sentence means. Saved as DIR/sae/sae_layer{L}_k{K}.safetensors
+ .json; trained ones are kept, so a rerun resumes. --stability-seeds 1 also trains a
second seed per (layer, K) for the stability metric.`,
  options: TRAIN_OPTIONS,
  examples: ['thinkwhen taxonomy train --activations runs/acts --dir runs/tax'],
  async run({ values }) {
    const activations = await activationsFor(values.activations, values.dir);
    await mkdir(values.dir, { recursive: true });
    await writeFile(join(values.dir, 'taxonomy.json'), `${JSON.stringify({ activations }, null, 2)}\n`);
    const trained = await trainTaxonomyGrid(activations, values.dir, trainOptions(values, expectedDim(values.model)));
    if (values.json) console.log(JSON.stringify(trained));
    else console.log(`${trained.length} SAEs (layers × K) in ${join(values.dir, 'sae')}`);
    return 0;
  },
});

const layerList = TRAIN_OPTIONS.layers;

const score = defineCommand({
  name: 'taxonomy score',
  summary: 'titles, metrics and the selection for every (layer, K); trains what is missing',
  usage: '--dir DIR [--activations DIR] [options] | --organism [--dir DIR]',
  description: `Titles and metrics for every (layer, K), then the selection (DIR/grid.json,
DIR/selection.json). Trains what is missing first.

Offline (default): titles from each category's most distinctive words; the paper's
three autograder metrics with a bag-of-words naive-Bayes reader in place of the LLM
(F1, completeness, orthogonality) and their mean, the offline score; also variance
explained, centroid orthogonality, cluster balance and, with --stability-seeds, seed
stability (ARI between two seeds' labels).
With an LLM (--llm-base-url/--llm-model, any OpenAI-compatible endpoint; every call
cached in DIR/llm-cache): the paper's titles (5 repetitions) and autograders: F1,
completeness, semantic orthogonality and final score = their mean.
With ground-truth sentence types in the store: ARI, NMI, purity.`,
  options: SCORE_OPTIONS,
  examples: [
    'thinkwhen taxonomy score --dir runs/tax',
    'thinkwhen taxonomy score --dir runs/tax --llm-base-url http://localhost:8080/v1 --llm-model qwen2.5-7b',
    'thinkwhen taxonomy score --organism --json',
  ],
  async run({ values }) {
    const { select } = values;
    if (values.organism) {
      const dir = values.dir ?? join('runs', 'organism');
      const llm = llmFrom(values, join(dir, 'taxonomy'));
      const r = await runOrganismChain({
        dir,
        model: values['organism-model'],
        problems: values.problems,
        layers: values.layers,
        ks: values.k,
        seed: values.seed,
        stabilitySeeds: values['stability-seeds'],
        threads: values.threads,
        select,
        llm,
        onProgress: progress,
      });
      console.error(gridTable(r.grid, r.selection));
      console.error(
        `organism: ${r.traces} traces, ${r.sentences} sentences (${r.labelledSentences} with a known type); ` +
          `selected layer ${r.layer}, K=${r.k} by ${r.selection.metric}; best ARI in the grid ${r.bestAri.ari.toFixed(3)} at layer ${r.bestAri.layer}, K=${r.bestAri.k}`,
      );
      // the JSON line is the organism's stored taxonomy score (src/organism/models/taxonomy.json)
      const out = {
        layer: r.layer,
        k: r.k,
        ari: r.ari,
        nmi: r.nmi,
        purity: r.purity,
        problems: r.problems,
        thinking: r.thinking,
        command: `thinkwhen taxonomy score --organism --json${values.problems ? ` --problems ${values.problems}` : ''}`,
      };
      if (values.json) console.log(JSON.stringify(out));
      else
        console.log(
          `layer ${r.layer}, K=${r.k}: ARI ${r.ari.toFixed(3)}, NMI ${r.nmi.toFixed(3)}, purity ${r.purity.toFixed(3)}`,
        );
      return 0;
    }
    if (!values.dir) {
      throw new ThinkwhenError('BAD_ARGUMENT', '--dir is required', 'pass --dir DIR: the taxonomy directory');
    }
    const dir = values.dir;
    const layers = layerList.parse(values.layers, { flag: '--layers', warn: progress });
    const activations = await activationsFor(values.activations, dir);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'taxonomy.json'), `${JSON.stringify({ activations }, null, 2)}\n`);
    const dim = expectedDim(values.model);
    const trained = await trainTaxonomyGrid(activations, dir, trainOptions({ ...values, layers }, dim));
    const llm = llmFrom(values, dir);
    const grid = await evaluateGrid(activations, dir, trained, { llm, expectedDim: dim, onProgress: progress });
    const selection = await writeSelection(dir, grid, select ?? (llm ? 'final' : 'offline'));
    if (values.json) {
      console.log(
        JSON.stringify({ layer: selection.layer, k: selection.k, metric: selection.metric, ...selection.metrics }),
      );
    } else {
      console.log(gridTable(grid, selection));
      console.log(
        `selected layer ${selection.layer}, K=${selection.k} by ${selection.metric}; see: thinkwhen taxonomy show --dir ${dir}`,
      );
    }
    return 0;
  },
});

const show = defineCommand({
  name: 'taxonomy show',
  summary: 'the selected taxonomy: every category with its title, size and examples',
  usage: '--dir DIR [--layer L --k K] [--examples N] [--json]',
  description:
    'Prints the selected taxonomy (or any trained --layer/--k): every category with its title, size and examples.',
  options: SHOW_OPTIONS,
  examples: ['thinkwhen taxonomy show --dir runs/tax', 'thinkwhen taxonomy show --dir runs/tax --layer 12 --k 20'],
  async run({ values }) {
    const dir = values.dir;
    const want = picked(values);
    const sel: Pick<Selection, 'layer' | 'k' | 'categories' | 'metrics' | 'labelSource'> & { metric?: string } = want
      ? await gridEntry(dir, want)
      : await readSelection(dir);
    if (values.json) {
      console.log(JSON.stringify(sel));
      return 0;
    }
    const n = values.examples;
    const lines = [
      `Taxonomy: layer ${sel.layer}, K=${sel.k}${sel.metric ? ` (selected by ${sel.metric})` : ''}; ${sel.labelSource} titles`,
      '',
    ];
    for (const c of sel.categories) {
      const truth =
        c.majorityType !== undefined
          ? `; ground truth: ${c.majorityType} ${(100 * (c.majorityShare ?? 0)).toFixed(0)}%`
          : '';
      lines.push(`idx${c.id}  ${c.title}  (${c.size} sentences${truth})`);
      if (sel.labelSource === 'llm') lines.push(`      ${c.description}`);
      for (const ex of c.examples.slice(0, n)) lines.push(`      - ${ex}`);
    }
    console.log(lines.join('\n'));
    return 0;
  },
});

const annotate = defineCommand({
  name: 'taxonomy annotate',
  summary: 'label every sentence of every trace with the selected SAE (needs the model)',
  usage: '--dir DIR --model FILE --traces FILE --out FILE.jsonl [options]',
  description: `Labels every sentence of every trace with the selected SAE, in the paper's format
["{z}:idx{k}"]sentence["end-section"]. Needs the thinking model (for the activations).`,
  options: ANNOTATE_OPTIONS,
  examples: [
    'thinkwhen taxonomy annotate --dir runs/tax --model thinking.gguf --traces runs/traces.jsonl --out runs/annotated.jsonl',
  ],
  async run({ values }) {
    const dir = values.dir;
    claimAnnotationFile(values.out);
    let selection: Selection = await readSelection(dir);
    const want = picked(values);
    if (want) {
      const e = await gridEntry(dir, want);
      selection = { ...selection, layer: e.layer, k: e.k, sae: saeBase(dir, e.layer, e.k), categories: e.categories };
    }
    const { records } = await readTraces(values.traces);
    const model = await Model.load(values.model);
    try {
      const annotated = await annotateTraces(model, records, selection, {
        saeInput: values['sae-input'],
        context: values.context,
        thinking: values.thinking,
        threads: values.threads,
        onProgress: progress,
      });
      // Written whole to a temporary file first: a crash never leaves a half-written --out.
      await mkdir(dirname(values.out), { recursive: true });
      const tmp = `${values.out}.${process.pid}.tmp`;
      await writeFile(tmp, annotated.map((a) => JSON.stringify(a)).join('\n') + (annotated.length ? '\n' : ''));
      await rename(tmp, values.out);
      const n = annotated.reduce((s, a) => s + a.sentences.length, 0);
      console.log(
        `${n} sentences of ${annotated.length} traces annotated with layer ${selection.layer}, K=${selection.k} → ${values.out}`,
      );
    } finally {
      model.free();
    }
    return 0;
  },
});

export const command: Command = defineGroup({
  name: 'taxonomy',
  summary: 'SAE reasoning taxonomy: train, score (offline/LLM/organism), show, annotate',
  description: `Stages 3-5 of the reasoning taxonomy (docs/method.md §2.3-2.5) over a sentence
activation store (\`thinkwhen activations\`). All results live in one taxonomy
directory (--dir).`,
  subcommands: [train, score, show, annotate],
  examples: [
    'thinkwhen taxonomy train --activations runs/acts --dir runs/tax',
    'thinkwhen taxonomy score --dir runs/tax',
    'thinkwhen taxonomy score --dir runs/tax --llm-base-url http://localhost:8080/v1 --llm-model qwen2.5-7b',
    'thinkwhen taxonomy show --dir runs/tax',
    'thinkwhen taxonomy annotate --dir runs/tax --model thinking.gguf --traces runs/traces.jsonl --out runs/annotated.jsonl',
    'thinkwhen taxonomy score --organism --json',
  ],
});
