import { availableParallelism } from 'node:os';

/** Compute threads when a caller names none: env THINKWHEN_THREADS, else every core. */
export function defaultThreads(): number {
  return Number(process.env.THINKWHEN_THREADS) || availableParallelism();
}
