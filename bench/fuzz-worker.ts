// Child process of bench/fuzz-gguf.ts: loads one file after another as the parent asks, and
// reports each outcome. If llama.cpp aborts the process, the parent sees the exit signal and
// starts a new worker; the file in flight is then an abort.
import { writeFileSync } from 'node:fs';
import { Model } from '../src/engine/index.ts';
import { ThinkwhenError } from '../src/errors.ts';
import { type FuzzJob, variantBytes } from './fuzz-variants.ts';

export type Outcome =
  | { kind: 'loaded' }
  | { kind: 'typed_error'; code: string; message: string }
  | { kind: 'untyped_error'; message: string };

async function exercise(path: string, vocabOnly: boolean): Promise<void> {
  const model = await Model.load(path, { vocabOnly });
  try {
    const tokens = model.tokenize('Hello world, 12 + 30 = 42.\n', { addSpecial: true });
    model.detokenize(tokens);
    if (model.info.chatTemplate) model.applyChatTemplate([{ role: 'user', content: 'hi' }]);
    if (vocabOnly) return;
    const ctx = model.createContext({ nCtx: 64, nBatch: 16, nSeqMax: 1, threads: 1 });
    try {
      const seq = ctx.sequence();
      const ids = Array.from(tokens.subarray(0, 8)).filter((t) => t >= 0 && t < model.info.nVocab);
      if (ids.length === 0) ids.push(0);
      await ctx.decode(ids.map((token, i) => ({ token, seq, logits: i === ids.length - 1 })));
    } finally {
      ctx.free();
    }
  } finally {
    model.free();
  }
}

async function run(job: FuzzJob, scratch: string): Promise<Outcome> {
  try {
    writeFileSync(scratch, variantBytes(job));
  } catch (err) {
    return { kind: 'untyped_error', message: `the fuzzer could not write this file: ${(err as Error).stack}` };
  }
  process.send!({ index: job.index, loading: true }); // the parent's hang timer starts now
  try {
    await exercise(scratch, job.vocabOnly);
    return { kind: 'loaded' };
  } catch (err) {
    if (err instanceof ThinkwhenError) return { kind: 'typed_error', code: err.code, message: err.message };
    return { kind: 'untyped_error', message: String((err as Error)?.stack ?? err) };
  }
}

const scratch = process.argv[2];
process.on('message', async (job: FuzzJob) => {
  process.send!({ index: job.index, outcome: await run(job, scratch) });
});
process.send!({ ready: true });
