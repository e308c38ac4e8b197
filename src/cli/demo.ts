import { join } from 'node:path';
import { DEMO_SYSTEMS, demoLanes, demoTable, runDemo } from '../experiments/demo.ts';
import { formatDuration, progressBoard } from '../experiments/progress.ts';
import { choice, defineCommand, flag, int, num, text, threads } from './options.ts';
import { resultLine, stopOnSignal } from './run.ts';

/**
 * Defaults: ≥ 300 held-out problems (the floor for meaningful intervals); pass@k on 30 of them,
 * since the sampled hybrid costs as much per sample as a greedy hybrid problem (docs/demo.md, "Cost").
 */
export const DEMO_DEFAULTS = { problems: 300, passProblems: 30, samples: 8, temperature: 0.8 };

export const command = defineCommand({
  name: 'demo',
  summary:
    'the whole pipeline on the shipped model organism: SAE, vectors, base/thinking/hybrid/controls, pass@k, one report',
  usage: '[--pair default|latent] [--problems N] [--json] [options]',
  description: `The paper's experiment end to end on the shipped model organism (docs/demo.md):

  1. the thinking model's taxonomy SAE and the base model's steering vectors: the
     shipped ones (src/organism/models/sae, vectors) when they belong to the models,
     else regenerated from seeds (traces of the thinking model on train-split
     problems → sentence activations → SAE grid → selection → annotation → vectors)
  2. on --problems held-out test problems (never seen by step 1), greedy: base,
     thinking, the hybrid (the paper's policy) and every control: only_bias,
     random_firing, random_vectors, norm_random, selection_only, pure_steering,
     oracle
  3. pass@k (k = 1 … --samples, unbiased estimator) of base, thinking and the
     hybrid, sampled at --temperature on the first --pass-problems problems
  4. one HTML report (path printed; JSON and markdown beside it) and the table here

--pair latent runs the same on the base-latent pair: its base model verifies only
when pushed there, so selecting among its own top tokens (selection_only) cannot
help and a gain must come from steering.

Resumable: every problem is stored as soon as it finishes; rerun the same command
to continue (Ctrl-C stops cleanly). The runs go --lanes at a time, the longest
first; the report is the same whichever finishes first. Progress on stderr.`,
  options: {
    pair: choice({
      arg: 'P',
      help: 'default (base + thinking) or latent (base-latent + thinking)',
      choices: ['default', 'latent'],
      default: 'default',
    }),
    problems: int({
      help: 'held-out problems per greedy system (≥ 300 keeps the 95 % intervals near ±5 points)',
      min: 1,
      max: 10_000,
      default: DEMO_DEFAULTS.problems,
    }),
    'pass-problems': int({
      help: 'problems the pass@k runs of base, thinking and hybrid sample (0: no pass@k)',
      min: 0,
      max: 10_000,
      default: DEMO_DEFAULTS.passProblems,
    }),
    samples: int({
      help: 'samples per problem for pass@k (k = 1 … N)',
      min: 2,
      max: 1024,
      default: DEMO_DEFAULTS.samples,
    }),
    temperature: num({
      arg: 'T',
      help: 'sampling temperature of the pass@k runs',
      min: 0.01,
      max: 10,
      default: DEMO_DEFAULTS.temperature,
    }),
    seed: int({ help: 'sampling seed of the pass@k runs', min: 0, max: 2 ** 32 - 1, default: 0 }),
    out: text({ arg: 'DIR', help: 'workspace: runs/, report/, regenerated artifacts (default runs/demo/PAIR)' }),
    models: text({ arg: 'DIR', help: 'organism model folder (default: the shipped src/organism/models)' }),
    parallel: int({
      help: 'problems decoded together (default 8; the hybrid systems at most 2, their fastest on the organism: docs/hybrid.md)',
      min: 1,
      max: 256,
    }),
    lanes: int({
      help: `runs at once, 1 thread each unless --threads (default: one per core, at most node's UV_THREADPOOL_SIZE, 4 unless set: ${demoLanes()} here). The organism's models are tiny: the cores are used by decoding runs side by side, not by splitting one decode`,
      min: 1,
      max: 64,
    }),
    threads: threads('CPU threads per run (default: 1 with several lanes, else THINKWHEN_THREADS or all cores)'),
    json: flag(
      `print {"systems": {NAME: {acc, n, gap_recovered, steered_mean, steered_token}}, "pass_at_k": {NAME: {k: value}}, "seconds": s, "pair", "models": {base, thinking: {file, sha256}}} on stdout, NAME in ${DEMO_SYSTEMS.join(', ')}`,
    ),
  },
  epilogue: 'Exit status: 0 done, 1 error, 2 bad usage, 130 interrupted (rerun to continue).',
  examples: [
    'thinkwhen demo                        # prints the table and the report path',
    'thinkwhen demo --json',
    'thinkwhen demo --pair latent --json   # steering or selection?',
    'thinkwhen demo --problems 50 --pass-problems 0 --out runs/demo-quick   # a quick look',
  ],
  async run({ values }) {
    const out = values.out ?? join('runs', 'demo', values.pair);
    const stop = stopOnSignal();
    const board = progressBoard('demo', { print: (line) => console.error(line) });
    try {
      const r = await runDemo({
        pair: values.pair,
        problems: values.problems,
        passAtK: {
          problems: values['pass-problems'],
          samples: values.samples,
          temperature: values.temperature,
          seed: values.seed,
        },
        out,
        models: values.models,
        parallel: values.parallel,
        lanes: values.lanes,
        threads: values.threads,
        signal: stop.signal,
        onLog: (line) => board.log(line),
        onRunStart: (name, total, done) => board.start(name, total, done),
        onRunAdvance: (name, units, tokens) => board.advance(name, units, tokens),
        onRunEnd: (run) => board.finish(run.name, resultLine(run, 'rules-math')),
      });
      const a = r.artifacts;
      console.error(
        a.regenerated
          ? `SAE and vectors regenerated in ${a.paths.dir} (the shipped ones: ${a.regenerated})`
          : `SAE and vectors: the shipped ones (${a.paths.dir})`,
      );
      if (values.json) console.log(JSON.stringify(r.json));
      else {
        console.log(demoTable(r.report));
        console.log(`\nreport: ${r.files.html}  (${formatDuration(r.json.seconds * 1000)})`);
      }
      if (r.interrupted) {
        console.error('interrupted: finished problems are stored; run the same command again to continue');
        return 130;
      }
      return 0;
    } finally {
      board.close();
      stop.dispose();
    }
  },
});
