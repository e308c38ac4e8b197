import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { readGguf } from '../gguf/read.ts';
import { LlmClient } from '../llm/client.ts';
import { runOrganismChain } from '../organism/taxonomy.ts';
import { annotateTraces } from '../taxonomy/annotate.ts';
import { evaluateGrid, type Grid, type LlmLabelling, readGrid } from '../taxonomy/evaluate.ts';
import { EVALUATOR_SETTINGS, TITLE_SETTINGS } from '../taxonomy/labelling.ts';
import {
  readSelection,
  SELECTION_METRICS,
  type Selection,
  type SelectionMetric,
  writeSelection,
} from '../taxonomy/selection.ts';
import { saeBase, type TrainOptions, trainTaxonomyGrid } from '../taxonomy/train-grid.ts';
import { readTraces } from '../traces/generate.ts';
import { int, oneOf } from './args.ts';
import type { Command } from './command.ts';

const help = `thinkwhen taxonomy <train|score|show|annotate> [options]

Stages 3-5 of the reasoning taxonomy (docs/method.md §2.3-2.5) over a sentence
activation store (\`thinkwhen activations\`). All results live in one taxonomy
directory (--dir).

  train     a Top-K SAE (the paper's TinySAE: top-3 of K latents, no ReLU, FVU
            loss, Adam lr 2e-4/sqrt(K/2^14), batch 512, ≤300 epochs, patience 10)
            for every layer × K, on centred + L2-normalised sentence means.
            Saved as DIR/sae/sae_layer{L}_k{K}.safetensors + .json; trained ones
            are kept, so a rerun resumes. --stability-seeds 1 also trains a
            second seed per (layer, K) for the stability metric.
  score     titles and metrics for every (layer, K), then the selection
            (DIR/grid.json, DIR/selection.json). Trains what is missing first.
            Offline (default): titles from each category's most distinctive
            words; the paper's three autograder metrics with a bag-of-words
            naive-Bayes reader in place of the LLM (F1, completeness,
            orthogonality) and their mean, the offline score; also variance
            explained, centroid orthogonality, cluster balance and, with
            --stability-seeds, seed stability (ARI between two seeds' labels).
            With an LLM (--llm-base-url/--llm-model, any OpenAI-compatible
            endpoint; every call cached in DIR/llm-cache): the paper's titles
            (5 repetitions) and autograders: F1, completeness, semantic
            orthogonality and final score = their mean.
            With ground-truth sentence types in the store: ARI, NMI, purity.
  show      the selected taxonomy: every category with its title, size and
            examples (or any trained --layer/--k).
  annotate  label every sentence of every trace with the selected SAE, in the
            paper's format ["{z}:idx{k}"]sentence["end-section"] (needs the model).

Common options:
  --dir DIR             taxonomy directory (required, except score --organism)
  --activations DIR     activation store (train; score/show read it from DIR)
  --json                machine-readable output

train / score:
  --layers LIST         captured layers to use (default: all in the store)
  --k LIST              latent counts (default 5,10,...,50)
  --seed N              SAE seed (default 0)
  --stability-seeds L   extra seeds for the stability metric (default none)
  --max-epochs N        (default 300)   --patience N (default 10)
  --threads N           SAE training threads (default 2)
  --model FILE          check the store's width against this model

score:
  --select METRIC       ${SELECTION_METRICS.join(' | ')}
                        (default: final with an LLM, else offline; ari/nmi/purity
                        are oracles that use the ground truth)
  --llm-base-url URL    OpenAI-compatible endpoint (default $OPENAI_BASE_URL)
  --llm-api-key KEY     (default $OPENAI_API_KEY)
  --llm-model NAME      model for titles and grading (default: the paper's
                        o4-mini titles, gpt-4.1-mini grading)
  --title-model NAME, --eval-model NAME    set each separately
  --repetitions N       category sets per (layer, K) (default 5)
  --llm-retries N       retries per call (default 6)
  --llm-concurrency N   requests in flight (default 8)
  --organism            run the whole chain on the model organism (traces of its
                        thinking model on held-out problems, activations, SAEs,
                        selection) and report ARI/NMI/purity against the true
                        sentence types; --dir is its workspace (default
                        runs/organism; reruns resume)
  --organism-model FILE thinking model (default: src/organism/models/thinking.gguf)
  --problems N          held-out problems (default 200)

show:
  --layer L --k K       show this trained entry instead of the selection
  --examples N          examples per category (default 3)

annotate:
  --model FILE --traces FILE --out FILE.jsonl
  --sae-input raw|centred  raw sentence means (default, the paper's annotation)
                        or centred + normalised as in training (ambiguity A2)
  --context full|generated, --thinking marker|generated   as for activations

Examples:
  thinkwhen taxonomy train --activations runs/acts --dir runs/tax
  thinkwhen taxonomy score --dir runs/tax
  thinkwhen taxonomy score --dir runs/tax --llm-base-url http://localhost:8080/v1 --llm-model qwen2.5-7b
  thinkwhen taxonomy show --dir runs/tax
  thinkwhen taxonomy annotate --dir runs/tax --model thinking.gguf --traces runs/traces.jsonl --out runs/annotated.jsonl
  thinkwhen taxonomy score --organism --json
`;

const OPTIONS = {
  dir: { type: 'string' },
  activations: { type: 'string' },
  json: { type: 'boolean' },
  layers: { type: 'string' },
  k: { type: 'string' },
  seed: { type: 'string' },
  'stability-seeds': { type: 'string' },
  'max-epochs': { type: 'string' },
  patience: { type: 'string' },
  threads: { type: 'string' },
  model: { type: 'string' },
  select: { type: 'string' },
  'llm-base-url': { type: 'string' },
  'llm-api-key': { type: 'string' },
  'llm-model': { type: 'string' },
  'title-model': { type: 'string' },
  'eval-model': { type: 'string' },
  repetitions: { type: 'string' },
  'llm-retries': { type: 'string' },
  'llm-concurrency': { type: 'string' },
  organism: { type: 'boolean' },
  'organism-model': { type: 'string' },
  problems: { type: 'string' },
  layer: { type: 'string' },
  examples: { type: 'string' },
  traces: { type: 'string' },
  out: { type: 'string' },
  'sae-input': { type: 'string' },
  context: { type: 'string' },
  thinking: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function ints(v: string | undefined, name: string): number[] | undefined {
  if (v === undefined) return undefined;
  if (v === 'none') return [];
  return v.split(',').map((x) => {
    const n = Number(x.trim());
    if (!Number.isInteger(n)) {
      throw new ThinkwhenError('bad-argument', `--${name} expects integers separated by commas, got '${v}'`);
    }
    return n;
  });
}

const progress = (line: string) => console.error(line);

function requireDir(values: Values): string {
  if (!values.dir) throw new ThinkwhenError('bad-argument', '--dir is required', 'name the taxonomy directory');
  return values.dir;
}

interface TaxonomyConfig {
  activations: string;
}

async function activationsFor(values: Values, dir: string): Promise<string> {
  if (values.activations) return values.activations;
  const path = join(dir, 'taxonomy.json');
  if (existsSync(path)) return (JSON.parse(await readFile(path, 'utf8')) as TaxonomyConfig).activations;
  throw new ThinkwhenError(
    'bad-argument',
    `--activations is required (${dir} has no taxonomy.json naming a store)`,
    'pass --activations DIR (the output of thinkwhen activations)',
  );
}

/** The residual width of --model, read from its GGUF header (no weights loaded). */
async function expectedDim(values: Values): Promise<number | undefined> {
  if (!values.model) return undefined;
  if (!existsSync(values.model)) {
    throw new ThinkwhenError('MODEL_NOT_FOUND', `model file not found: ${values.model}`, 'check the --model path');
  }
  const gguf = readGguf(values.model);
  const arch = String(gguf.metadata.get('general.architecture')?.value ?? '');
  const dim = Number(gguf.metadata.get(`${arch}.embedding_length`)?.value);
  if (!Number.isInteger(dim) || dim <= 0) {
    throw new ThinkwhenError('NOT_A_MODEL', `${values.model} has no ${arch}.embedding_length`, 'pass a model GGUF');
  }
  return dim;
}

function trainOptions(values: Values, dim: number | undefined): TrainOptions {
  return {
    layers: ints(values.layers, 'layers'),
    ks: ints(values.k, 'k'),
    seed: int(values.seed, 'seed'),
    stabilitySeeds: ints(values['stability-seeds'], 'stability-seeds'),
    maxEpochs: int(values['max-epochs'], 'max-epochs', 1),
    patience: int(values.patience, 'patience', 1),
    threads: int(values.threads, 'threads', 1),
    expectedDim: dim,
    onProgress: progress,
  };
}

function llmFrom(values: Values, dir: string): LlmLabelling | undefined {
  const wanted = values['llm-base-url'] || values['llm-model'] || values['title-model'] || values['eval-model'];
  if (!wanted) return undefined;
  const client = new LlmClient({
    baseUrl: values['llm-base-url'],
    apiKey: values['llm-api-key'],
    cacheDir: join(dir, 'llm-cache'),
    maxRetries: int(values['llm-retries'], 'llm-retries'),
    concurrency: int(values['llm-concurrency'], 'llm-concurrency', 1),
  });
  const titleModel = values['title-model'] ?? values['llm-model'];
  const evalModel = values['eval-model'] ?? values['llm-model'];
  return {
    client,
    titles: titleModel ? { model: titleModel, params: { temperature: 1.0 } } : TITLE_SETTINGS,
    evaluator: evalModel ? { ...EVALUATOR_SETTINGS, model: evalModel } : EVALUATOR_SETTINGS,
    repetitions: int(values.repetitions, 'repetitions', 1),
    seed: int(values.seed, 'seed'),
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

async function train(values: Values): Promise<number> {
  const dir = requireDir(values);
  const activations = await activationsFor(values, dir);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'taxonomy.json'), `${JSON.stringify({ activations }, null, 2)}\n`);
  const trained = await trainTaxonomyGrid(activations, dir, trainOptions(values, await expectedDim(values)));
  if (values.json) console.log(JSON.stringify(trained));
  else console.log(`${trained.length} SAEs (layers × K) in ${join(dir, 'sae')}`);
  return 0;
}

async function score(values: Values): Promise<number> {
  const select = oneOf(values.select, 'select', SELECTION_METRICS) as SelectionMetric | undefined;
  if (values.organism) {
    const dir = values.dir ?? join('runs', 'organism');
    const llm = llmFrom(values, join(dir, 'taxonomy'));
    const r = await runOrganismChain({
      dir,
      model: values['organism-model'],
      problems: int(values.problems, 'problems', 1),
      layers: values.layers,
      ks: ints(values.k, 'k'),
      seed: int(values.seed, 'seed'),
      stabilitySeeds: ints(values['stability-seeds'], 'stability-seeds'),
      threads: int(values.threads, 'threads', 1),
      select,
      llm,
      onProgress: progress,
    });
    console.error(gridTable(r.grid, r.selection));
    console.error(
      `organism: ${r.traces} traces, ${r.sentences} sentences (${r.labelledSentences} with a known type); ` +
        `selected layer ${r.layer}, K=${r.k} by ${r.selection.metric}; best ARI in the grid ${r.bestAri.ari.toFixed(3)} at layer ${r.bestAri.layer}, K=${r.bestAri.k}`,
    );
    const out = { layer: r.layer, k: r.k, ari: r.ari, nmi: r.nmi, purity: r.purity };
    if (values.json) console.log(JSON.stringify(out));
    else
      console.log(
        `layer ${r.layer}, K=${r.k}: ARI ${r.ari.toFixed(3)}, NMI ${r.nmi.toFixed(3)}, purity ${r.purity.toFixed(3)}`,
      );
    return 0;
  }
  const dir = requireDir(values);
  const activations = await activationsFor(values, dir);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'taxonomy.json'), `${JSON.stringify({ activations }, null, 2)}\n`);
  const dim = await expectedDim(values);
  const trained = await trainTaxonomyGrid(activations, dir, trainOptions(values, dim));
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
}

async function show(values: Values): Promise<number> {
  const dir = requireDir(values);
  let sel: Pick<Selection, 'layer' | 'k' | 'categories' | 'metrics' | 'labelSource'> & { metric?: string };
  if (values.layer !== undefined || values.k !== undefined) {
    const layer = int(values.layer, 'layer');
    const k = int(values.k, 'k');
    const grid = await readGrid(dir);
    const e = grid.entries.find((x) => x.layer === layer && x.k === k);
    if (!e) {
      throw new ThinkwhenError(
        'no-entry',
        `${dir} has no scored entry for layer ${layer}, K=${k} (scored: ${grid.entries.map((x) => `${x.layer}/${x.k}`).join(', ')})`,
        'pass both --layer and --k of a scored entry',
      );
    }
    sel = e;
  } else {
    sel = await readSelection(dir);
  }
  if (values.json) {
    console.log(JSON.stringify(sel));
    return 0;
  }
  const n = int(values.examples, 'examples') ?? 3;
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
}

async function annotate(values: Values): Promise<number> {
  const dir = requireDir(values);
  if (!values.model) throw new ThinkwhenError('bad-argument', '--model is required', 'pass the thinking model GGUF');
  if (!values.traces) throw new ThinkwhenError('bad-argument', '--traces is required', 'pass the trace JSONL');
  if (!values.out) throw new ThinkwhenError('bad-argument', '--out is required', 'name the output JSONL');
  let selection: Selection = await readSelection(dir);
  if (values.layer !== undefined || values.k !== undefined) {
    const grid = await readGrid(dir);
    const layer = int(values.layer, 'layer');
    const k = int(values.k, 'k');
    const e = grid.entries.find((x) => x.layer === layer && x.k === k);
    if (!e) throw new ThinkwhenError('no-entry', `no scored entry for layer ${layer}, K=${k} in ${dir}`);
    selection = { ...selection, layer: e.layer, k: e.k, sae: saeBase(dir, e.layer, e.k), categories: e.categories };
  }
  const { records } = await readTraces(values.traces);
  const model = await Model.load(values.model);
  try {
    const annotated = await annotateTraces(model, records, selection, {
      saeInput: oneOf(values['sae-input'], 'sae-input', ['raw', 'centred'] as const),
      context: oneOf(values.context, 'context', ['full', 'generated'] as const),
      thinking: oneOf(values.thinking, 'thinking', ['marker', 'generated'] as const),
      threads: int(values.threads, 'threads', 1),
      onProgress: progress,
    });
    await mkdir(dirname(values.out), { recursive: true });
    await writeFile(values.out, annotated.map((a) => JSON.stringify(a)).join('\n') + (annotated.length ? '\n' : ''));
    const n = annotated.reduce((s, a) => s + a.sentences.length, 0);
    console.log(
      `${n} sentences of ${annotated.length} traces annotated with layer ${selection.layer}, K=${selection.k} → ${values.out}`,
    );
  } finally {
    model.free();
  }
  return 0;
}

export const command: Command = {
  name: 'taxonomy',
  summary: 'SAE reasoning taxonomy: train, score (offline/LLM/organism), show, annotate',
  help,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
    const [sub, ...extra] = positionals;
    if (extra.length) throw new ThinkwhenError('bad-argument', `unexpected arguments: ${extra.join(' ')}`);
    switch (sub) {
      case 'train':
        return train(values);
      case 'score':
        return score(values);
      case 'show':
        return show(values);
      case 'annotate':
        return annotate(values);
      default:
        throw new ThinkwhenError(
          'bad-argument',
          sub ? `unknown taxonomy subcommand '${sub}'` : 'no taxonomy subcommand given',
          'use train, score, show or annotate (thinkwhen taxonomy --help)',
        );
    }
  },
};
