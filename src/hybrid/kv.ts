// KV-cache plumbing of the fast hybrid loop: batched feeding of several sequences of one context
// (split into decodes of at most nBatch rows), and the pool of window-0 steered sequences.
import type { Context, HookRequest, Model, Sequence } from '../engine/index.ts';

/** Tokens to append to one sequence, which rows to return logits (and the hooked residual) for. */
export interface FeedItem {
  seq: Sequence;
  ids: number[];
  /** indices into `ids` whose logits are returned */
  outputs: number[];
  /** added at every row of this item */
  add?: Float32Array;
}

export interface FeedResult {
  /** per item, per entry of `outputs` */
  logits: Float32Array[][];
  /** per item, per entry of `outputs`: the residual at `capture` (when given) */
  captured: Float32Array[][];
}

/**
 * Appends every item's ids to its sequence in as few decodes as nBatch allows. `addHook` takes the
 * items' `add` vectors; `capture` reads the residual of the output rows.
 */
export async function feed(
  ctx: Context,
  items: FeedItem[],
  hooks: { addHook?: string; capture?: string } = {},
): Promise<FeedResult> {
  const rows: { item: number; index: number; out: number }[] = [];
  const result: FeedResult = { logits: items.map(() => []), captured: items.map(() => []) };
  items.forEach((it, item) => {
    const outAt = new Map(it.outputs.map((o, j) => [o, j]));
    for (let index = 0; index < it.ids.length; index++) rows.push({ item, index, out: outAt.get(index) ?? -1 });
  });
  for (let start = 0; start < rows.length; start += ctx.nBatch) {
    const chunk = rows.slice(start, start + ctx.nBatch);
    const addRows: number[] = [];
    const addVecs: Float32Array[] = [];
    const capRows: number[] = [];
    chunk.forEach((r, i) => {
      const v = items[r.item].add;
      if (v) {
        addRows.push(i);
        addVecs.push(v);
      }
      if (r.out >= 0 && hooks.capture) capRows.push(i);
    });
    const req: HookRequest[] = [];
    if (addRows.length) req.push({ hook: hooks.addHook!, rows: addRows, add: addVecs });
    if (capRows.length) req.push({ hook: hooks.capture!, rows: capRows, capture: true });
    const out = await ctx.decode(
      chunk.map((r) => ({ token: items[r.item].ids[r.index], seq: items[r.item].seq, logits: r.out >= 0 })),
      req,
    );
    const caps = capRows.length ? out.captures[req.length - 1]! : [];
    let o = 0;
    chunk.forEach((r) => {
      if (r.out < 0) return;
      result.logits[r.item][r.out] = out.logits[o];
      if (hooks.capture) result.captured[r.item][r.out] = caps[o];
      o++;
    });
  }
  return result;
}

/** A sequence and the tokens it holds (so that it can be rebuilt in a larger context). */
export interface Held {
  seq: Sequence;
  ids: number[];
}

/**
 * A context whose sequences outgrow its KV cells can be replaced by a larger one: every held
 * sequence is decoded again into the new context (llama.cpp cannot resize a KV cache). Texts grow
 * by more than one token per step when a re-encoding splits a token (a byte-fallback piece that
 * decodes to U+FFFD re-encodes to three bytes), so the size cannot be known in advance.
 */
export class ElasticContext {
  ctx: Context;
  /** contexts replaced so far */
  grown = 0;

  constructor(
    private readonly model: Model,
    nCtx: number,
    private readonly opts: { nBatch: number; nSeqMax: number; threads?: number },
  ) {
    this.ctx = this.create(nCtx);
  }

  private create(nCtx: number): Context {
    // llama.cpp aborts when nSeqMax exceeds min(nBatch, nCtx) (it reserves an output row per sequence)
    const size = Math.max(nCtx, this.opts.nSeqMax, this.opts.nBatch);
    return this.model.createContext({
      nCtx: size,
      nBatch: this.opts.nBatch,
      nSeqMax: this.opts.nSeqMax,
      threads: this.opts.threads,
    });
  }

  /**
   * Makes room for `extra` more cells beyond what `held` occupy (plus any other live sequences'
   * cells, which must be none of the context's other sequences); returns the sequences to use from
   * now on, in the order of `held` (new ones when the context was replaced).
   */
  async room(extra: number, held: Held[]): Promise<Sequence[]> {
    const used = held.reduce((s, h) => s + h.seq.length, 0);
    if (used + extra <= this.ctx.nCtx) return held.map((h) => h.seq);
    const next = this.create(Math.max(2 * this.ctx.nCtx, Math.ceil(1.25 * (used + extra))));
    const seqs = held.map(() => next.sequence());
    const items = held.map((h, i) => ({ seq: seqs[i], ids: h.ids.slice(0, h.seq.length), outputs: [] }));
    await feed(
      next,
      items.filter((it) => it.ids.length > 0),
    );
    this.ctx.free();
    this.ctx = next;
    this.grown++;
    return seqs;
  }

  free(): void {
    this.ctx.free();
  }
}

interface Steered {
  ctx: Context;
  seq: Sequence;
  key: string | null;
  lastUse: number;
}

/**
 * Window-0 candidates kept up to date lazily: one steered sequence per (problem, coefficient,
 * vector). Window 0 steers every position, so a steered sequence's cache is valid for as long as
 * the text only grows, and a candidate costs only the tokens emitted since that key's last use
 * (the paper re-decodes the whole text). Each sequence has its own context: in llama.cpp's unified
 * KV cache a row attends over every cell of its context, so sharing one would slow every row.
 * Least recently used sequences are evicted beyond `capacity`; capacity 0 keeps none (one scratch
 * sequence re-decodes the whole text every time, as the paper does).
 */
export class SteeredPool {
  private slots: Steered[] = [];
  private clock = 0;
  /** token-rows decoded (for the benchmark) */
  rows = 0;

  constructor(
    private readonly model: Model,
    private readonly capacity: number,
    private readonly nCtx: number,
    private readonly threads?: number,
  ) {}

  /** Logits after `ids` with `vector` added at every position, for `key`. */
  async logits(key: string, ids: number[], vector: Float32Array, hook: string): Promise<Float32Array> {
    const s = this.slot(key);
    if (ids.length > s.ctx.nCtx) {
      // the text outgrew the slot: a larger context, decoded from the start
      s.ctx.free();
      s.ctx = this.create(Math.max(2 * s.ctx.nCtx, ids.length));
      s.seq = s.ctx.sequence();
    }
    if (s.seq.length >= ids.length) s.seq.truncate(ids.length - 1); // logits need one decoded row
    const from = s.seq.length;
    this.rows += ids.length - from;
    const out = await feed(
      s.ctx,
      [{ seq: s.seq, ids: ids.slice(from), outputs: [ids.length - from - 1], add: vector }],
      {
        addHook: hook,
      },
    );
    return out.logits[0][0];
  }

  private slot(key: string): Steered {
    this.clock++;
    let s = this.capacity > 0 ? this.slots.find((x) => x.key === key) : undefined;
    if (!s) {
      if (this.slots.length < Math.max(1, this.capacity)) {
        const ctx = this.model.createContext({
          nCtx: this.nCtx,
          nBatch: Math.min(this.nCtx, 512),
          nSeqMax: 1,
          threads: this.threads,
        });
        s = { ctx, seq: ctx.sequence(), key: null, lastUse: 0 };
        this.slots.push(s);
      } else {
        s = this.slots.reduce((a, b) => (a.key === null ? a : b.key === null ? b : a.lastUse <= b.lastUse ? a : b));
      }
      s.seq.clear();
      s.key = key;
    }
    s.lastUse = this.clock;
    return s;
  }

  private create(nCtx: number): Context {
    return this.model.createContext({
      nCtx,
      nBatch: Math.min(nCtx, SteeredPool.nBatch),
      nSeqMax: 1,
      threads: this.threads,
    });
  }

  /**
   * Catch-ups are a few rows; a small batch keeps each context's attention buffer small (a full
   * re-decode after an eviction takes several decodes).
   */
  static readonly nBatch = 64;

  /** Approximate bytes one slot of nCtx cells takes: f16 K and V of every layer, fp32 attention scores. */
  static slotBytes(model: Model, nCtx: number): number {
    const { nLayer, nEmbd, nHead, nHeadKv } = model.info;
    return nCtx * nLayer * 2 * ((nEmbd * nHeadKv) / nHead) * 2 + SteeredPool.nBatch * nCtx * nHead * 4;
  }

  /** Frees the sequences whose key starts with `prefix` (a finished problem's). */
  release(prefix: string): void {
    for (const s of this.slots) {
      if (s.key?.startsWith(prefix)) {
        s.key = null;
        s.seq.clear();
      }
    }
  }

  free(): void {
    for (const s of this.slots) s.ctx.free();
    this.slots = [];
  }
}
