// The hybrid system (and each control policy) on one problem set into a run store: loads the pair,
// the thinking model's SAE and the base model's vectors, runs `hybridGenerate` (src/hybrid/) and
// stores every problem with its per-token records as soon as it finishes, so a run killed at any
// point resumes where it stopped.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { basename, isAbsolute, resolve } from 'node:path';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { type RunConfig, RunStore, selectShard } from '../eval/store.ts';
import {
  type Grid,
  type HybridOptions,
  type HybridPair,
  type HybridProblem,
  hybridGenerate,
  noVectors,
  type PolicyName,
} from '../hybrid/index.ts';
import { fileSha256, loadVectorSet } from '../steer/vector-set.ts';
import { loadSae, type TopKSae } from '../taxonomy/sae.ts';
import { checkModelFile, checkPairTokenizers, presetModelPath, readModelHeader } from './presets.ts';
import { checkPromptSpec, promptIds } from './prompts.ts';
import {
  checkMaxTokens,
  checkSampling,
  GREEDY,
  gradeAll,
  type RunOptions,
  type RunResult,
  storeCounts,
} from './run.ts';

/** Policies that steer nothing, so need no vectors. */
const UNSTEERED: readonly PolicyName[] = ['selection_only', 'oracle'];

export interface HybridRunOptions extends Omit<RunOptions, 'system' | 'modelFile' | 'prompt'> {
  policy: PolicyName;
  baseFile?: string;
  thinkingFile?: string;
  /** the vector set (`thinkwhen vectors train`); optional for selection_only and oracle */
  vectors?: string;
  /** a taxonomy folder (its selection.json names the SAE and layer), or */
  taxonomy?: string;
  /** an SAE file, with its thinking-model layer (default: the SAE's own config) */
  sae?: string;
  saeLayer?: number;
  /** default: the preset's */
  grid?: Grid;
  /** seed of the random policies (default 0) */
  seed?: number;
  /** pure_steering's one cell */
  pureCoefficient?: number;
  pureWindow?: number;
  /**
   * a latent without a vector: an error, or c·bias alone (marked per token). Default: 'bias' for the
   * organism's pairs, whose shipped sets have latents too rare for a vector (docs/demo.md), else 'error'
   */
  missingVector?: 'error' | 'bias';
  /** speed only: tokens drafted per thinking check (default 4) */
  speculate?: number;
}

interface ResolvedSae {
  sae: TopKSae;
  layer: number;
  path: string;
}

/**
 * A path a file in `dir` names: relative to `dir` (shipped, movable folders), else as written
 * (a taxonomy selection records its SAE relative to where `taxonomy score` ran).
 */
function fromDir(dir: string, p: string): string {
  if (isAbsolute(p)) return p;
  const inDir = resolve(dir, p);
  const sae = (x: string) => `${x.replace(/\.(safetensors|json)$/, '')}.safetensors`;
  return existsSync(sae(inDir)) || !existsSync(sae(p)) ? inDir : p;
}

function readJson(path: string, what: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ThinkwhenError('BAD_ARGUMENT', `${what} ${path} is not readable JSON: ${(err as Error).message}`);
  }
}

/** The SAE: --sae, else the taxonomy's selection, else the one the vector set's manifest names. */
export async function resolveSae(o: {
  sae?: string;
  saeLayer?: number;
  taxonomy?: string;
  vectors?: string;
}): Promise<ResolvedSae> {
  let path: string | undefined;
  let layer = o.saeLayer;
  if (o.sae) path = o.sae;
  else if (o.taxonomy) {
    const selPath = resolve(o.taxonomy, 'selection.json');
    if (!existsSync(selPath)) {
      throw new ThinkwhenError(
        'NO_TAXONOMY',
        `${o.taxonomy} has no selection.json`,
        'pass the taxonomy folder `thinkwhen taxonomy score --dir DIR` wrote, or --sae FILE',
      );
    }
    const sel = readJson(selPath, 'the taxonomy selection');
    if (typeof sel.sae !== 'string') throw new ThinkwhenError('BAD_TAXONOMY', `${selPath} names no SAE`);
    path = fromDir(o.taxonomy, sel.sae);
    if (typeof sel.layer === 'number') layer ??= sel.layer;
  } else if (o.vectors && existsSync(resolve(o.vectors, 'manifest.json'))) {
    const sae = readJson(resolve(o.vectors, 'manifest.json'), 'the vector manifest').sae as Record<
      string,
      unknown
    > | null;
    if (sae && typeof sae.sae === 'string') {
      path = fromDir(o.vectors, sae.sae);
      if (typeof sae.layer === 'number') layer ??= sae.layer;
    }
  }
  if (!path) {
    throw new ThinkwhenError(
      'BAD_ARGUMENT',
      'no SAE: the hybrid needs the thinking model SAE whose latents the vectors are keyed by',
      'pass --taxonomy DIR or --sae FILE (with --sae-layer L)',
    );
  }
  const base = path.replace(/\.(safetensors|json)$/, '');
  if (!existsSync(`${base}.safetensors`)) {
    throw new ThinkwhenError(
      'FILE_NOT_FOUND',
      `SAE not found: ${base}.safetensors`,
      'pass --sae FILE or --taxonomy DIR',
    );
  }
  const sae = await loadSae(base);
  layer ??= typeof sae.config.layer === 'number' ? sae.config.layer : undefined;
  if (layer === undefined) {
    throw new ThinkwhenError(
      'BAD_ARGUMENT',
      `${base}.safetensors does not say which layer it reads`,
      'pass --sae-layer L',
    );
  }
  return { sae, layer, path: `${base}.safetensors` };
}

export async function runHybrid(o: HybridRunOptions): Promise<RunResult> {
  const t0 = Date.now();
  const { preset, dataset } = o;
  const sampling = o.sampling ?? GREEDY;
  checkSampling(sampling);
  const maxTokens = checkMaxTokens(o.maxTokens ?? preset.maxTokens);
  checkPromptSpec(preset.basePrompt);
  checkPromptSpec(preset.thinkingPrompt);
  const needsVectors = !UNSTEERED.includes(o.policy);
  if (needsVectors && !o.vectors) {
    throw new ThinkwhenError(
      'BAD_ARGUMENT',
      `policy ${o.policy} steers, so it needs --vectors DIR`,
      'pass the folder `thinkwhen vectors train` wrote (the organism ships one: src/organism/models/vectors)',
    );
  }
  if (o.vectors && !existsSync(resolve(o.vectors, 'manifest.json'))) {
    throw new ThinkwhenError(
      'NO_VECTOR_SET',
      `${o.vectors} has no manifest.json`,
      'pass a folder `thinkwhen vectors train` wrote',
    );
  }
  if (!o.checked && (!o.baseFile || !o.thinkingFile)) {
    throw new ThinkwhenError(
      'BAD_ARGUMENT',
      'a custom pair needs both models',
      'pass --base FILE and --thinking FILE, or --preset NAME',
    );
  }
  const basePath = presetModelPath(preset, 'base', o.baseFile, o.modelsDir);
  const thinkingPath = presetModelPath(preset, 'thinking', o.thinkingFile, o.modelsDir);
  if (o.checked) {
    checkModelFile(preset, 'base', basePath);
    checkModelFile(preset, 'thinking', thinkingPath);
  }
  checkPairTokenizers(readModelHeader(basePath), readModelHeader(thinkingPath));
  if (dataset.problems.length === 0) {
    throw new ThinkwhenError(
      'NO_PROBLEMS',
      `the problem set ${dataset.info.name} is empty`,
      'check the file or --limit',
    );
  }
  const sae = await resolveSae(o);
  const grid = o.grid ?? preset.grid;
  const missingVector = o.missingVector ?? (preset.modelsDir ? 'bias' : 'error');
  const name = o.name ?? `hybrid-${o.policy}`;
  const config: RunConfig = {
    name,
    role: 'hybrid',
    system: 'hybrid',
    policy: o.policy,
    base: { file: basename(basePath), sha256: await fileSha256(basePath) },
    thinking: { file: basename(thinkingPath), sha256: await fileSha256(thinkingPath) },
    sae: { file: basename(sae.path), sha256: await fileSha256(sae.path), layer: sae.layer },
    vectors: needsVectors && o.vectors ? { manifest: await fileSha256(resolve(o.vectors, 'manifest.json')) } : null,
    grid,
    prompts: { base: preset.basePrompt, thinking: preset.thinkingPrompt },
    maxTokens,
    seed: o.seed ?? 0,
    pure: o.policy === 'pure_steering' ? { coefficient: o.pureCoefficient ?? null, window: o.pureWindow ?? 0 } : null,
    missingVector,
    samplesPerProblem: sampling.samples,
    sampling: { temperature: sampling.temperature, topP: sampling.topP },
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
    o.onStart?.({
      path: store.path,
      name,
      total,
      done: total - pending.length,
      model: `${basePath} + ${thinkingPath}`,
    });
    let generated = 0;
    let tokens = 0;
    if (pending.length) {
      const base = await Model.load(basePath);
      let thinking: Model | null = null;
      try {
        thinking = await Model.load(thinkingPath);
        let vectors = noVectors();
        if (needsVectors && o.vectors) vectors = await loadVectorSet(o.vectors, base);
        const pair: HybridPair = { base, thinking, sae: sae.sae, saeLayer: sae.layer, vectors };
        const options: HybridOptions = {
          policy: o.policy,
          grid,
          maxTokens,
          temperature: sampling.temperature,
          topP: sampling.topP,
          seed: o.seed,
          pureCoefficient: o.pureCoefficient,
          pureWindow: o.pureWindow,
          missingVector,
          speculate: o.speculate ?? 4,
          batch: o.parallel,
          threads: o.threads,
          signal: o.signal,
        };
        // one hybrid problem per pending (problem, sample): its draws are seeded by (seed, id, sample)
        const requests: HybridProblem[] = pending.map((p) => ({
          id: p.problem.id,
          sample: p.sampleIndex,
          prompt: {
            base: promptIds(base, preset.basePrompt, p.problem.question),
            thinking: promptIds(thinking!, preset.thinkingPrompt, p.problem.question),
          },
        }));
        const events = hybridGenerate(pair, requests, options);
        for await (const ev of events) {
          if (ev.type === 'token') {
            tokens++;
            o.onAdvance?.(0, 1);
            continue;
          }
          const r = ev.result;
          if (r.finishReason === 'aborted') continue; // not stored: the rerun generates it again
          const problem = pending[ev.problem].problem;
          store.recordGeneration({
            problemId: r.id,
            sampleIndex: r.sample,
            text: r.text,
            promptTokens: r.promptTokens.base,
            completionTokens: r.records.length,
            tokens: r.tokens,
            annotations: { format: 'thinkwhen-hybrid/1', promptTokens: r.promptTokens, records: r.records },
            steeredTokens: r.records.filter((x) => x.steered).length,
            finishReason: r.finishReason === 'eos' ? 'eog' : r.finishReason,
            startedAt: r.startedAt,
            finishedAt: r.finishedAt,
            grades: gradeAll(dataset.graders, problem.answer, r.text),
          });
          generated++;
          o.onAdvance?.(1, 0);
        }
      } finally {
        thinking?.free();
        base.free();
      }
    }
    return {
      path: store.path,
      name,
      total,
      skipped: total - pending.length,
      generated,
      tokens,
      seconds: (Date.now() - t0) / 1000,
      interrupted: generated < pending.length,
      ...storeCounts(store, dataset.graders[0].name),
    };
  } catch (err) {
    if (fresh && store.counts().generations === 0) {
      store.close();
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${store.path}${suffix}`, { force: true });
    }
    throw err;
  } finally {
    store.close();
  }
}
