import { join } from 'node:path';
import { ThinkwhenError } from '../errors.ts';
import type { Command } from './command.ts';
import { choice, defineCommand, defineGroup, flag, int, num, text, threads } from './options.ts';

// The organism modules load lazily: `organism sample` needs neither the engine nor the trainer.

const build = defineCommand({
  name: 'organism build',
  summary: 'regenerate the corpora and the three models from seeds (resumable)',
  usage: '[--quick] [--out DIR] [--work DIR] [--threads N] [--time-budget S]',
  description: `Regenerates the corpora and the three models (base-latent, base, thinking) from seeds.
Resumable: rerun the same command to continue after an interruption (checkpoints in the work folder).`,
  options: {
    quick: flag('a miniature (tiny model, few steps) in seconds: checks the recipe, not the properties'),
    out: text({
      arg: 'DIR',
      help: 'where base.gguf, base-latent.gguf, thinking.gguf and build.json go (default: src/organism/models for the full build, runs/organism/quick/models for --quick)',
    }),
    work: text({ arg: 'DIR', help: 'corpora checkpoints and intermediate models (default runs/organism/NAME)' }),
    threads: threads('CPU threads for training (default 2)'),
    'time-budget': int({
      arg: 'S',
      help: 'scale the training steps to fit about S seconds on this machine',
      min: 1,
      max: 10_000_000,
    }),
  },
  examples: ['thinkwhen organism build --quick', 'thinkwhen organism build --threads 8'],
  async run({ values }) {
    const { buildOrganism, FULL_CONFIG, QUICK_CONFIG, organismModelPaths } = await import('../organism/index.ts');
    const config = values.quick ? QUICK_CONFIG : FULL_CONFIG;
    const outDir =
      values.out ??
      (values.quick ? join('runs', 'organism', 'quick', 'models') : join(organismModelPaths().base, '..'));
    const workDir = values.work ?? join('runs', 'organism', config.name);
    const t0 = performance.now();
    const rec = await buildOrganism({
      config,
      outDir,
      workDir,
      threads: values.threads ?? 2,
      timeBudget: values['time-budget'],
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
  },
});

const evaluate = defineCommand({
  name: 'organism eval',
  summary: "measure the organism's properties on held-out test problems (greedy decoding)",
  usage: '[--json] [--base default|latent] [--n N] [--seed N] [--models DIR] [--threads N]',
  description: `Measures the organism's properties on held-out test problems (greedy decoding): both
models' accuracy and the gap, operand copy errors, how likely each model is to start a
verification where one is needed and where it is not, and whether the base model knows how to
verify and backtrack where the thinking model would (on operations it saw checked in training
and on held-out ones); each property with its threshold (definitions in docs/organism.md).`,
  options: {
    json: flag('print the result as JSON'),
    base: choice({
      help: 'the base model to pair with the thinking model: default (base.gguf) or latent (base-latent.gguf); the thresholds differ (docs/organism.md)',
      choices: ['default', 'latent'],
      default: 'default',
    }),
    n: int({ help: 'test problems', min: 1, max: 100_000, default: 500 }),
    seed: int({
      help: 'seed of the test problems (default: the evaluation seed, 20251008; the shipped models are also evaluated on seed 7)',
      min: 0,
      max: 2 ** 32 - 1,
    }),
    models: text({ arg: 'DIR', help: 'folder with the model files (default: the shipped models)' }),
    threads: threads('CPU threads (default: up to 4)'),
  },
  epilogue: 'Exit status 1 when a property fails its threshold.',
  examples: ['thinkwhen organism eval', 'thinkwhen organism eval --base latent --n 100 --json'],
  async run({ values }) {
    const { evaluateOrganism, requireOrganismModels } = await import('../organism/index.ts');
    const base = values.base;
    const paths = requireOrganismModels(values.models);
    const r = await evaluateOrganism({
      basePath: base === 'latent' ? paths.baseLatent : paths.base,
      thinkingPath: paths.thinking,
      base,
      n: values.n,
      seed: values.seed,
      threads: values.threads,
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
  },
});

const sample = defineCommand({
  name: 'organism sample',
  summary: 'print problems with ground-truth traces, each sentence with its type',
  usage: '[--count N] [--policy thinking|base|pretrain] [--split test|train] [--json]',
  description: 'Prints problems with ground-truth traces of the trace language, each sentence with its type.',
  options: {
    count: int({ help: 'problems', min: 1, max: 100_000, default: 3 }),
    policy: choice({
      help: 'thinking: verify when a carry or borrow is needed; base: verify at random (as the base and base-latent corpora); pretrain: never verify (the pre-training corpus)',
      choices: ['thinking', 'base', 'pretrain'],
      default: 'thinking',
    }),
    split: choice({ help: 'problem split', choices: ['test', 'train'], default: 'test' }),
    json: flag('one JSON object per problem: id, question, answer, sentences'),
  },
  examples: ['thinkwhen organism sample', 'thinkwhen organism sample --count 100 --json | head -3'],
  async run({ values }) {
    const { organismTraces } = await import('../organism/index.ts');
    const traces = organismTraces({ count: values.count, policy: values.policy, split: values.split });
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
  },
});

const rl = defineCommand({
  name: 'organism rl',
  summary: 'RL with a verifiable reward (GRPO) from the base model; measures what RL changed (resumable)',
  usage:
    '[--quick] [--json] [--work DIR] [--steps N] [--reward answer|random|format] [--one-shot] [--kl BETA] [--threads N]',
  description: `Trains the organism's base model with reinforcement learning (GRPO: a group of samples per
problem at temperature 1, reward = the boxed answer is right minus a cost per generated token,
group-normalised advantage, an optional KL penalty to the base model with --kl) on the project's
own trainer, writes thinking-rl.gguf into the work folder, then measures on held-out problems:
greedy accuracy, P(the next sentence starts a verification) after quick results where a carry or
borrow is needed and where it is not, from the logits, knows-how on held-out operations (as
organism eval measures it), and pass@k at temperature 1 (unbiased estimator) for the base and the
RL model. The JSON line also holds the training curves (train_by_step: reward, right answers and
verification rates of each step's samples). Resumable: rerun the same command to continue
(checkpoints in the work folder); a finished run prints its result at once. See docs/rl.md.`,
  options: {
    quick: flag('a miniature run (3 steps, few samples; about a minute): checks the pipeline, not the result'),
    json: flag(
      'print one JSON line: acc, p_verify_needed, p_verify_not_needed, knows_how_verify_heldout, pass_at_k, …',
    ),
    work: text({
      arg: 'DIR',
      help: 'work folder: checkpoints, thinking-rl.gguf, cached measurements (default runs/organism-rl/NAME)',
    }),
    steps: int({ help: 'optimizer steps (default: 40; quick 3)', min: 1, max: 1_000_000 }),
    lr: num({ help: 'learning rate (default 3e-5)', min: 0, max: 1 }),
    kl: num({
      help: 'β of a KL penalty to the base model (per-token k3 estimate, as GRPO; default 0: none)',
      min: 0,
      max: 100,
    }),
    'token-cost': num({ help: 'reward subtracted per generated token (default 0.001)', min: 0, max: 1 }),
    reward: choice({
      help: 'answer: the boxed answer is right; random: a coin flip (spurious reward); format: any boxed integer',
      choices: ['answer', 'random', 'format'],
      default: 'answer',
    }),
    'one-shot': flag('train on one problem only (1-shot RL)'),
    'eval-n': int({
      help: 'held-out problems for accuracy, P(verify) and knows-how (default 200; quick 16)',
      min: 1,
      max: 100_000,
    }),
    'pass-problems': int({
      help: 'held-out problems for pass@k (default 16; quick 3; at most --eval-n)',
      min: 1,
      max: 100_000,
    }),
    'pass-samples': int({
      help: 'samples per problem for pass@k; k runs over 1, 4, 16, 64, 256 up to it (default 256; quick 8)',
      min: 1,
      max: 100_000,
    }),
    seed: int({ help: 'seed of problems and samples', min: 0, max: 2 ** 31 - 1, default: 1 }),
    threads: threads('CPU threads for training and sampling (default: THINKWHEN_THREADS, else all cores)'),
  },
  examples: [
    'thinkwhen organism rl --quick --json',
    'thinkwhen organism rl --json',
    'thinkwhen organism rl --reward random --work runs/rl-random',
  ],
  async run({ values }) {
    const { RL_DEFAULT, RL_QUICK, runOrganismRl } = await import('../organism/rl.ts');
    const { formatDuration } = await import('../experiments/progress.ts');
    const base = values.quick ? RL_QUICK : RL_DEFAULT;
    const config = {
      ...base,
      steps: values.steps ?? base.steps,
      lr: values.lr ?? base.lr,
      tokenCost: values['token-cost'] ?? base.tokenCost,
      ...(values.kl ? { klCoef: values.kl } : {}),
      evalProblems: values['eval-n'] ?? base.evalProblems,
      passProblems: values['pass-problems'] ?? base.passProblems,
      passSamples: values['pass-samples'] ?? base.passSamples,
      ks: RL_DEFAULT.ks,
    };
    if (config.passProblems > config.evalProblems)
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        `--pass-problems ${config.passProblems} exceeds the ${config.evalProblems} held-out problems`,
        'raise --eval-n or lower --pass-problems',
      );
    const variant = `${config.name}${values.reward === 'answer' ? '' : `-${values.reward}`}${values['one-shot'] ? '-1shot' : ''}`;
    const workDir = values.work ?? join('runs', 'organism-rl', variant);
    const t0 = Date.now();
    let stepsDone = 0;
    let resumedAt: number | undefined; // steps a checkpoint had done (the ETA counts this session's steps)
    const bar = (done: number, extra: string) => {
      const frac = done / config.steps;
      const now = done - (resumedAt ?? done);
      const eta = now > 0 ? ((Date.now() - t0) / now) * (config.steps - done) : Number.NaN;
      const line = `rl [${'#'.repeat(Math.round(frac * 20)).padEnd(20, '-')}] ${done}/${config.steps} steps ${extra}ETA ${formatDuration(eta)}`;
      if (process.stderr.isTTY) process.stderr.write(`\r${line}\x1b[K`);
      else if (!extra.startsWith('sampling')) console.error(line);
    };
    const r = await runOrganismRl({
      config,
      workDir,
      reward: values.reward,
      oneShot: values['one-shot'],
      seed: values.seed,
      threads: values.threads,
      log: (l) => console.error(process.stderr.isTTY ? `\n${l}` : l),
      onRollout: (done, total) => bar(stepsDone, `sampling ${done}/${total}, `),
      onStep: (s) => {
        resumedAt ??= s.step - 1;
        stepsDone = s.step;
        bar(
          s.step,
          `reward ${s.reward.toFixed(3)}${s.metrics && values.reward !== 'answer' ? ` (right answers ${s.metrics.correct.toFixed(3)})` : ''}, length ${s.length.toFixed(0)} tokens, ${s.seconds.toFixed(0)} s/step, `,
        );
      },
    });
    if (process.stderr.isTTY) process.stderr.write('\n');
    console.error(
      `organism rl: ${r.model} (${r.cached ? 'finished before' : `${r.history.length} steps in ${formatDuration(r.trainSeconds * 1000)}`}); measurements ${formatDuration(r.evalSeconds * 1000)}`,
    );
    const l = r.line;
    if (values.json) {
      console.log(JSON.stringify(l));
    } else {
      const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
      const rate = (x: number | null) => (x === null ? 'n/a (no held-out operation)' : pct(x));
      const ks = Object.keys(l.pass_at_k.rl);
      const quarters = (xs: (number | null)[]) => {
        const q = Math.max(1, Math.ceil(xs.length / 4));
        const parts: string[] = [];
        for (let i = 0; i < xs.length; i += q) {
          const v = xs.slice(i, i + q).filter((x): x is number => x !== null);
          parts.push(v.length ? (v.reduce((a, b) => a + b, 0) / v.length).toFixed(3) : 'n/a');
        }
        return parts.join(' / ');
      };
      console.log(
        [
          `organism                ${l.organism}, reward ${l.reward}${l.one_shot ? ', 1-shot' : ''}, ${l.steps} steps`,
          `accuracy (greedy)       base ${pct(l.base_acc)}  ->  rl ${pct(l.acc)}`,
          `P(verify | needed)      base ${l.base_p_verify_needed.toFixed(3)}  ->  rl ${l.p_verify_needed.toFixed(3)}`,
          `P(verify | not needed)  base ${l.base_p_verify_not_needed.toFixed(3)}  ->  rl ${l.p_verify_not_needed.toFixed(3)}`,
          `verifies (own traces)   after wrong quick: base ${pct(l.verify_rate_needed.base)} -> rl ${pct(l.verify_rate_needed.rl)}; after right: base ${pct(l.verify_rate_not_needed.base)} -> rl ${pct(l.verify_rate_not_needed.rl)}`,
          `knows how (held-out)    base ${rate(l.base_knows_how_verify_heldout)}  ->  rl ${rate(l.knows_how_verify_heldout)}  (verify; ${r.knowsHow.rl.verify_heldout[1]} points)`,
          `right answers (training samples, by quarter of the steps)  ${quarters(l.train_by_step.correct)}`,
          `pass@k                  ${ks.map((k) => `k=${k}`.padStart(8)).join('')}`,
          `  base                  ${ks.map((k) => l.pass_at_k.base[k].toFixed(3).padStart(8)).join('')}`,
          `  rl                    ${ks.map((k) => l.pass_at_k.rl[k].toFixed(3).padStart(8)).join('')}`,
        ].join('\n'),
      );
    }
    return 0;
  },
});

export const command: Command = defineGroup({
  name: 'organism',
  summary: 'build / evaluate / sample / RL-train the tiny base+thinking model organism',
  description: `The model organism: two tiny base models and a tiny thinking model (llama.cpp GGUF, shipped in
src/organism/models/) on multi-step arithmetic word problems, where "the base model knows how to
reason, the thinking model knows when" holds by construction and every sentence of every trace
has a known type. base.gguf verifies now and then at random; base-latent.gguf never verifies
inside a trace but can when its first token is forced. See docs/organism.md.`,
  subcommands: [build, evaluate, sample, rl],
  examples: ['thinkwhen organism eval', 'thinkwhen organism sample --count 5', 'thinkwhen organism build --quick'],
});
