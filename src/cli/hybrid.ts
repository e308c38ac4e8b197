import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { gradeResponse } from '../eval/answer/index.ts';
import { type DatasetInfo, loadDataset, type Problem } from '../eval/datasets.ts';
import { RunStore } from '../eval/store.ts';
import {
  collectResults,
  formatStats,
  type Grid,
  type HybridEvent,
  type HybridOptions,
  type HybridPair,
  type HybridResult,
  type HybridVectors,
  hybridGenerate,
  hybridStats,
  PAPER_GRID,
  POLICIES,
  type PolicyName,
  referenceGenerate,
  type TokenRecord,
} from '../hybrid/index.ts';
import { organismModelPaths } from '../organism/index.ts';
import { fileSha256, loadVectorSet } from '../steer/vector-set.ts';
import { loadSae, type TopKSae } from '../taxonomy/sae.ts';
import { readQuestionsJsonl } from '../traces/generate.ts';
import { int, oneOf } from './args.ts';
import type { Command } from './command.ts';

const help = `thinkwhen hybrid --vectors DIR (--question TEXT | --dataset NAME | --questions FILE) [--out RUN.sqlite]

The hybrid model (docs/hybrid.md, method.md §2.7): the base model generates
greedily, the thinking model reads the same text; at every token where their
greedy tokens differ, the base model is steered with c·(bias + v_k) at the
vector set's layer for every (coefficient c, window w) of the grid, k the
thinking model's SAE category, and the candidate the thinking model finds most
likely is emitted. Exact and fast: KV caches, batched problems, speculative
lockstep; --reference runs the paper's algorithm literally (same tokens, far
slower) for checks.

Inputs (defaults come from the vector set's manifest: its base model, and the
taxonomy and thinking model it was trained from):
  --vectors DIR          steering vectors (thinkwhen vectors train / import)
  --base FILE            base model GGUF
  --thinking FILE        thinking model GGUF
  --taxonomy DIR         taxonomy whose selected SAE names the categories, or
  --sae FILE             an SAE file, with --sae-layer L (thinking-model layer)
  --organism             the shipped organism pair (both prompts: its ChatML template)

Questions (one of):
  --question TEXT        one question (printed with its steering, no store needed)
  --dataset NAME         gsm8k, math500, math (--split, --data-dir, --path FILE)
  --questions FILE       JSONL with "question" and optional "id" and "answer"
  --start N, --limit N   slice (default: all); the paper: gsm8k first 500, math500 all

The algorithm:
  --policy P             ${POLICIES.join(', ')}
                         (default paper; docs/hybrid.md "Policies")
  --coefficients LIST    default ${PAPER_GRID.coefficients.join(',')} (the 1.5B/8B/14B grid)
  --windows=LIST         default ${PAPER_GRID.windows.join(',')}; 0 = every position, -n = last n
                         (write values that start with '-' after '=')
  --coefficient C, --window=W   pure_steering's one cell (default: largest coefficient, window 0)
  --missing-vector M     error (default) | bias: a latent without a vector steers with c·bias alone
  --gate G               auto (ids when the vocabularies are identical, else token text) | ids | strings
  --max-tokens N         generated-token cap (default 2000)
  --base-prompt SPEC     paper (default: the paper's PROMPT(q)) | chat | a template with {question}
                         or {chat} (the rendered chat template)
  --thinking-prompt SPEC chat (default) | paper | a template, e.g. '{chat}<think>\\n'
  --seed N               seed of the random policies (default 0)

Speed (the tokens do not change):
  --speculate K          base model drafts K tokens per thinking check (default 4; 1 = plain lockstep)
  --batch N              problems decoded together (default 8)
  --steered-pool N       window-0 steered sequences kept (default 16)
  --threads N            CPU threads (default: THINKWHEN_THREADS or all cores)
  --reference            the paper's algorithm literally: batch 1, no KV cache

Output:
  --out FILE             run store (SQLite): one generation per problem with its
                         per-token records; resumable: a rerun skips finished problems
  --name LABEL           run label (default "hybrid <policy>")
  --trace                print every steered token (with --question)
  --json                 the results and statistics as JSON

Examples:
  thinkwhen hybrid --vectors runs/vectors --question "Ann has 4 pens. She buys 5 more. How many?"
  thinkwhen hybrid --vectors runs/vectors --dataset gsm8k --limit 500 --out runs/hybrid-gsm8k.sqlite
  thinkwhen hybrid --organism --vectors runs/organism/vectors --dataset organism --out runs/h.sqlite
  thinkwhen hybrid --vectors runs/vectors --dataset math500 --policy only_bias --out runs/only-bias.sqlite
`;

const list = (v: string | undefined, name: string): number[] | undefined => {
  if (v === undefined) return undefined;
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (!xs.length || xs.some((x) => !Number.isFinite(x))) {
    throw new ThinkwhenError('BAD_ARGUMENT', `--${name} expects comma-separated numbers, got '${v}'`);
  }
  return xs;
};

const num = (v: string | undefined, name: string): number | undefined => {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x)) throw new ThinkwhenError('BAD_ARGUMENT', `--${name} expects a number, got '${v}'`);
  return x;
};

/** A path from a manifest, relative to the manifest's directory when not absolute. */
const fromManifest = (dir: string, p: unknown): string | undefined =>
  typeof p === 'string' && p ? (isAbsolute(p) ? p : resolve(dir, p)) : undefined;

function mustExist(path: string, what: string, fix: string): string {
  if (!existsSync(path)) throw new ThinkwhenError('FILE_NOT_FOUND', `${what} not found: ${path}`, fix);
  return path;
}

/** A vector set with no vectors, for the policies that steer nothing (selection_only, oracle). */
function noVectors(): HybridVectors {
  return {
    layer: 0,
    applyHook: 'blocks.0.hook_resid_post',
    bias: null,
    vectors: new Map(),
    titles: new Map(),
    skipped: new Map(),
  };
}

export const command: Command = {
  name: 'hybrid',
  summary: 'the hybrid model: base model steered where the thinking model disagrees (token level)',
  help: () => help,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        vectors: { type: 'string' },
        base: { type: 'string' },
        thinking: { type: 'string' },
        taxonomy: { type: 'string' },
        sae: { type: 'string' },
        'sae-layer': { type: 'string' },
        organism: { type: 'boolean', default: false },
        question: { type: 'string' },
        dataset: { type: 'string' },
        questions: { type: 'string' },
        path: { type: 'string' },
        split: { type: 'string' },
        'data-dir': { type: 'string' },
        start: { type: 'string' },
        limit: { type: 'string' },
        policy: { type: 'string' },
        coefficients: { type: 'string' },
        windows: { type: 'string' },
        coefficient: { type: 'string' },
        window: { type: 'string' },
        'missing-vector': { type: 'string' },
        gate: { type: 'string' },
        'max-tokens': { type: 'string' },
        'base-prompt': { type: 'string' },
        'thinking-prompt': { type: 'string' },
        seed: { type: 'string' },
        speculate: { type: 'string' },
        batch: { type: 'string' },
        'steered-pool': { type: 'string' },
        threads: { type: 'string' },
        reference: { type: 'boolean', default: false },
        out: { type: 'string' },
        name: { type: 'string' },
        trace: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
    });
    const policy = oneOf(values.policy, 'policy', POLICIES) ?? 'paper';
    const needsVectors = policy !== 'selection_only' && policy !== 'oracle';
    const sources = [values.question, values.dataset ?? values.path, values.questions].filter((x) => x !== undefined);
    if (sources.length !== 1) {
      throw new ThinkwhenError('BAD_ARGUMENT', 'give exactly one of --question, --dataset (or --path), --questions');
    }
    if (!values.vectors && needsVectors) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        `--vectors is required for policy ${policy}`,
        'pass the directory `thinkwhen vectors train` wrote',
      );
    }
    if (values.question === undefined && !values.out && !values.json) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        'a dataset run needs --out (a resumable run store) or --json',
        'add --out runs/hybrid.sqlite',
      );
    }

    // models, SAE and vectors: explicit options first, then the vector set's manifest
    const manifest = values.vectors ? await peekManifest(values.vectors) : null;
    const setSae = (manifest?.sae ?? null) as Record<string, unknown> | null;
    const organism = values.organism ? organismModelPaths() : null;
    const basePath =
      values.base ?? organism?.base ?? (manifest ? fromManifest(values.vectors!, manifest.model?.file) : undefined);
    const thinkingPath =
      values.thinking ?? organism?.thinking ?? (setSae ? fromManifest(values.vectors!, setSae.thinking) : undefined);
    if (!basePath)
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        'no base model',
        'pass --base FILE (or --vectors DIR whose manifest names it)',
      );
    if (!thinkingPath) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        'no thinking model',
        'pass --thinking FILE (or --vectors DIR whose manifest names it)',
      );
    }
    const { sae, saeLayer, saePath } = await resolveSae(values, setSae, values.vectors);
    if (typeof setSae?.k === 'number' && setSae.k !== sae.latents) {
      throw new ThinkwhenError(
        'BAD_HYBRID_PAIR',
        `the vectors were trained for a ${setSae.k}-latent SAE but ${saePath} has ${sae.latents} latents: the latent ids would not match`,
        'pass the SAE of the taxonomy the vectors were trained from (or omit --sae/--taxonomy to use it)',
      );
    }

    const problems = await readProblems(values);
    const o: HybridOptions = {
      policy: policy as PolicyName,
      grid: grid(values),
      maxTokens: int(values['max-tokens'], 'max-tokens', 1),
      gate: oneOf(values.gate, 'gate', ['auto', 'ids', 'strings'] as const),
      basePrompt: values['base-prompt'] ?? (organism ? 'chat' : undefined),
      thinkingPrompt: values['thinking-prompt'] ?? (organism ? 'chat' : undefined),
      missingVector: oneOf(values['missing-vector'], 'missing-vector', ['error', 'bias'] as const),
      seed: int(values.seed, 'seed'),
      pureCoefficient: num(values.coefficient, 'coefficient'),
      pureWindow: num(values.window, 'window'),
      speculate: int(values.speculate, 'speculate', 1) ?? 4,
      batch: int(values.batch, 'batch', 1),
      steeredPool: int(values['steered-pool'], 'steered-pool', 1),
      threads: int(values.threads, 'threads', 1),
    };

    const base = await Model.load(mustExist(basePath, 'base model', 'pass --base FILE'));
    let thinking: Model | null = null;
    let store: RunStore | null = null;
    const abort = new AbortController();
    const onSigint = () => abort.abort();
    process.once('SIGINT', onSigint);
    try {
      thinking = await Model.load(mustExist(thinkingPath, 'thinking model', 'pass --thinking FILE'));
      let vectors: HybridVectors = noVectors();
      if (values.vectors) {
        const set = await loadVectorSet(values.vectors, base);
        for (const w of set.warnings) console.error(`thinkwhen hybrid: warning: ${w}`);
        vectors = set;
      }
      const pair: HybridPair = { base, thinking, sae, saeLayer, vectors };
      let todo = problems.items;
      if (values.out) {
        store = RunStore.open(values.out, {
          config: await runConfig(values, o, { basePath, thinkingPath, saePath, saeLayer }),
          dataset: problems.dataset ?? undefined,
        });
        const pending = new Set(store.pending(problems.items).map((p) => p.problem.id));
        todo = problems.items.filter((p) => pending.has(p.id));
        if (todo.length < problems.items.length) {
          console.error(
            `thinkwhen hybrid: ${problems.items.length - todo.length} of ${problems.items.length} problems already in ${values.out}`,
          );
        }
      }
      const options = { ...o, signal: abort.signal };
      const events = values.reference ? referenceGenerate(pair, todo, options) : hybridGenerate(pair, todo, options);
      const results = await consume(events, todo, {
        store,
        trace: values.trace && values.question !== undefined,
        pair,
      });
      const all = store ? storedResults(store) : results.map((r) => ({ id: r.id, records: r.records }));
      const stats = hybridStats(all);
      if (values.json) console.log(JSON.stringify({ results, stats }));
      else {
        if (values.question !== undefined && results[0]) console.log(results[0].text);
        console.error(formatStats(stats));
      }
      if (abort.signal.aborted) {
        console.error(
          'thinkwhen hybrid: interrupted; finished problems are stored, rerun the same command to continue',
        );
        return 130;
      }
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
      store?.close();
      thinking?.free();
      base.free();
    }
  },
};

async function peekManifest(dir: string): Promise<{ model?: { file?: string }; sae?: unknown } | null> {
  const path = resolve(dir, 'manifest.json');
  if (!existsSync(path)) return null; // loadVectorSet reports it properly
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
}

async function resolveSae(
  values: { taxonomy?: string; sae?: string; 'sae-layer'?: string },
  setSae: Record<string, unknown> | null,
  vectorsDir: string | undefined,
): Promise<{ sae: TopKSae; saeLayer: number; saePath: string }> {
  let saePath: string | undefined;
  let layer = int(values['sae-layer'], 'sae-layer');
  if (values.sae) saePath = values.sae;
  else if (values.taxonomy) {
    const { readSelection } = await import('../taxonomy/selection.ts');
    const sel = await readSelection(values.taxonomy);
    saePath = fromManifest(values.taxonomy, sel.sae);
    layer ??= sel.layer;
  } else if (setSae && vectorsDir) {
    saePath = fromManifest(vectorsDir, setSae.sae);
    if (typeof setSae.layer === 'number') layer ??= setSae.layer;
  }
  if (!saePath) {
    throw new ThinkwhenError('BAD_ARGUMENT', 'no SAE', 'pass --taxonomy DIR, or --sae FILE --sae-layer L');
  }
  const file = saePath.replace(/\.(safetensors|json)$/, '');
  mustExist(`${file}.safetensors`, 'SAE', 'pass --sae FILE (a .safetensors written by `thinkwhen taxonomy train`)');
  const sae = await loadSae(file);
  layer ??= typeof sae.config.layer === 'number' ? sae.config.layer : undefined;
  if (layer === undefined) {
    throw new ThinkwhenError('BAD_ARGUMENT', `${saePath} does not say which layer it reads`, 'pass --sae-layer L');
  }
  return { sae, saeLayer: layer, saePath };
}

function grid(values: { coefficients?: string; windows?: string }): Grid {
  return {
    coefficients: list(values.coefficients, 'coefficients') ?? PAPER_GRID.coefficients,
    windows: list(values.windows, 'windows') ?? PAPER_GRID.windows,
  };
}

async function readProblems(values: {
  question?: string;
  questions?: string;
  dataset?: string;
  path?: string;
  split?: string;
  'data-dir'?: string;
  start?: string;
  limit?: string;
}): Promise<{ items: Problem[]; dataset: DatasetInfo | null }> {
  const start = int(values.start, 'start') ?? 0;
  const limit = int(values.limit, 'limit');
  if (values.question !== undefined) {
    if (!values.question.trim()) throw new ThinkwhenError('BAD_ARGUMENT', '--question is empty');
    return { items: [{ id: 'question', question: values.question, answer: '', meta: {} }], dataset: null };
  }
  if (values.questions) {
    const qs = await readQuestionsJsonl(values.questions, {});
    const items = qs.slice(start, limit === undefined ? undefined : start + limit).map((q) => ({
      id: q.id,
      question: q.question,
      answer: typeof q.meta?.answer === 'string' ? q.meta.answer : '',
      meta: q.meta ?? {},
    }));
    return { items, dataset: null };
  }
  const d = await loadDataset({
    dataset: values.dataset,
    path: values.path,
    split: values.split,
    dataDir: values['data-dir'],
    start,
    limit,
  });
  return { items: d.problems, dataset: d.info };
}

/** What makes two hybrid runs comparable (speed options are left out: they do not change the tokens). */
async function runConfig(
  values: { name?: string; vectors?: string },
  o: HybridOptions,
  files: { basePath: string; thinkingPath: string; saePath: string; saeLayer: number },
) {
  const model = async (p: string) => ({ file: basename(p), sha256: await fileSha256(p) });
  const saeFile = `${files.saePath.replace(/\.(safetensors|json)$/, '')}.safetensors`;
  return {
    name: values.name ?? `hybrid ${o.policy}`,
    role: 'hybrid',
    samplesPerProblem: 1,
    grader: 'math-verify',
    base: await model(files.basePath),
    thinking: await model(files.thinkingPath),
    sae: { file: basename(saeFile), sha256: await fileSha256(saeFile), layer: files.saeLayer },
    vectors: values.vectors
      ? { dir: basename(resolve(values.vectors)), manifest: await fileSha256(resolve(values.vectors, 'manifest.json')) }
      : null,
    policy: o.policy,
    grid: o.grid,
    maxTokens: o.maxTokens ?? 2000,
    gate: o.gate ?? 'auto',
    basePrompt: o.basePrompt ?? 'paper',
    thinkingPrompt: o.thinkingPrompt ?? 'chat',
    missingVector: o.missingVector ?? 'error',
    seed: o.seed ?? 0,
    pure: o.policy === 'pure_steering' ? { coefficient: o.pureCoefficient ?? null, window: o.pureWindow ?? 0 } : null,
  };
}

/** Drains the events: progress on stderr, each finished problem into the store. */
async function consume(
  events: AsyncGenerator<HybridEvent>,
  problems: Problem[],
  ctx: { store: RunStore | null; trace: boolean; pair: HybridPair },
): Promise<HybridResult[]> {
  const byId = new Map(problems.map((p) => [p.id, p]));
  let done = 0;
  const results = await collectResults(
    (async function* () {
      for await (const ev of events) {
        if (ev.type === 'token' && ctx.trace && ev.record.steered) {
          const r = ev.record;
          const base = JSON.stringify(ctx.pair.base.detokenize([r.baseGreedy]));
          const cell = r.coefficient !== undefined ? ` c ${r.coefficient} w ${r.window}` : '';
          console.error(
            `  step ${r.step}: ${base} → ${JSON.stringify(r.text)}  [${r.latent}: ${r.title ?? '?'}${cell}]`,
          );
        }
        if (ev.type === 'done') {
          done++;
          const r = ev.result;
          const p = byId.get(r.id)!;
          const steered = r.records.filter((x) => x.steered).length;
          // an interrupted problem is not stored: the rerun generates it again
          if (ctx.store && r.finishReason !== 'aborted') {
            const grade = p.answer ? gradeResponse(p.answer, r.text) : null;
            ctx.store.recordGeneration({
              problemId: r.id,
              sampleIndex: 0,
              text: r.text,
              promptTokens: r.promptTokens.base,
              completionTokens: r.records.length,
              tokens: r.tokens,
              annotations: { format: 'thinkwhen-hybrid/1', promptTokens: r.promptTokens, records: r.records },
              steeredTokens: steered,
              finishReason: r.finishReason,
              startedAt: r.startedAt,
              finishedAt: r.finishedAt,
              grades: grade ? [{ grader: 'math-verify', correct: grade.correct, extracted: grade.extracted }] : [],
            });
          }
          const line = `[${done}/${problems.length}] ${r.id}: ${r.records.length} tokens, ${steered} steered (${((100 * steered) / Math.max(1, r.records.length)).toFixed(1)} %), ${r.finishReason}, ${((r.finishedAt - r.startedAt) / 1000).toFixed(1)} s`;
          if (problems.length > 1 || ctx.store) console.error(line);
        }
        yield ev;
      }
    })(),
  );
  return results;
}

function storedResults(store: RunStore): { id: string; records: TokenRecord[] }[] {
  const out = [];
  for (const g of store.generations()) {
    const a = g.annotations as { records?: TokenRecord[] } | null;
    if (a?.records) out.push({ id: g.problemId, records: a.records });
  }
  return out;
}
