// Library API of the hybrid model (docs/hybrid.md).
import type { HybridEvent, HybridResult } from './options.ts';

export { Bridge, identicalVocabularies } from './bridge.ts';
export { compareStreams, MARGIN, sameStep } from './compare.ts';
export { type HybridCounters, type HybridRun, hybridGenerate, hybridRun } from './hybrid.ts';
export * from './options.ts';
export { makePolicy, type Policy } from './policies.ts';
export { referenceGenerate } from './reference.ts';
export { BASE_SLOT, cellSlot, Draws } from './sampling.ts';
export { formatStats, type HybridStats, hybridStats } from './stats.ts';

/** Drains an event stream into the results, in problem order. */
export async function collectResults(events: AsyncIterable<HybridEvent>): Promise<HybridResult[]> {
  const out: HybridResult[] = [];
  for await (const ev of events) if (ev.type === 'done') out[ev.problem] = ev.result;
  return out.filter(Boolean);
}
