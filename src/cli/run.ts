import { parseArgs } from 'node:util';
import { ThinkwhenError } from '../errors.ts';
import type { AnswerFormat } from '../eval/datasets.ts';
import { wilson } from '../eval/metrics.ts';
import { parseShard, type Shard } from '../eval/store.ts';
import { loadRunDataset, NAMED_DATASETS, ORGANISM_TEST_COUNT } from '../experiments/datasets.ts';
import { getPreset, type PairPreset, PRESETS } from '../experiments/presets.ts';
import { type ProgressBar, progressBar } from '../experiments/progress.ts';
import { defaultRunName, defaultRunPath, runSystem, SYSTEMS, type SystemName } from '../experiments/run.ts';
import { int, oneOf } from './args.ts';
import type { Command } from './command.ts';

const help = `thinkwhen run --system base|thinking [--preset NAME] --dataset NAME|FILE [options]

Generate and grade one system of a model pair on one problem set, into a run
store (SQLite; read it with \`thinkwhen report\`). docs/experiments.md.

  base      the base model on the pair's base prompt (the paper's plain-text
            "Task: Answer the question below..." prompt; the organism's chat prompt)
  thinking  the thinking model on its own chat template

Greedy by default, capped at the pair's token limit (the paper: 2,000). With
--samples N --temperature T every problem is sampled N times, each sample
seeded by (--seed, problem id, sample index), so pass@k is reproducible and a
resumed or sharded run samples exactly what an uninterrupted one would.
Answers are graded by the rule-based grader (docs/grader.md): GSM8K with the
flexible rule (the headline) and the strict one, everything else with 'math'.

Resumable: each problem is stored as soon as it finishes; rerunning the same
command continues (Ctrl-C stops cleanly). A store refuses to resume with other
settings. Shardable: --shard i/n runs one n-th of the problems (by a hash of
the problem id); \`thinkwhen merge\` combines the shards.

Pair (--preset, default organism): the pair's models, prompts, token cap and the
hybrid's settings. The paper's five pairs name the GGUF files to download or
convert; point at them with --base/--thinking, or put them in --models DIR under
the preset's file names. The files are checked against the preset (architecture,
layers, width, tokenizer) before anything runs. --base/--thinking without
--preset run a custom pair, unchecked, with the paper's prompts.
  ${PRESETS.map((p) => `${p.name.padEnd(18)} ${p.summary}`).join('\n  ')}

Options:
  --system NAME        base or thinking (required)
  --preset NAME        model pair (default organism; see above)
  --base FILE          base model GGUF (default: the preset's file)
  --thinking FILE      thinking model GGUF (default: the preset's file)
  --models DIR         folder with the preset's files (default $THINKWHEN_MODELS_DIR, then ./models)
  --dataset NAME|FILE  gsm8k (first 500 of test, as the paper), math500, organism
                       (the organism's held-out test set, ${ORGANISM_TEST_COUNT} problems), or a JSONL/parquet
                       file (default: organism for the organism pairs)
  --limit N            only the first N problems (a quick look; its own default --out)
  --data-dir DIR       local copies of gsm8k/test.jsonl, math500/test.jsonl
                       (default $THINKWHEN_DATA_DIR, else downloaded from the hub once)
  --question-field F, --answer-field F, --id-field F, --answer-format raw|gsm8k|boxed
                       field mapping of a custom file (defaults question, answer, id, raw)
  --out FILE           run store (default runs/PAIR/DATASET[-N]/NAME.sqlite)
  --name NAME          run name in reports (default: the system, plus -nN-tT when sampling)
  --samples N          samples per problem (default 1)
  --temperature T      0 = greedy (default)
  --top-p P            nucleus sampling (default 1 = off)
  --seed N             sampling seed (default 0)
  --max-tokens N       generated-token cap (default: the preset's: 2000 for the paper's pairs)
  --prompt SPEC        paper, chat, or a template with {question} or {chat} (default: the preset's)
  --parallel N         problems decoded together (default 8)
  --threads N          CPU threads (default: THINKWHEN_THREADS or all cores)
  --shard i/n          run shard i of n
  --json               print the result as JSON on stdout

Examples:
  thinkwhen run --system base                       # the organism's base model, 500 held-out problems
  thinkwhen run --system thinking --limit 50
  thinkwhen run --system thinking --samples 16 --temperature 0.6    # for pass@1..16
  thinkwhen run --system base --preset qwen2.5-math-1.5b --base Qwen2.5-Math-1.5B.gguf --dataset gsm8k
  thinkwhen run --system thinking --preset qwen2.5-math-1.5b --models ~/gguf --dataset math500 --shard 2/4
  thinkwhen report runs/organism/organism/base.sqlite runs/organism/organism/thinking.sqlite
`;

/** The pair named by the options: a preset, checked; or a custom pair from explicit files. */
export function resolvePair(values: { preset?: string; base?: string; thinking?: string }): {
  preset: PairPreset;
  checked: boolean;
} {
  if (values.preset) return { preset: getPreset(values.preset), checked: true };
  if (values.base || values.thinking) {
    // A custom pair: the paper's prompts and cap, no shape check.
    const paper = getPreset('qwen2.5-math-1.5b');
    return { preset: { ...paper, name: 'custom', summary: 'a custom pair', modelsDir: null }, checked: false };
  }
  return { preset: getPreset('organism'), checked: true };
}

function number(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) {
    throw new ThinkwhenError('BAD_ARGUMENT', `--${name} expects a number, got '${v}'`);
  }
  return n;
}

export const command: Command = {
  name: 'run',
  summary: 'generate and grade base or thinking on a dataset into a run store (resumable, shardable)',
  help: () => help,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        system: { type: 'string' },
        preset: { type: 'string' },
        base: { type: 'string' },
        thinking: { type: 'string' },
        models: { type: 'string' },
        dataset: { type: 'string' },
        limit: { type: 'string' },
        'data-dir': { type: 'string' },
        'question-field': { type: 'string' },
        'answer-field': { type: 'string' },
        'id-field': { type: 'string' },
        'answer-format': { type: 'string' },
        out: { type: 'string' },
        name: { type: 'string' },
        samples: { type: 'string' },
        temperature: { type: 'string' },
        'top-p': { type: 'string' },
        seed: { type: 'string' },
        'max-tokens': { type: 'string' },
        prompt: { type: 'string' },
        parallel: { type: 'string' },
        threads: { type: 'string' },
        shard: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
    if (!values.system) {
      throw new ThinkwhenError('BAD_ARGUMENT', '--system is required', `pass --system ${SYSTEMS.join(' or ')}`);
    }
    const system = oneOf(values.system, 'system', SYSTEMS) as SystemName;
    const { preset, checked } = resolvePair(values);
    const organismPair = preset.modelsDir !== null;
    const datasetName = values.dataset ?? (organismPair ? 'organism' : undefined);
    if (!datasetName) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        '--dataset is required for this pair',
        `pass --dataset ${NAMED_DATASETS.join('|')} or a JSONL file`,
      );
    }
    const limit = int(values.limit, 'limit', 1);
    const dataset = await loadRunDataset({
      dataset: datasetName,
      limit,
      dataDir: values['data-dir'],
      fields: {
        question: values['question-field'],
        answer: values['answer-field'],
        id: values['id-field'],
      },
      answerFormat: oneOf(values['answer-format'], 'answer-format', ['raw', 'gsm8k', 'boxed'] as const) as
        | AnswerFormat
        | undefined,
    });
    const sampling = {
      samples: int(values.samples, 'samples', 1) ?? 1,
      temperature: number(values.temperature, 'temperature') ?? 0,
      topP: number(values['top-p'], 'top-p') ?? 1,
      seed: int(values.seed, 'seed', 0) ?? 0,
    };
    const shard: Shard | null = values.shard ? parseShard(values.shard) : null;
    const name = values.name ?? defaultRunName(system, sampling);
    const defaultCount =
      datasetName === 'gsm8k' || datasetName === 'math500'
        ? 500
        : datasetName === 'organism'
          ? ORGANISM_TEST_COUNT
          : null;
    let out = values.out ?? defaultRunPath(preset.name, dataset, name, defaultCount);
    if (!values.out && shard) out = out.replace(/\.sqlite$/, `.${shard.index}-of-${shard.count}.sqlite`);

    const controller = new AbortController();
    const onSigint = () => {
      process.stderr.write('\nstopping after the current decode (Ctrl-C again to kill)…\n');
      controller.abort();
      process.off('SIGINT', onSigint);
    };
    process.on('SIGINT', onSigint);
    let bar: ProgressBar | null = null;
    try {
      const r = await runSystem({
        system,
        preset,
        checked,
        modelFile: system === 'base' ? values.base : values.thinking,
        modelsDir: values.models,
        dataset,
        out,
        name,
        sampling,
        maxTokens: int(values['max-tokens'], 'max-tokens', 1),
        prompt: values.prompt,
        parallel: int(values.parallel, 'parallel', 1),
        threads: int(values.threads, 'threads', 1),
        shard,
        signal: controller.signal,
        onStart: (s) => {
          process.stderr.write(
            `run ${s.name}: ${s.model} on ${dataset.info.name} (${s.total} generations, ${s.done} stored) → ${s.path}\n`,
          );
          bar = progressBar(s.name, s.total, s.done);
        },
        onAdvance: (units, tokens) => bar?.advance(units, tokens),
      });
      (bar as ProgressBar | null)?.finish();
      const acc = wilson(r.correct, r.graded);
      const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
      if (values.json) {
        console.log(JSON.stringify({ ...r, accuracy: r.graded ? acc : null }, null, 2));
      } else {
        console.log(
          `${r.name}: ${r.graded}/${r.total} graded, accuracy ${r.graded ? `${pct(acc.p)} [${pct(acc.lo)}, ${pct(acc.hi)}]` : 'n/a'} (${dataset.graders[0].name}); ` +
            `${r.generated} generated now (${r.tokens} tokens, ${r.seconds.toFixed(1)} s), ${r.skipped} from before → ${r.path}`,
        );
      }
      if (r.interrupted) {
        console.error(`interrupted: ${r.generated} new generations stored; run the same command again to continue`);
        return 130;
      }
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};
