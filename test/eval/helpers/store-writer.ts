// Child process for the kill -9 test: writes synthetic generations into a run store in a loop,
// printing `ok <problem> <sample>` after each commit, so the parent knows what was acknowledged.
// usage: node --import tsx test/eval/helpers/store-writer.ts STORE PROBLEMS SAMPLES [--replay N]
// CHECKPOINT_MS=N in the environment sets the store's WAL checkpoint interval.

import type { Problem } from '../../../src/eval/datasets.ts';
import { RunStore } from '../../../src/eval/store.ts';

const [path, nProblems, nSamples, flag, replayArg] = process.argv.slice(2);
const samples = Number(nSamples);
const problems: Problem[] = Array.from({ length: Number(nProblems) }, (_, i) => ({
  id: `p${String(i).padStart(4, '0')}`,
  question: `question ${i}`,
  answer: String(i),
  meta: { index: i },
}));

/** What a generation for (problem, sample) must contain: the parent checks it byte for byte. */
export function expectedText(id: string, s: number): string {
  return `generation of ${id} sample ${s}`;
}

const store = RunStore.open(path, {
  config: { name: 'kill-test', samplesPerProblem: samples, temperature: 0.6 },
  checkpointEveryMs: process.env.CHECKPOINT_MS === undefined ? undefined : Number(process.env.CHECKPOINT_MS),
});
const out = (s: string) => process.stdout.write(`${s}\n`);

// A restarted run may redo work it cannot know was committed; that must never count twice.
if (flag === '--replay') {
  const done = [...store.generations()].slice(0, Number(replayArg));
  let inserted = 0;
  for (const g of done)
    if (store.recordGeneration({ problemId: g.problemId, sampleIndex: g.sampleIndex, text: g.text })) inserted++;
  out(`replayed ${done.length} inserted ${inserted}`);
}

const todo = store.pending(problems);
out(`pending ${todo.length}`);
let inserted = 0;
for (const { problem, sampleIndex } of todo) {
  const until = Date.now() + 2; // stands in for generation time
  while (Date.now() < until) {}
  const tokens = Array.from({ length: 3000 }, (_, i) => (i * 7919 + sampleIndex) % 151_000);
  const ok = store.recordGeneration({
    problemId: problem.id,
    sampleIndex,
    text: expectedText(problem.id, sampleIndex),
    tokens,
    // Large per-token annotations make each transaction long enough for the kill to land inside one.
    annotations: { category: tokens.map((t) => t % 15), steered: tokens.map((t) => t % 9 === 0) },
    grades: [{ grader: 'g', correct: sampleIndex % 2 === 0 }],
    startedAt: Date.now() - 2,
    finishedAt: Date.now(),
  });
  if (ok) inserted++;
  out(`ok ${problem.id} ${sampleIndex}`);
}
out(`done inserted ${inserted}`);
store.close();
