/**
 * Worker thread for SAE training: waits for a step signal, accumulates gradients for its slice of the
 * batch into its own shared buffers, reports done. All arrays are SharedArrayBuffer views set up by
 * sae.ts; the control word layout is defined there (CTRL_*).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { accumulateRows, allocScratch, type GradBuffers, type SaeParams, zeroGrads } from './sae-kernel.ts';

interface WorkerInit {
  params: SaeParams;
  X: Float32Array;
  order: Int32Array;
  grads: GradBuffers;
  ctrl: Int32Array;
  slot: number;
}

const CTRL_GEN = 0;
const CTRL_STOP = 1;
const CTRL_DONE = 2;
const CTRL_FAILED = 3;
const CTRL_RANGES = 4;

const init = workerData as WorkerInit;
const scratch = allocScratch(init.params);
let generation = 0;
parentPort?.postMessage('ready');
for (;;) {
  Atomics.wait(init.ctrl, CTRL_GEN, generation);
  generation = Atomics.load(init.ctrl, CTRL_GEN);
  if (Atomics.load(init.ctrl, CTRL_STOP) === 1) break;
  const from = init.ctrl[CTRL_RANGES + 2 * init.slot];
  const to = init.ctrl[CTRL_RANGES + 2 * init.slot + 1];
  try {
    zeroGrads(init.grads);
    accumulateRows(init.params, init.X, init.order, from, to, init.grads, scratch);
  } catch (err) {
    // The main thread is blocked in Atomics.wait and cannot see events: flag the failure in shared memory.
    Atomics.store(init.ctrl, CTRL_FAILED, 1);
    parentPort?.postMessage({ error: String((err as Error)?.stack ?? err) });
  }
  Atomics.add(init.ctrl, CTRL_DONE, 1);
  Atomics.notify(init.ctrl, CTRL_DONE);
}
