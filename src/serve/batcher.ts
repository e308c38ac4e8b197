// Continuous batching for a server: requests arrive at any time and join the running decodes of one
// context; each decode carries one token of every generating request plus prompt chunks of newly
// admitted ones, and a finished or cancelled request frees its sequence at once. Each request may
// steer its own rows (per-request vectors at any hook, on chosen positions) inside the shared batch.
import {
  type Context,
  createSampler,
  type HookRequest,
  type Model,
  type Sampler,
  type SamplerOptions,
  type Sequence,
  TextStream,
} from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';

/** A vector added to the residual stream at one hook, on positions [from, to) of the request's sequence. */
export interface SteeringOp {
  hook: string;
  vector: Float32Array;
  from: number;
  to: number;
}

export interface BatchRequest {
  prompt: Int32Array;
  maxTokens: number;
  sampler?: SamplerOptions;
  /** stop when the text contains one of these (not returned) */
  stop?: string[];
  steering?: SteeringOp[];
  /** cancels the request: its sequence is freed before the next decode */
  signal?: AbortSignal;
  /** streamed text, never part of a stop string */
  onText?: (text: string) => void;
}

export interface BatchResult {
  promptTokens: number;
  tokens: number[];
  text: string;
  /** stop: end-of-generation token or stop string; length: maxTokens; aborted: cancelled */
  finishReason: 'stop' | 'length' | 'aborted';
}

export interface BatcherOptions {
  /** requests decoded together (sequences of the context) */
  parallel: number;
  /** requests waiting beyond `parallel`; more are refused with BUSY */
  queue: number;
  /** KV cells of the context: at least parallel × perRequest, so running requests never run out */
  nCtx: number;
  /** most tokens (prompt + maxTokens) one request may hold */
  perRequest: number;
  nBatch?: number;
  threads?: number;
}

interface Lane {
  req: BatchRequest;
  seq: Sequence | null;
  sample: Sampler;
  stream: TextStream;
  /** tokens to feed next: the prompt (in chunks), then one generated token at a time */
  feed: number[];
  result: BatchResult;
  /** characters of result.text already given to onText */
  sent: number;
  holdBack: number;
  resolve: (r: BatchResult) => void;
  reject: (err: unknown) => void;
}

export class Batcher {
  readonly ctx: Context;
  private waiting: Lane[] = [];
  private active: Lane[] = [];
  private running: Promise<void> | null = null;
  private closed = false;
  /** decodes run and tokens generated, for /health and the benchmark */
  readonly stats = { decodes: 0, tokens: 0, requests: 0 };

  constructor(
    readonly model: Model,
    readonly opts: BatcherOptions,
  ) {
    if (opts.nCtx < opts.parallel * opts.perRequest) {
      throw new ThinkwhenError('BAD_ARGUMENT', `nCtx ${opts.nCtx} < parallel × perRequest`);
    }
    this.ctx = model.createContext({
      nCtx: opts.nCtx,
      nSeqMax: opts.parallel,
      nBatch: opts.nBatch ?? 512,
      threads: opts.threads,
    });
  }

  get load(): { active: number; queued: number } {
    return { active: this.active.length, queued: this.waiting.length };
  }

  /**
   * Queues a request; resolves when it ends (stop, length or cancelled). Throws BUSY when the
   * queue is full and REQUEST_TOO_LONG when prompt + maxTokens cannot fit the context.
   */
  submit(req: BatchRequest): Promise<BatchResult> {
    if (this.closed) return Promise.reject(new ThinkwhenError('SERVER_CLOSING', 'the server is shutting down'));
    const need = req.prompt.length + req.maxTokens;
    if (req.prompt.length === 0) return Promise.reject(new ThinkwhenError('EMPTY_PROMPT', 'the prompt is empty'));
    if (need > this.opts.perRequest) {
      return Promise.reject(
        new ThinkwhenError(
          'REQUEST_TOO_LONG',
          `the prompt (${req.prompt.length} tokens) plus max_tokens (${req.maxTokens}) exceed the ${this.opts.perRequest} tokens a request may hold`,
          'shorten the prompt or lower max_tokens',
        ),
      );
    }
    if (this.active.length >= this.opts.parallel && this.waiting.length >= this.opts.queue) {
      return Promise.reject(
        new ThinkwhenError(
          'BUSY',
          `${this.active.length} requests are running and ${this.waiting.length} waiting`,
          'retry later',
        ),
      );
    }
    return new Promise<BatchResult>((resolve, reject) => {
      this.waiting.push({
        req,
        seq: null,
        sample: createSampler(req.sampler),
        stream: new TextStream(),
        feed: Array.from(req.prompt),
        result: { promptTokens: req.prompt.length, tokens: [], text: '', finishReason: 'length' },
        sent: 0,
        holdBack: Math.max(0, ...(req.stop ?? []).map((s) => s.length - 1)),
        resolve,
        reject,
      });
      this.stats.requests++;
      this.kick();
    });
  }

  private kick(): void {
    if (this.running) return;
    this.running = this.loop().finally(() => {
      this.running = null;
      if (this.waiting.length || this.active.length) this.kick();
    });
  }

  private admit(): void {
    while (this.waiting.length && this.active.length < this.opts.parallel) {
      const lane = this.waiting[0];
      if (lane.req.signal?.aborted) {
        this.waiting.shift();
        this.finish(lane, 'aborted');
        continue;
      }
      this.waiting.shift();
      lane.seq = this.ctx.sequence();
      this.active.push(lane);
    }
  }

  private async loop(): Promise<void> {
    for (;;) {
      for (const lane of [...this.active]) if (lane.req.signal?.aborted) this.finish(lane, 'aborted');
      this.admit();
      if (this.active.length === 0) return;

      // Generating lanes first (one row each), then prompt chunks in the rows that remain.
      const rows: { lane: Lane; token: number; pos: number; logits: boolean }[] = [];
      let budget = this.ctx.nBatch;
      const order = [...this.active].sort((a, b) => Number(a.feed.length > 1) - Number(b.feed.length > 1));
      for (const lane of order) {
        if (budget === 0) break;
        const take = Math.min(lane.feed.length, budget);
        const start = lane.seq!.length;
        for (let j = 0; j < take; j++) {
          rows.push({ lane, token: lane.feed[j], pos: start + j, logits: take === lane.feed.length && j === take - 1 });
        }
        lane.feed = lane.feed.slice(take);
        budget -= take;
      }
      let out: Awaited<ReturnType<Context['decode']>>;
      try {
        out = await this.ctx.decode(
          rows.map((r) => ({ token: r.token, seq: r.lane.seq!, pos: r.pos, logits: r.logits })),
          steeringHooks(rows),
        );
      } catch (err) {
        // The decode failed for every lane in it; the others (none, here) and the queue go on.
        for (const lane of new Set(rows.map((r) => r.lane))) this.fail(lane, err);
        continue;
      }
      this.stats.decodes++;
      out.logitRows.forEach((row, j) => {
        const lane = rows[row].lane;
        if (!this.active.includes(lane)) return;
        this.step(lane, lane.sample(out.logits[j]));
      });
    }
  }

  /** Takes one sampled token for a lane: stream its text, or end the request. */
  private step(lane: Lane, token: number): void {
    const res = lane.result;
    if (this.model.isEog(token)) {
      res.text += lane.stream.flush();
      this.finish(lane, 'stop');
      return;
    }
    res.tokens.push(token);
    this.stats.tokens++;
    res.text += lane.stream.push(this.model.tokenBytes(token));
    for (const s of lane.req.stop ?? []) {
      const at = res.text.indexOf(s, Math.max(0, lane.sent - s.length));
      if (at >= 0) {
        res.text = res.text.slice(0, at);
        this.finish(lane, 'stop');
        return;
      }
    }
    if (res.tokens.length >= lane.req.maxTokens) {
      res.text += lane.stream.flush();
      this.finish(lane, 'length');
      return;
    }
    lane.feed = [token];
    // Hold back the characters that could still start a stop string.
    const safe = res.text.length - lane.holdBack;
    if (safe > lane.sent) {
      lane.req.onText?.(res.text.slice(lane.sent, safe));
      lane.sent = safe;
    }
  }

  private release(lane: Lane): void {
    const i = this.active.indexOf(lane);
    if (i >= 0) this.active.splice(i, 1);
    lane.seq?.dispose();
    lane.seq = null;
  }

  private finish(lane: Lane, reason: BatchResult['finishReason']): void {
    this.release(lane);
    lane.result.finishReason = reason;
    if (reason !== 'aborted' && lane.result.text.length > lane.sent) {
      lane.req.onText?.(lane.result.text.slice(lane.sent));
      lane.sent = lane.result.text.length;
    }
    lane.resolve(lane.result);
  }

  private fail(lane: Lane, err: unknown): void {
    this.release(lane);
    lane.reject(err);
  }

  /** Refuses new requests, cancels the queued ones, waits for the running ones, frees the context. */
  async close(): Promise<void> {
    this.closed = true;
    for (const lane of this.waiting.splice(0)) this.finish(lane, 'aborted');
    while (this.running) await this.running;
    this.ctx.free();
  }
}

/** One hook request per hook point: each row gets the sum of its request's vectors that cover its position. */
function steeringHooks(rows: { lane: Lane; pos: number }[]): HookRequest[] {
  const byHook = new Map<string, { rows: number[]; add: Float32Array[] }>();
  rows.forEach((r, i) => {
    for (const op of r.lane.req.steering ?? []) {
      if (r.pos < op.from || r.pos >= op.to) continue;
      let h = byHook.get(op.hook);
      if (!h) {
        h = { rows: [], add: [] };
        byHook.set(op.hook, h);
      }
      if (h.rows[h.rows.length - 1] === i) {
        const sum = h.add[h.add.length - 1];
        for (let k = 0; k < sum.length; k++) sum[k] += op.vector[k];
      } else {
        h.rows.push(i);
        h.add.push(Float32Array.from(op.vector));
      }
    }
  });
  return [...byHook].map(([hook, h]) => ({ hook, rows: h.rows, add: h.add }));
}
