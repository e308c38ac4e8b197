// `thinkwhen organism eval`: the organism's properties on held-out test problems, greedy decoding.
//  - accuracy of both models (answers graded by the project's grader), and of the "never verify"
//    policy computed from the question alone;
//  - operands: every number a trace uses is the question's (or the value the trace holds), checked by
//    the parser (copy_error_rate_*): errors no verification could repair;
//  - "when", from the logits: the probability of starting a verification right after each quick
//    result of a model's own trace, split by whether a carry or borrow is needed there, and the same
//    split for what greedy decoding does;
//  - "knows how": at every quick result of the base model's own trace, the first token of a
//    verification is forced and the base continues greedily: is the verification exactly the
//    careful check (knows_how_verify), and after a check that contradicts the quick result, does the
//    base backtrack to the true value (knows_how_backtrack)? Split by operations the base corpora
//    verified (seen) and the held-out operations they never verified;
//  - every generated sentence is labelled by the deterministic parser (parsed_fraction).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { type Context, generate, Model, type Sequence } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { gradeResponse } from '../eval/answer/index.ts';
import { type Interval, wilson } from '../eval/metrics.ts';
import { analyzeTrace, operandErrors, parsedFraction, parseQuestion, type TraceAnalysis } from './parser.ts';
import { generateProblems, isHeldOut, neverVerifyAnswer, trueResult, verificationNeeded } from './task.ts';
import { promptText } from './vocab.ts';

/** The default held-out test seed; `SECOND_TEST_SEED` is the other one the shipped models are evaluated on. */
export const TEST_SEED = 20251008;
export const SECOND_TEST_SEED = 7;
/** the first token of a verification (forced for "knows how", scored for "when") */
export const VERIFY_PREFIX = 'Check';
/** tokens a forced verification may take (a 2-column check and its follow-up take about 60) */
const FORCED_TOKENS = 80;
const TRACE_TOKENS = 320;

export type BaseKind = 'default' | 'latent';

/**
 * Name of the stored result of `organism eval --json [--base latent] [--seed S]` next to the shipped
 * models: eval.json, eval-latent.json, eval-seed7.json, eval-latent-seed7.json.
 */
export function evalFileName(base: BaseKind, seed: number): string {
  return `eval${base === 'latent' ? '-latent' : ''}${seed === TEST_SEED ? '' : `-seed${seed}`}.json`;
}

/** The evaluations stored with the shipped models: both bases on both test seeds. */
export const SHIPPED_EVALS: readonly { base: BaseKind; seed: number }[] = [
  { base: 'default', seed: TEST_SEED },
  { base: 'latent', seed: TEST_SEED },
  { base: 'default', seed: SECOND_TEST_SEED },
  { base: 'latent', seed: SECOND_TEST_SEED },
];

export interface EvalOptions {
  basePath: string;
  thinkingPath: string;
  /** which base model basePath is: it decides the property thresholds (default 'default') */
  base?: BaseKind;
  n?: number;
  seed?: number;
  threads?: number;
  /** sequences decoded together */
  parallel?: number;
  log?: (line: string) => void;
}

export interface Property {
  value: number | null;
  threshold: string;
  pass: boolean;
}

export interface OrganismEvalResult {
  n: number;
  seed: number;
  base: BaseKind;
  base_acc: number;
  thinking_acc: number;
  gap: number;
  /** accuracy of quick results taken as they are, computed from the questions (no model) */
  never_verify_acc: number;
  /** traces with an operand that is not the question's (or not the value the trace holds) */
  copy_error_rate_base: number;
  copy_error_rate_thinking: number;
  knows_how_verify: number;
  knows_how_backtrack: number;
  knows_how_verify_seen: number;
  knows_how_verify_heldout: number;
  knows_how_backtrack_seen: number;
  knows_how_backtrack_heldout: number;
  /** after a wrong quick result of the model's own trace, the next sentence is a verification */
  verify_rate_base: number;
  verify_rate_thinking: number;
  /** mean next-token probability of `Check` right after a quick result (own traces), by need */
  p_verify_needed_base: number;
  p_verify_not_needed_base: number;
  p_verify_needed_thinking: number;
  p_verify_not_needed_thinking: number;
  /** greedy decoding: share of quick results followed by a verification (own traces), by need */
  greedy_verify_needed_base: number;
  greedy_verify_not_needed_base: number;
  greedy_verify_needed_thinking: number;
  greedy_verify_not_needed_thinking: number;
  /** share of the base's quick-result points where `Check` is among its 5 most likely next tokens */
  verify_in_top5_base: number;
  parsed_fraction: number;
  /** the organism's property thresholds, checked */
  properties: Record<string, Property>;
  /** numerator and denominator of every rate, and [sum of probabilities, points] for the p_verify_* means */
  counts: Record<string, [number, number]>;
  intervals: Record<string, Interval>;
  /** the model files measured */
  models: { base: ModelId; thinking: ModelId };
  seconds: number;
}

export interface ModelId {
  file: string;
  sha256: string;
}

export function modelId(path: string): ModelId {
  return { file: basename(path), sha256: createHash('sha256').update(readFileSync(path)).digest('hex') };
}

export async function greedy(ctx: Context, prompts: string[], maxTokens: number, parallel: number): Promise<string[]> {
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
function linesUpTo(a: TraceAnalysis, end: number): string {
  return a.sentences
    .slice(0, end)
    .map((s) => s.text)
    .join('\n');
}

interface NextToken {
  /** probability of the token */
  p: number;
  /** tokens with a higher logit */
  rank: number;
}

/**
 * For each text and each of its cut points (a prefix of the text), the next-token probability and
 * rank of `token` after that prefix: one decode of the whole text per sequence, logits at the cuts.
 */
async function nextTokenAt(
  ctx: Context,
  items: { text: string; cuts: string[] }[],
  token: number,
  parallel: number,
): Promise<NextToken[][]> {
  const model = ctx.model;
  const out: NextToken[][] = items.map(() => []);
  for (let g = 0; g < items.length; g += parallel) {
    const group = items.slice(g, g + parallel);
    const rows: { seq: Sequence; token: number; pos: number; item: number; logits: boolean }[] = [];
    const seqs = group.map(() => ctx.sequence());
    try {
      group.forEach((it, k) => {
        const toks = model.tokenize(it.text);
        const at = new Set(
          it.cuts.map((c) => {
            const pre = model.tokenize(c);
            if (pre.some((t, i) => t !== toks[i]))
              throw new ThinkwhenError('ORGANISM_EVAL', `a cut point does not tokenize as a prefix: ${c}`);
            return pre.length - 1;
          }),
        );
        toks.forEach((t, pos) => {
          rows.push({ seq: seqs[k], token: t, pos, item: g + k, logits: at.has(pos) });
        });
      });
      for (let s = 0; s < rows.length; s += ctx.nBatch) {
        const chunk = rows.slice(s, s + ctx.nBatch);
        const res = await ctx.decode(chunk.map((r) => ({ token: r.token, seq: r.seq, pos: r.pos, logits: r.logits })));
        res.logitRows.forEach((row, i) => {
          const logits = res.logits[i];
          let max = Number.NEGATIVE_INFINITY;
          for (const x of logits) max = Math.max(max, x);
          let z = 0;
          let rank = 0;
          for (const x of logits) {
            z += Math.exp(x - max);
            if (x > logits[token]) rank++;
          }
          out[chunk[row].item].push({ p: Math.exp(logits[token] - max) / z, rank });
        });
      }
    } finally {
      for (const s of seqs) s.dispose();
    }
  }
  return out;
}

const ratio = ([a, b]: [number, number]) => (b ? a / b : 0);

/** "Knows how" counts, [right, points], split by operations the base corpora verified (seen) and held-out ones. */
export interface KnowsHowCounts {
  verify_seen: [number, number];
  verify_heldout: [number, number];
  backtrack_seen: [number, number];
  backtrack_heldout: [number, number];
}

/**
 * "Knows how" of the model behind `ctx`: at every quick result of its own traces (`traces[i]`, the
 * analysis of its greedy answer to `prompts[i]`) the first token of a verification is forced and the
 * model continues greedily. verify: the verification is exactly the careful check; backtrack: after a
 * check that contradicts the quick result, the model backtracks to the true value.
 */
export async function knowsHow(
  ctx: Context,
  prompts: string[],
  traces: TraceAnalysis[],
  parallel: number,
  log: (line: string) => void = () => {},
): Promise<KnowsHowCounts> {
  const points = traces.flatMap((a, i) =>
    a.steps.map((s, k) => ({ problem: i, step: s, stepIndex: k, prefix: linesUpTo(a, s.index + 1) })),
  );
  log(`organism eval: forcing '${VERIFY_PREFIX}' into the model's traces at ${points.length} quick results`);
  const forced = await greedy(
    ctx,
    points.map((p) => `${prompts[p.problem]}${p.prefix}\n${VERIFY_PREFIX}`),
    FORCED_TOKENS,
    parallel,
  );
  const kh: KnowsHowCounts = {
    verify_seen: [0, 0],
    verify_heldout: [0, 0],
    backtrack_seen: [0, 0],
    backtrack_heldout: [0, 0],
  };
  points.forEach((p, i) => {
    const held = isHeldOut(p.step.v, p.step) ? 'heldout' : 'seen';
    const s = analyzeTrace(`${p.prefix}\n${VERIFY_PREFIX}${forced[i]}`).steps[p.stepIndex];
    const ok = s && s.v === p.step.v && s.n === p.step.n && s.kind === p.step.kind;
    kh[`verify_${held}`][1]++;
    if (ok && s.verifyCorrect) kh[`verify_${held}`][0]++;
    if (ok && s.verifyResult !== null && s.verifyResult !== s.q) {
      kh[`backtrack_${held}`][1]++;
      if (s.followup === 'backtrack' && s.backtrackValue === trueResult(s.v, s)) kh[`backtrack_${held}`][0]++;
    }
  });
  return kh;
}

/** `knowsHow` of the model file at `modelPath` (`traces`: the analyses of its own answers to `prompts`). */
export async function knowsHowOfModel(
  modelPath: string,
  prompts: string[],
  traces: TraceAnalysis[],
  o: { threads?: number; parallel?: number; log?: (line: string) => void } = {},
): Promise<KnowsHowCounts> {
  const parallel = o.parallel ?? 8;
  const model = await Model.load(modelPath);
  try {
    // 512 tokens a sequence: the organism's context, enough for a prompt, a trace and a forced check
    const ctx = model.createContext({ nCtx: parallel * 512, nBatch: 2048, nSeqMax: parallel, threads: o.threads });
    try {
      return await knowsHow(ctx, prompts, traces, parallel, o.log);
    } finally {
      ctx.free();
    }
  } finally {
    model.free();
  }
}

export async function evaluateOrganism(o: EvalOptions): Promise<OrganismEvalResult> {
  const t0 = performance.now();
  const n = o.n ?? 500;
  const seed = o.seed ?? TEST_SEED;
  const baseKind = o.base ?? 'default';
  const parallel = o.parallel ?? 32;
  const log = o.log ?? (() => {});
  const problems = generateProblems('test', n, seed);
  const models = { base: modelId(o.basePath), thinking: modelId(o.thinkingPath) };
  const base = await Model.load(o.basePath);
  const thinking = await Model.load(o.thinkingPath);
  const ctxOpts = { nCtx: parallel * 400, nBatch: 2048, nSeqMax: parallel, threads: o.threads };
  const bctx = base.createContext(ctxOpts);
  const tctx = thinking.createContext(ctxOpts);
  try {
    const [checkId] = base.tokenize(VERIFY_PREFIX);
    const prompts = problems.map((p) => promptText(p.question));
    log(`organism eval: ${n} test problems (seed ${seed}), greedy traces of the ${baseKind} base model`);
    const baseText = await greedy(bctx, prompts, TRACE_TOKENS, parallel);
    log('organism eval: greedy traces of the thinking model');
    const thinkText = await greedy(tctx, prompts, TRACE_TOKENS, parallel);
    const counts: Record<string, [number, number]> = {};
    const right = (texts: string[]) =>
      texts.filter((t, i) => gradeResponse(String(problems[i].answer), t).correct).length;
    counts.base_acc = [right(baseText), n];
    counts.thinking_acc = [right(thinkText), n];
    const questions = problems.map((p) => {
      const q = parseQuestion(p.question);
      if (!q) throw new ThinkwhenError('ORGANISM_EVAL', `the parser cannot read a test question: ${p.question}`);
      return q;
    });
    counts.never_verify_acc = [questions.filter((q) => neverVerifyAnswer(q) === q.answer).length, n];

    const baseAn = baseText.map(analyzeTrace);
    const thinkAn = thinkText.map(analyzeTrace);
    let parsed = 0;
    let total = 0;
    for (const a of [...baseAn, ...thinkAn]) {
      const f = parsedFraction(a.sentences);
      parsed += f.parsed;
      total += f.total;
    }
    counts.parsed_fraction = [parsed, total];
    const copyErrors = (an: TraceAnalysis[]): [number, number] => [
      an.filter((a, i) => operandErrors(questions[i], a).length > 0).length,
      n,
    ];
    counts.copy_error_rate_base = copyErrors(baseAn);
    counts.copy_error_rate_thinking = copyErrors(thinkAn);

    // "when": greedy choices and next-token probabilities after each quick result of own traces
    const when = async (ctx: Context, an: TraceAnalysis[], who: 'base' | 'thinking') => {
      // the trace as its parsed lines (what the parser and the forced continuations see)
      const items = an.map((a, i) => ({
        text: `${prompts[i]}${linesUpTo(a, a.sentences.length)}\n`,
        cuts: a.steps.map((s) => `${prompts[i]}${linesUpTo(a, s.index + 1)}\n`),
      }));
      log(`organism eval: next-token probabilities of '${VERIFY_PREFIX}' after quick results (${who})`);
      const next = await nextTokenAt(ctx, items, checkId, parallel);
      const acc = { needed: [0, 0, 0] as number[], not_needed: [0, 0, 0] as number[], top5: [0, 0] };
      an.forEach((a, i) => {
        a.steps.forEach((s, k) => {
          const bucket = verificationNeeded(s.v, s) ? acc.needed : acc.not_needed;
          const t = next[i][k];
          bucket[0] += t.p;
          bucket[1] += s.verified ? 1 : 0;
          bucket[2]++;
          acc.top5[0] += t.rank < 5 ? 1 : 0;
          acc.top5[1]++;
        });
      });
      for (const need of ['needed', 'not_needed'] as const) {
        const [p, v, m] = acc[need];
        counts[`p_verify_${need}_${who}`] = [p, m];
        counts[`greedy_verify_${need}_${who}`] = [v, m];
      }
      counts[`verify_in_top5_${who}`] = [acc.top5[0], acc.top5[1]];
      const wrong = an.flatMap((a) => a.steps.filter((s) => s.quickWrong));
      counts[`verify_rate_${who}`] = [wrong.filter((s) => s.verified).length, wrong.length];
    };
    await when(bctx, baseAn, 'base');
    await when(tctx, thinkAn, 'thinking');

    const kh = await knowsHow(bctx, prompts, baseAn, parallel, log);
    for (const [k, v] of Object.entries(kh)) counts[`knows_how_${k}`] = v;
    counts.knows_how_verify = [kh.verify_seen[0] + kh.verify_heldout[0], kh.verify_seen[1] + kh.verify_heldout[1]];
    counts.knows_how_backtrack = [
      kh.backtrack_seen[0] + kh.backtrack_heldout[0],
      kh.backtrack_seen[1] + kh.backtrack_heldout[1],
    ];

    const f = (k: string) => ratio(counts[k]);
    const r = {
      n,
      seed,
      base: baseKind,
      base_acc: f('base_acc'),
      thinking_acc: f('thinking_acc'),
      gap: f('thinking_acc') - f('base_acc'),
      never_verify_acc: f('never_verify_acc'),
      copy_error_rate_base: f('copy_error_rate_base'),
      copy_error_rate_thinking: f('copy_error_rate_thinking'),
      knows_how_verify: f('knows_how_verify'),
      knows_how_backtrack: f('knows_how_backtrack'),
      knows_how_verify_seen: f('knows_how_verify_seen'),
      knows_how_verify_heldout: f('knows_how_verify_heldout'),
      knows_how_backtrack_seen: f('knows_how_backtrack_seen'),
      knows_how_backtrack_heldout: f('knows_how_backtrack_heldout'),
      verify_rate_base: f('verify_rate_base'),
      verify_rate_thinking: f('verify_rate_thinking'),
      p_verify_needed_base: f('p_verify_needed_base'),
      p_verify_not_needed_base: f('p_verify_not_needed_base'),
      p_verify_needed_thinking: f('p_verify_needed_thinking'),
      p_verify_not_needed_thinking: f('p_verify_not_needed_thinking'),
      greedy_verify_needed_base: f('greedy_verify_needed_base'),
      greedy_verify_not_needed_base: f('greedy_verify_not_needed_base'),
      greedy_verify_needed_thinking: f('greedy_verify_needed_thinking'),
      greedy_verify_not_needed_thinking: f('greedy_verify_not_needed_thinking'),
      verify_in_top5_base: f('verify_in_top5_base'),
      parsed_fraction: f('parsed_fraction'),
    };
    const intervals = Object.fromEntries(
      Object.entries(counts)
        .filter(([k]) => !k.startsWith('p_verify_'))
        .map(([k, [a, b]]) => [k, wilson(a, b)]),
    );
    return {
      ...r,
      properties: organismProperties(r),
      counts,
      intervals,
      models,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    bctx.free();
    tctx.free();
    base.free();
    thinking.free();
  }
}

type Measured = Omit<OrganismEvalResult, 'properties' | 'counts' | 'intervals' | 'models' | 'seconds'>;

/** The properties the organism must have (docs/organism.md), with their thresholds. */
export function organismProperties(r: Measured): Record<string, Property> {
  const at = (value: number | null, threshold: string, pass: boolean): Property => ({ value, threshold, pass });
  const latent = r.base === 'latent';
  const kh = latent ? { verify: 0.8, backtrack: 0.7 } : { verify: 0.9, backtrack: 0.8 };
  const nv = Math.abs(r.base_acc - r.never_verify_acc);
  const p: Record<string, Property> = {
    test_set: at(r.n, '>= 500 problems', r.n >= 500),
    base_is_never_verify: at(nv, '|base_acc - never_verify_acc| <= 0.02', nv <= 0.02),
    copy_error_rate_base: at(r.copy_error_rate_base, '<= 0.01', r.copy_error_rate_base <= 0.01),
    copy_error_rate_thinking: at(r.copy_error_rate_thinking, '<= 0.01', r.copy_error_rate_thinking <= 0.01),
    gap: at(r.gap, '>= 0.25', r.gap >= 0.25),
    thinking_acc: at(r.thinking_acc, '>= 0.98', r.thinking_acc >= 0.98),
    p_verify_needed_thinking: at(r.p_verify_needed_thinking, '>= 0.9', r.p_verify_needed_thinking >= 0.9),
    p_verify_not_needed_thinking: at(r.p_verify_not_needed_thinking, '<= 0.1', r.p_verify_not_needed_thinking <= 0.1),
  };
  if (latent) {
    p.p_verify_needed_base = at(r.p_verify_needed_base, '<= 0.01', r.p_verify_needed_base <= 0.01);
    p.p_verify_not_needed_base = at(r.p_verify_not_needed_base, '<= 0.01', r.p_verify_not_needed_base <= 0.01);
    p.verify_in_top5_base = at(r.verify_in_top5_base, '<= 0.05', r.verify_in_top5_base <= 0.05);
  } else {
    const d = Math.abs(r.p_verify_needed_base - r.p_verify_not_needed_base);
    const hi = Math.max(r.p_verify_needed_base, r.p_verify_not_needed_base);
    p.p_verify_base_uninformative = at(d, '|p_verify_needed_base - p_verify_not_needed_base| <= 0.05', d <= 0.05);
    p.p_verify_base_low = at(hi, 'p_verify_needed_base and p_verify_not_needed_base <= 0.25', hi <= 0.25);
  }
  Object.assign(p, {
    knows_how_verify: at(r.knows_how_verify, `>= ${kh.verify}`, r.knows_how_verify >= kh.verify),
    knows_how_backtrack: at(r.knows_how_backtrack, `>= ${kh.backtrack}`, r.knows_how_backtrack >= kh.backtrack),
    knows_how_verify_heldout: at(
      r.knows_how_verify_heldout,
      `>= ${kh.verify}`,
      r.knows_how_verify_heldout >= kh.verify,
    ),
    knows_how_backtrack_heldout: at(
      r.knows_how_backtrack_heldout,
      `>= ${kh.backtrack}`,
      r.knows_how_backtrack_heldout >= kh.backtrack,
    ),
    verify_rate_ratio: at(
      r.verify_rate_base > 0 ? r.verify_rate_thinking / r.verify_rate_base : null,
      'verify_rate_thinking >= 3 x verify_rate_base (null: base never verifies, the ratio is unbounded)',
      r.verify_rate_thinking > 0 && r.verify_rate_thinking >= 3 * r.verify_rate_base,
    ),
    parsed_fraction: at(r.parsed_fraction, '>= 0.98', r.parsed_fraction >= 0.98),
  });
  return p;
}
