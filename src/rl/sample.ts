// Sampled completions of prompts from one GGUF with the engine (llama.cpp), each request with its own
// seed, so that a sample is reproducible on its own whatever batch it is decoded in. The rollouts of
// RL and the pass@k evaluation both draw their samples here.
import { generate, Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';

export interface SampleRequest {
  prompt: string;
  seed: number;
}

export interface Completion {
  /** prompt token ids (as the engine tokenized the prompt) */
  prompt: number[];
  /** generated token ids, ending with the end-of-generation token when the model stopped itself */
  tokens: number[];
  text: string;
  /** the model ended the sequence itself (false: cut at maxTokens) */
  stopped: boolean;
}

export interface SampleOptions {
  /** 0 = greedy */
  temperature: number;
  maxTokens: number;
  threads?: number;
  /** sequences decoded together (at most 256; default 8: llama.cpp attends over the whole shared KV cache, so
   *  per-token cost grows with it — measured on the organism, 8 gave 2.4× the tokens/s of 64) */
  parallel?: number;
  /** called after each decoded batch with the completions done so far */
  onBatch?: (done: number, tokens: number) => void;
}

/** Seed of one sample from a run seed and integer coordinates (step, problem, sample …). */
export function sampleSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    let x = p | 0;
    for (let i = 0; i < 4; i++) {
      h = Math.imul(h ^ (x & 0xff), 0x01000193) >>> 0;
      x >>>= 8;
    }
  }
  return h;
}

export async function sampleCompletions(
  modelPath: string,
  requests: SampleRequest[],
  o: SampleOptions,
): Promise<Completion[]> {
  if (!(o.temperature >= 0))
    throw new ThinkwhenError('BAD_OPTIONS', `the temperature must be ≥ 0 (0 = greedy), got ${o.temperature}`);
  const parallel = Math.min(o.parallel ?? 8, 256);
  const model = await Model.load(modelPath, { gpuLayers: 0 });
  try {
    // The end-of-generation token the engine stops at is not in its result: it is the model's end of
    // turn (or end of sequence), which RL must score too, since stopping is one of the policy's choices.
    const eog = model.info.eot >= 0 ? model.info.eot : model.info.eos;
    const prompts = requests.map((r) => Array.from(model.tokenize(r.prompt)));
    const longest = Math.max(1, ...prompts.map((p) => p.length));
    const ctx = model.createContext({
      nCtx: parallel * (longest + o.maxTokens + 1),
      nBatch: 2048,
      nSeqMax: parallel,
      threads: o.threads,
    });
    const out: Completion[] = [];
    let tokens = 0;
    try {
      for (let i = 0; i < requests.length; i += parallel) {
        const chunk = requests.slice(i, i + parallel);
        const res = await generate(
          ctx,
          chunk.map((r, j) => ({
            prompt: prompts[i + j],
            maxTokens: o.maxTokens,
            sampler: { temperature: o.temperature, seed: r.seed },
          })),
        );
        res.forEach((r, j) => {
          const stopped = r.finishReason === 'eog';
          out.push({
            prompt: prompts[i + j],
            tokens: stopped ? [...r.tokens, eog] : r.tokens,
            text: r.text,
            stopped,
          });
          tokens += r.tokens.length;
        });
        o.onBatch?.(out.length, tokens);
      }
    } finally {
      ctx.free();
    }
    return out;
  } finally {
    model.free();
  }
}
