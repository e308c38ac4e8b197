// What the hybrid does at its disagreements on the organism (docs/demo.md, "What the hybrid does on
// this pair"): reads the per-token records of a hybrid run store (`annotations.records`) and counts
//  - disagreements at a sentence start, at a number (a number below 100 is one token), elsewhere;
//  - at each sentence start where the thinking model wants `Check` (a verification after a quick
//    result): the SAE category read there and whether `Check` was emitted, by quick result (1st, 2nd, …);
//  - steered numbers: emitted = the base model's greedy number / = the thinking model's / neither;
//  - each wrong answer's causes: a wrong quick result left unverified (the thinking model wanted
//    `Check`, something else was emitted), a copy error (a plan "First/Then/… add/take X" whose X is
//    not the question's next number) made by a steered number, or one made without steering.
//
//   node --import tsx bench/demo-disagreements.ts runs/demo/default/runs/hybrid.sqlite [--json]
import Database from 'better-sqlite3';
import { parseSentence } from '../src/organism/parser.ts';
import { ORDINALS, trueResult } from '../src/organism/task.ts';
import { organismVocab } from '../src/organism/vocab.ts';

const path = process.argv[2];
if (!path) {
  console.error('usage: node --import tsx bench/demo-disagreements.ts RUN.sqlite [--json]');
  process.exit(2);
}
interface Rec {
  token: number;
  text: string;
  baseGreedy: number;
  thinkingGreedy: number;
  gate: string;
  title?: string | null;
}
const { pieces } = organismVocab();
const word = (id: number) => (pieces[id] ?? '').replaceAll('▁', ' ').trim();
const isNumber = (id: number) => /^[0-9]+$/.test(word(id));
const PLAN = new RegExp(`^(?:${ORDINALS.join('|')}) (add|take) (\\d+)`);
const wrongQuick = (line: string) => {
  const p = parseSentence(line.trim()).parsed;
  return p?.form === 'compute' ? p.q !== trueResult(p.v, p) : false;
};

const db = new Database(path, { readonly: true, fileMustExist: true });
const rows = db
  .prepare(
    `SELECT g.problem_id AS id, g.annotations AS ann, p.question AS question,
            (SELECT correct FROM grades r WHERE r.problem_id = g.problem_id AND r.sample_index = g.sample_index LIMIT 1) AS correct
       FROM generations g JOIN problems p ON p.id = g.problem_id WHERE g.sample_index = 0 ORDER BY p.idx`,
  )
  .all() as Array<{ id: string; ann: string; question: string; correct: number }>;

const count: Record<string, number> = {};
const bump = (key: string) => {
  count[key] = (count[key] ?? 0) + 1;
};
for (const row of rows) {
  const records: Rec[] = JSON.parse(row.ann).records;
  const operands = (row.question.match(/\d+/g) ?? []).map(Number).slice(1); // the first is the start value
  let text = '';
  let line: Rec[] = [];
  let quicks = 0;
  let previousLine = '';
  let nextOperand = 0;
  const causes = new Set<string>();
  const endLine = () => {
    const s = line.map((r) => r.text).join('');
    const plan = PLAN.exec(s.trim());
    if (plan) {
      const steered = line.some((r) => r.gate === 'disagree' && isNumber(r.token) && r.token !== r.baseGreedy);
      if (Number(plan[2]) !== operands[nextOperand])
        causes.add(steered ? 'copy error, steered number' : 'copy error, unsteered');
      nextOperand++;
    }
    if (/^Quick:/.test(s.trim())) quicks++;
    previousLine = s;
    line = [];
  };
  for (const r of records) {
    if (r.gate === 'disagree') {
      const start = text === '' || text.endsWith('\n');
      if (start) {
        bump('disagreements: sentence start');
        if (word(r.thinkingGreedy) === 'Check') {
          const emitted = word(r.token) === 'Check';
          bump(`wants Check after quick #${quicks}: category "${r.title}" → ${emitted ? 'Check' : word(r.token)}`);
          bump(`wants Check: Check emitted ${emitted}`);
          if (!emitted && wrongQuick(previousLine)) causes.add('wrong quick result left unverified');
        }
      } else if (isNumber(r.baseGreedy) || isNumber(r.thinkingGreedy)) {
        bump('disagreements: number');
        const who = r.token === r.baseGreedy ? 'base' : r.token === r.thinkingGreedy ? 'thinking' : 'neither';
        bump(`steered number = ${who}'s`);
        bump(`number disagreements in a "${text.split('\n').at(-1)?.split(/[ :]/)[0]}" sentence`);
      } else bump('disagreements: other');
    }
    text += r.text;
    line.push(r);
    if (r.text.endsWith('\n')) endLine();
  }
  endLine();
  bump(`answers ${row.correct ? 'right' : 'wrong'}`);
  if (!row.correct) bump(`wrong because: ${[...causes].sort().join(' + ') || 'other'}`);
}
if (process.argv.includes('--json'))
  console.log(JSON.stringify({ store: path, problems: rows.length, count }, null, 2));
else {
  console.log(`${path}: ${rows.length} problems`);
  for (const [k, v] of Object.entries(count).sort()) console.log(`${String(v).padStart(5)}  ${k}`);
}
