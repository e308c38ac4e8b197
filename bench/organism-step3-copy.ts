// Does a model copy the third step's clause from the question when verifications come before it?
// Teacher-forced: the trace of a three-step held-out problem under a policy, cut before the third
// plan; the model writes the plan greedily; wrong = not a plan, or another operation or operand.
// The third variant inserts no verification, only the set-up line three more times: a model that
// finds the clause by its content copes, one that finds it at a learned distance does not.
// Run: THINKWHEN_THREADS=2 node --import tsx bench/organism-step3-copy.ts MODEL.gguf [MODEL.gguf ...]
import { Model } from '../src/engine/index.ts';
import { greedy } from '../src/organism/eval.ts';
import { makeTrace, type VerifyPolicy } from '../src/organism/language.ts';
import { parseSentence } from '../src/organism/parser.ts';
import { generateProblems } from '../src/organism/task.ts';
import { promptText } from '../src/organism/vocab.ts';
import { Rng } from '../src/rng.ts';

const problems = generateProblems('test', 300, 20251008)
  .filter((p) => p.ops.length === 3)
  .slice(0, 80);
const variants: { name: string; policy: VerifyPolicy; setupCopies: number }[] = [
  { name: 'never traces', policy: { kind: 'never' }, setupCopies: 1 },
  { name: 'needed traces', policy: { kind: 'needed' }, setupCopies: 1 },
  { name: 'never traces, set-up line 4x', policy: { kind: 'never' }, setupCopies: 4 },
];
for (const file of process.argv.slice(2)) {
  const model = await Model.load(file);
  const ctx = model.createContext({
    nCtx: 16 * 512,
    nBatch: 2048,
    nSeqMax: 16,
    threads: Number(process.env.THINKWHEN_THREADS ?? 2),
  });
  for (const { name, policy, setupCopies } of variants) {
    const prompts = problems.map((p) => {
      const t = makeTrace(p, policy, new Rng(1));
      const cut = t.sentences.findIndex((s) => s.type === 'plan' && s.step === 2);
      const before = t.sentences.slice(0, cut).flatMap((s) => (s.type === 'setup' ? Array(setupCopies).fill(s) : [s]));
      return {
        text: `${promptText(p.question)}${before.map((s) => s.text).join('\n')}\n`,
        verified: before.some((s) => s.type === 'verify'),
      };
    });
    const out = await greedy(
      ctx,
      prompts.map((p) => p.text),
      24,
      16,
    );
    const tally: Record<string, [number, number]> = {};
    out.forEach((o, k) => {
      const f = parseSentence(o.split('\n')[0]).parsed;
      const op = problems[k].ops[2];
      const key = prompts[k].verified ? 'after a verification' : 'no verification before';
      tally[key] ??= [0, 0];
      tally[key][1]++;
      if (f?.form !== 'plan' || f.n !== op.n || f.kind !== op.kind) tally[key][0]++;
    });
    for (const [key, [wrong, n]] of Object.entries(tally))
      console.log(`${file}  ${name}, ${key}: third plan wrong ${wrong}/${n}`);
  }
  ctx.free();
  model.free();
}
