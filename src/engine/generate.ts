// Batched generation over several sequences of one context: prompt prefill in chunks, then one
// token per live sequence per decode. Hooks may read or steer any row; rows are described by
// (request, position, phase) so callers never deal with batch layout.
import { ThinkwhenError } from '../errors.ts';
import type { Context, HookRequest, Sequence } from './context.ts';
import type { HookPoint } from './hooks.ts';
import { createSampler, type SamplerOptions } from './sampling.ts';
import { TextStream } from './tokens.ts';

export interface GenerateRequest {
  prompt: string | ArrayLike<number>;
  maxTokens: number;
  sampler?: SamplerOptions;
  /** stop when the generated text contains one of these (the stop string is not returned) */
  stop?: string[];
  /** stop at end-of-generation tokens (default true) */
  stopAtEog?: boolean;
}

export interface RowInfo {
  request: number;
  /** absolute position of the token in its sequence */
  position: number;
  token: number;
  /** 'prompt' for prompt tokens, 'generated' for tokens the model produced */
  phase: 'prompt' | 'generated';
}

export interface GenerationHook {
  hook: string | HookPoint;
  /** which rows to capture (default none) */
  capture?: (row: RowInfo) => boolean;
  /** vector to add at a row, or undefined for none */
  add?: (row: RowInfo) => Float32Array | undefined;
}

export interface GenerateOptions {
  hooks?: GenerationHook[];
  onCapture?: (row: RowInfo, hookIndex: number, value: Float32Array) => void;
  /**
   * Streamed text. A token that ends inside a UTF-8 character yields '' and its bytes arrive with
   * the next one; bytes still pending when a request ends arrive in a last event with token -1.
   */
  onToken?: (ev: { request: number; token: number; text: string; position: number }) => void;
  /** cancel all requests */
  signal?: AbortSignal;
}

export interface GenerationResult {
  promptTokens: number;
  tokens: number[];
  text: string;
  finishReason: 'stop' | 'eog' | 'length' | 'aborted';
}

interface Live {
  request: number;
  seq: Sequence;
  sampler: ReturnType<typeof createSampler>;
  stream: TextStream;
  result: GenerationResult;
  pending: number; // token to feed next
  done: boolean;
}

export async function generate(
  ctx: Context,
  requests: GenerateRequest[],
  opts: GenerateOptions = {},
): Promise<GenerationResult[]> {
  const model = ctx.model;
  const prompts = requests.map((r) =>
    typeof r.prompt === 'string' ? model.tokenize(r.prompt) : Int32Array.from(r.prompt),
  );
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new ThinkwhenError('EMPTY_PROMPT', `request ${i} has an empty prompt`);
  });
  const seqs: Sequence[] = [];
  try {
    for (let i = 0; i < requests.length; i++) seqs.push(ctx.sequence());
  } catch (err) {
    for (const s of seqs) s.dispose();
    throw err;
  }
  try {
    const live: Live[] = requests.map((r, i) => ({
      request: i,
      seq: seqs[i],
      sampler: createSampler(r.sampler),
      stream: new TextStream(),
      result: { promptTokens: prompts[i].length, tokens: [], text: '', finishReason: 'length' },
      pending: -1,
      done: r.maxTokens <= 0,
    }));

    // Prefill: all prompts, packed into batches of at most nBatch tokens.
    const rows: { live: Live; info: RowInfo; last: boolean }[] = [];
    for (const l of live) {
      const p = prompts[l.request];
      for (let j = 0; j < p.length; j++) {
        rows.push({
          live: l,
          info: { request: l.request, position: j, token: p[j], phase: 'prompt' },
          last: j === p.length - 1,
        });
      }
    }
    for (let start = 0; start < rows.length; start += ctx.nBatch) {
      const chunk = rows.slice(start, start + ctx.nBatch);
      const out = await step(ctx, chunk, opts);
      for (const [k, logits] of out) sampleInto(chunk[k].live, logits, requests, opts, model);
      checkAbort(opts, live);
    }
    // Generation: one token per live sequence per decode.
    while (live.some((l) => !l.done)) {
      const chunk = live
        .filter((l) => !l.done)
        .map((l) => ({
          live: l,
          info: {
            request: l.request,
            position: l.seq.length,
            token: l.pending,
            phase: 'generated' as const,
          },
          last: true,
        }));
      const out = await step(ctx, chunk, opts);
      for (const [k, logits] of out) sampleInto(chunk[k].live, logits, requests, opts, model);
      checkAbort(opts, live);
    }
    return live.map((l) => l.result);
  } finally {
    for (const s of seqs) s.dispose();
  }
}

function checkAbort(opts: GenerateOptions, live: Live[]): void {
  if (!opts.signal?.aborted) return;
  for (const l of live) {
    if (!l.done) {
      l.done = true;
      l.result.finishReason = 'aborted';
    }
  }
}

/** Decodes rows; returns the logits of rows marked `last`, in order. */
async function step(
  ctx: Context,
  chunk: { live: Live; info: RowInfo; last: boolean }[],
  opts: GenerateOptions,
): Promise<Map<number, Float32Array>> {
  const hooks: HookRequest[] = [];
  const captureRows: number[][] = [];
  const captureAt: number[] = []; // index in `hooks` of each generation hook's capture request
  (opts.hooks ?? []).forEach((h) => {
    const addRows: number[] = [];
    const addVecs: Float32Array[] = [];
    const capRows: number[] = [];
    chunk.forEach((r, i) => {
      const v = h.add?.(r.info);
      if (v) {
        addRows.push(i);
        addVecs.push(v);
      }
      if (h.capture?.(r.info)) capRows.push(i);
    });
    if (addRows.length) hooks.push({ hook: h.hook, rows: addRows, add: addVecs });
    captureRows.push(capRows);
    captureAt.push(hooks.length);
    if (capRows.length) hooks.push({ hook: h.hook, rows: capRows, capture: true });
  });
  const out = await ctx.decode(
    chunk.map((r) => ({ token: r.info.token, seq: r.live.seq, pos: r.info.position, logits: r.last })),
    hooks,
  );
  if (opts.onCapture) {
    captureRows.forEach((rows, hi) => {
      if (!rows.length) return;
      const caps = out.captures[captureAt[hi]]!;
      rows.forEach((row, j) => {
        opts.onCapture!(chunk[row].info, hi, caps[j]);
      });
    });
  }
  const byIndex = new Map<number, Float32Array>();
  out.logitRows.forEach((row, j) => {
    byIndex.set(row, out.logits[j]);
  });
  return byIndex;
}

function sampleInto(
  l: Live,
  logits: Float32Array,
  requests: GenerateRequest[],
  opts: GenerateOptions,
  model: Context['model'],
): void {
  if (l.done) return;
  const req = requests[l.request];
  const token = l.sampler(logits);
  const position = l.result.promptTokens + l.result.tokens.length;
  const finish = () => {
    const rest = l.stream.flush();
    l.result.text += rest;
    if (rest) opts.onToken?.({ request: l.request, token: -1, text: rest, position });
    l.done = true;
  };
  if ((req.stopAtEog ?? true) && model.isEog(token)) {
    finish();
    l.result.finishReason = 'eog';
    return;
  }
  l.result.tokens.push(token);
  const piece = l.stream.push(model.tokenBytes(token));
  l.result.text += piece;
  opts.onToken?.({ request: l.request, token, text: piece, position });
  for (const s of req.stop ?? []) {
    const at = l.result.text.indexOf(s);
    if (at >= 0) {
      l.result.text = l.result.text.slice(0, at);
      l.done = true;
      l.result.finishReason = 'stop';
      return;
    }
  }
  if (l.result.tokens.length >= req.maxTokens) {
    finish();
    l.result.finishReason = 'length';
    return;
  }
  l.pending = token;
}
