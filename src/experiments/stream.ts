// Continuous batching: up to `parallel` requests share one context's decodes, and a finished
// request's slot goes to the next one at once (no waiting for the longest of a batch). Results
// stream out in finishing order, so a caller can store each as soon as it exists.
import { type Context, createSampler, type SamplerOptions, type Sequence, TextStream } from '../engine/index.ts';

export interface StreamRequest {
  prompt: ArrayLike<number>;
  maxTokens: number;
  sampler?: SamplerOptions;
}

export interface StreamResult {
  /** index of the request */
  index: number;
  promptTokens: number;
  tokens: number[];
  text: string;
  finishReason: 'eog' | 'length';
  /** epoch milliseconds */
  startedAt: number;
  finishedAt: number;
}

interface Lane {
  index: number;
  seq: Sequence;
  sample: (logits: Float32Array) => number;
  text: TextStream;
  /** tokens to feed next (the prompt, then one generated token at a time) */
  feed: number[];
  result: StreamResult;
}

export interface StreamOptions {
  /** requests decoded together (sequences of the context) */
  parallel: number;
  /** stop admitting and end after the current decode; unfinished requests are not yielded */
  signal?: AbortSignal;
  /** called after each decode with the tokens generated in it */
  onTokens?: (generated: number) => void;
}

/** KV cells a context needs to run `requests` with `parallel` in flight. */
export function streamContextSize(requests: StreamRequest[], parallel: number): number {
  let longest = 0;
  for (const r of requests) longest = Math.max(longest, r.prompt.length + r.maxTokens + 1);
  return Math.max(1, Math.min(parallel, requests.length)) * longest;
}

export async function* generateStream(
  ctx: Context,
  requests: StreamRequest[],
  opts: StreamOptions,
): AsyncGenerator<StreamResult> {
  const model = ctx.model;
  const lanes: Lane[] = [];
  let next = 0;
  try {
    for (;;) {
      while (lanes.length < opts.parallel && next < requests.length && !opts.signal?.aborted) {
        const r = requests[next];
        lanes.push({
          index: next,
          seq: ctx.sequence(),
          sample: createSampler(r.sampler),
          text: new TextStream(),
          feed: Array.from(r.prompt),
          result: {
            index: next,
            promptTokens: r.prompt.length,
            tokens: [],
            text: '',
            finishReason: 'length',
            startedAt: Date.now(),
            finishedAt: 0,
          },
        });
        next++;
      }
      if (lanes.length === 0 || opts.signal?.aborted) return;

      // One decode: every lane's pending tokens, prompts split across decodes when they do not fit.
      const rows: { lane: Lane; token: number; logits: boolean }[] = [];
      let budget = ctx.nBatch;
      for (const lane of lanes) {
        if (budget === 0) break;
        const take = Math.min(lane.feed.length, budget);
        const whole = take === lane.feed.length;
        for (let j = 0; j < take; j++) rows.push({ lane, token: lane.feed[j], logits: whole && j === take - 1 });
        lane.feed = lane.feed.slice(take);
        budget -= take;
      }
      const out = await ctx.decode(rows.map((r) => ({ token: r.token, seq: r.lane.seq, logits: r.logits })));
      let generated = 0;
      const finished: Lane[] = [];
      out.logitRows.forEach((row, j) => {
        const lane = rows[row].lane;
        const req = requests[lane.index];
        const token = lane.sample(out.logits[j]);
        const res = lane.result;
        if (model.isEog(token)) {
          res.finishReason = 'eog';
          finished.push(lane);
          return;
        }
        res.tokens.push(token);
        res.text += lane.text.push(model.tokenBytes(token));
        generated++;
        if (res.tokens.length >= req.maxTokens) finished.push(lane);
        else lane.feed = [token];
      });
      opts.onTokens?.(generated);
      for (const lane of finished) {
        lane.result.text += lane.text.flush();
        lane.result.finishedAt = Date.now();
        lane.seq.dispose();
        lanes.splice(lanes.indexOf(lane), 1);
        yield lane.result;
      }
    }
  } finally {
    for (const lane of lanes) lane.seq.dispose();
  }
}
