// A llama.cpp context: several sequences sharing one KV cache, batched decode with residual hooks.
//
// Position semantics: every token has an explicit absolute position inside its own sequence,
// counting from 0 at the sequence's first token (prompt and generated tokens alike). When a
// token is given without a position it takes the sequence's next one (`sequenceLength(seq)`).
import { ThinkwhenError } from '../errors.ts';
import type { ControlVector } from '../gguf/control-vector.ts';
import { checkVector, type HookPoint, hookTensor } from './hooks.ts';
import type { Model } from './model.ts';
import type { NativeContext, NativeHookOp } from './native.ts';
import { native } from './native.ts';
import { checkLogitsFinite } from './non-finite.ts';
import { defaultThreads } from './threads.ts';

export interface ContextOptions {
  /** total KV cells shared by all sequences (default 4096) */
  nCtx?: number;
  /** most tokens in one decode (default 512) */
  nBatch?: number;
  /** most sequences at once (default 4, at most 256) */
  nSeqMax?: number;
  /** CPU threads (default: env THINKWHEN_THREADS, else all cores) */
  threads?: number;
}

/** llama.cpp's limit on sequence ids in one context (LLAMA_MAX_SEQ). */
export const MAX_SEQUENCES = 256;

export interface BatchToken {
  token: number;
  seq: Sequence;
  /** absolute position in `seq`; default: the sequence's next position */
  pos?: number;
  /** return logits for this token */
  logits?: boolean;
}

/**
 * One sequence of a context: its tokens' KV cells and its length. Obtained from `ctx.sequence()`;
 * `fork()` shares the KV cells so far (copy-on-write), `truncate(from)` drops positions ≥ from,
 * `dispose()` frees the cells and gives the id back to the context.
 */
export class Sequence {
  /** @internal */
  constructor(
    private readonly ctx: Context,
    /** llama.cpp sequence id (diagnostics only: never needed to use the API) */
    readonly id: number,
  ) {}

  /** Number of tokens held = the position the next token takes. */
  get length(): number {
    return this.ctx.lengthOf(this);
  }

  get disposed(): boolean {
    return !this.ctx.owns(this);
  }

  /** A new sequence holding the same tokens (shared KV cells); it evolves independently. */
  fork(): Sequence {
    return this.ctx.forkSequence(this);
  }

  /** Drops the tokens from position `from` on; the next token then takes position `from`. */
  truncate(from: number): void {
    this.ctx.truncateSequence(this, from);
  }

  /** Drops every token (length 0); the sequence stays usable. */
  clear(): void {
    this.ctx.truncateSequence(this, 0);
  }

  /** Frees the KV cells and the id. Idempotent. */
  dispose(): void {
    this.ctx.disposeSequence(this);
  }
}

export interface HookRequest {
  hook: string | HookPoint;
  /** batch rows (indices into the tokens of this decode), or 'all' */
  rows: number[] | 'all';
  /** one vector for every row, or one per row */
  add?: Float32Array | Float32Array[];
  /** return the residual of each row (after any add in this decode) */
  capture?: boolean;
}

export interface DecodeOutput {
  /** logits of the rows that asked for them, in batch order; each of length nVocab */
  logits: Float32Array[];
  /** per hook request: one vector per row when it captured, else null */
  captures: (Float32Array[] | null)[];
  /** batch row of each entry of `logits` */
  logitRows: number[];
}

export class Context {
  readonly nCtx: number;
  readonly nBatch: number;
  readonly nSeqMax: number;
  private nat: NativeContext;
  /** live sequences by llama.cpp id, with their lengths */
  private live = new Map<number, { seq: Sequence; length: number }>();
  private tail: Promise<unknown> = Promise.resolve();
  /** decodes asked for and not finished */
  private pending = 0;
  private freed = false;
  /** whether a decode's logits were scanned in full (the first one that returned any) */
  private logitsScanned = false;

  constructor(
    readonly model: Model,
    opts: ContextOptions = {},
  ) {
    this.nCtx = positiveInt(opts.nCtx ?? 4096, 'nCtx', 1 << 24);
    this.nBatch = positiveInt(opts.nBatch ?? 512, 'nBatch', 1 << 20);
    this.nSeqMax = positiveInt(opts.nSeqMax ?? 4, 'nSeqMax', MAX_SEQUENCES);
    const threads = positiveInt(opts.threads ?? defaultThreads(), 'threads', 1024);
    try {
      this.nat = new (native().Context)(model.native, {
        nCtx: this.nCtx,
        nBatch: this.nBatch,
        nSeqMax: this.nSeqMax,
        nThreads: threads,
        nThreadsBatch: threads,
      });
    } catch (err) {
      throw new ThinkwhenError(
        'CONTEXT_FAILED',
        `could not create a context: ${(err as Error).message}`,
        'lower nCtx or nSeqMax',
      );
    }
  }

  private alive(): NativeContext {
    if (this.freed) {
      throw new ThinkwhenError(
        'CONTEXT_FREED',
        'this context has been freed',
        'create a new context with model.createContext()',
      );
    }
    return this.nat;
  }

  /** A new, empty sequence. Fails when all nSeqMax are live (dispose one, or raise nSeqMax). */
  sequence(): Sequence {
    this.alive();
    let id = 0;
    while (this.live.has(id)) id++;
    if (id >= this.nSeqMax) {
      throw new ThinkwhenError(
        'NO_FREE_SEQUENCE',
        `all ${this.nSeqMax} sequences of this context are in use`,
        'dispose() sequences you no longer need, or create the context with a larger nSeqMax',
      );
    }
    const seq = new Sequence(this, id);
    this.nat.seqRm(id, -1, -1); // cells of an earlier holder of this id are gone already; be sure
    this.live.set(id, { seq, length: 0 });
    return seq;
  }

  /** Number of live sequences. */
  get sequences(): number {
    return this.live.size;
  }

  /** @internal */
  owns(seq: Sequence): boolean {
    return !this.freed && this.live.get(seq.id)?.seq === seq;
  }

  private entry(seq: Sequence): { seq: Sequence; length: number } {
    const e = this.live.get(seq.id);
    if (!e || e.seq !== seq || this.freed) {
      throw new ThinkwhenError(
        'SEQUENCE_DISPOSED',
        `sequence ${seq.id} is not live in this context (disposed, or it belongs to another context)`,
        'get a new one from ctx.sequence()',
      );
    }
    return e;
  }

  /** @internal */
  lengthOf(seq: Sequence): number {
    return this.entry(seq).length;
  }

  /** @internal */
  forkSequence(src: Sequence): Sequence {
    const from = this.entry(src);
    const dst = this.sequence();
    this.nat.seqCp(src.id, dst.id, -1, -1);
    this.entry(dst).length = from.length;
    return dst;
  }

  /** @internal */
  truncateSequence(seq: Sequence, from: number): void {
    const e = this.entry(seq);
    if (!Number.isInteger(from) || from < 0) {
      throw new ThinkwhenError(
        'BAD_POSITION',
        `truncate(${from}): a position is an integer ≥ 0`,
        'pass an integer position',
      );
    }
    if (from >= e.length) return;
    if (!this.alive().seqRm(seq.id, from, -1)) {
      throw new ThinkwhenError('KV_REMOVE_FAILED', `could not truncate sequence ${seq.id} at ${from}`);
    }
    e.length = from;
  }

  /** @internal */
  disposeSequence(seq: Sequence): void {
    if (!this.owns(seq)) return;
    this.nat.seqRm(seq.id, -1, -1);
    this.live.delete(seq.id);
  }

  /**
   * The batch-global llama.cpp control vector (fast path when one vector applies to all tokens of
   * all sequences). Directions are keyed by layer and act at blocks.L.hook_resid_post, L ≥ 1.
   */
  setControlVector(cv: ControlVector | Map<number, Float32Array> | null, scale = 1): void {
    const nat = this.alive();
    if (cv === null) {
      nat.setControlVector(null, -1, -1);
      return;
    }
    if (!Number.isFinite(scale)) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        `control-vector scale ${scale} is not a finite number`,
        'pass a finite scale',
      );
    }
    const { nLayer, nEmbd } = this.model.info;
    const dirs = cv instanceof Map ? cv : cv.directions;
    const data = new Float32Array((nLayer - 1) * nEmbd);
    let lo = nLayer;
    let hi = 0;
    for (const [layer, v] of dirs) {
      if (layer < 1 || layer >= nLayer) {
        throw new ThinkwhenError(
          'LAYER_OUT_OF_RANGE',
          `control-vector layer ${layer} is out of range: llama.cpp applies them to layers 1..${nLayer - 1}`,
          'use a hook (per-token steering) for layer 0, or pick another layer',
        );
      }
      checkVector(v, nEmbd, `control vector direction.${layer}`);
      const scaled = data.subarray((layer - 1) * nEmbd, layer * nEmbd);
      for (let i = 0; i < nEmbd; i++) scaled[i] = v[i] * scale;
      checkVector(scaled, nEmbd, `control vector direction.${layer} × scale ${scale}`); // F32 overflow
      lo = Math.min(lo, layer);
      hi = Math.max(hi, layer);
    }
    nat.setControlVector(data, lo, hi);
  }

  /**
   * One llama_decode of up to nBatch tokens from any sequences, off the JS thread. Calls are
   * queued, so concurrent callers never overlap. Hooks add to and/or read the residual stream
   * of the listed rows.
   */
  decode(tokens: BatchToken[], hooks: HookRequest[] = []): Promise<DecodeOutput> {
    try {
      this.alive();
    } catch (err) {
      return Promise.reject(err);
    }
    // free() refuses decodes that have not started; the native context is released after the last.
    this.pending++;
    const run = this.tail
      .then(() => this.decodeNow(tokens, hooks))
      .finally(() => {
        this.pending--;
        if (this.freed && this.pending === 0) this.nat.free();
      });
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async decodeNow(tokens: BatchToken[], hooks: HookRequest[]): Promise<DecodeOutput> {
    const nat = this.alive();
    const n = tokens.length;
    if (n === 0) throw new ThinkwhenError('EMPTY_BATCH', 'decode needs at least one token');
    if (n > this.nBatch) {
      throw new ThinkwhenError(
        'BATCH_TOO_LARGE',
        `${n} tokens in one decode, but nBatch is ${this.nBatch}`,
        'split the batch or raise nBatch',
      );
    }
    const { nVocab, nLayer, nEmbd } = this.model.info;
    const tok = new Int32Array(n);
    const pos = new Int32Array(n);
    const seq = new Int32Array(n);
    const outputs = new Uint8Array(n);
    const next = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const t = tokens[i];
      const e = this.entry(t.seq);
      if (!Number.isInteger(t.token) || t.token < 0 || t.token >= nVocab) {
        throw new ThinkwhenError(
          'BAD_TOKEN',
          `token id ${t.token} at row ${i} is outside the vocabulary (0..${nVocab - 1})`,
        );
      }
      const p = t.pos ?? next.get(t.seq.id) ?? e.length;
      if (!Number.isInteger(p) || p < 0) {
        throw new ThinkwhenError(
          'BAD_POSITION',
          `row ${i}: position ${p} is not an integer ≥ 0`,
          'leave pos out (the next position) or pass an integer',
        );
      }
      if (p >= this.nCtx) {
        throw new ThinkwhenError(
          'CONTEXT_OVERFLOW',
          `sequence ${t.seq.id} would reach position ${p}, but the context holds ${this.nCtx} tokens`,
          'raise nCtx, shorten the prompt, or lower maxTokens',
        );
      }
      next.set(t.seq.id, Math.max(next.get(t.seq.id) ?? e.length, p + 1));
      tok[i] = t.token;
      pos[i] = p;
      seq[i] = t.seq.id;
      outputs[i] = t.logits ? 1 : 0;
    }
    const ops: NativeHookOp[] = hooks.map((h, k) => {
      const tensor = hookTensor(h.hook, nLayer);
      const rows = h.rows === 'all' ? Array.from({ length: n }, (_, i) => i) : h.rows;
      for (const r of rows) {
        if (!Number.isInteger(r) || r < 0 || r >= n) {
          throw new ThinkwhenError('BAD_ROW', `hook ${k}: row ${r} is not in this batch of ${n} tokens`);
        }
      }
      // The last block keeps only rows that produce logits: ask for them, drop them later.
      if (tensor === `l_out-${nLayer - 1}`) for (const r of rows) outputs[r] = 1;
      let add: Float32Array | undefined;
      if (h.add) {
        add = new Float32Array(rows.length * nEmbd);
        if (h.add instanceof Float32Array) {
          checkVector(h.add, nEmbd, `hook ${k} vector`);
          for (let i = 0; i < rows.length; i++) add.set(h.add, i * nEmbd);
        } else {
          if (h.add.length !== rows.length) {
            throw new ThinkwhenError('BAD_VECTOR', `hook ${k}: ${h.add.length} vectors for ${rows.length} rows`);
          }
          h.add.forEach((v, i) => {
            checkVector(v, nEmbd, `hook ${k} vector for row ${rows[i]}`);
            add!.set(v, i * nEmbd);
          });
        }
      }
      return { tensor, rows: Int32Array.from(rows), add, capture: h.capture ?? false };
    });

    let result: Awaited<ReturnType<NativeContext['decode']>>;
    try {
      result = await nat.decode(tok, pos, seq, outputs, ops);
    } catch (err) {
      // The addon's rejections carry a code (native/context.cpp, DecodeWorker::OnError).
      const { message, code } = err as Error & { code?: string };
      if (code === 'KV_FULL') {
        throw new ThinkwhenError('CONTEXT_OVERFLOW', message.trim(), 'raise nCtx or remove finished sequences');
      }
      if (code === 'HOOK_NOT_COMPUTED') {
        throw new ThinkwhenError(
          'HOOK_UNSUPPORTED',
          `${message} (architecture '${this.model.info.arch}' has no l_out tensors to hook)`,
          'use a model of an architecture whose llama.cpp graph names l_out-L, such as qwen2 or llama',
        );
      }
      throw new ThinkwhenError(code === 'HOOK_FAILED' ? 'HOOK_FAILED' : 'DECODE_FAILED', message);
    }
    // A sequence disposed while the decode ran keeps no length.
    for (const [id, length] of next) {
      const e = this.live.get(id);
      if (e) e.length = length;
    }
    if (result.logits.length > 0) {
      checkLogitsFinite(
        result.logits,
        nVocab,
        !this.logitsScanned,
        ops.some((op) => op.add),
      );
      this.logitsScanned = true;
    }
    const logits: Float32Array[] = [];
    const logitRows: number[] = [];
    let o = 0;
    for (let i = 0; i < n; i++) {
      if (!outputs[i]) continue;
      if (tokens[i].logits) {
        logits.push(result.logits.subarray(o * nVocab, (o + 1) * nVocab));
        logitRows.push(i);
      }
      o++;
    }
    const captures = result.hooks.map((c) => {
      if (!c) return null;
      const rows: Float32Array[] = [];
      for (let i = 0; i < c.length / nEmbd; i++) rows.push(c.subarray(i * nEmbd, (i + 1) * nEmbd));
      return rows;
    });
    return { logits, captures, logitRows };
  }

  /**
   * Frees the context: at once, or when the native decode already running ends (decodes queued
   * behind it are refused with CONTEXT_FREED). Its sequences die with it.
   */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.live.clear();
    if (this.pending === 0) this.nat.free();
    this.model.contextFreed(this);
  }

  get isFreed(): boolean {
    return this.freed;
  }
}

function positiveInt(v: number, name: string, max: number): number {
  if (!Number.isInteger(v) || v < 1 || v > max) {
    throw new ThinkwhenError(
      'BAD_ARGUMENT',
      `context option ${name} must be an integer in 1..${max}, got ${v}`,
      `pass an integer ${name} between 1 and ${max}`,
    );
  }
  return v;
}
