// One training stage of the organism (pre-training or distillation): every weight of a GGUF model,
// masked cross-entropy on the answer tokens only, AdamW with warm-up and cosine decay. Resumable:
// a checkpoint GGUF and a small JSON state are written every `checkpointEvery` steps (temp file +
// rename); a rerun continues from the last checkpoint (the Adam moments restart from zero).
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { ThinkwhenError } from '../errors.ts';
import { Rng } from '../rng.ts';
import { accumulateAndStep, scheduledLr } from '../train/loop.ts';
import type { NativeRunBatch } from '../train/native.ts';
import { Trainer } from '../train/trainer.ts';
import type { Example } from './corpus.ts';
import { IM_END } from './vocab.ts';

export interface StageOptions {
  /** model to start from */
  from: string;
  /** where the trained model goes */
  out: string;
  examples: Example[];
  steps: number;
  batchSize: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  seed: number;
  threads: number;
  checkpointEvery: number;
  /** progress line every this many steps */
  logEvery?: number;
  log?: (line: string) => void;
}

export interface StageResult {
  steps: number;
  /** mean loss of the first and the last logged window */
  firstLoss: number;
  lastLoss: number;
  seconds: number;
  tokens: number;
}

interface StageState {
  step: number;
  firstLoss: number;
  lastLoss: number;
  seconds: number;
  tokens: number;
}

/** Right-padded batch: prompt tokens are context only, answer tokens are scored. */
export function maskedBatch(examples: Example[], padMultiple = 16): NativeRunBatch {
  const lengths = examples.map((e) => e.prompt.length + e.target.length);
  const T = Math.ceil(Math.max(...lengths) / padMultiple) * padMultiple;
  const B = examples.length;
  const tokens = new Int32Array(B * T).fill(IM_END);
  const targets = new Int32Array(B * T).fill(-1);
  examples.forEach((e, b) => {
    const seq = [...e.prompt, ...e.target];
    for (let i = 0; i < seq.length; i++) tokens[b * T + i] = seq[i];
    for (let i = e.prompt.length - 1; i < seq.length - 1; i++) targets[b * T + i] = seq[i + 1];
  });
  return { nSeq: B, seqLen: T, tokens, lengths: Int32Array.from(lengths), targets };
}

/** Batches of similar length: a seeded shuffle, then sorting inside windows of 8 batches. */
function* batches(examples: Example[], bs: number, rng: Rng): Generator<Example[]> {
  for (;;) {
    const order = examples.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const w = bs * 8;
    for (let s = 0; s + bs <= order.length; s += w) {
      const win = order.slice(s, s + w).sort((a, b) => len(examples[a]) - len(examples[b]));
      const group: Example[][] = [];
      for (let k = 0; k + bs <= win.length; k += bs) group.push(win.slice(k, k + bs).map((i) => examples[i]));
      for (let k = group.length - 1; k > 0; k--) {
        const j = rng.int(k + 1);
        [group[k], group[j]] = [group[j], group[k]];
      }
      yield* group;
    }
  }
}
const len = (e: Example) => e.prompt.length + e.target.length;

export async function trainStage(o: StageOptions): Promise<StageResult> {
  const ckpt = `${o.out}.ckpt.gguf`;
  const stateFile = `${o.out}.ckpt.json`;
  let state: StageState = { step: 0, firstLoss: Number.NaN, lastLoss: Number.NaN, seconds: 0, tokens: 0 };
  let start = o.from;
  if (existsSync(stateFile) && existsSync(ckpt)) {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as StageState;
    start = ckpt;
    o.log?.(`resuming ${o.out} at step ${state.step}/${o.steps}`);
  }
  if (!existsSync(start)) throw new ThinkwhenError('ORGANISM_MISSING', `model to start from not found: ${start}`);
  const tr = Trainer.open(start, { mode: 'weights', threads: o.threads });
  try {
    const rng = new Rng(o.seed + state.step * 7);
    const it = batches(o.examples, o.batchSize, rng);
    const logEvery = o.logEvery ?? 20;
    let window = 0;
    let windowN = 0;
    let t0 = performance.now();
    let tokens = 0;
    for (let step = state.step; step < o.steps; step++) {
      const batch = maskedBatch(it.next().value as Example[]);
      const lr = scheduledLr(o.lr, step, o.steps, 'cosine', o.warmup);
      window += await accumulateAndStep(
        tr,
        [batch],
        { logitScale: 1, base10: false },
        { lr, weightDecay: o.weightDecay },
      );
      windowN++;
      tokens += batch.lengths.reduce((a, b) => a + b, 0);
      const last = step + 1 === o.steps;
      if ((step + 1) % logEvery === 0 || last) {
        const loss = window / windowN;
        const secs = (performance.now() - t0) / 1000;
        state.seconds += secs;
        state.tokens += tokens;
        if (Number.isNaN(state.firstLoss)) state.firstLoss = loss;
        state.lastLoss = loss;
        o.log?.(
          `step ${step + 1}/${o.steps} loss ${loss.toFixed(4)} lr ${lr.toExponential(2)} ${(tokens / secs).toFixed(0)} tok/s ${state.seconds.toFixed(0)} s`,
        );
        window = 0;
        windowN = 0;
        tokens = 0;
        t0 = performance.now();
      }
      if (!last && (step + 1) % o.checkpointEvery === 0) {
        await tr.save(`${ckpt}.tmp`);
        renameSync(`${ckpt}.tmp`, ckpt);
        state.step = step + 1;
        writeFileSync(`${stateFile}.tmp`, JSON.stringify(state));
        renameSync(`${stateFile}.tmp`, stateFile);
      }
    }
    await tr.save(`${o.out}.tmp`);
    renameSync(`${o.out}.tmp`, o.out);
    rmSync(ckpt, { force: true });
    rmSync(stateFile, { force: true });
    return {
      steps: o.steps,
      firstLoss: state.firstLoss,
      lastLoss: state.lastLoss,
      seconds: state.seconds,
      tokens: state.tokens,
    };
  } finally {
    tr.free();
  }
}

/** Seconds per optimizer step on this machine (median of `n` steps after one warm-up), weights untouched on disk. */
export async function secondsPerStep(
  from: string,
  examples: Example[],
  batchSize: number,
  threads: number,
  n = 5,
): Promise<number> {
  const tr = Trainer.open(from, { mode: 'weights', threads });
  try {
    const it = batches(examples, batchSize, new Rng(99));
    const times: number[] = [];
    for (let i = 0; i <= n; i++) {
      const b = maskedBatch(it.next().value as Example[]);
      const t0 = performance.now();
      await accumulateAndStep(tr, [b], { logitScale: 1, base10: false }, { lr: 0 });
      if (i > 0) times.push((performance.now() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  } finally {
    tr.free();
  }
}
