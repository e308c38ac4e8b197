// Which operand errors do the organism's models make (v2 build diagnosis)?
// Run: THINKWHEN_THREADS=1 node --import tsx bench/organism-copy-errors.ts MODEL.gguf [N]
import { Model } from '../src/engine/index.ts';
import { greedy } from '../src/organism/eval.ts';
import { analyzeTrace, operandErrors, parseQuestion } from '../src/organism/parser.ts';
import { generateProblems } from '../src/organism/task.ts';
import { promptText } from '../src/organism/vocab.ts';

const n = Number(process.argv[3] ?? 200);
const problems = generateProblems('test', n, 20251008);
const model = await Model.load(process.argv[2]);
const ctx = model.createContext({ nCtx: 32 * 400, nBatch: 2048, nSeqMax: 32, threads: 1 });
const texts = await greedy(
  ctx,
  problems.map((p) => promptText(p.question)),
  320,
  32,
);
const kinds: Record<string, number> = {};
let shown = 0;
for (const [i, t] of texts.entries()) {
  const q = parseQuestion(problems[i].question)!;
  const errs = operandErrors(q, analyzeTrace(t));
  for (const e of errs) {
    const k = e.replace(/\d+/g, (d) => (d.length > 1 ? 'N' : d));
    kinds[k] = (kinds[k] ?? 0) + 1;
  }
  if (errs.length && shown++ < 3) console.log(problems[i].question, '\n', t, '\n', errs, '\n');
}
let zero = 0,
  op = 0;
for (const [i, t] of texts.entries()) {
  const q = parseQuestion(problems[i].question)!;
  for (const e of operandErrors(q, analyzeTrace(t))) {
    const m = /step \d+: \w+ (\d+), question says \w+ (\d+)/.exec(e);
    if (!m) continue;
    op++;
    if (Number(m[1]) === Number(m[2]) - (Number(m[2]) % 10)) zero++;
  }
}
console.log({
  problemsWithErrors: texts.filter(
    (t, i) => operandErrors(parseQuestion(problems[i].question)!, analyzeTrace(t)).length,
  ).length,
  operandErrors: op,
  onesDigitReplacedByZero: zero,
});
console.log(
  Object.entries(kinds)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25),
);
