// The paper's hybrid algorithm taken literally (docs/method.md §2.7, §2.9): batch 1, no KV cache,
// every step a full forward of both models over the whole text so far, and one more full forward
// per grid candidate at a disagreement. It is slow on purpose (O(T²) token-forwards per trace):
// it is the yardstick the fast loop (hybrid.ts) must match token for token, and the speed ratio's
// denominator (bench/hybrid.ts, `thinkwhen hybrid --reference`).
import type { Context, Model, Sequence } from '../engine/index.ts';
import { Bridge } from './bridge.ts';
import {
  type Candidate,
  checkProblems,
  type FinishReason,
  type HybridEvent,
  type HybridOptions,
  type HybridPair,
  type HybridProblem,
  resolveOptions,
  type TokenRecord,
} from './options.ts';
import { makePolicy, problemRng, windowStart } from './policies.ts';
import { BASE_SLOT, cellSlot, Draws } from './sampling.ts';
import { argmaxMargin, chooseCandidate, guardrailMargin, scoreCandidate, ThinkingScores, topTokens } from './step.ts';

/** One full forward from an empty KV cache; the context grows when a text outgrows it. */
class FullForward {
  private ctx: Context | null = null;
  private seq: Sequence | null = null;

  constructor(
    private readonly model: Model,
    private readonly threads?: number,
  ) {}

  async run(
    ids: number[],
    opts: { add?: { hook: string; vector: Float32Array; from: number }; capture?: string } = {},
  ): Promise<{ logits: Float32Array; captured: Float32Array | null }> {
    const n = ids.length;
    if (!this.ctx || this.ctx.nCtx < n) {
      this.free();
      const size = Math.max(512, 2 ** Math.ceil(Math.log2(n)));
      this.ctx = this.model.createContext({ nCtx: size, nBatch: size, nSeqMax: 1, threads: this.threads });
      this.seq = this.ctx.sequence();
    }
    const seq = this.seq!;
    seq.clear();
    const hooks = [];
    if (opts.add && opts.add.from < n) {
      const rows = [];
      for (let i = opts.add.from; i < n; i++) rows.push(i);
      hooks.push({ hook: opts.add.hook, rows, add: opts.add.vector });
    }
    if (opts.capture) hooks.push({ hook: opts.capture, rows: [n - 1], capture: true });
    const out = await this.ctx.decode(
      ids.map((token, i) => ({ token, seq, logits: i === n - 1 })),
      hooks,
    );
    const cap = opts.capture ? out.captures[hooks.length - 1]![0] : null;
    return { logits: out.logits[0], captured: cap };
  }

  free(): void {
    this.ctx?.free();
    this.ctx = null;
    this.seq = null;
  }
}

/**
 * The paper's algorithm, one problem after the other; yields the same events as
 * `hybridGenerate`. Each record carries `margin`: the smallest top-2 gap of any decision of
 * its step (greedy tokens, SAE argmax, candidate argmaxes, guardrail), which says where fp32
 * rounding could flip a decision (at temperature > 0 the draws themselves are not covered).
 */
export async function* referenceGenerate(
  pair: HybridPair,
  problems: HybridProblem[],
  options: HybridOptions = {},
): AsyncGenerator<HybridEvent> {
  const opts = resolveOptions(options);
  checkProblems(pair, problems);
  const policy = makePolicy(pair, opts);
  const draws = new Draws(opts);
  const bridge = new Bridge(pair.base, pair.thinking, opts.gate);
  const { base, thinking, sae } = pair;
  const saeHook = `blocks.${pair.saeLayer}.hook_resid_post`;
  const baseRun = new FullForward(base, opts.threads);
  const thinkRun = new FullForward(thinking, opts.threads);
  try {
    for (let p = 0; p < problems.length; p++) {
      const { id } = problems[p];
      const sample = problems[p].sample ?? 0;
      const key = { id, sample };
      const startedAt = Date.now();
      const B = [...problems[p].prompt.base];
      const T = [...problems[p].prompt.thinking];
      const promptTokens = { base: B.length, thinking: T.length };
      const rng = problemRng(opts.seed, id, sample);
      const records: TokenRecord[] = [];
      let text = '';
      let finishReason: FinishReason = 'length';
      for (let step = 0; step < opts.maxTokens; step++) {
        if (opts.signal?.aborted) {
          finishReason = 'aborted';
          break;
        }
        const th = await thinkRun.run(T, { capture: saeHook });
        const z = sae.encodeDense(th.captured!);
        const bl = await baseRun.run(B);
        const b = argmaxMargin(bl.logits);
        const t = argmaxMargin(th.logits);
        const zk = argmaxMargin(z);
        let margin = Math.min(b.margin, t.margin, zk.margin);
        const agree = bridge.agree(b.id, t.id);
        const latent = agree ? zk.id : policy.latent(z, rng);
        const rec: TokenRecord = {
          step,
          token: draws.pick(bl.logits, key, step, BASE_SLOT),
          source: 'base',
          text: '',
          baseGreedy: b.id,
          thinkingGreedy: t.id,
          gate: agree ? 'agree' : 'disagree',
          steered: !agree,
          latent,
          title: pair.vectors.titles.get(latent) ?? null,
          activation: z[latent],
        };
        if (!agree) {
          const scores = new ThinkingScores(th.logits, t.id);
          let cands: Candidate[] = [];
          if (policy.kind === 'grid' || policy.kind === 'pure') {
            const cells =
              policy.kind === 'pure'
                ? [[opts.pureCoefficient, opts.pureWindow]]
                : opts.grid.coefficients.flatMap((c) => opts.grid.windows.map((w) => [c, w]));
            for (const [i, [c, w]] of cells.entries()) {
              const r = await baseRun.run(B, {
                add: { hook: policy.hook, vector: policy.addVector(latent, c), from: windowStart(w, B.length) },
              });
              if (draws.greedy) margin = Math.min(margin, argmaxMargin(r.logits).margin);
              cands.push(scoreCandidate(bridge, scores, c, w, draws.pick(r.logits, key, step, cellSlot(i))));
            }
          } else if (policy.kind === 'selection') {
            cands = topTokens(bl.logits, policy.candidates).map((tok) => scoreCandidate(bridge, scores, 0, 0, tok));
          }
          if (policy.kind === 'oracle') {
            rec.token = t.id;
            rec.source = 'thinking';
            rec.vector = 'none';
            rec.reachedThinking = true;
          } else {
            const chosen = policy.kind === 'pure' ? 0 : chooseCandidate(cands);
            if (policy.kind !== 'pure') margin = Math.min(margin, guardrailMargin(bridge, cands, chosen));
            rec.token = cands[chosen].token;
            rec.candidates = cands;
            rec.chosen = chosen;
            rec.reachedThinking = cands[chosen].logp === scores.max;
            if (policy.kind !== 'selection') {
              rec.coefficient = cands[chosen].coefficient;
              rec.window = cands[chosen].window;
              const st = policy.steering(latent);
              rec.vector = st.vector;
              if (st.missing) rec.missingVector = true;
            } else rec.vector = 'none';
          }
        }
        rec.margin = margin;
        const bridged = rec.source === 'base' ? bridge.fromBase(rec.token) : bridge.fromThinking(rec.token);
        rec.text = bridged.text;
        B.push(...bridged.baseIds);
        T.push(...bridged.thinkIds);
        records.push(rec);
        yield { type: 'token', problem: p, id, record: rec };
        const eos =
          rec.source === 'base'
            ? rec.token === base.info.eos
            : rec.token === thinking.info.eos || bridged.baseIds.includes(base.info.eos);
        if (eos) {
          finishReason = 'eos';
          break;
        }
        text += bridged.text;
      }
      yield {
        type: 'done',
        problem: p,
        id,
        result: {
          problem: p,
          id,
          sample,
          tokens: B.slice(promptTokens.base),
          text,
          records,
          promptTokens,
          finishReason,
          startedAt,
          finishedAt: Date.now(),
        },
      };
    }
  } finally {
    baseRun.free();
    thinkRun.free();
  }
}
