import { ThinkwhenError } from '../errors.ts';
import { wilson } from '../eval/metrics.ts';
import { resolveShard } from '../eval/shard.ts';
import type { Shard } from '../eval/store.ts';
import { NAMED_DATASETS, ORGANISM_TEST_COUNT, type RunDataset } from '../experiments/datasets.ts';
import { runHybrid } from '../experiments/hybrid.ts';
import { getPreset, type PairPreset, PRESETS } from '../experiments/presets.ts';
import { type ProgressBar, progressBar } from '../experiments/progress.ts';
import {
  DEFAULT_PARALLEL,
  defaultRunName,
  defaultRunPath,
  MAX_SAMPLES,
  type RunResult,
  runSystem,
  type Sampling,
} from '../experiments/run.ts';
import { POLICIES, type PolicyName } from '../hybrid/index.ts';
import { datasetOptions, loadDatasetOption } from './dataset-options.ts';
import { choice, defineCommand, flag, int, ints, MAX_TOKENS, num, nums, text, threads } from './options.ts';

export const RUN_SYSTEMS = ['base', 'thinking', 'hybrid'] as const;

/** The pair named by the options: a preset, checked; or a custom pair from explicit files. */
export function resolvePair(values: { preset?: string; base?: string; thinking?: string }): {
  preset: PairPreset;
  checked: boolean;
} {
  if (values.preset) return { preset: getPreset(values.preset), checked: true };
  if (values.base || values.thinking) {
    // A custom pair: the paper's prompts, cap and grid, no shape check.
    const paper = getPreset('qwen2.5-math-1.5b');
    return { preset: { ...paper, name: 'custom', summary: 'a custom pair', modelsDir: null }, checked: false };
  }
  return { preset: getPreset('organism'), checked: true };
}

/**
 * Ctrl-C, or SIGTERM from a job engine (Kubernetes, Slurm, systemd): stop after the current
 * decode, keep what is stored. A second signal kills as usual.
 */
export function stopOnSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const dispose = () => {
    for (const s of signals) process.off(s, onSignal);
  };
  function onSignal(name: NodeJS.Signals) {
    process.stderr.write(`\n${name}: stopping after the current decode (send it again to kill)…\n`);
    controller.abort();
    dispose();
  }
  for (const s of signals) process.on(s, onSignal);
  return { signal: controller.signal, dispose };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** One line of a finished run: accuracy with its interval, what was generated, where it is. */
export function resultLine(r: RunResult, grader: string): string {
  const acc = wilson(r.correct, r.graded);
  return (
    `${r.name}: ${r.graded}/${r.total} graded, accuracy ${r.graded ? `${pct(acc.p)} [${pct(acc.lo)}, ${pct(acc.hi)}]` : 'n/a'} (${grader}); ` +
    `${r.generated} generated now (${r.tokens} tokens, ${r.seconds.toFixed(1)} s), ${r.skipped} from before → ${r.path}`
  );
}

const options = {
  system: choice({
    arg: 'NAME',
    help: 'base, thinking or hybrid (required; see above)',
    choices: RUN_SYSTEMS,
  }),
  policy: choice({
    arg: 'P',
    help: `the hybrid's rule at a disagreement: ${POLICIES.join(', ')} (docs/hybrid.md "Policies"); with --system hybrid`,
    choices: POLICIES,
    default: 'paper',
  }),
  preset: choice({
    arg: 'NAME',
    help: 'model pair (default organism; listed above)',
    choices: PRESETS.map((p) => p.name),
  }),
  base: text({ arg: 'FILE', help: "base model GGUF (default: the preset's file)" }),
  thinking: text({ arg: 'FILE', help: "thinking model GGUF (default: the preset's file)" }),
  models: text({
    arg: 'DIR',
    help: "folder with the preset's files (default $THINKWHEN_MODELS_DIR, then ./models; the organism's are shipped)",
  }),
  vectors: text({
    arg: 'DIR',
    help: 'hybrid: the vector set (`thinkwhen vectors train`; the organism ships src/organism/models/vectors); not needed by selection_only and oracle',
  }),
  taxonomy: text({
    arg: 'DIR',
    help: "hybrid: taxonomy folder whose selection.json names the SAE (default: the SAE the vectors' manifest names)",
  }),
  sae: text({ arg: 'FILE', help: 'hybrid: an SAE .safetensors instead of --taxonomy' }),
  'sae-layer': int({
    arg: 'L',
    help: "hybrid: the thinking-model layer the SAE reads (default: the SAE's or the taxonomy's)",
    min: 0,
    max: 1024,
  }),
  coefficients: nums({
    arg: 'LIST',
    help: "hybrid: grid coefficients, outer loop (default: the preset's)",
    min: -1e6,
    max: 1e6,
    example: '1,2,4,8',
  }),
  windows: ints({
    arg: 'LIST',
    help: "hybrid: grid windows, inner loop: 0 = every position, -n = the last n; write --windows=0,-1,-15 (default: the preset's)",
    min: -1_000_000,
    max: 0,
    example: '0,-1,-15',
  }),
  coefficient: num({
    arg: 'C',
    help: "pure_steering's one coefficient (default: the grid's largest)",
    min: -1e6,
    max: 1e6,
  }),
  window: int({ arg: 'W', help: "pure_steering's one window (default 0; write --window=-1)", min: -1_000_000, max: 0 }),
  'missing-vector': choice({
    arg: 'M',
    help: 'hybrid: a latent without a vector is an error, or steers with c·bias alone (marked in the record); default bias for the organism pairs, else error',
    choices: ['error', 'bias'],
  }),
  ...datasetOptions('default: organism for the organism pairs'),
  out: text({ arg: 'FILE', help: 'run store (default runs/PAIR/DATASET[-N]/NAME.sqlite)' }),
  name: text({
    arg: 'NAME',
    help: 'run name in reports (default: the system, hybrid-POLICY for hybrids, plus -nN-tT when sampling)',
  }),
  samples: int({ help: 'samples per problem, for pass@k', min: 1, max: MAX_SAMPLES, default: 1 }),
  temperature: num({ arg: 'T', help: '0 = greedy', min: 0, max: 100, default: 0 }),
  'top-p': num({ arg: 'P', help: 'nucleus sampling (1 = off)', min: 0, max: 1, default: 1 }),
  seed: int({ help: 'seed of the sampling and of the random hybrid policies', min: 0, max: 2 ** 32 - 1, default: 0 }),
  'max-tokens': int({
    help: "generated-token cap (default: the preset's: 2000 for the paper's pairs, 320 for the organism)",
    min: 1,
    max: MAX_TOKENS,
  }),
  prompt: text({
    arg: 'SPEC',
    help: "base/thinking: paper, chat, or a template with {question} or {chat} (default: the preset's)",
  }),
  parallel: int({ help: `problems decoded together (default ${DEFAULT_PARALLEL})`, min: 1, max: 256 }),
  speculate: int({
    help: 'hybrid, speed only: tokens the base model drafts per thinking check (1 = plain lockstep)',
    min: 1,
    max: 64,
    default: 4,
  }),
  threads: threads('CPU threads (default: THINKWHEN_THREADS or all cores)'),
  shard: text({
    arg: 'i/n|auto/n',
    help: 'run shard i of n (by a hash of the problem id); auto/n takes i from a Kubernetes Indexed Job or a Slurm array (docs/scale-out.md); `thinkwhen merge` combines them',
  }),
  json: flag('print the result as JSON on stdout'),
};

export const command = defineCommand({
  name: 'run',
  summary: 'generate and grade base, thinking or a hybrid policy on a dataset into a run store (resumable, shardable)',
  usage: '--system base|thinking|hybrid [--policy P] [--preset NAME] [--dataset NAME|FILE] [options]',
  description: `Generate and grade one system of a model pair on one problem set, into a run
store (SQLite; read it with \`thinkwhen report\`). docs/experiments.md.

  base      the base model on the pair's base prompt (the paper's plain-text
            "Task: Answer the question below..." prompt; the organism's chat prompt)
  thinking  the thinking model on its own chat template
  hybrid    the base model generates, the thinking model reads along; where their
            greedy tokens differ, --policy decides (docs/hybrid.md): paper = steer
            with c·(bias + v_k) over the grid and emit the candidate the thinking
            model likes best; only_bias, random_firing, random_vectors, norm_random
            = the paper's ablations; selection_only = no steering, pick among the
            base model's own top tokens; pure_steering = no guardrail; oracle = emit
            the thinking model's token (upper bound). Needs --vectors DIR (not
            selection_only/oracle) and the SAE (--taxonomy DIR, --sae FILE, or the
            one the vectors' manifest names). Every token's record (gate, latent,
            coefficient, window, candidates) goes into the store.

Greedy by default, capped at the pair's token limit (the paper: 2,000). With
--samples N --temperature T every problem is sampled N times, each sample
seeded by (--seed, problem id, sample index), so pass@k is reproducible and a
resumed or sharded run samples exactly what an uninterrupted one would. Answers
are graded by the rule-based grader (docs/grader.md): GSM8K with the flexible
rule (the headline) and the strict one, everything else with 'math'.

Resumable: each problem is stored as soon as it finishes; rerunning the same
command continues (Ctrl-C or SIGTERM stops cleanly). A store refuses to resume with other
settings. Shardable: --shard i/n runs one n-th of the problems; \`thinkwhen merge\`
combines the shards.

Pair (--preset, default organism): the pair's models, prompts, token cap and the
hybrid's grid. The paper's five pairs name the GGUF files to download or convert;
point at them with --base/--thinking, or put them in --models DIR under the
preset's file names. The files are checked against the preset (architecture,
layers, width, tokenizer) before anything runs. --base/--thinking without
--preset run a custom pair, unchecked, with the paper's prompts.
  ${PRESETS.map((p) => `${p.name.padEnd(18)} ${p.summary}`).join('\n  ')}`,
  options,
  epilogue: `Exit status: 0 done, 1 error, 2 bad usage, 130 interrupted (rerun to continue).`,
  examples: [
    'thinkwhen run --system base                       # the organism base model, 500 held-out problems',
    'thinkwhen run --system thinking --limit 50',
    'thinkwhen run --system thinking --samples 16 --temperature 0.6    # for pass@1..16',
    'thinkwhen run --system hybrid --vectors src/organism/models/vectors              # the paper policy',
    'thinkwhen run --system hybrid --policy selection_only --vectors src/organism/models/vectors',
    'thinkwhen run --system base --preset qwen2.5-math-1.5b --base Qwen2.5-Math-1.5B.gguf --dataset gsm8k',
    'thinkwhen run --system hybrid --preset qwen2.5-math-1.5b --models ~/gguf --vectors runs/vectors --dataset gsm8k --shard 2/4',
    'thinkwhen report runs/organism/organism/*.sqlite',
  ],
  async run({ values }) {
    if (!values.system) {
      throw new ThinkwhenError('BAD_ARGUMENT', '--system is required', `pass --system ${RUN_SYSTEMS.join(', ')}`);
    }
    const system = values.system;
    if (system !== 'hybrid') {
      for (const o of ['vectors', 'taxonomy', 'sae', 'coefficients', 'windows', 'coefficient', 'window'] as const) {
        if (values[o] !== undefined) {
          throw new ThinkwhenError('BAD_ARGUMENT', `--${o} is a hybrid option`, 'drop it, or pass --system hybrid');
        }
      }
    } else if (values.prompt !== undefined) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        "--prompt is for base/thinking; the hybrid uses the preset's two prompts",
      );
    }
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
    const dataset = await loadDatasetOption(datasetName, values);
    const sampling: Sampling = {
      samples: values.samples,
      temperature: values.temperature,
      topP: values['top-p'],
      seed: values.seed,
    };
    const resolved = values.shard ? resolveShard(values.shard) : null;
    if (resolved?.source)
      process.stderr.write(`shard ${resolved.shard.index}/${resolved.shard.count} (from ${resolved.source})\n`);
    const shard: Shard | null = resolved?.shard ?? null;
    const name = values.name ?? defaultRunName(system === 'hybrid' ? `hybrid-${values.policy}` : system, sampling);
    const out = values.out ?? defaultOut(preset, dataset, datasetName, name, shard);

    const stop = stopOnSignal();
    let bar: ProgressBar | null = null;
    const common = {
      preset,
      checked,
      modelsDir: values.models,
      dataset,
      out,
      name,
      sampling,
      maxTokens: values['max-tokens'],
      parallel: values.parallel,
      threads: values.threads,
      shard,
      signal: stop.signal,
      onStart: (s: { path: string; name: string; total: number; done: number; model: string }) => {
        process.stderr.write(
          `run ${s.name}: ${s.model} on ${dataset.info.name} (${s.total} generations, ${s.done} stored) → ${s.path}\n`,
        );
        bar = progressBar(s.name, s.total, s.done);
      },
      onAdvance: (units: number, tokens: number) => bar?.advance(units, tokens),
    };
    try {
      const grid =
        values.coefficients || values.windows
          ? {
              coefficients: values.coefficients ?? preset.grid.coefficients,
              windows: values.windows ?? preset.grid.windows,
            }
          : undefined;
      const r =
        system === 'hybrid'
          ? await runHybrid({
              ...common,
              policy: values.policy as PolicyName,
              baseFile: values.base,
              thinkingFile: values.thinking,
              vectors: values.vectors,
              taxonomy: values.taxonomy,
              sae: values.sae,
              saeLayer: values['sae-layer'],
              grid,
              seed: values.seed,
              pureCoefficient: values.coefficient,
              pureWindow: values.window,
              missingVector: values['missing-vector'],
              speculate: values.speculate,
            })
          : await runSystem({
              ...common,
              system,
              modelFile: system === 'base' ? values.base : values.thinking,
              prompt: values.prompt,
            });
      (bar as ProgressBar | null)?.finish();
      const acc = wilson(r.correct, r.graded);
      if (values.json) console.log(JSON.stringify({ ...r, accuracy: r.graded ? acc : null }, null, 2));
      else console.log(resultLine(r, dataset.graders[0].name));
      if (r.interrupted) {
        console.error(`interrupted: ${r.generated} new generations stored; run the same command again to continue`);
        return 130;
      }
      return 0;
    } finally {
      stop.dispose();
    }
  },
});

/** runs/PAIR/DATASET[-N]/NAME[.i-of-n].sqlite */
function defaultOut(preset: PairPreset, dataset: RunDataset, datasetName: string, name: string, shard: Shard | null) {
  const defaultCount =
    datasetName === 'gsm8k' || datasetName === 'math500'
      ? 500
      : datasetName === 'organism'
        ? ORGANISM_TEST_COUNT
        : null;
  const out = defaultRunPath(preset.name, dataset, name, defaultCount);
  return shard ? out.replace(/\.sqlite$/, `.${shard.index}-of-${shard.count}.sqlite`) : out;
}
