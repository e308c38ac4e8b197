import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ThinkwhenError } from '../errors.ts';
import { int, oneOf } from './args.ts';
import type { Command } from './command.ts';

const help = `thinkwhen organism build [--quick] [--out DIR] [--work DIR] [--threads N] [--time-budget S]
thinkwhen organism eval [--json] [--base default|latent] [--n N] [--seed N] [--models DIR] [--threads N]
thinkwhen organism sample [--count N] [--policy thinking|base|latent] [--split test|train] [--json]

The model organism: two tiny base models and a tiny thinking model (llama.cpp GGUF, shipped in
src/organism/models/) on multi-step arithmetic word problems, where "the base model knows how to
reason, the thinking model knows when" holds by construction and every sentence of every trace
has a known type. base.gguf verifies now and then at random; base-latent.gguf never verifies
inside a trace but can when its first token is forced. See docs/organism.md.

build     regenerate the corpora and the three models from seeds. Resumable: rerun the same
          command to continue after an interruption (checkpoints in the work folder).
          --quick          a miniature (tiny model, few steps) in seconds: checks the recipe,
                           not the properties (default out: runs/organism/quick/models)
          --out DIR        where base.gguf, base-latent.gguf, thinking.gguf and build.json go
                           (default: src/organism/models for the full build)
          --work DIR       corpora checkpoints and intermediate models (default runs/organism/NAME)
          --threads N      CPU threads for training (default 2)
          --time-budget S  scale the training steps to fit about S seconds on this machine
eval      measure the organism's properties on held-out test problems (greedy decoding)
          --json           print the result as JSON
          --base KIND      the base model to pair with the thinking model: default (base.gguf)
                           or latent (base-latent.gguf); the thresholds differ (docs/organism.md)
          --n N            test problems (default 500)
          --seed N         seed of the test problems (default 20251008; the shipped models are
                           also evaluated on seed 7)
          --models DIR     folder with the model files (default: the shipped models)
          Exit code 1 when a property fails.
sample    print problems with ground-truth traces, each sentence with its type
          --policy P       thinking (verify when a carry or borrow is needed), base (verify at
                           random), latent (never verify)
`;

export const command: Command = {
  name: 'organism',
  summary: 'build / evaluate / sample the tiny base+thinking model organism',
  help,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'build') return build(rest);
    if (sub === 'eval') return evaluate(rest);
    if (sub === 'sample') return sample(rest);
    throw new ThinkwhenError(
      'USAGE',
      `unknown subcommand '${sub ?? ''}'`,
      'use build, eval or sample (see `thinkwhen organism --help`)',
    );
  },
};

/** A positive integer option, or `dflt` when absent. */
function positive(v: string | undefined, name: string, dflt: number): number {
  return int(v, name, 1) ?? dflt;
}

async function build(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      out: { type: 'string' },
      work: { type: 'string' },
      threads: { type: 'string' },
      'time-budget': { type: 'string' },
    },
  });
  const { buildOrganism, FULL_CONFIG, QUICK_CONFIG, organismModelPaths } = await import('../organism/index.ts');
  const config = values.quick ? QUICK_CONFIG : FULL_CONFIG;
  const outDir =
    values.out ?? (values.quick ? join('runs', 'organism', 'quick', 'models') : join(organismModelPaths().base, '..'));
  const workDir = values.work ?? join('runs', 'organism', config.name);
  const t0 = performance.now();
  const rec = await buildOrganism({
    config,
    outDir,
    workDir,
    threads: positive(values.threads, 'threads', 2),
    timeBudget: values['time-budget'] ? positive(values['time-budget'], 'time-budget', 1) : undefined,
    log: (l) => console.error(l),
  });
  console.error(
    `organism build (${config.name}) done in ${((performance.now() - t0) / 1000).toFixed(0)} s; training ${rec.trainSeconds.toFixed(0)} s in all`,
  );
  for (const [stage, r] of Object.entries(rec.stages)) {
    console.error(`  ${stage} loss ${r.firstLoss.toFixed(3)} -> ${r.lastLoss.toFixed(3)} (${r.steps} steps)`);
  }
  for (const f of ['base.gguf', 'base-latent.gguf', 'thinking.gguf']) console.log(join(outDir, f));
  return 0;
}

async function evaluate(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean' },
      n: { type: 'string' },
      models: { type: 'string' },
      threads: { type: 'string' },
      base: { type: 'string' },
      seed: { type: 'string' },
    },
  });
  const base = oneOf(values.base, 'base', ['default', 'latent'] as const) ?? 'default';
  const n = positive(values.n, 'n', 500);
  const seed = int(values.seed, 'seed', 0);
  const threads = values.threads ? positive(values.threads, 'threads', 2) : undefined;
  const { evaluateOrganism, requireOrganismModels } = await import('../organism/index.ts');
  const paths = requireOrganismModels(values.models);
  const r = await evaluateOrganism({
    basePath: base === 'latent' ? paths.baseLatent : paths.base,
    thinkingPath: paths.thinking,
    base,
    n,
    seed,
    threads,
    log: (l) => console.error(l),
  });
  if (values.json) {
    console.log(JSON.stringify(r, null, 1));
  } else {
    const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
    const lines = [
      `test problems           ${r.n} (seed ${r.seed}), base model: ${r.base}`,
      `accuracy                base ${pct(r.base_acc)}, thinking ${pct(r.thinking_acc)}, never verify ${pct(r.never_verify_acc)}`,
      `gap                     ${pct(r.gap)}`,
      `operand copy errors     base ${pct(r.copy_error_rate_base)}, thinking ${pct(r.copy_error_rate_thinking)}`,
      `P(verify) needed        base ${r.p_verify_needed_base.toFixed(3)}, thinking ${r.p_verify_needed_thinking.toFixed(3)}`,
      `P(verify) not needed    base ${r.p_verify_not_needed_base.toFixed(3)}, thinking ${r.p_verify_not_needed_thinking.toFixed(3)}`,
      `greedy verify needed    base ${pct(r.greedy_verify_needed_base)}, thinking ${pct(r.greedy_verify_needed_thinking)}`,
      `greedy verify not needed base ${pct(r.greedy_verify_not_needed_base)}, thinking ${pct(r.greedy_verify_not_needed_thinking)}`,
      `'Check' in base top 5   ${pct(r.verify_in_top5_base)}`,
      `knows how: verify       seen ${pct(r.knows_how_verify_seen)}  (${r.counts.knows_how_verify_seen.join('/')}), held-out ${pct(r.knows_how_verify_heldout)}  (${r.counts.knows_how_verify_heldout.join('/')})`,
      `knows how: backtrack    seen ${pct(r.knows_how_backtrack_seen)}  (${r.counts.knows_how_backtrack_seen.join('/')}), held-out ${pct(r.knows_how_backtrack_heldout)}  (${r.counts.knows_how_backtrack_heldout.join('/')})`,
      `sentences parsed        ${pct(r.parsed_fraction)}  (${r.counts.parsed_fraction.join('/')})`,
      '',
      ...Object.entries(r.properties).map(([k, p]) => `${p.pass ? 'PASS' : 'FAIL'}  ${k} ${p.threshold}`),
    ];
    console.log(lines.join('\n'));
  }
  return Object.values(r.properties).every((p) => p.pass) ? 0 : 1;
}

async function sample(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      count: { type: 'string' },
      policy: { type: 'string' },
      split: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const policy = oneOf(values.policy, 'policy', ['thinking', 'base', 'latent'] as const) ?? 'thinking';
  const split = values.split ?? 'test';
  if (split !== 'test' && split !== 'train')
    throw new ThinkwhenError('USAGE', `--split must be test or train, got '${split}'`);
  const { organismTraces } = await import('../organism/index.ts');
  const traces = organismTraces({ count: positive(values.count, 'count', 3), policy, split });
  for (const t of traces) {
    if (values.json) {
      console.log(
        JSON.stringify({
          id: t.problem.id,
          question: t.problem.question,
          answer: t.problem.answer,
          sentences: t.sentences,
        }),
      );
    } else {
      console.log(`# ${t.problem.id}: ${t.problem.question} (answer ${t.problem.answer})`);
      for (const s of t.sentences) console.log(`  [${s.type.padEnd(9)}] ${s.text}`);
    }
  }
  return 0;
}
