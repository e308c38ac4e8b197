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
import { defaultThreads } from './threads.ts';

export interface ContextOptions {
  /** total KV cells shared by all sequences (default 4096) */
  nCtx?: number;
  /** most tokens in one decode (default 512) */
  nBatch?: number;
  /** most sequences at once (default 4) */
  nSeqMax?: number;
  /** CPU threads (default: env THINKWHEN_THREADS, else all cores) */
  threads?: number;
}

export interface BatchToken {
  token: number;
  seq: number;
  /** absolute position in `seq`; default: the sequence's next position */
  pos?: number;
  /** return logits for this token */
  logits?: boolean;
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
  private nextPos: number[];
  private held = new Set<number>();
  private tail: Promise<unknown> = Promise.resolve();
  private freed = false;

  constructor(
    readonly model: Model,
    opts: ContextOptions = {},
  ) {
    this.nCtx = opts.nCtx ?? 4096;
    this.nBatch = opts.nBatch ?? 512;
    this.nSeqMax = opts.nSeqMax ?? 4;
    const threads = opts.threads ?? defaultThreads();
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
    this.nextPos = new Array(this.nSeqMax).fill(0);
  }

  private alive(): NativeContext {
    if (this.freed) throw new ThinkwhenError('CONTEXT_FREED', 'this context has been freed');
    return this.nat;
  }

  private checkSeq(seq: number): void {
    if (!Number.isInteger(seq) || seq < 0 || seq >= this.nSeqMax) {
      throw new ThinkwhenError(
        'BAD_SEQUENCE',
        `sequence id ${seq} is out of range: this context has ${this.nSeqMax} sequences (0..${this.nSeqMax - 1})`,
        'create the context with a larger nSeqMax',
      );
    }
  }

  /** Number of tokens sequence `seq` holds, i.e. the position its next token takes. */
  sequenceLength(seq: number): number {
    this.checkSeq(seq);
    return this.nextPos[seq];
  }

  /**
   * Claims a sequence id for one user (a generator). A second claim of a held id fails, so two
   * generators can never interleave tokens in one sequence.
   */
  acquireSequence(seq?: number): number {
    const id = seq ?? [...Array(this.nSeqMax).keys()].find((s) => !this.held.has(s));
    if (id === undefined) {
      throw new ThinkwhenError(
        'NO_FREE_SEQUENCE',
        `all ${this.nSeqMax} sequences are in use`,
        'release one or raise nSeqMax',
      );
    }
    this.checkSeq(id);
    if (this.held.has(id)) {
      throw new ThinkwhenError(
        'SEQUENCE_IN_USE',
        `sequence ${id} is already held by another generator on this context`,
        'release it first (releaseSequence) or use another sequence id',
      );
    }
    this.held.add(id);
    this.removeSequence(id); // a claimed sequence starts empty
    return id;
  }

  /** Frees a sequence id and its KV cells. */
  releaseSequence(seq: number): void {
    this.removeSequence(seq);
    this.held.delete(seq);
  }

  removeSequence(seq: number): void {
    this.checkSeq(seq);
    this.alive().seqRm(seq, -1, -1);
    this.nextPos[seq] = 0;
  }

  /** Drops the tokens of `seq` from position `from` on (e.g. to retry a continuation). */
  truncateSequence(seq: number, from: number): void {
    this.checkSeq(seq);
    if (!this.alive().seqRm(seq, from, -1))
      throw new ThinkwhenError('KV_REMOVE_FAILED', `could not truncate sequence ${seq}`);
    this.nextPos[seq] = Math.min(this.nextPos[seq], from);
  }

  /** Copies the KV cells of `src` into `dst` (shared, copy-on-write): a fork for candidate search. */
  forkSequence(src: number, dst: number): void {
    this.checkSeq(src);
    this.checkSeq(dst);
    this.alive().seqRm(dst, -1, -1);
    this.nat.seqCp(src, dst, -1, -1);
    this.nextPos[dst] = this.nextPos[src];
  }

  clear(): void {
    this.alive().clear();
    this.nextPos.fill(0);
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
      for (let i = 0; i < nEmbd; i++) data[(layer - 1) * nEmbd + i] = v[i] * scale;
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
    const run = this.tail.then(() => this.decodeNow(tokens, hooks));
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
    const next = [...this.nextPos];
    for (let i = 0; i < n; i++) {
      const t = tokens[i];
      this.checkSeq(t.seq);
      if (!Number.isInteger(t.token) || t.token < 0 || t.token >= nVocab) {
        throw new ThinkwhenError(
          'BAD_TOKEN',
          `token id ${t.token} at row ${i} is outside the vocabulary (0..${nVocab - 1})`,
        );
      }
      const p = t.pos ?? next[t.seq];
      if (p >= this.nCtx) {
        throw new ThinkwhenError(
          'CONTEXT_OVERFLOW',
          `sequence ${t.seq} would reach position ${p}, but the context holds ${this.nCtx} tokens`,
          'raise nCtx, shorten the prompt, or lower maxTokens',
        );
      }
      next[t.seq] = Math.max(next[t.seq], p + 1);
      tok[i] = t.token;
      pos[i] = p;
      seq[i] = t.seq;
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
      const msg = (err as Error).message;
      if (msg.includes('context overflow')) {
        throw new ThinkwhenError('CONTEXT_OVERFLOW', msg.trim(), 'raise nCtx or remove finished sequences');
      }
      if (msg.includes('never computed')) {
        throw new ThinkwhenError(
          'HOOK_UNSUPPORTED',
          `${msg} (architecture '${this.model.info.arch}' has no l_out tensors to hook)`,
          'use a model of an architecture whose llama.cpp graph names l_out-L, such as qwen2 or llama',
        );
      }
      throw new ThinkwhenError('DECODE_FAILED', msg);
    }
    this.nextPos = next;
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

  free(): void {
    if (this.freed) return;
    const done = this.tail.then(() => this.nat.free());
    this.freed = true;
    void done;
  }
}
