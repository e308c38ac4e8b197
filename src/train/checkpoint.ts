// Checkpoints of a weight-training run: the weights (a GGUF llama.cpp loads), Adam's moments and
// step count (a GGUF of F32 tensors), and the loop's own state (JSON). Files carry the step in
// their names and the JSON, renamed into place last, names them: a crash at any moment leaves the
// previous checkpoint whole.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ThinkwhenError } from '../errors.ts';
import { readGguf, readTensor } from '../gguf/read.ts';
import { GgmlType, str, u32 } from '../gguf/types.ts';
import { writeGguf } from '../gguf/write.ts';
import type { Trainer } from './trainer.ts';

interface CheckpointIndex<S> {
  step: number;
  weights: string;
  optimizer: string;
  state: S;
}

const indexFile = (path: string) => `${path}.ckpt.json`;

/** The state saved with the last checkpoint at `path`, or null when there is none. */
export function readCheckpoint<S>(path: string): { step: number; state: S } | null {
  const f = indexFile(path);
  if (!existsSync(f)) return null;
  const idx = JSON.parse(readFileSync(f, 'utf8')) as CheckpointIndex<S>;
  const dir = dirname(path);
  for (const file of [idx.weights, idx.optimizer]) {
    if (!existsSync(join(dir, file)))
      throw new ThinkwhenError('CHECKPOINT_BROKEN', `checkpoint ${f} names ${file}, which is missing`, `delete ${f}`);
  }
  return { step: idx.step, state: idx.state };
}

/** Writes weights, optimizer state and `state` as the checkpoint of `path` at `step`. */
export async function saveCheckpoint<S>(tr: Trainer, path: string, step: number, state: S): Promise<void> {
  const dir = dirname(path);
  const stem = `${basename(path)}.ckpt-${step}`;
  const weights = `${stem}.gguf`;
  const optimizer = `${stem}.adam.gguf`;
  await tr.save(join(dir, weights));
  const tensors = tr.info.tensors.flatMap((name) => {
    const { m, v } = tr.moments(name);
    return [
      { name: `${name}.m`, shape: shapeOf(m), type: GgmlType.F32, data: m },
      { name: `${name}.v`, shape: shapeOf(v), type: GgmlType.F32, data: v },
    ];
  });
  writeGguf(
    join(dir, optimizer),
    new Map([
      ['general.architecture', str('thinkwhen-adam-state')],
      ['train.optimizer_steps', u32(tr.optimizerSteps)],
    ]),
    tensors,
  );
  const previous = existsSync(indexFile(path))
    ? (JSON.parse(readFileSync(indexFile(path), 'utf8')) as CheckpointIndex<S>)
    : null;
  const idx: CheckpointIndex<S> = { step, weights, optimizer, state };
  writeFileSync(`${indexFile(path)}.tmp`, JSON.stringify(idx));
  renameSync(`${indexFile(path)}.tmp`, indexFile(path));
  if (previous && previous.step !== step) {
    rmSync(join(dir, previous.weights), { force: true });
    rmSync(join(dir, previous.optimizer), { force: true });
  }
}

const shapeOf = (a: Float32Array) => [a.length];

/** Loads the checkpoint's weights and optimizer state into `tr` (a trainer of the same model, weights mode). */
export function restoreCheckpoint(tr: Trainer, path: string): void {
  const idx = JSON.parse(readFileSync(indexFile(path), 'utf8')) as CheckpointIndex<unknown>;
  const dir = dirname(path);
  const w = readGguf(join(dir, idx.weights));
  for (const name of tr.info.tensors) tr.setParam(name, readTensor(w, name));
  const o = readGguf(join(dir, idx.optimizer));
  for (const name of tr.info.tensors) tr.setMoments(name, readTensor(o, `${name}.m`), readTensor(o, `${name}.v`));
  const steps = o.metadata.get('train.optimizer_steps')?.value;
  if (typeof steps !== 'number')
    throw new ThinkwhenError('CHECKPOINT_BROKEN', `${idx.optimizer} has no optimizer step count`);
  tr.optimizerSteps = steps;
}

/** Deletes the checkpoint of `path` (after the final weights are safely written). */
export function removeCheckpoint(path: string): void {
  const f = indexFile(path);
  if (!existsSync(f)) return;
  const idx = JSON.parse(readFileSync(f, 'utf8')) as CheckpointIndex<unknown>;
  rmSync(f, { force: true });
  rmSync(join(dirname(path), idx.weights), { force: true });
  rmSync(join(dirname(path), idx.optimizer), { force: true });
}
