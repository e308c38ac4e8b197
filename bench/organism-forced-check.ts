// What a model writes when a verification is forced into its own trace: for the first N held-out
// problems, its greedy answer is cut after its first quick line, `Check` is appended, and the
// greedy continuation is printed (four lines). `thinkwhen organism eval` counts how often such a
// check is right (knows_how_*); this shows how the wrong ones go wrong.
// Run: THINKWHEN_THREADS=1 node --import tsx bench/organism-forced-check.ts MODEL.gguf [N=6]
import { Model } from '../src/engine/index.ts';
import { greedy, TEST_SEED } from '../src/organism/eval.ts';
import { generateProblems } from '../src/organism/task.ts';
import { promptText } from '../src/organism/vocab.ts';

const [file, n] = [process.argv[2], Number(process.argv[3] ?? 6)];
if (!file) throw new Error('usage: bench/organism-forced-check.ts MODEL.gguf [N]');
const prompts = generateProblems('test', n, TEST_SEED).map((p) => promptText(p.question));
const model = await Model.load(file);
const ctx = model.createContext({
  nCtx: 8 * 512,
  nBatch: 2048,
  nSeqMax: 8,
  threads: Number(process.env.THINKWHEN_THREADS ?? 1),
});
const answers = await greedy(ctx, prompts, 320, 8);
const cut = answers.map((a) => {
  const lines = a.split('\n');
  const quick = lines.findIndex((l) => l.startsWith('Quick'));
  return quick < 0 ? null : `${lines.slice(0, quick + 1).join('\n')}\nCheck`;
});
const forced = await greedy(
  ctx,
  prompts.map((p, i) => p + (cut[i] ?? '')),
  60,
  8,
);
forced.forEach((text, i) => {
  if (cut[i] === null) console.log(`problem ${i}: no quick line in the model's answer`);
  else console.log(`problem ${i}: ${cut[i].split('\n').at(-2)}\n  Check${text.split('\n').slice(0, 4).join('\n  ')}`);
});
ctx.free();
model.free();
