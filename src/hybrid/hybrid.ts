// The hybrid model, fast and exact (docs/hybrid.md): the base model generates, the thinking model
// reads along; where their greedy tokens disagree the base model is steered with c·(bias + v_k)
// for every cell of the grid and the candidate the thinking model likes best is emitted. The
// token stream is the paper's (reference.ts), computed with KV caches instead of full recomputes:
//
//  - lockstep: each problem has a base and a thinking sequence; a round feeds both the tokens
//    emitted since the last round, many problems per decode;
//  - speculative lockstep (speculate = k > 1): the base model runs up to k greedy tokens ahead and
//    the thinking model checks them in one decode; both roll back to the first disagreement. The
//    draft length adapts per problem: halved at a disagreement, doubled after a round without
//    one (drafts past a disagreement are wasted base decodes, and disagreements cluster);
//  - windows −n: a fork of the base sequence truncated at N−n re-decodes n tokens steered (the
//    shared prefix costs nothing); all problems' windows go into one decode;
//  - window 0: a steered sequence per (problem, coefficient, vector) catches up on the tokens
//    emitted since its last use (SteeredPool); latents that steer with the same vector (only_bias,
//    a latent without a vector) share one;
//  - early exit: candidates are produced coefficient by coefficient in grid order; once one
//    scores the thinking model's top log-probability no later candidate can win.
import type { Sequence } from '../engine/index.ts';
import type { Rng } from '../rng.ts';
import { Bridge } from './bridge.ts';
import { ElasticContext, feed, SteeredPool } from './kv.ts';
import {
  type Candidate,
  checkProblems,
  type FinishReason,
  type HybridEvent,
  type HybridOptions,
  type HybridPair,
  type HybridProblem,
  type HybridResult,
  type ResolvedOptions,
  resolveOptions,
  type TokenRecord,
} from './options.ts';
import { makePolicy, problemRng, windowStart } from './policies.ts';
import { BASE_SLOT, cellSlot, Draws } from './sampling.ts';
import { argmaxMargin, chooseCandidate, scoreCandidate, ThinkingScores, topTokens } from './step.ts';

/** Memory the window-0 pool may take by default (KV cells and attention buffers). */
const POOL_BUDGET = 1 << 30;

/** Work counters of a run (token-rows decoded), for the benchmark and the docs. */
export interface HybridCounters {
  baseRows: number;
  thinkingRows: number;
  windowRows: number;
  steeredRows: number;
  decodes: number;
  disagreements: number;
  earlyExits: number;
  /** speculative tokens the base model ran ahead that a disagreement threw away */
  rejected: number;
  /** times a base or thinking context was replaced by a larger one */
  contextsGrown: number;
  /**
   * Process CPU time (ms) spent while each kind of decode ran: where the time goes. The decodes run
   * off the JS thread, which waits meanwhile, so this is mostly llama.cpp's.
   */
  cpuMs: { base: number; thinking: number; windows: number; window0: number };
}

/** Runs `work`, adding the process CPU time it took to `into[kind]`. */
async function cpuTimed<K extends string, T>(into: Record<K, number>, kind: K, work: () => Promise<T>): Promise<T> {
  const c0 = process.cpuUsage();
  try {
    return await work();
  } finally {
    const c = process.cpuUsage(c0);
    into[kind] += (c.user + c.system) / 1000;
  }
}

/** One problem in flight. */
interface Lane {
  uid: number;
  problem: number;
  id: string;
  sample: number;
  rng: Rng;
  /** every id the base / thinking model has been given or will be given next (prompt included) */
  B: number[];
  T: number[];
  baseSeq: Sequence;
  thinkSeq: Sequence;
  /** thinking logits and SAE-layer residual after the last fed thinking token */
  thinkLogits: Float32Array | null;
  thinkResid: Float32Array | null;
  /** tokens to draft next round (adaptive, 1..speculate) */
  draft: number;
  promptTokens: { base: number; thinking: number };
  records: TokenRecord[];
  text: string;
  startedAt: number;
  finish: FinishReason | null;
}

/** A base token produced ahead of the thinking model's check. */
interface Draft {
  /** the base model's greedy token (the gate's) */
  greedy: number;
  /** the token emitted if the thinking model agrees: the greedy one, or a draw at temperature > 0 */
  token: number;
  logits: Float32Array;
  /** B.length when its logits were computed */
  baseLen: number;
}

/** A step to settle: the base model's greedy token, the thinking model's view of the same text. */
interface Step {
  lane: Lane;
  /** index of the token to generate (keys its draws) */
  step: number;
  baseGreedy: number;
  baseLogits: Float32Array;
  thinkLogits: Float32Array;
  resid: Float32Array;
}

export interface HybridRun {
  events: AsyncGenerator<HybridEvent>;
  counters: HybridCounters;
}

/** The fast hybrid loop with its work counters. */
export function hybridRun(pair: HybridPair, problems: HybridProblem[], options: HybridOptions = {}): HybridRun {
  const counters: HybridCounters = {
    baseRows: 0,
    thinkingRows: 0,
    windowRows: 0,
    steeredRows: 0,
    decodes: 0,
    disagreements: 0,
    earlyExits: 0,
    rejected: 0,
    contextsGrown: 0,
    cpuMs: { base: 0, thinking: 0, windows: 0, window0: 0 },
  };
  const opts = resolveOptions(options);
  checkProblems(pair, problems);
  return { events: run(pair, problems, opts, counters), counters };
}

/**
 * Runs the hybrid model over `problems`, streaming one event per generated token and one per
 * finished problem (problems finish in any order; events name them).
 */
export function hybridGenerate(
  pair: HybridPair,
  problems: HybridProblem[],
  options: HybridOptions = {},
): AsyncGenerator<HybridEvent> {
  return hybridRun(pair, problems, options).events;
}

async function* run(
  pair: HybridPair,
  problems: HybridProblem[],
  opts: ResolvedOptions,
  counters: HybridCounters,
): AsyncGenerator<HybridEvent> {
  const policy = makePolicy(pair, opts);
  const bridge = new Bridge(pair.base, pair.thinking, opts.gate);
  const draws = new Draws(opts);
  const { base, thinking } = pair;
  const prompts = problems.map((p) => ({ B: p.prompt.base, T: p.prompt.thinking }));
  const lanesMax = Math.min(opts.batch, problems.length);
  if (lanesMax === 0) return;
  // KV cells to start with, per problem: the prompt and up to 512 generated tokens, plus the base
  // side's re-decoded windows. Contexts grow when texts outgrow them (ElasticContext).
  const windowCells = opts.grid.windows.reduce((s, w) => s - w, 0);
  const longest = (side: 'B' | 'T') => Math.max(...prompts.map((p) => p[side].length));
  const laneBase = longest('B') + Math.min(opts.maxTokens, 512) + 2 * opts.speculate;
  const laneThink = longest('T') + Math.min(opts.maxTokens, 512) + 2 * opts.speculate;
  const baseKv = new ElasticContext(base, lanesMax * (laneBase + windowCells), {
    nBatch: 512,
    nSeqMax: 256,
    threads: opts.threads,
  });
  const thinkKv = new ElasticContext(thinking, lanesMax * laneThink, {
    nBatch: 512,
    nSeqMax: lanesMax,
    threads: opts.threads,
  });
  const steers = policy.kind === 'grid' || policy.kind === 'pure';
  const poolSize =
    opts.steeredPool === 'auto'
      ? Math.min(
          Math.max(4, Math.floor(POOL_BUDGET / SteeredPool.slotBytes(base, laneBase))),
          lanesMax * opts.grid.coefficients.length * pair.sae.latents,
        )
      : opts.steeredPool;
  const pool = steers ? new SteeredPool(base, poolSize, laneBase, opts.threads) : null;
  const saeHook = `blocks.${pair.saeLayer}.hook_resid_post`;
  const lanes: Lane[] = [];
  let next = 0;
  let uid = 0;

  const admit = () => {
    while (lanes.length < lanesMax && next < problems.length) {
      const p = next++;
      const { B, T } = prompts[p];
      const sample = problems[p].sample ?? 0;
      lanes.push({
        uid: uid++,
        problem: p,
        id: problems[p].id,
        sample,
        rng: problemRng(opts.seed, problems[p].id, sample),
        B: [...B],
        T: [...T],
        baseSeq: baseKv.ctx.sequence(),
        thinkSeq: thinkKv.ctx.sequence(),
        thinkLogits: null,
        thinkResid: null,
        draft: opts.speculate,
        promptTokens: { base: B.length, thinking: T.length },
        records: [],
        text: '',
        startedAt: Date.now(),
        finish: null,
      });
    }
  };

  /** Records an emitted token; appends its re-encodings to both texts. */
  const emit = (lane: Lane, rec: TokenRecord, events: HybridEvent[]) => {
    const bridged = rec.source === 'base' ? bridge.fromBase(rec.token) : bridge.fromThinking(rec.token);
    rec.text = bridged.text;
    lane.B.push(...bridged.baseIds);
    lane.T.push(...bridged.thinkIds);
    lane.records.push(rec);
    events.push({ type: 'token', problem: lane.problem, id: lane.id, record: rec });
    const eos =
      rec.source === 'base'
        ? rec.token === base.info.eos
        : rec.token === thinking.info.eos || bridged.baseIds.includes(base.info.eos);
    if (eos) lane.finish = 'eos';
    else {
      lane.text += bridged.text;
      if (lane.records.length >= opts.maxTokens) lane.finish = 'length';
    }
  };

  const decodeFeed = async (kind: 'base' | 'thinking' | 'windows', ...args: Parameters<typeof feed>) => {
    const rows = args[1].reduce((s, it) => s + it.ids.length, 0);
    counters.decodes += Math.ceil(rows / args[0].nBatch);
    return cpuTimed(counters.cpuMs, kind, () => feed(...args));
  };

  /** Room for `extra` more cells in the base context (every lane's sequence moves when it grows). */
  const baseRoom = async (extra: number) => {
    const seqs = await baseKv.room(
      extra,
      lanes.map((l) => ({ seq: l.baseSeq, ids: l.B })),
    );
    lanes.forEach((l, i) => {
      l.baseSeq = seqs[i];
    });
  };

  try {
    admit();
    while (lanes.length) {
      const events: HybridEvent[] = [];
      if (opts.signal?.aborted) for (const l of lanes) l.finish = 'aborted';
      else {
        const steps = await lockstep(lanes, events);
        if (steps.length) await settle(steps, events);
        if (pool) counters.steeredRows = pool.rows;
      }
      for (let i = lanes.length - 1; i >= 0; i--) {
        const l = lanes[i];
        if (!l.finish) continue;
        lanes.splice(i, 1);
        l.baseSeq.dispose();
        l.thinkSeq.dispose();
        pool?.release(`${l.uid}:`);
        events.push({ type: 'done', problem: l.problem, id: l.id, result: result(l) });
      }
      admit();
      yield* events;
    }
  } finally {
    pool?.free();
    baseKv.free();
    thinkKv.free();
    counters.contextsGrown = baseKv.grown + thinkKv.grown;
  }

  /**
   * One lockstep round for every lane: the base model drafts up to k greedy tokens, the thinking
   * model checks them in one decode; agreeing tokens are emitted, and the first disagreement of
   * each lane is returned as a step to settle, with both sequences rolled back to it.
   */
  async function lockstep(active: Lane[], events: HybridEvent[]): Promise<Step[]> {
    const drafts = new Map<Lane, Draft[]>(active.map((l) => [l, []]));
    let drafting = [...active];
    for (let j = 0; drafting.length; j++) {
      // a token that re-encodes to nothing leaves the text as it was: decode its last token again
      for (const l of drafting) if (l.baseSeq.length === l.B.length) l.baseSeq.truncate(l.B.length - 1);
      await baseRoom(drafting.reduce((s, l) => s + l.B.length - l.baseSeq.length, 0));
      const items = drafting.map((l) => {
        const ids = l.B.slice(l.baseSeq.length);
        return { seq: l.baseSeq, ids, outputs: [ids.length - 1] };
      });
      counters.baseRows += items.reduce((s, it) => s + it.ids.length, 0);
      const out = await decodeFeed('base', baseKv.ctx, items);
      const still: Lane[] = [];
      drafting.forEach((l, i) => {
        const logits = out.logits[i][0];
        const d = drafts.get(l)!;
        const greedy = argmaxMargin(logits).id;
        const token = draws.greedy ? greedy : draws.pick(logits, l, l.records.length + d.length, BASE_SLOT);
        d.push({ greedy, token, logits, baseLen: l.B.length });
        const room = l.records.length + d.length < opts.maxTokens;
        if (j + 1 < l.draft && token !== base.info.eos && room) {
          l.B.push(...bridge.fromBase(token).baseIds);
          still.push(l);
        }
      });
      drafting = still;
    }

    // The thinking model reads the text emitted since its last decode (group 0) and every draft
    // but the last (groups 1..); its state after group j gives its greedy token for draft j.
    const rows = active.reduce(
      (s, l) =>
        s +
        l.T.length -
        l.thinkSeq.length +
        drafts
          .get(l)!
          .slice(0, -1)
          .reduce((a, d) => a + bridge.fromBase(d.token).thinkIds.length, 0),
      0,
    );
    const seqs = await thinkKv.room(
      rows,
      lanes.map((l) => ({ seq: l.thinkSeq, ids: l.T })),
    );
    lanes.forEach((l, i) => {
      l.thinkSeq = seqs[i];
    });
    const plans = active.map((l) => {
      const d = drafts.get(l)!;
      const start = l.thinkSeq.length;
      const ids = l.T.slice(start);
      const groups = [ids.length];
      for (let j = 0; j + 1 < d.length; j++) {
        const more = bridge.fromBase(d[j].token).thinkIds;
        ids.push(...more);
        l.T.push(...more);
        groups.push(more.length);
      }
      // state[j]: index of the output row holding the state before draft j (−1: the lane's previous state)
      const outputs: number[] = [];
      const state: number[] = [];
      const lengthAt: number[] = [];
      let end = 0;
      groups.forEach((g, j) => {
        end += g;
        if (g > 0) outputs.push(end - 1);
        state.push(g > 0 ? outputs.length - 1 : j > 0 ? state[j - 1] : -1);
        lengthAt.push(start + end);
      });
      return { lane: l, drafts: d, item: { seq: l.thinkSeq, ids, outputs }, state, lengthAt };
    });
    const fed = plans.filter((p) => p.item.ids.length > 0);
    counters.thinkingRows += fed.reduce((s, p) => s + p.item.ids.length, 0);
    const out = fed.length
      ? await decodeFeed(
          'thinking',
          thinkKv.ctx,
          fed.map((p) => p.item),
          { capture: saeHook },
        )
      : null;

    const steps: Step[] = [];
    for (const p of plans) {
      const l = p.lane;
      const k = fed.indexOf(p);
      const stateOf = (j: number) =>
        p.state[j] < 0
          ? { logits: l.thinkLogits!, resid: l.thinkResid! }
          : { logits: out!.logits[k][p.state[j]], resid: out!.captured[k][p.state[j]] };
      for (let j = 0; j < p.drafts.length; j++) {
        const draft = p.drafts[j];
        const { logits, resid } = stateOf(j);
        const t = argmaxMargin(logits).id;
        if (!bridge.agree(draft.greedy, t)) {
          // roll both models back to the text this draft was predicted from
          counters.rejected += p.drafts.length - 1 - j;
          l.B.length = draft.baseLen;
          l.baseSeq.truncate(draft.baseLen);
          l.T.length = p.lengthAt[j];
          l.thinkSeq.truncate(p.lengthAt[j]);
          l.thinkLogits = logits;
          l.thinkResid = resid;
          l.draft = Math.max(1, l.draft >> 1);
          steps.push({
            lane: l,
            step: l.records.length,
            baseGreedy: draft.greedy,
            baseLogits: draft.logits,
            thinkLogits: logits,
            resid,
          });
          break;
        }
        const rec = record(l, draft.greedy, t, resid, null);
        rec.token = draft.token;
        if (j + 1 < p.drafts.length)
          accept(l, rec, events); // already in both texts
        else emit(l, rec, events);
        l.thinkLogits = logits;
        l.thinkResid = resid;
        if (j + 1 === p.drafts.length) l.draft = Math.min(opts.speculate, 2 * l.draft);
      }
    }
    return steps;
  }

  /** A record of the step's decision so far: the two greedy tokens and the category. */
  function record(
    l: Lane,
    baseGreedy: number,
    thinkingGreedy: number,
    resid: Float32Array,
    latent: number | null,
  ): TokenRecord {
    const z = pair.sae.encodeDense(resid);
    const k = latent ?? argmaxMargin(z).id;
    const agree = latent === null;
    return {
      step: l.records.length,
      token: baseGreedy,
      source: 'base',
      text: '',
      baseGreedy,
      thinkingGreedy,
      gate: agree ? 'agree' : 'disagree',
      steered: !agree,
      latent: k,
      title: pair.vectors.titles.get(k) ?? null,
      activation: z[k],
    };
  }

  /** Records a drafted token the thinking model confirmed (its ids are already in B and T). */
  function accept(l: Lane, rec: TokenRecord, events: HybridEvent[]): void {
    const bridged = bridge.fromBase(rec.token);
    rec.text = bridged.text;
    l.text += bridged.text;
    l.records.push(rec);
    events.push({ type: 'token', problem: l.problem, id: l.id, record: rec });
  }

  /** Settles the disagreement steps of all lanes together, as the policy says. */
  async function settle(steps: Step[], events: HybridEvent[]): Promise<void> {
    counters.disagreements += steps.length;
    const searches = steps.map((s) => {
      const z = pair.sae.encodeDense(s.resid);
      const latent = policy.latent(z, s.lane.rng);
      const t = argmaxMargin(s.thinkLogits).id;
      return {
        s,
        latent,
        scores: new ThinkingScores(s.thinkLogits, t),
        rec: record(s.lane, s.baseGreedy, t, s.resid, latent),
        cands: [] as Candidate[],
        done: false,
      };
    });
    if (policy.kind === 'oracle') {
      for (const x of searches) {
        x.rec.token = x.rec.thinkingGreedy;
        x.rec.source = 'thinking';
        x.rec.vector = 'none';
        x.rec.reachedThinking = true;
      }
    } else if (policy.kind === 'selection') {
      for (const x of searches) {
        x.cands = topTokens(x.s.baseLogits, policy.candidates).map((tok) =>
          scoreCandidate(bridge, x.scores, 0, 0, tok),
        );
      }
    } else if (policy.kind === 'pure') {
      const c = opts.pureCoefficient;
      const w = opts.pureWindow;
      const logits = await steeredLogits(searches.map((x) => ({ lane: x.s.lane, latent: x.latent, c, window: w })));
      searches.forEach((x, i) => {
        x.cands = [scoreCandidate(bridge, x.scores, c, w, draws.pick(logits[i], x.s.lane, x.s.step, cellSlot(0)))];
      });
    } else {
      // the grid, coefficient by coefficient, with the early exit
      const { windows } = opts.grid;
      for (const [ci, c] of opts.grid.coefficients.entries()) {
        const open = searches.filter((x) => !x.done);
        if (!open.length) break;
        // window start → steered logits (windows that start alike are decoded once)
        const found = open.map(() => new Map<number, Float32Array>());
        const token = (i: number, wi: number) =>
          draws.pick(
            found[i].get(windowStart(windows[wi], open[i].s.lane.B.length))!,
            open[i].s.lane,
            open[i].s.step,
            cellSlot(ci * windows.length + wi),
          );
        const addJobs = async (which: number[], ws: number[]) => {
          const jobs: { lane: Lane; latent: number; c: number; window: number }[] = [];
          const owners: { x: number; start: number }[] = [];
          for (const i of which) {
            const n = open[i].s.lane.B.length;
            for (const w of ws) {
              const start = windowStart(w, n);
              if (found[i].has(start) || owners.some((o) => o.x === i && o.start === start)) continue;
              jobs.push({ lane: open[i].s.lane, latent: open[i].latent, c, window: w });
              owners.push({ x: i, start });
            }
          }
          const logits = await steeredLogits(jobs);
          owners.forEach((o, j) => {
            found[o.x].set(o.start, logits[j]);
          });
        };
        const all = open.map((_, i) => i);
        // window 0 first when it comes first: a hit there makes the other windows unnecessary
        let rest = all;
        if (windows[0] === 0 && opts.earlyExit) {
          await addJobs(all, [0]);
          rest = all.filter((i) => open[i].scores.logp(bridge.scoreToken(token(i, 0))) !== open[i].scores.max);
        }
        if (rest.length) await addJobs(rest, windows);
        open.forEach((x, i) => {
          for (const [wi, w] of windows.entries()) {
            const cand = scoreCandidate(bridge, x.scores, c, w, token(i, wi));
            x.cands.push(cand);
            if (opts.earlyExit && cand.logp === x.scores.max) {
              x.done = true;
              counters.earlyExits++;
              break;
            }
          }
        });
      }
    }
    for (const x of searches) {
      if (policy.kind !== 'oracle') {
        const chosen = chooseCandidate(x.cands);
        x.rec.token = x.cands[chosen].token;
        x.rec.candidates = x.cands;
        x.rec.chosen = chosen;
        x.rec.reachedThinking = x.cands[chosen].logp === x.scores.max;
        if (policy.kind === 'selection') x.rec.vector = 'none';
        else {
          x.rec.coefficient = x.cands[chosen].coefficient;
          x.rec.window = x.cands[chosen].window;
          const st = policy.steering(x.latent);
          x.rec.vector = st.vector;
          if (st.missing) x.rec.missingVector = true;
        }
      }
      emit(x.s.lane, x.rec, events);
    }
  }

  /**
   * Next-token logits of the base model steered with c·(bias + v_latent) over each job's window:
   * window 0 (or any window that covers the whole text) through the steered pool, the others
   * through forks of the base sequence, all problems' forks in one decode (several when the
   * context's 256 sequences or nBatch rows run out).
   */
  async function steeredLogits(
    jobs: { lane: Lane; latent: number; c: number; window: number }[],
  ): Promise<Float32Array[]> {
    const logits = new Array<Float32Array>(jobs.length);
    const forks: number[] = [];
    for (let i = 0; i < jobs.length; i++) {
      const { lane, latent, c, window } = jobs[i];
      const start = windowStart(window, lane.B.length);
      if (start > 0) {
        forks.push(i);
        continue;
      }
      counters.decodes++;
      logits[i] = await cpuTimed(counters.cpuMs, 'window0', () =>
        pool!.logits(`${lane.uid}:${c}:${policy.vectorKey(latent)}`, lane.B, policy.addVector(latent, c), policy.hook),
      );
    }
    while (forks.length) {
      const free = baseKv.ctx.nSeqMax - baseKv.ctx.sequences;
      const wave = forks.splice(0, Math.max(1, free));
      await baseRoom(
        wave.reduce((s, i) => s + jobs[i].lane.B.length - windowStart(jobs[i].window, jobs[i].lane.B.length), 0),
      );
      const items = wave.map((i) => {
        const { lane, latent, c, window } = jobs[i];
        const start = windowStart(window, lane.B.length);
        const seq = lane.baseSeq.fork();
        seq.truncate(start);
        const ids = lane.B.slice(start);
        return { seq, ids, outputs: [ids.length - 1], add: policy.addVector(latent, c) };
      });
      try {
        counters.windowRows += items.reduce((s, it) => s + it.ids.length, 0);
        const out = await decodeFeed('windows', baseKv.ctx, items, { addHook: policy.hook });
        wave.forEach((i, j) => {
          logits[i] = out.logits[j][0];
        });
      } finally {
        for (const it of items) it.seq.dispose();
      }
    }
    return logits;
  }
}

function result(l: Lane): HybridResult {
  return {
    problem: l.problem,
    id: l.id,
    sample: l.sample,
    tokens: l.B.slice(l.promptTokens.base),
    text: l.text,
    records: l.records,
    promptTokens: l.promptTokens,
    finishReason: l.finish ?? 'length',
    startedAt: l.startedAt,
    finishedAt: Date.now(),
  };
}
