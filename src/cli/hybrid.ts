// `thinkwhen hybrid`: the hybrid model on one question or on a problem set into a run store.
// The CLI composes the stages: prompts (src/experiments/prompts.ts), problem sets and grading as
// `thinkwhen run` does (src/experiments/datasets.ts, gradeAll), the hybrid loop (src/hybrid/).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, isAbsolute, resolve } from 'node:path';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import type { DatasetInfo, Problem } from '../eval/datasets.ts';
import { type RunConfig, RunStore } from '../eval/store.ts';
import { type Grader, NAMED_DATASETS } from '../experiments/datasets.ts';
import { checkPromptSpec, promptIds } from '../experiments/prompts.ts';
import { checkSampling, gradeAll, MAX_SAMPLES, type Sampling } from '../experiments/run.ts';
import {
  collectResults,
  formatStats,
  type HybridEvent,
  type HybridOptions,
  type HybridPair,
  type HybridProblem,
  type HybridResult,
  type HybridVectors,
  hybridGenerate,
  hybridStats,
  noVectors,
  PAPER_GRID,
  POLICIES,
  referenceGenerate,
  type TokenRecord,
} from '../hybrid/index.ts';
import { organismModelPaths } from '../organism/index.ts';
import { fileSha256, loadVectorSet } from '../steer/vector-set.ts';
import { loadSae, type TopKSae } from '../taxonomy/sae.ts';
import { type DatasetValues, datasetOptions, loadDatasetOption } from './dataset-options.ts';
import { choice, defineCommand, flag, int, ints, MAX_TOKENS, num, nums, text, threads } from './options.ts';

/** Longest window a grid may hold (positions back from the end of the text). */
const MAX_WINDOW = 1 << 20;

/** A path from a manifest, relative to the manifest's directory when not absolute. */
const fromManifest = (dir: string, p: unknown): string | undefined =>
  typeof p === 'string' && p ? (isAbsolute(p) ? p : resolve(dir, p)) : undefined;

function mustExist(path: string, what: string, fix: string): string {
  if (!existsSync(path)) throw new ThinkwhenError('FILE_NOT_FOUND', `${what} not found: ${path}`, fix);
  return path;
}

/** One question, or a problem set with the graders `thinkwhen run` scores it by. */
interface Problems {
  items: Problem[];
  dataset: DatasetInfo | null;
  graders: Grader[];
}

export const command = defineCommand({
  name: 'hybrid',
  summary: 'the hybrid model: base model steered where the thinking model disagrees (token level)',
  usage: '--vectors DIR (--question TEXT | --dataset NAME|FILE --out RUN.sqlite) [options]',
  description: `The hybrid model of "Base Models Know How to Reason, Thinking Models Learn When"
(docs/hybrid.md). A base model writes the answer; a thinking model reads the same
text and, at every token, says what it would write next:

  agree     both models' greedy next tokens are the same: the base model's token is emitted.
  disagree  the thinking model's SAE names the reasoning category k it is in (argmax of the
            encoder on its residual stream), and the base model is re-run once per cell
            (c, w) of a grid with c·(bias + v_k) added to its residual stream at the vector
            set's layer, over window w (0 = every position, -n = the last n). Each steered
            run proposes a token; the one the thinking model finds most likely is emitted
            (the first in grid order on ties). Steering is not kept for later tokens.

About 12 % of the tokens disagree in the paper (the "steered" share the command prints).
--policy runs the paper's ablations and other controls instead (docs/hybrid.md "Policies").
The fast loop emits the same tokens as the paper's algorithm taken literally (--reference,
batch 1, no KV cache), only far faster: KV caches, many problems per decode, forked windows,
speculative lockstep.

Inputs: --vectors DIR alone is enough for a set from \`thinkwhen vectors train\`: its manifest
names the base model, the thinking model, and the SAE with its layer. --organism takes the
shipped organism pair, prompted on both sides with its ChatML template.

Prompts: the base model gets the paper's plain-text prompt ("Task: Answer the question
below. Explain your reasoning step by step. ... Step by step answer:"), the thinking model
its chat template (as \`thinkwhen run\`).

A problem set (--dataset) goes into a run store (--out, SQLite) graded as \`thinkwhen run\`
grades (GSM8K: the flexible rule, the headline, and the strict one; otherwise 'math';
docs/grader.md), one generation per problem and sample with its per-token records. It is
resumable: rerunning the same command skips what is stored; Ctrl-C stores nothing half-done.
Read it with \`thinkwhen report\`.

Sampling (pass@k): --samples N --temperature T draws, where the paper's rule would take the
base model's argmax, from softmax(logits / T): the token emitted at an agreement and each
steered candidate. The gate still compares greedy tokens and the thinking model still picks
the candidate. Sample i of a problem draws the same tokens in every run (--seed).`,
  options: {
    vectors: text({
      arg: 'DIR',
      help: 'steering vector set (thinkwhen vectors train / import); required except for --policy selection_only and oracle',
    }),
    base: text({ arg: 'FILE', help: "base model GGUF (default: the vector set manifest's model)" }),
    thinking: text({ arg: 'FILE', help: "thinking model GGUF (default: the one the vector set's SAE was trained on)" }),
    taxonomy: text({
      arg: 'DIR',
      help: "taxonomy whose selected SAE names the categories (default: the vector set's)",
    }),
    sae: text({ arg: 'FILE', help: 'an SAE file instead (.safetensors from thinkwhen taxonomy train)' }),
    'sae-layer': int({
      arg: 'L',
      help: "thinking-model layer the SAE reads (default: the SAE's or the taxonomy's)",
      min: 0,
      max: 4095,
    }),
    organism: flag('the shipped organism pair; both models prompted with their ChatML template'),
    question: text({ arg: 'TEXT', help: 'one question: prints the answer and the statistics (no store needed)' }),
    ...datasetOptions('with --out: a run store graded as `thinkwhen run` does'),
    policy: choice({
      arg: 'P',
      help: "paper: the rule above. Controls: only_bias (c·bias alone), random_firing (a random category), random_vectors (random unit vectors, bias kept), norm_random (random vectors of the trained norms, bias kept), selection_only (no steering: the thinking model picks among the base model's top tokens), pure_steering (one cell, no guardrail), oracle (the thinking model's token: an upper bound)",
      choices: POLICIES,
      default: 'paper',
    }),
    coefficients: nums({
      help: `coefficients c of the grid, the outer loop (default ${PAPER_GRID.coefficients.join(',')}: the paper's 1.5B/8B/14B grid)`,
      min: -1e6,
      max: 1e6,
      example: '0.1,0.5,1',
    }),
    windows: ints({
      help: `windows w of the grid, the inner loop: 0 = every position, prompt included; -n = the last n positions (default ${PAPER_GRID.windows.join(',')}; write --windows=-1,-15 when the list starts with -)`,
      min: -MAX_WINDOW,
      max: 0,
      example: '0,-1,-15',
    }),
    coefficient: num({
      arg: 'C',
      help: "pure_steering: its one coefficient (default: the grid's largest)",
      min: -1e6,
      max: 1e6,
    }),
    window: int({
      arg: 'W',
      help: 'pure_steering: its one window (default 0; write --window=-15)',
      min: -MAX_WINDOW,
      max: 0,
    }),
    'missing-vector': choice({
      help: "a category the SAE can pick but the set has no vector for: refuse to start (error), or steer with c·bias alone and mark those tokens (bias, the paper's silent fallback made visible); default bias with --organism, else error",
      choices: ['error', 'bias'],
    }),
    gate: choice({
      help: "how the two greedy tokens are compared: ids when the vocabularies are proven identical, else their text (auto); the paper's raw ids (ids); text (strings)",
      choices: ['auto', 'ids', 'strings'],
      default: 'auto',
    }),
    'max-tokens': int({ help: 'generated-token cap', min: 1, max: MAX_TOKENS, default: 2000 }),
    'base-prompt': text({
      arg: 'SPEC',
      help: 'paper (default; the organism: chat), chat (the chat template), or a template with {question} or {chat}',
    }),
    'thinking-prompt': text({ arg: 'SPEC', help: 'chat (default), paper, or a template, e.g. "{chat}<think>\\n"' }),
    samples: int({
      help: 'samples per problem, for pass@k (needs --temperature > 0)',
      min: 1,
      max: MAX_SAMPLES,
      default: 1,
    }),
    temperature: num({ arg: 'T', help: '0 = greedy, the paper (see Sampling above)', min: 0, max: 100, default: 0 }),
    'top-p': num({ arg: 'P', help: 'nucleus sampling of the draws (1 = off)', min: 1e-6, max: 1, default: 1 }),
    seed: int({
      help: 'seed of the draws and of the random policies',
      min: 0,
      max: 0xffffffff,
      default: 0,
    }),
    speculate: int({
      arg: 'K',
      help: 'the base model drafts up to K tokens, the thinking model checks them in one decode; halved after a disagreement, doubled after a clean round (1 = plain lockstep; the tokens do not change)',
      min: 1,
      max: 64,
      default: 4,
    }),
    batch: int({
      help: 'problems decoded together (on a tiny model such as the organism 1 or 2 is fastest: docs/hybrid.md "Throughput on the organism")',
      min: 1,
      max: 64,
      default: 8,
    }),
    'steered-pool': int({
      help: "window-0 steered sequences kept between steps (default: what fits in 1 GiB; 0 = re-decode the whole text per candidate, the paper's cost)",
      min: 0,
      max: 4096,
    }),
    threads: threads('CPU threads (default: THINKWHEN_THREADS, else all cores)'),
    reference: flag(
      "the paper's algorithm literally: batch 1, no KV cache, every step recomputed (same tokens, for checks)",
    ),
    out: text({ arg: 'FILE', help: 'run store (SQLite); required with --dataset unless --json' }),
    name: text({ help: 'run name in reports (default "hybrid POLICY", plus -nN-tT when sampling)' }),
    trace: flag('with --question: print every steered token (base token → emitted token [category, cell])'),
    json: flag('print the results and statistics as JSON on stdout'),
  },
  examples: [
    'thinkwhen hybrid --vectors runs/vectors --question "Ann has 4 pens. She buys 5 more. How many?" --trace',
    'thinkwhen hybrid --vectors runs/vectors --dataset gsm8k --out runs/hybrid-gsm8k.sqlite',
    'thinkwhen hybrid --vectors runs/vectors --dataset math500 --policy only_bias --out runs/only-bias.sqlite',
    'thinkwhen hybrid --organism --vectors runs/organism/vectors --dataset organism --limit 50 --out runs/h.sqlite',
    'thinkwhen hybrid --organism --vectors runs/organism/vectors --dataset organism --samples 8 --temperature 0.6 --out runs/h8.sqlite',
    'thinkwhen hybrid --vectors runs/vectors --question "What is 7·8?" --coefficients 0.5,1 --windows=0,-15 --reference',
    'thinkwhen report runs/hybrid-gsm8k.sqlite',
  ],
  epilogue: `Exit status: 0 done; 2 a bad option or input (nothing generated); 130 interrupted (finished
problems are stored; rerun the same command to continue).`,
  async run({ values }) {
    const policy = values.policy;
    const needsVectors = policy !== 'selection_only' && policy !== 'oracle';
    if ((values.question === undefined) === (values.dataset === undefined)) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        'give exactly one of --question and --dataset',
        '--question "..." for one question, --dataset gsm8k|math500|organism|FILE for a problem set',
      );
    }
    if (values.question !== undefined && !values.question.trim()) {
      throw new ThinkwhenError('BAD_ARGUMENT', '--question is empty', 'pass the question text');
    }
    if (!values.vectors && needsVectors) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        `--vectors is required for policy ${policy}`,
        'pass the directory `thinkwhen vectors train` wrote',
      );
    }
    if (values.dataset !== undefined && !values.out && !values.json) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        'a dataset run needs --out (a resumable run store) or --json',
        'add --out runs/hybrid.sqlite',
      );
    }
    const sampling: Sampling = {
      samples: values.samples,
      temperature: values.temperature,
      topP: values['top-p'],
      seed: values.seed,
    };
    checkSampling(sampling);
    if (values.question !== undefined && sampling.samples > 1) {
      throw new ThinkwhenError('BAD_ARGUMENT', '--samples needs --dataset', 'sample one question with --temperature');
    }
    const basePrompt = values['base-prompt'] ?? (values.organism ? 'chat' : 'paper');
    const thinkingPrompt = values['thinking-prompt'] ?? 'chat';
    checkPromptSpec(basePrompt);
    checkPromptSpec(thinkingPrompt);

    // models, SAE and vectors: explicit options first, then the vector set's manifest
    const manifest = values.vectors ? await peekManifest(values.vectors) : null;
    const setSae = (manifest?.sae ?? null) as Record<string, unknown> | null;
    const organism = values.organism ? organismModelPaths() : null;
    const basePath =
      values.base ?? organism?.base ?? (manifest ? fromManifest(values.vectors!, manifest.model?.file) : undefined);
    const thinkingPath =
      values.thinking ?? organism?.thinking ?? (setSae ? fromManifest(values.vectors!, setSae.thinking) : undefined);
    if (!basePath) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        'no base model',
        'pass --base FILE (or --vectors DIR whose manifest names it, or --organism)',
      );
    }
    if (!thinkingPath) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        'no thinking model',
        'pass --thinking FILE (or --vectors DIR whose manifest names it, or --organism)',
      );
    }
    mustExist(basePath, 'base model', 'pass --base FILE');
    mustExist(thinkingPath, 'thinking model', 'pass --thinking FILE');
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
      policy,
      grid: {
        coefficients: values.coefficients ?? PAPER_GRID.coefficients,
        windows: values.windows ?? PAPER_GRID.windows,
      },
      maxTokens: values['max-tokens'],
      gate: values.gate,
      temperature: sampling.temperature,
      topP: sampling.topP,
      seed: sampling.seed,
      missingVector: values['missing-vector'] ?? (values.organism ? 'bias' : 'error'),
      pureCoefficient: values.coefficient,
      pureWindow: values.window,
      speculate: values.speculate,
      batch: values.batch,
      steeredPool: values['steered-pool'],
      threads: values.threads,
    };

    const base = await Model.load(basePath);
    let thinking: Model | null = null;
    let store: RunStore | null = null;
    const abort = new AbortController();
    const onSigint = () => abort.abort();
    process.once('SIGINT', onSigint);
    try {
      thinking = await Model.load(thinkingPath);
      let vectors: HybridVectors = noVectors();
      if (values.vectors) {
        const set = await loadVectorSet(values.vectors, base);
        for (const w of set.warnings) console.error(`thinkwhen hybrid: warning: ${w}`);
        vectors = set;
      }
      const pair: HybridPair = { base, thinking, sae, saeLayer, vectors };
      const encode = (p: { id: string; question: string }, sample: number): HybridProblem => ({
        id: p.id,
        sample,
        prompt: {
          base: promptIds(base, basePrompt, p.question),
          thinking: promptIds(thinking!, thinkingPrompt, p.question),
        },
      });
      let todo: HybridProblem[] = problems.items.map((p) => encode(p, 0));
      if (values.out) {
        const config = await runConfig(values, o, sampling, problems.graders, {
          basePath,
          thinkingPath,
          saePath,
          saeLayer,
          basePrompt,
          thinkingPrompt,
        });
        store = RunStore.open(values.out, { config, dataset: problems.dataset ?? undefined });
        const byId = new Map(problems.items.map((p) => [p.id, p]));
        const pending = store.pending(problems.items, sampling.samples);
        const total = problems.items.length * sampling.samples;
        todo = pending.map((x) => encode(byId.get(x.problem.id)!, x.sampleIndex));
        if (todo.length < total) {
          console.error(`thinkwhen hybrid: ${total - todo.length} of ${total} generations already in ${values.out}`);
        }
      } else if (sampling.samples > 1) {
        todo = problems.items.flatMap((p) => Array.from({ length: sampling.samples }, (_, s) => encode(p, s)));
      }
      const options = { ...o, signal: abort.signal };
      const events = values.reference ? referenceGenerate(pair, todo, options) : hybridGenerate(pair, todo, options);
      const golds = new Map(problems.items.map((p) => [p.id, p.answer]));
      const results = await consume(events, todo.length, {
        store,
        golds,
        graders: problems.graders,
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
});

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
  values: { taxonomy?: string; sae?: string; 'sae-layer'?: number },
  setSae: Record<string, unknown> | null,
  vectorsDir: string | undefined,
): Promise<{ sae: TopKSae; saeLayer: number; saePath: string }> {
  let saePath: string | undefined;
  let layer = values['sae-layer'];
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

async function readProblems(values: DatasetValues & { question?: string; dataset?: string }): Promise<Problems> {
  if (values.question !== undefined) {
    return { items: [{ id: 'question', question: values.question, answer: '', meta: {} }], dataset: null, graders: [] };
  }
  const name = values.dataset!;
  if (!(NAMED_DATASETS as readonly string[]).includes(name) && !existsSync(name)) {
    throw new ThinkwhenError(
      'FILE_NOT_FOUND',
      `--dataset ${name} is neither ${NAMED_DATASETS.join(', ')} nor a file`,
      'name a dataset or give the path of a JSONL/parquet file',
    );
  }
  const d = await loadDatasetOption(name, values);
  if (d.problems.length === 0) {
    throw new ThinkwhenError('NO_PROBLEMS', `the problem set ${d.info.name} is empty`, 'check the file or --limit');
  }
  return { items: d.problems, dataset: d.info, graders: d.graders };
}

/** What makes two hybrid runs comparable (speed options are left out: they do not change the tokens). */
async function runConfig(
  values: { name?: string; vectors?: string },
  o: HybridOptions,
  sampling: Sampling,
  graders: Grader[],
  files: {
    basePath: string;
    thinkingPath: string;
    saePath: string;
    saeLayer: number;
    basePrompt: string;
    thinkingPrompt: string;
  },
): Promise<RunConfig> {
  const model = async (p: string) => ({ file: basename(p), sha256: await fileSha256(p) });
  const saeFile = `${files.saePath.replace(/\.(safetensors|json)$/, '')}.safetensors`;
  const sampled = sampling.samples > 1 || sampling.temperature > 0;
  return {
    name: values.name ?? `hybrid ${o.policy}${sampled ? `-n${sampling.samples}-t${sampling.temperature}` : ''}`,
    role: 'hybrid',
    system: 'hybrid',
    samplesPerProblem: sampling.samples,
    sampling: { temperature: sampling.temperature, topP: sampling.topP, seed: sampling.seed },
    grader: graders[0]?.name ?? null,
    graders: graders.map((g) => g.name),
    base: await model(files.basePath),
    thinking: await model(files.thinkingPath),
    sae: { file: basename(saeFile), sha256: await fileSha256(saeFile), layer: files.saeLayer },
    vectors: values.vectors
      ? { dir: basename(resolve(values.vectors)), manifest: await fileSha256(resolve(values.vectors, 'manifest.json')) }
      : null,
    policy: o.policy,
    grid: o.grid,
    maxTokens: o.maxTokens,
    gate: o.gate,
    basePrompt: files.basePrompt,
    thinkingPrompt: files.thinkingPrompt,
    missingVector: o.missingVector,
    pure: o.policy === 'pure_steering' ? { coefficient: o.pureCoefficient ?? null, window: o.pureWindow ?? 0 } : null,
  };
}

/** Drains the events: progress on stderr, each finished generation graded into the store. */
async function consume(
  events: AsyncGenerator<HybridEvent>,
  total: number,
  ctx: {
    store: RunStore | null;
    golds: Map<string, string>;
    graders: Grader[];
    trace: boolean;
    pair: HybridPair;
  },
): Promise<HybridResult[]> {
  let done = 0;
  return collectResults(
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
          const steered = r.records.filter((x) => x.steered).length;
          // an interrupted generation is not stored: the rerun generates it again
          if (ctx.store && r.finishReason !== 'aborted') {
            ctx.store.recordGeneration({
              problemId: r.id,
              sampleIndex: r.sample,
              text: r.text,
              promptTokens: r.promptTokens.base,
              completionTokens: r.records.length,
              tokens: r.tokens,
              annotations: { format: 'thinkwhen-hybrid/1', promptTokens: r.promptTokens, records: r.records },
              steeredTokens: steered,
              finishReason: r.finishReason,
              startedAt: r.startedAt,
              finishedAt: r.finishedAt,
              grades: gradeAll(ctx.graders, ctx.golds.get(r.id) ?? '', r.text),
            });
          }
          const sample = r.sample > 0 ? ` sample ${r.sample}` : '';
          const line = `[${done}/${total}] ${r.id}${sample}: ${r.records.length} tokens, ${steered} steered (${((100 * steered) / Math.max(1, r.records.length)).toFixed(1)} %), ${r.finishReason}, ${((r.finishedAt - r.startedAt) / 1000).toFixed(1)} s`;
          if (total > 1 || ctx.store) console.error(line);
        }
        yield ev;
      }
    })(),
  );
}

function storedResults(store: RunStore): { id: string; records: TokenRecord[] }[] {
  const out = [];
  for (const g of store.generations()) {
    const a = g.annotations as { records?: TokenRecord[] } | null;
    if (a?.records) out.push({ id: g.problemId, records: a.records });
  }
  return out;
}
