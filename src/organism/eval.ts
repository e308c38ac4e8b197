// `thinkwhen organism eval`: the organism's properties on the held-out test problems, greedy decoding.
//  - accuracy of both models (answers graded by the project's grader);
//  - base knows how: at every point of the base model's own trace where the thinking model, reading
//    that trace, would start a verification, force the verification's first token into the base
//    trace; the base completes the verification correctly (knows_how_verify), and after a completed
//    verification that contradicts the quick result it backtracks to the right value
//    (knows_how_backtrack);
//  - base does not know when: the rate of spontaneous verification right after a wrong quick
//    computation, in each model's own traces;
//  - every generated sentence is labelled by the deterministic parser (parsed_fraction).
import { availableParallelism } from 'node:os';
import { type Context, generate, Model } from '../engine/index.ts';
import { gradeResponse } from '../eval/answer/index.ts';
import { type Interval, wilson } from '../eval/metrics.ts';
import { analyzeTrace, parsedFraction, type StepAnalysis } from './parser.ts';
import { generateProblems, type Problem, quickResult, trueResult } from './task.ts';
import { promptText } from './vocab.ts';

export const TEST_SEED = 20251008;
/** the forced start of a verification sentence */
export const VERIFY_PREFIX = 'Check';

export interface EvalOptions {
  basePath: string;
  thinkingPath: string;
  n?: number;
  seed?: number;
  threads?: number;
  /** sequences decoded together */
  parallel?: number;
  log?: (line: string) => void;
}

export interface OrganismEvalResult {
  n: number;
  base_acc: number;
  thinking_acc: number;
  gap: number;
  knows_how_verify: number;
  knows_how_backtrack: number;
  verify_rate_base: number;
  verify_rate_thinking: number;
  parsed_fraction: number;
  /** the property thresholds of the organism, checked */
  properties: Record<string, { value: number; threshold: string; pass: boolean }>;
  /** numerator and denominator of every rate (plus diagnostics: quick_rule_* = quick results that follow the carry-dropping rule) */
  counts: Record<string, [number, number]>;
  intervals: Record<string, Interval>;
  seconds: number;
}

async function greedy(ctx: Context, prompts: string[], maxTokens: number, parallel: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < prompts.length; i += parallel) {
    const res = await generate(
      ctx,
      prompts.slice(i, i + parallel).map((prompt) => ({ prompt, maxTokens })),
    );
    for (const r of res) out.push(r.text);
  }
  return out;
}

/** Text of the parsed sentences 0..end-1 of a trace, one per line. */
function prefixOf(text: string, end: number): string {
  return analyzeTrace(text)
    .sentences.slice(0, end)
    .map((s) => s.text)
    .join('\n');
}

export async function evaluateOrganism(o: EvalOptions): Promise<OrganismEvalResult> {
  const t0 = performance.now();
  const n = o.n ?? 500;
  const parallel = o.parallel ?? 64;
  const log = o.log ?? (() => {});
  const threads = o.threads ?? Math.min(4, availableParallelism());
  const problems: Problem[] = generateProblems('test', n, o.seed ?? TEST_SEED);
  const base = await Model.load(o.basePath);
  const thinking = await Model.load(o.thinkingPath);
  const ctxOpts = { nCtx: parallel * 400, nBatch: 2048, nSeqMax: parallel, threads };
  const bctx = base.createContext(ctxOpts);
  const tctx = thinking.createContext(ctxOpts);
  try {
    const prompts = problems.map((p) => promptText(p.question));
    log(`organism eval: ${n} test problems, greedy traces of the base model`);
    const baseText = await greedy(bctx, prompts, 320, parallel);
    log('organism eval: greedy traces of the thinking model');
    const thinkText = await greedy(tctx, prompts, 320, parallel);
    const correct = (texts: string[]) =>
      texts.filter((t, i) => gradeResponse(String(problems[i].answer), t).correct).length;
    const baseRight = correct(baseText);
    const thinkRight = correct(thinkText);

    // parsed fraction over every sentence both models wrote
    let parsed = 0;
    let total = 0;
    const baseAn = baseText.map(analyzeTrace);
    const thinkAn = thinkText.map(analyzeTrace);
    for (const a of [...baseAn, ...thinkAn]) {
      const f = parsedFraction(a.sentences);
      parsed += f.parsed;
      total += f.total;
    }
    // spontaneous verification right after a wrong quick computation
    const rate = (an: typeof baseAn): [number, number] => {
      const wrong = an.flatMap((a) => a.steps.filter((s) => s.quickWrong));
      return [wrong.filter((s) => s.verified).length, wrong.length];
    };
    const [vb, nb] = rate(baseAn);
    const [vt, nt] = rate(thinkAn);
    // diagnostics: quick results that follow the carry-dropping rule; answers right in the base
    // model's traces if its own quick results had all been checked
    const rule = (an: typeof baseAn): [number, number] => {
      const steps = an.flatMap((a) => a.steps);
      return [steps.filter((s) => s.q === quickResult(s.v, s)).length, steps.length];
    };

    // points in the base model's own traces right after a quick computation ...
    const points: { problem: number; step: StepAnalysis; stepIndex: number; prefix: string }[] = [];
    baseAn.forEach((a, i) => {
      for (const [k, s] of a.steps.entries()) {
        points.push({ problem: i, step: s, stepIndex: k, prefix: prefixOf(baseText[i], s.index + 1) });
      }
    });
    // ... where the thinking model, reading the same text, starts a verification
    log(`organism eval: ${points.length} cut points; asking the thinking model what comes next`);
    const nextThink = await greedy(
      tctx,
      points.map((p) => `${promptText(problems[p.problem].question)}${p.prefix}\n`),
      1,
      parallel,
    );
    const verifyPoints = points.filter((_, i) => nextThink[i].startsWith(VERIFY_PREFIX));
    log(`organism eval: forcing '${VERIFY_PREFIX}' into the base trace at ${verifyPoints.length} points`);
    const forced = await greedy(
      bctx,
      verifyPoints.map((p) => `${promptText(problems[p.problem].question)}${p.prefix}\n${VERIFY_PREFIX}`),
      80,
      parallel,
    );
    let verifyOk = 0;
    let contradict = 0;
    let backtrackOk = 0;
    verifyPoints.forEach((p, i) => {
      const an = analyzeTrace(`${p.prefix}\n${VERIFY_PREFIX}${forced[i]}`);
      const s = an.steps[p.stepIndex];
      if (!s || s.v !== p.step.v || s.n !== p.step.n) return;
      if (s.verifyCorrect) verifyOk++;
      if (s.verifyResult !== null && s.verifyResult !== s.q) {
        contradict++;
        if (s.followup === 'backtrack' && s.backtrackValue === trueResult(s.v, s)) backtrackOk++;
      }
    });

    const counts: Record<string, [number, number]> = {
      base_acc: [baseRight, n],
      thinking_acc: [thinkRight, n],
      knows_how_verify: [verifyOk, verifyPoints.length],
      knows_how_backtrack: [backtrackOk, contradict],
      verify_rate_base: [vb, nb],
      verify_rate_thinking: [vt, nt],
      parsed_fraction: [parsed, total],
      quick_rule_base: rule(baseAn),
      quick_rule_thinking: rule(thinkAn),
    };
    const frac = (k: string) => (counts[k][1] ? counts[k][0] / counts[k][1] : 0);
    const intervals = Object.fromEntries(Object.entries(counts).map(([k, [a, b]]) => [k, wilson(a, b)]));
    const r = {
      n,
      base_acc: frac('base_acc'),
      thinking_acc: frac('thinking_acc'),
      gap: frac('thinking_acc') - frac('base_acc'),
      knows_how_verify: frac('knows_how_verify'),
      knows_how_backtrack: frac('knows_how_backtrack'),
      verify_rate_base: frac('verify_rate_base'),
      verify_rate_thinking: frac('verify_rate_thinking'),
      parsed_fraction: frac('parsed_fraction'),
    };
    const properties = {
      gap: { value: r.gap, threshold: '>= 0.25', pass: r.gap >= 0.25 },
      knows_how_verify: { value: r.knows_how_verify, threshold: '>= 0.90', pass: r.knows_how_verify >= 0.9 },
      knows_how_backtrack: { value: r.knows_how_backtrack, threshold: '>= 0.80', pass: r.knows_how_backtrack >= 0.8 },
      verify_rate_ratio: {
        value: r.verify_rate_base > 0 ? r.verify_rate_thinking / r.verify_rate_base : Number.POSITIVE_INFINITY,
        threshold: 'verify_rate_thinking >= 3 x verify_rate_base',
        pass: r.verify_rate_thinking > 0 && r.verify_rate_thinking >= 3 * r.verify_rate_base,
      },
      parsed_fraction: { value: r.parsed_fraction, threshold: '>= 0.98', pass: r.parsed_fraction >= 0.98 },
      test_set: { value: n, threshold: '>= 500 problems', pass: n >= 500 },
    };
    return { ...r, properties, counts, intervals, seconds: (performance.now() - t0) / 1000 };
  } finally {
    bctx.free();
    tctx.free();
    base.free();
    thinking.free();
  }
}
