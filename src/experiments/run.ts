// One system on one problem set into a run store: generate, grade, record, one problem (and
// sample) at a time, so a run killed at any point resumes where it stopped. Base and thinking
// systems decode many problems at once (continuous batching, stream.ts).
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { gradeResponse } from '../eval/answer/index.ts';
import { type GradeInput, type RunConfig, RunStore, type Shard, selectShard } from '../eval/store.ts';
import type { Grader, RunDataset } from './datasets.ts';
import { checkModelFile, type PairPreset, presetModelPath } from './presets.ts';
import { checkPromptSpec, type PromptSpec, promptIds } from './prompts.ts';
import { generateStream, type StreamRequest, streamContextSize } from './stream.ts';

export const SYSTEMS = ['base', 'thinking'] as const;
export type SystemName = (typeof SYSTEMS)[number];

export interface Sampling {
  /** samples per problem (pass@k needs several) */
  samples: number;
  /** 0 = greedy */
  temperature: number;
  topP: number;
  seed: number;
}

/**
 * Problems decoded together. More is not faster on CPU: the context's KV cache is unified, so
 * every row attends over all sequences' cells and the attention cost per token grows with the
 * number in flight (measured on the organism: 8 in flight used the least CPU time per token).
 */
export const DEFAULT_PARALLEL = 8;

/** Bounds that keep a typo from queueing billions of generations. */
export const MAX_SAMPLES = 1024;
export const MAX_TOKENS = 1 << 20;

export const GREEDY: Sampling = { samples: 1, temperature: 0, topP: 1, seed: 0 };

export interface RunOptions {
  system: SystemName;
  /** the pair's settings; `checked` false for a custom pair (no shape check) */
  preset: PairPreset;
  checked: boolean;
  /** the model file (default: the preset's) */
  modelFile?: string;
  modelsDir?: string;
  dataset: RunDataset;
  out: string;
  /** run name in reports (default: the system, with the sampling when not greedy) */
  name?: string;
  sampling?: Sampling;
  maxTokens?: number;
  prompt?: PromptSpec;
  /** problems decoded together (default DEFAULT_PARALLEL) */
  parallel?: number;
  threads?: number;
  shard?: Shard | null;
  signal?: AbortSignal;
  /** called once the work is known, before generating */
  onStart?: (s: { path: string; name: string; total: number; done: number; model: string }) => void;
  /** called after each stored generation and after each decode (units = generations stored) */
  onAdvance?: (units: number, tokens: number) => void;
}

export interface RunResult {
  path: string;
  name: string;
  /** (problem, sample) pairs of this shard */
  total: number;
  /** stored by earlier sessions */
  skipped: number;
  generated: number;
  tokens: number;
  seconds: number;
  interrupted: boolean;
  /** headline grader: correct samples / graded samples over the whole store */
  correct: number;
  graded: number;
}

/**
 * A model file's identity without hashing gigabytes: its size and the SHA-256 of three 1 MiB
 * samples (start, middle, end). Two runs with equal fingerprints used the same file.
 */
export function modelFingerprint(path: string): { file: string; bytes: number; sha256: string } {
  const bytes = statSync(path).size;
  const h = createHash('sha256').update(String(bytes));
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.alloc(Math.min(bytes, 1 << 20));
    for (const at of [0, Math.floor((bytes - chunk.length) / 2), bytes - chunk.length]) {
      const n = readSync(fd, chunk, 0, chunk.length, at);
      h.update(chunk.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return { file: basename(path), bytes, sha256: h.digest('hex') };
}

/** Seed of one (problem, sample): independent of order, batching, sharding and resuming. */
export function sampleSeed(seed: number, problemId: string, sampleIndex: number): number {
  const h = createHash('sha256').update(`${seed}\u0000${problemId}\u0000${sampleIndex}`).digest();
  return h.readUInt32LE(0);
}

export function defaultRunName(system: string, s: Sampling): string {
  return s.samples === 1 && s.temperature === 0 ? system : `${system}-n${s.samples}-t${s.temperature}`;
}

/** runs/<pair>/<dataset>[-<count>]/<name>.sqlite; the count only when the slice is not the default. */
export function defaultRunPath(pair: string, dataset: RunDataset, name: string, defaultCount: number | null): string {
  const d = dataset.info;
  const slice = defaultCount !== null && d.count === defaultCount ? '' : `-${d.count}`;
  return join('runs', pair, `${d.name}${slice}`, `${name}.sqlite`);
}

export function checkSampling(s: Sampling): void {
  if (!Number.isInteger(s.samples) || s.samples < 1 || s.samples > MAX_SAMPLES) {
    throw new ThinkwhenError('BAD_ARGUMENT', `--samples must be an integer from 1 to ${MAX_SAMPLES}, got ${s.samples}`);
  }
  if (!(s.temperature >= 0 && Number.isFinite(s.temperature))) {
    throw new ThinkwhenError('BAD_ARGUMENT', `--temperature must be a number ≥ 0, got ${s.temperature}`);
  }
  if (!(s.topP > 0 && s.topP <= 1))
    throw new ThinkwhenError('BAD_ARGUMENT', `--top-p must be in (0, 1], got ${s.topP}`);
  if (s.samples > 1 && s.temperature === 0) {
    throw new ThinkwhenError(
      'BAD_ARGUMENT',
      `--samples ${s.samples} with greedy decoding gives ${s.samples} identical answers`,
      'pass --temperature T (e.g. 0.6) to sample',
    );
  }
}

/** The token cap of a run, checked: an integer from 1 to MAX_TOKENS. */
export function checkMaxTokens(maxTokens: number): number {
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > MAX_TOKENS) {
    throw new ThinkwhenError(
      'BAD_ARGUMENT',
      `--max-tokens must be an integer from 1 to ${MAX_TOKENS}, got ${maxTokens}`,
    );
  }
  return maxTokens;
}

export function gradeAll(graders: Grader[], gold: string, text: string): GradeInput[] {
  return graders.map((g) => {
    const r = gradeResponse(gold, text, { mode: g.mode });
    return { grader: g.name, correct: r.correct, extracted: r.extracted, detail: { rule: r.rule, gold: r.goldParsed } };
  });
}

/** Headline accuracy counts straight from a store. */
export function storeCounts(store: RunStore, grader: string): { correct: number; graded: number } {
  let correct = 0;
  let graded = 0;
  for (const g of store.grades(grader)) {
    graded++;
    if (g.correct) correct++;
  }
  return { correct, graded };
}

export async function runSystem(o: RunOptions): Promise<RunResult> {
  const t0 = Date.now();
  const { preset, dataset } = o;
  const sampling = o.sampling ?? GREEDY;
  checkSampling(sampling);
  const maxTokens = checkMaxTokens(o.maxTokens ?? preset.maxTokens);
  const prompt = o.prompt ?? (o.system === 'base' ? preset.basePrompt : preset.thinkingPrompt);
  checkPromptSpec(prompt);
  if (!o.checked && !o.modelFile) {
    throw new ThinkwhenError(
      'BAD_ARGUMENT',
      `a custom pair has no default ${o.system} model`,
      `pass --${o.system} FILE, or --preset NAME`,
    );
  }
  const modelPath = presetModelPath(preset, o.system, o.modelFile, o.modelsDir);
  if (o.checked) checkModelFile(preset, o.system, modelPath);
  if (dataset.problems.length === 0) {
    throw new ThinkwhenError(
      'NO_PROBLEMS',
      `the problem set ${dataset.info.name} is empty`,
      'check the file or --limit',
    );
  }
  const name = o.name ?? defaultRunName(o.system, sampling);
  const config: RunConfig = {
    name,
    role: o.system,
    system: o.system,
    model: modelFingerprint(modelPath),
    prompt,
    maxTokens,
    samplesPerProblem: sampling.samples,
    sampling: { temperature: sampling.temperature, topP: sampling.topP, seed: sampling.seed },
    grader: dataset.graders[0].name,
    graders: dataset.graders.map((g) => g.name),
  };
  const fresh = !existsSync(o.out);
  const store = RunStore.open(o.out, { config, dataset: dataset.info, shard: o.shard ?? null });
  try {
    store.setMeta('pair', preset.name);
    const problems = selectShard(dataset.problems, o.shard);
    const pending = store.pending(problems);
    const total = problems.length * sampling.samples;
    o.onStart?.({ path: store.path, name, total, done: total - pending.length, model: modelPath });
    let generated = 0;
    let tokens = 0;
    if (pending.length) {
      const model = await Model.load(modelPath);
      try {
        const requests: StreamRequest[] = pending.map((p) => ({
          prompt: promptIds(model, prompt, p.problem.question),
          maxTokens,
          sampler: {
            temperature: sampling.temperature,
            topP: sampling.topP,
            seed: sampleSeed(sampling.seed, p.problem.id, p.sampleIndex),
          },
        }));
        const longest = Math.max(...requests.map((r) => r.prompt.length));
        if (longest + maxTokens > model.info.nCtxTrain) {
          throw new ThinkwhenError(
            'CONTEXT_TOO_LONG',
            `a prompt of ${longest} tokens plus ${maxTokens} generated ones exceeds the ${model.info.nCtxTrain}-token context ${basename(modelPath)} was trained for`,
            `lower --max-tokens to ${Math.max(1, model.info.nCtxTrain - longest)} or less`,
          );
        }
        const parallel = Math.max(1, Math.min(o.parallel ?? DEFAULT_PARALLEL, pending.length, 256));
        const ctx = model.createContext({
          nCtx: streamContextSize(requests, parallel),
          nBatch: 512,
          nSeqMax: parallel,
          threads: o.threads,
        });
        try {
          const stream = generateStream(ctx, requests, {
            parallel,
            signal: o.signal,
            onTokens: (n) => {
              tokens += n;
              o.onAdvance?.(0, n);
            },
          });
          for await (const r of stream) {
            const item = pending[r.index];
            store.recordGeneration({
              problemId: item.problem.id,
              sampleIndex: item.sampleIndex,
              text: r.text,
              promptTokens: r.promptTokens,
              completionTokens: r.tokens.length,
              tokens: r.tokens,
              finishReason: r.finishReason,
              startedAt: r.startedAt,
              finishedAt: r.finishedAt,
              grades: gradeAll(dataset.graders, item.problem.answer, r.text),
            });
            generated++;
            o.onAdvance?.(1, 0);
          }
        } finally {
          ctx.free();
        }
      } finally {
        model.free();
      }
    }
    const counts = storeCounts(store, dataset.graders[0].name);
    return {
      path: store.path,
      name,
      total,
      skipped: total - pending.length,
      generated,
      tokens,
      seconds: (Date.now() - t0) / 1000,
      interrupted: generated < pending.length,
      ...counts,
    };
  } catch (err) {
    // A store this call created and that holds nothing would only block the corrected rerun.
    if (fresh && store.counts().generations === 0) {
      store.close();
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${store.path}${suffix}`, { force: true });
    }
    throw err;
  } finally {
    store.close();
  }
}
