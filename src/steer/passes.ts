// Forward passes of the base model over many short texts, several sequences packed into one
// context: the perplexity of example targets (the paper's example selection, method.md §2.6 step
// 4) and mean residuals over token ranges (difference of means, method.md §8).
import { type BatchToken, type HookRequest, logProb, type Model } from '../engine/index.ts';

export interface PassSequence {
  tokens: ArrayLike<number>;
  /** rows whose logits are wanted (each predicts the next token) */
  logitRows?: { start: number; end: number };
  /** rows whose residual at the hook is wanted */
  captureRows?: { start: number; end: number };
}

export interface PassOptions {
  threads?: number;
  /** tokens per context (several sequences are packed into one); default 4096 */
  contextTokens?: number;
  hook?: string;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Decodes every sequence (fresh KV for each pack) and calls `onLogits(seq, row, logits)` and
 * `onCapture(seq, row, residual)` for the requested rows, in row order per sequence.
 */
export async function packedPasses(
  model: Model,
  seqs: readonly PassSequence[],
  o: PassOptions,
  on: {
    logits?: (seq: number, row: number, logits: Float32Array) => void;
    capture?: (seq: number, row: number, h: Float32Array) => void;
  },
): Promise<void> {
  const budget = Math.max(o.contextTokens ?? 4096, ...seqs.map((s) => s.tokens.length));
  const nSeqMax = 16;
  const ctx = model.createContext({ nCtx: budget, nBatch: Math.min(512, budget), nSeqMax, threads: o.threads });
  const inside = (r: { start: number; end: number } | undefined, t: number) => !!r && t >= r.start && t < r.end;
  try {
    const slots = Array.from({ length: nSeqMax }, () => ctx.sequence());
    let i = 0;
    while (i < seqs.length) {
      const group: number[] = [];
      let used = 0;
      while (i < seqs.length && group.length < nSeqMax && used + seqs[i].tokens.length <= budget) {
        used += seqs[i].tokens.length;
        group.push(i++);
      }
      for (const slot of slots) slot.clear();
      const rows: Array<{ tok: BatchToken; ex: number; t: number; capture: boolean }> = [];
      group.forEach((ex, k) => {
        const s = seqs[ex];
        for (let t = 0; t < s.tokens.length; t++) {
          const tok = { token: s.tokens[t], seq: slots[k], pos: t, logits: inside(s.logitRows, t) };
          rows.push({ tok, ex, t, capture: inside(s.captureRows, t) });
        }
      });
      for (let start = 0; start < rows.length; start += ctx.nBatch) {
        const chunk = rows.slice(start, start + ctx.nBatch);
        const captured = chunk.flatMap((r, k) => (r.capture ? [k] : []));
        const hooks: HookRequest[] = o.hook && captured.length ? [{ hook: o.hook, rows: captured, capture: true }] : [];
        const res = await ctx.decode(
          chunk.map((r) => r.tok),
          hooks,
        );
        res.logitRows.forEach((k, j) => {
          on.logits?.(chunk[k].ex, chunk[k].t, res.logits[j]);
        });
        if (hooks.length) {
          captured.forEach((k, j) => {
            on.capture?.(chunk[k].ex, chunk[k].t, res.captures[0]![j]);
          });
        }
      }
      o.onProgress?.(i, seqs.length);
    }
  } finally {
    ctx.free();
  }
}

/**
 * The paper's perplexity of each example: prompt + target tokenised together, the prompt alone for
 * its length; mean natural-log CE over positions len(prompt)−1 … end−2, each predicting the next
 * token; exp. An example whose target adds no token gets 0 (ranked last).
 * Examples cut from one trace are mostly token prefixes of each other (a later sentence's prompt
 * holds the earlier ones): such an example is read off the longer sequence's pass (the logits at a
 * position depend only on the tokens up to it), so each trace is decoded about once.
 */
export async function targetPerplexities(
  model: Model,
  examples: ReadonlyArray<{ prompt: string; target: string }>,
  o: PassOptions & { addSpecial?: boolean } = {},
): Promise<number[]> {
  const addSpecial = o.addSpecial ?? true;
  const items = examples.map((e, i) => {
    const tokens = model.tokenize(e.prompt + e.target, { addSpecial });
    const promptLen = model.tokenize(e.prompt, { addSpecial }).length;
    return { i, tokens, from: Math.max(0, promptLen - 1), to: tokens.length - 1 };
  });
  // Longest first; each example rides on the first carrier it is a prefix of.
  const carriers: Array<{ tokens: Int32Array; from: number; to: number }> = [];
  const byHead = new Map<string, number[]>();
  const carrierOf = new Array<number>(items.length);
  const head = (t: Int32Array) => Array.from(t.subarray(0, 16)).join(',');
  const isPrefix = (a: Int32Array, b: Int32Array) => a.length <= b.length && a.every((x, k) => x === b[k]);
  for (const it of [...items].sort((a, b) => b.tokens.length - a.tokens.length)) {
    const key = head(it.tokens);
    const found = (byHead.get(key) ?? []).find((c) => isPrefix(it.tokens, carriers[c].tokens));
    if (found !== undefined) {
      const c = carriers[found];
      c.from = Math.min(c.from, it.from);
      c.to = Math.max(c.to, it.to);
      carrierOf[it.i] = found;
    } else {
      carriers.push({ tokens: it.tokens, from: it.from, to: it.to });
      byHead.set(key, [...(byHead.get(key) ?? []), carriers.length - 1]);
      carrierOf[it.i] = carriers.length - 1;
    }
  }
  // CE of each scored row of each carrier (the next token is the carrier's, shared by its riders).
  const ce = carriers.map((c) => new Float64Array(c.tokens.length));
  await packedPasses(
    model,
    carriers.map((c) => ({ tokens: c.tokens, logitRows: { start: c.from, end: c.to } })),
    o,
    {
      logits: (k, t, logits) => {
        ce[k][t] = -logProb(logits, carriers[k].tokens[t + 1]);
      },
    },
  );
  return items.map((it) => {
    if (it.to <= it.from) return 0;
    const rows = ce[carrierOf[it.i]];
    let sum = 0;
    for (let t = it.from; t < it.to; t++) sum += rows[t];
    return Math.exp(sum / (it.to - it.from));
  });
}

/** Mean residual at `hook` over each sequence's captureRows (one mean per sequence). */
export async function rangeMeans(model: Model, seqs: readonly PassSequence[], o: PassOptions & { hook: string }) {
  const n = model.info.nEmbd;
  const sums = seqs.map(() => ({ v: new Float64Array(n), k: 0 }));
  await packedPasses(model, seqs, o, {
    capture: (ex, _t, h) => {
      const s = sums[ex];
      for (let i = 0; i < n; i++) s.v[i] += h[i];
      s.k++;
    },
  });
  return sums.map((s) => (s.k ? Float64Array.from(s.v, (x) => x / s.k) : null));
}
