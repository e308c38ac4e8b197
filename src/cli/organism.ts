import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ThinkwhenError } from '../errors.ts';
import { int } from './args.ts';
import type { Command } from './command.ts';

const help = `thinkwhen organism build [--quick] [--out DIR] [--work DIR] [--threads N] [--time-budget S]
thinkwhen organism eval [--json] [--n N] [--models DIR] [--threads N]
thinkwhen organism sample [--count N] [--policy thinking|base] [--split test|train] [--json]

The model organism: a tiny base model and a tiny thinking model (llama.cpp GGUF, shipped in
src/organism/models/) on multi-step arithmetic word problems, where "the base model knows how to
reason, the thinking model knows when" holds by construction and every sentence of every trace
has a known type. See docs/organism.md.

build     regenerate the corpora and both models from seeds. Resumable: rerun the same command
          to continue after an interruption (checkpoints in the work folder).
          --quick          a miniature (tiny model, few steps) in a few minutes: checks the
                           recipe, not the properties (default out: runs/organism/quick/models)
          --out DIR        where base.gguf, thinking.gguf and build.json go
                           (default: src/organism/models for the full build)
          --work DIR       corpora checkpoints and intermediate models (default runs/organism/NAME)
          --threads N      CPU threads for training (default 2)
          --time-budget S  scale the training steps to fit about S seconds on this machine
eval      measure the organism's properties on held-out test problems (greedy decoding)
          --json           print the result as JSON
          --n N            test problems (default 500)
          --models DIR     folder with base.gguf and thinking.gguf (default: the shipped models)
sample    print problems with ground-truth traces, each sentence with its type
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
  console.error(`  base loss ${rec.base.firstLoss.toFixed(3)} -> ${rec.base.lastLoss.toFixed(3)}`);
  if (rec.baseExtra) {
    console.error(
      `  base (second cycle) loss ${rec.baseExtra.firstLoss.toFixed(3)} -> ${rec.baseExtra.lastLoss.toFixed(3)}`,
    );
  }
  console.error(`  thinking loss ${rec.thinking.firstLoss.toFixed(3)} -> ${rec.thinking.lastLoss.toFixed(3)}`);
  console.log(join(outDir, 'base.gguf'));
  console.log(join(outDir, 'thinking.gguf'));
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
    },
  });
  const { evaluateOrganism, requireOrganismModels } = await import('../organism/index.ts');
  const paths = requireOrganismModels(values.models);
  const r = await evaluateOrganism({
    basePath: paths.base,
    thinkingPath: paths.thinking,
    n: positive(values.n, 'n', 500),
    threads: values.threads ? positive(values.threads, 'threads', 2) : undefined,
    log: (l) => console.error(l),
  });
  if (values.json) {
    console.log(JSON.stringify(r, null, 1));
  } else {
    const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
    const lines = [
      `test problems           ${r.n}`,
      `base accuracy           ${pct(r.base_acc)}`,
      `thinking accuracy       ${pct(r.thinking_acc)}`,
      `gap                     ${pct(r.gap)}`,
      `knows how: verify       ${pct(r.knows_how_verify)}  (${r.counts.knows_how_verify.join('/')})`,
      `knows how: backtrack    ${pct(r.knows_how_backtrack)}  (${r.counts.knows_how_backtrack.join('/')})`,
      `verify after wrong quick: base ${pct(r.verify_rate_base)}, thinking ${pct(r.verify_rate_thinking)}`,
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
  const policy = values.policy ?? 'thinking';
  if (policy !== 'thinking' && policy !== 'base')
    throw new ThinkwhenError('USAGE', `--policy must be thinking or base, got '${policy}'`);
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
