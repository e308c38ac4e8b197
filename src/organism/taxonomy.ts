// The taxonomy stages composed on the model organism, whose trace-language parser gives every sentence a
// known type: the whole chain, scored against that ground truth (`thinkwhen taxonomy score --organism`).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { captureSentenceActivations } from '../taxonomy/capture.ts';
import { evaluateGrid, type Grid, type LlmLabelling } from '../taxonomy/evaluate.ts';
import { resolveLayers } from '../taxonomy/layers.ts';
import { type Selection, type SelectionMetric, writeSelection } from '../taxonomy/selection.ts';
import { trainTaxonomyGrid } from '../taxonomy/train-grid.ts';
import { generateTraces, readTraces, type TraceRecord } from '../traces/generate.ts';
import { TEST_SEED } from './eval.ts';
import { organismModelPaths } from './index.ts';
import { parseSentence } from './parser.ts';
import { generateProblems, type Split } from './task.ts';

/** The organism's ground truth: the type its trace-language parser gives a sentence (null: not one). */
export const organismLabeller = (sentence: string): string | null => parseSentence(sentence.trim()).type;

/** Where the organism's shipped thinking model lives. */
export function defaultOrganismModel(): string {
  return process.env.THINKWHEN_ORGANISM_THINKING ?? organismModelPaths().thinking;
}

export interface OrganismChainOptions {
  /** Workspace: traces.jsonl, activations/, taxonomy/ (reruns resume). */
  dir: string;
  /** Thinking model (default: the shipped organism). */
  model?: string;
  /** Problems to trace (default 200), their split (default test: held-out) and generator seed (default: the organism's test seed). */
  problems?: number;
  split?: Split;
  problemSeed?: number;
  maxTokens?: number;
  batch?: number;
  layers?: string;
  ks?: number[];
  select?: SelectionMetric;
  seed?: number;
  stabilitySeeds?: number[];
  threads?: number;
  llm?: LlmLabelling;
  onProgress?: (line: string) => void;
}

export interface OrganismChainResult {
  layer: number;
  k: number;
  ari: number;
  nmi: number;
  purity: number;
  selection: Selection;
  grid: Grid;
  /** the thinking model scored: its path and SHA-256 (what a stored score was measured on) */
  thinking: { path: string; sha256: string };
  /** held-out problems whose traces were scored */
  problems: number;
  traces: number;
  sentences: number;
  labelledSentences: number;
  /** The best ARI over the grid (an oracle bound on what selection could reach). */
  bestAri: { layer: number; k: number; ari: number };
}

/**
 * Traces of the organism's thinking model on held-out problems → sentence activations (thinking = the
 * model's output, ground truth from the trace-language parser) → SAE grid → selection (offline unless
 * an LLM is given) → ARI, NMI and purity of the selected taxonomy against the true sentence types.
 */
export async function runOrganismChain(o: OrganismChainOptions): Promise<OrganismChainResult> {
  const modelPath = o.model ?? defaultOrganismModel();
  if (!existsSync(modelPath)) {
    throw new ThinkwhenError(
      'NO_ORGANISM',
      `the model organism's thinking model is not at ${modelPath}`,
      'build it (thinkwhen organism build) or pass --organism-model PATH / set THINKWHEN_ORGANISM_THINKING',
    );
  }
  await mkdir(o.dir, { recursive: true });
  const model = await Model.load(modelPath);
  const tracesPath = join(o.dir, 'traces.jsonl');
  const actsDir = join(o.dir, 'activations');
  const taxDir = join(o.dir, 'taxonomy');
  let traces: TraceRecord[];
  let sentences: number;
  try {
    // The organism's own problems (default: held-out) and its evaluation's token cap (320).
    const split = o.split ?? 'test';
    const problems = generateProblems(split, o.problems ?? 200, o.problemSeed ?? TEST_SEED);
    const maxTokens = o.maxTokens ?? 320;
    o.onProgress?.(`organism: ${problems.length} ${split}-split problems, thinking model ${modelPath}`);
    await generateTraces(
      model,
      problems.map((p) => ({ id: p.id, question: p.question, meta: { answer: p.answer } })),
      tracesPath,
      { maxTokens, batch: o.batch ?? 16, threads: o.threads, onProgress: o.onProgress },
    );
    traces = (await readTraces(tracesPath)).records;
    const wanted = new Set(problems.map((p) => p.id));
    traces = traces.filter((t) => wanted.has(t.id));
    const capture = await captureSentenceActivations(model, traces, actsDir, {
      layers: resolveLayers(o.layers, model.info),
      thinking: 'generated',
      labeller: organismLabeller,
      threads: o.threads,
      onProgress: o.onProgress,
    });
    sentences = capture.sentences;
  } finally {
    model.free();
  }
  const trained = await trainTaxonomyGrid(actsDir, taxDir, {
    ks: o.ks,
    seed: o.seed,
    stabilitySeeds: o.stabilitySeeds,
    threads: o.threads,
    onProgress: o.onProgress,
  });
  const grid = await evaluateGrid(actsDir, taxDir, trained, { llm: o.llm, onProgress: o.onProgress });
  const selection = await writeSelection(taxDir, grid, o.select ?? (o.llm ? 'final' : 'offline'));
  const m = selection.metrics;
  if (m.ari === undefined || m.nmi === undefined || m.purity === undefined) {
    throw new ThinkwhenError(
      'NO_GROUND_TRUTH',
      'no captured sentence of the organism traces parses as a sentence of the trace language',
      'check that the organism model writes its trace language (see traces.jsonl in the workspace)',
    );
  }
  let bestAri = { layer: selection.layer, k: selection.k, ari: m.ari };
  for (const e of grid.entries) {
    if ((e.metrics.ari ?? -1) > bestAri.ari) bestAri = { layer: e.layer, k: e.k, ari: e.metrics.ari! };
  }
  return {
    layer: selection.layer,
    k: selection.k,
    ari: m.ari,
    nmi: m.nmi,
    purity: m.purity,
    selection,
    grid,
    thinking: { path: modelPath, sha256: createHash('sha256').update(readFileSync(modelPath)).digest('hex') },
    problems: o.problems ?? 200,
    traces: traces.length,
    sentences,
    labelledSentences: m.labelledSentences ?? 0,
    bestAri,
  };
}
