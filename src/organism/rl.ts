// `thinkwhen organism rl`: RL with a verifiable reward on the organism (the generic GRPO stage of
// src/rl composed with the organism's task and grader), then what RL changed, on held-out problems:
//  - acc: greedy accuracy of the RL model; in its own greedy traces, how often it verifies after wrong
//    and after right quick results, and the share of each sentence type;
//  - p_verify_needed / p_verify_not_needed: the model's probability that the sentence after a quick
//    computation starts with `Check`, read from its logits, split by whether a carry or borrow is
//    needed there (then the quick result is wrong). The contexts are the ground-truth thinking traces
//    of the test problems (verified exactly where needed) cut right after each quick computation, the
//    same text for every model;
//  - knows_how_verify_heldout: `organism eval`'s "knows how" (src/organism/eval.ts) on the model's own
//    greedy traces, at the quick results of operations no base corpus ever verified;
//  - pass@k at temperature 1 (unbiased estimator) for the base and the RL model.
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { logProb } from '../engine/sampling.ts';
import { ThinkwhenError } from '../errors.ts';
import { gradeResponse } from '../eval/answer/index.ts';
import { meanPassAtK } from '../eval/metrics.ts';
import { type GrpoStepStats, trainGrpo } from '../rl/grpo.ts';
import { sampleCompletions, sampleSeed } from '../rl/sample.ts';
import { Rng } from '../rng.ts';
import { fileSha256 } from '../steer/vector-set.ts';
import { Trainer } from '../train/trainer.ts';
import { organismVersion } from './build.ts';
import { corpusPolicy } from './corpus.ts';
import { type KnowsHowCounts, knowsHowOfModel, TEST_SEED, VERIFY_PREFIX } from './eval.ts';
import { organismModelPaths } from './index.ts';
import { makeTrace } from './language.ts';
import { requireOrganismVocab } from './model-file.ts';
import { analyzeTrace, type TraceAnalysis } from './parser.ts';
import { generateProblems, type Problem, verificationNeeded } from './task.ts';
import { encodePrompt, encodeText, promptText } from './vocab.ts';

/** What is rewarded: the right boxed answer, a coin flip (spurious), or any boxed integer (format only). */
export type RlReward = 'answer' | 'random' | 'format';

export interface RlConfig {
  name: string;
  steps: number;
  problemsPerStep: number;
  groupSize: number;
  maxTokens: number;
  tokenCost: number;
  /** 'mean' (Dr. GRPO): a token-cost difference stays as small as it is; 'std' would blow it up to ±1 */
  advantage: 'std' | 'mean';
  lr: number;
  /** β of the KL penalty to the base model (absent: none, and no reference model loaded) */
  klCoef?: number;
  checkpointEvery: number;
  /** held-out problems for acc and P(verify) */
  evalProblems: number;
  /** held-out problems for pass@k, and samples of each */
  passProblems: number;
  passSamples: number;
  /** the k of pass@k (those above passSamples are left out) */
  ks: number[];
}

export const RL_DEFAULT: RlConfig = {
  name: 'default',
  steps: 40,
  problemsPerStep: 8,
  groupSize: 8,
  maxTokens: 320,
  tokenCost: 0.001,
  advantage: 'mean',
  // 3e-4 made the policy worse within 15 steps (docs/rl.md): the gradient of 64 samples is too noisy
  lr: 3e-5,
  checkpointEvery: 5,
  evalProblems: 200,
  passProblems: 16,
  passSamples: 256,
  ks: [1, 4, 16, 64, 256],
};

export const RL_QUICK: RlConfig = {
  name: 'quick',
  steps: 3,
  problemsPerStep: 2,
  groupSize: 4,
  maxTokens: 320,
  tokenCost: 0.001,
  advantage: 'mean',
  lr: 3e-4,
  checkpointEvery: 2,
  // 16, not fewer: about 40 quick results, so that some are of held-out operations (knows-how)
  evalProblems: 16,
  passProblems: 3,
  passSamples: 8,
  ks: [1, 4, 16, 64, 256],
};

export interface OrganismRlOptions {
  config: RlConfig;
  workDir: string;
  reward?: RlReward;
  /** train on one problem only (1-shot RL) */
  oneShot?: boolean;
  seed?: number;
  threads?: number;
  /** the model RL starts from (default: the organism's base model) */
  basePath?: string;
  log?: (line: string) => void;
  onStep?: (s: GrpoStepStats) => void;
  onRollout?: (done: number, total: number) => void;
}

/** The line `organism rl --json` prints (the fields first). */
export interface OrganismRlLine {
  acc: number;
  p_verify_needed: number;
  p_verify_not_needed: number;
  /** null: no quick result of a held-out operation in the model's traces */
  knows_how_verify_heldout: number | null;
  pass_at_k: { base: Record<string, number>; rl: Record<string, number> };
  base_acc: number;
  base_p_verify_needed: number;
  base_p_verify_not_needed: number;
  base_knows_how_verify_heldout: number | null;
  /** in each model's own greedy traces: verifications after wrong / right quick results */
  verify_rate_needed: { base: number; rl: number };
  verify_rate_not_needed: { base: number; rl: number };
  sentence_types: { base: Record<string, number>; rl: Record<string, number> };
  /** per training step, on that step's own samples: the mean reward trained on, the share of right answers, and
   * the share of wrong / right quick results verified (null: the run's record predates these metrics) */
  train_by_step: {
    reward: number[];
    correct: (number | null)[];
    verify_rate_needed: (number | null)[];
    verify_rate_not_needed: (number | null)[];
    /** with a KL penalty: the step's KL(π ‖ base) per token (k3 estimate); else null */
    kl: (number | null)[];
  };
  reward: RlReward;
  one_shot: boolean;
  steps: number;
  lr: number;
  /** β of the KL penalty to the base model (0: none) */
  kl_coef: number;
  /** which organism the numbers come from: the build record beside the model RL starts from (organismVersion) */
  organism: string;
  /** SHA-256 of the model RL started from */
  base_sha256: string;
}

export interface OrganismRlResult {
  line: OrganismRlLine;
  model: string;
  history: GrpoStepStats[];
  /** points behind p_verify_*: [needed, not needed] */
  pVerifyPoints: [number, number];
  /** [right, points] behind knows-how, of the base and the RL model */
  knowsHow: { base: KnowsHowCounts; rl: KnowsHowCounts };
  trainSeconds: number;
  evalSeconds: number;
  cached: boolean;
}

function hashText(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function rewardOf(kind: RlReward, p: Problem, text: string): number {
  if (kind === 'answer') return gradeResponse(String(p.answer), text).correct ? 1 : 0;
  if (kind === 'format') return /\\boxed\{-?\d+\}/.test(text) ? 1 : 0;
  // spurious: a fair coin, fixed per (problem, completion) so that a resumed run draws the same
  return new Rng(hashText(`${p.id}\n${text}`)).next() < 0.5 ? 1 : 0;
}

/**
 * What each training sample did, followed over the steps whatever the reward: whether its answer is
 * right, and its quick results that were wrong / right and how many of each it verified (a step's
 * verification rate is the ratio of the two means).
 */
export function sampleMetrics(p: Problem, text: string): Record<string, number> {
  const steps = analyzeTrace(text).steps;
  const count = (f: (s: (typeof steps)[number]) => boolean) => steps.filter(f).length;
  return {
    correct: rewardOf('answer', p, text),
    quick_wrong: count((s) => s.quickWrong),
    quick_wrong_verified: count((s) => s.quickWrong && s.verified),
    quick_right: count((s) => !s.quickWrong),
    quick_right_verified: count((s) => !s.quickWrong && s.verified),
  };
}

/**
 * P(next token = Check) after each quick computation of the ground-truth thinking traces, split by
 * whether a verification is needed there. Returns the two means and the number of points of each.
 */
export async function verifyProbabilities(
  modelPath: string,
  problems: Problem[],
  threads?: number,
): Promise<{ needed: number; notNeeded: number; points: [number, number] }> {
  requireOrganismVocab(modelPath);
  const check = encodeText(VERIFY_PREFIX);
  if (check.length !== 1)
    throw new ThinkwhenError('ORGANISM_VOCAB', `'${VERIFY_PREFIX}' is not one token of the organism vocabulary`);
  const points: { tokens: number[]; needed: boolean }[] = [];
  for (const p of problems) {
    const t = makeTrace(p, corpusPolicy('thinking'), new Rng(0));
    let v = p.start;
    t.sentences.forEach((s, i) => {
      if (s.type !== 'compute') return;
      const op = p.ops[s.step];
      const text = t.sentences
        .slice(0, i + 1)
        .map((x) => x.text)
        .join('\n');
      points.push({
        tokens: [...encodePrompt(p.question), ...encodeText(`${text}\n`)],
        needed: verificationNeeded(v, op),
      });
      v = op.kind === 'add' ? v + op.n : v - op.n; // the thinking trace continues from the true value
    });
  }
  const tr = Trainer.open(modelPath, { mode: 'vectors', threads });
  const sums = [0, 0];
  const counts = [0, 0];
  try {
    const B = 16;
    for (let i = 0; i < points.length; i += B) {
      const chunk = points.slice(i, i + B);
      const T = Math.max(...chunk.map((c) => c.tokens.length));
      const tokens = new Int32Array(chunk.length * T);
      chunk.forEach((c, b) => {
        tokens.set(c.tokens, b * T);
      });
      const r = await tr.run({
        nSeq: chunk.length,
        seqLen: T,
        tokens,
        lengths: Int32Array.from(chunk.map((c) => c.tokens.length)),
        targets: new Int32Array(chunk.length * T).fill(-1),
        logits: true,
      });
      const V = tr.nVocab;
      chunk.forEach((c, b) => {
        const row = r.logits!.subarray((b * T + c.tokens.length - 1) * V, (b * T + c.tokens.length) * V);
        const k = c.needed ? 0 : 1;
        sums[k] += Math.exp(logProb(row, check[0]));
        counts[k]++;
      });
    }
  } finally {
    tr.free();
  }
  return {
    needed: counts[0] ? sums[0] / counts[0] : Number.NaN,
    notNeeded: counts[1] ? sums[1] / counts[1] : Number.NaN,
    points: [counts[0], counts[1]],
  };
}

/** What the model's own greedy traces show: accuracy, how often it verifies, sentence types. */
export interface GreedyBehaviour {
  acc: number;
  /** fraction of wrong quick results (wrong for the model's own operands) followed by a verification */
  verifyRateNeeded: number;
  /** fraction of right quick results followed by a verification */
  verifyRateNotNeeded: number;
  /** share of each sentence type (null: not in the trace language) over all sentences */
  sentenceTypes: Record<string, number>;
}

/** The model's greedy traces of `prompts`: what they show, and their analyses (for knows-how). */
async function greedyBehaviour(
  modelPath: string,
  problems: Problem[],
  prompts: string[],
  threads?: number,
): Promise<{ behaviour: GreedyBehaviour; traces: TraceAnalysis[] }> {
  const c = await sampleCompletions(
    modelPath,
    prompts.map((prompt) => ({ prompt, seed: 0 })),
    { temperature: 0, maxTokens: 400, threads },
  );
  const an = c.map((x) => analyzeTrace(x.text));
  const steps = an.flatMap((a) => a.steps);
  const rate = (xs: typeof steps) => (xs.length ? xs.filter((s) => s.verified).length / xs.length : Number.NaN);
  const types = new Map<string, number>();
  let total = 0;
  for (const a of an) {
    for (const s of a.sentences) {
      types.set(String(s.type), (types.get(String(s.type)) ?? 0) + 1);
      total++;
    }
  }
  const behaviour = {
    acc: c.filter((x, i) => rewardOf('answer', problems[i], x.text) === 1).length / problems.length,
    verifyRateNeeded: rate(steps.filter((s) => s.quickWrong)),
    verifyRateNotNeeded: rate(steps.filter((s) => !s.quickWrong)),
    sentenceTypes: Object.fromEntries([...types].sort().map(([k, n]) => [k, n / Math.max(1, total)])),
  };
  return { behaviour, traces: an };
}

/** pass@k at temperature 1 for the ks the config names (unbiased estimator over passSamples samples). */
async function passAtKOf(
  modelPath: string,
  problems: Problem[],
  cfg: Pick<RlConfig, 'passSamples' | 'ks' | 'maxTokens'>,
  seed: number,
  threads: number | undefined,
  log: (l: string) => void,
): Promise<Record<string, number>> {
  const n = cfg.passSamples;
  const reqs = problems.flatMap((p, i) =>
    Array.from({ length: n }, (_, j) => ({ prompt: promptText(p.question), seed: sampleSeed(seed, 1_000_003, i, j) })),
  );
  let last = 0;
  const c = await sampleCompletions(modelPath, reqs, {
    temperature: 1,
    maxTokens: cfg.maxTokens,
    threads,
    onBatch: (done) => {
      if (done - last >= reqs.length / 10 || done === reqs.length) {
        last = done;
        log(`  pass@k samples ${done}/${reqs.length}`);
      }
    },
  });
  const counts = problems.map((p, i) => ({
    n,
    c: c.slice(i * n, (i + 1) * n).filter((x) => rewardOf('answer', p, x.text) === 1).length,
  }));
  return Object.fromEntries(cfg.ks.filter((k) => k <= n).map((k) => [String(k), meanPassAtK(counts, k)]));
}

export interface ModelMeasurement {
  greedy: GreedyBehaviour;
  pv: { needed: number; notNeeded: number; points: [number, number] };
  passAtK: Record<string, number>;
  /** organism eval's knows-how on the model's own greedy traces */
  knowsHow: KnowsHowCounts;
}

/** Everything `organism rl` measures of one model, on the held-out problems the config names. */
export async function measureOrganismModel(
  model: string,
  cfg: Pick<RlConfig, 'evalProblems' | 'passProblems' | 'passSamples' | 'ks' | 'maxTokens'>,
  o: { seed?: number; threads?: number; log?: (l: string) => void; label?: string } = {},
): Promise<ModelMeasurement> {
  const log = o.log ?? (() => {});
  const evalSet = generateProblems('test', cfg.evalProblems, TEST_SEED);
  if (cfg.passProblems > evalSet.length) throw new ThinkwhenError('BAD_OPTIONS', 'passProblems exceeds evalProblems');
  log(`organism rl: measuring the ${o.label ?? model} model on ${cfg.evalProblems} held-out problems`);
  const prompts = evalSet.map((p) => promptText(p.question));
  const { behaviour: greedy, traces } = await greedyBehaviour(model, evalSet, prompts, o.threads);
  const pv = await verifyProbabilities(model, evalSet, o.threads);
  const knowsHow = await knowsHowOfModel(model, prompts, traces, { threads: o.threads });
  log(
    `organism rl: pass@k of the ${o.label ?? model} model (${cfg.passProblems} problems x ${cfg.passSamples} samples)`,
  );
  const passAtK = await passAtKOf(model, evalSet.slice(0, cfg.passProblems), cfg, o.seed ?? 1, o.threads, log);
  return { greedy, pv, passAtK, knowsHow };
}

/** What measureOrganismModel returns, numbered: a cached measurement of another number is measured again. */
const MEASURED = 2;

/** A JSON file in the work folder keyed by what its content depends on: computed once, reused after. */
async function cached<T>(file: string, key: string, compute: () => Promise<T>): Promise<T> {
  if (existsSync(file)) {
    const rec = JSON.parse(readFileSync(file, 'utf8')) as { key: string; value: T };
    if (rec.key === key) return rec.value;
  }
  const value = await compute();
  writeFileSync(`${file}.tmp`, JSON.stringify({ key, value }));
  renameSync(`${file}.tmp`, file);
  return value;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** The training curves of the line, from the steps' metrics (sampleMetrics). */
function trainingCurves(history: GrpoStepStats[]): OrganismRlLine['train_by_step'] {
  const of = (s: GrpoStepStats, f: (m: Record<string, number>) => number) => {
    if (!s.metrics) return null;
    const x = f(s.metrics);
    return Number.isFinite(x) ? round3(x) : null;
  };
  return {
    reward: history.map((s) => round3(s.reward)),
    correct: history.map((s) => of(s, (m) => m.correct)),
    verify_rate_needed: history.map((s) => of(s, (m) => m.quick_wrong_verified / m.quick_wrong)),
    verify_rate_not_needed: history.map((s) => of(s, (m) => m.quick_right_verified / m.quick_right)),
    kl: history.map((s) => (s.kl === undefined ? null : Math.round(s.kl * 1e5) / 1e5)),
  };
}

const heldOutRate = (k: KnowsHowCounts): number | null =>
  k.verify_heldout[1] ? k.verify_heldout[0] / k.verify_heldout[1] : null;

export async function runOrganismRl(o: OrganismRlOptions): Promise<OrganismRlResult> {
  const cfg = o.config;
  const reward = o.reward ?? 'answer';
  const seed = o.seed ?? 1;
  const log = o.log ?? (() => {});
  const basePath = o.basePath ?? organismModelPaths().base;
  if (!existsSync(basePath))
    throw new ThinkwhenError(
      'ORGANISM_MISSING',
      `organism model not found: ${basePath}`,
      'run `thinkwhen organism build`',
    );
  requireOrganismVocab(basePath); // before training: the measurements encode with the organism's vocabulary
  mkdirSync(o.workDir, { recursive: true });
  const out = join(o.workDir, 'thinking-rl.gguf');
  const shot = generateProblems('train', 1, sampleSeed(seed, 0));
  const t0 = performance.now();
  const run = await trainGrpo<Problem>(
    {
      problems: (step, count) =>
        o.oneShot
          ? Array.from({ length: count }, () => shot[0])
          : generateProblems('train', count, sampleSeed(seed, step)),
      prompt: (p) => promptText(p.question),
      reward: (p, c) => rewardOf(reward, p, c.text),
      metrics: (p, c) => sampleMetrics(p, c.text),
    },
    {
      policy: basePath,
      out,
      steps: cfg.steps,
      problemsPerStep: cfg.problemsPerStep,
      groupSize: cfg.groupSize,
      maxTokens: cfg.maxTokens,
      tokenCost: cfg.tokenCost,
      advantage: cfg.advantage,
      lr: cfg.lr,
      ...(cfg.klCoef ? { klCoef: cfg.klCoef } : {}),
      checkpointEvery: cfg.checkpointEvery,
      seed,
      threads: o.threads,
      tag: JSON.stringify({ reward, oneShot: o.oneShot ?? false, base: statSync(basePath).size }),
      onStep: o.onStep,
      onRollout: o.onRollout,
    },
  );
  const trainSeconds = (performance.now() - t0) / 1000;

  const t1 = performance.now();
  const evalKey = (model: string) =>
    JSON.stringify({ model, size: statSync(model).size, mtime: statSync(model).mtimeMs, cfg, seed, MEASURED });
  const measure = (model: string, label: string) =>
    cached(join(o.workDir, `eval-${label}.json`), evalKey(model), () =>
      measureOrganismModel(model, cfg, { seed, threads: o.threads, log, label }),
    );
  const base = await measure(basePath, 'base');
  const rl = await measure(out, 'rl');
  const evalSeconds = (performance.now() - t1) / 1000;
  return {
    line: {
      acc: rl.greedy.acc,
      p_verify_needed: rl.pv.needed,
      p_verify_not_needed: rl.pv.notNeeded,
      knows_how_verify_heldout: heldOutRate(rl.knowsHow),
      pass_at_k: { base: base.passAtK, rl: rl.passAtK },
      base_acc: base.greedy.acc,
      base_p_verify_needed: base.pv.needed,
      base_p_verify_not_needed: base.pv.notNeeded,
      base_knows_how_verify_heldout: heldOutRate(base.knowsHow),
      verify_rate_needed: { base: base.greedy.verifyRateNeeded, rl: rl.greedy.verifyRateNeeded },
      verify_rate_not_needed: { base: base.greedy.verifyRateNotNeeded, rl: rl.greedy.verifyRateNotNeeded },
      sentence_types: { base: base.greedy.sentenceTypes, rl: rl.greedy.sentenceTypes },
      train_by_step: trainingCurves(run.history),
      reward,
      one_shot: o.oneShot ?? false,
      steps: run.history.length,
      lr: cfg.lr,
      kl_coef: cfg.klCoef ?? 0,
      organism: organismVersion(dirname(basePath)),
      base_sha256: await fileSha256(basePath),
    },
    model: out,
    history: run.history,
    pVerifyPoints: rl.pv.points,
    knowsHow: { base: base.knowsHow, rl: rl.knowsHow },
    trainSeconds,
    evalSeconds,
    cached: run.cached,
  };
}
