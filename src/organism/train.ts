// One training stage of the organism (pre-training or distillation) as a configuration of the
// project's weight trainer (src/train/weights.ts): every weight, the answer tokens scored (the chat
// prompt is context), AdamW with warm-up and cosine decay, batches of similar length, a checkpoint
// every `checkpointEvery` steps from which a rerun continues exactly.
import { existsSync } from 'node:fs';
import { ThinkwhenError } from '../errors.ts';
import { Trainer } from '../train/trainer.ts';
import { secondsPerStep as measureStep, trainWeights } from '../train/weights.ts';
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

/** Right padding with the end-of-turn token, lengths rounded up to 16 (fewer graph shapes). */
const BATCH_OPTIONS = { padToken: IM_END, padMultiple: 16 };

export async function trainStage(o: StageOptions): Promise<StageResult> {
  if (!existsSync(o.from)) throw new ThinkwhenError('ORGANISM_MISSING', `model to start from not found: ${o.from}`);
  const tr = Trainer.open(o.from, { mode: 'weights', threads: o.threads });
  try {
    const r = await trainWeights(tr, {
      data: o.examples,
      batchSize: o.batchSize,
      steps: o.steps,
      adam: { lr: o.lr, weightDecay: o.weightDecay },
      schedule: 'cosine',
      warmupSteps: o.warmup,
      evalEvery: o.logEvery ?? 20,
      seed: o.seed,
      batchOptions: BATCH_OPTIONS,
      checkpoint: { path: o.out, every: o.checkpointEvery },
      out: o.out,
      onEval: (e) =>
        o.log?.(
          `step ${e.step}/${o.steps} loss ${e.trainLoss.toFixed(4)} lr ${e.lr.toExponential(2)} ${e.tokensPerSecond.toFixed(0)} tok/s`,
        ),
    });
    return {
      steps: r.steps,
      firstLoss: r.evals[0]?.trainLoss ?? Number.NaN,
      lastLoss: r.evals.at(-1)?.trainLoss ?? Number.NaN,
      seconds: r.seconds,
      tokens: r.tokens,
    };
  } finally {
    tr.free();
  }
}

/** Seconds per optimizer step of a stage on this machine (measured on a throwaway trainer). */
export async function secondsPerStep(
  from: string,
  examples: Example[],
  batchSize: number,
  threads: number,
): Promise<number> {
  const tr = Trainer.open(from, { mode: 'weights', threads });
  try {
    return await measureStep(tr, examples, batchSize);
  } finally {
    tr.free();
  }
}
