// The headline tables of docs/vectors.md ("The organism"): `thinkwhen vectors eval --organism
// --json` for the optimised and the difference-of-means vectors of the shipped model organism,
// stored with the organism files they were measured on in bench/results/vectors-organism.json and
// printed as the Markdown tables the docs hold (test/steer/organism-record.test.ts checks both).
// Run: THINKWHEN_THREADS=1 node --import tsx bench/vectors-organism.ts [--collect | --tables]
//   (default)  runs both evals through the CLI (each trains its set first when it is missing:
//              ~40 min for the optimised set on one shared core), then stores the record;
//   --collect  stores the record from the eval.json the last two evals wrote into
//              runs/organism/vectors-{optimised,diffmean}/ (the same table, not run again);
//   --tables   prints the tables of the stored record.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { organismModelPaths } from '../src/organism/index.ts';
import { fileSha256, writeFileAtomic } from '../src/steer/vector-set.ts';
import {
  type EvalTable,
  methodTable,
  type OrganismRecord,
  RECORD_FORMAT,
  RECORD_PATH,
  summaryTable,
} from './vectors-organism-record.ts';

const { values } = parseArgs({ options: { collect: { type: 'boolean' }, tables: { type: 'boolean' } } });
const METHODS = ['optimised', 'diffmean'] as const;
const command = (m: string) => `thinkwhen vectors eval --organism${m === 'optimised' ? '' : ` --method ${m}`} --json`;

function printTables(rec: OrganismRecord): void {
  console.log(summaryTable(rec));
  for (const m of METHODS) console.log(`\n${m}:\n\n${methodTable(rec[m])}`);
}

if (values.tables) {
  printTables(JSON.parse(readFileSync(RECORD_PATH, 'utf8')));
  process.exit(0);
}

const tables = {} as Record<(typeof METHODS)[number], EvalTable>;
for (const m of METHODS) {
  if (!values.collect) {
    const args = ['bin/thinkwhen.js', ...command(m).split(' ').slice(1)];
    console.error(`node ${args.join(' ')}`);
    tables[m] = JSON.parse(
      execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }),
    );
  } else {
    tables[m] = JSON.parse(readFileSync(join('runs', 'organism', `vectors-${m}`, 'eval.json'), 'utf8'));
  }
}

const paths = organismModelPaths();
const file = async (path: string) => ({ file: relative(process.cwd(), path), sha256: await fileSha256(path) });
const rec: OrganismRecord = {
  format: RECORD_FORMAT,
  commands: { optimised: command('optimised'), diffmean: command('diffmean') },
  organism: {
    base: await file(paths.base),
    thinking: await file(paths.thinking),
    base_latent: existsSync(paths.baseLatent) ? await file(paths.baseLatent) : null,
  },
  machine: `CPU (${cpus()[0]?.model ?? 'unknown'}), THINKWHEN_THREADS=${process.env.THINKWHEN_THREADS ?? 'unset'}, shared with other jobs`,
  ...tables,
};
for (const m of METHODS) {
  if (rec[m].model.sha256 !== rec.organism.base.sha256) {
    throw new Error(`the ${m} table was measured on another base.gguf than ${paths.base}: run it again`);
  }
}
mkdirSync(dirname(RECORD_PATH), { recursive: true });
writeFileAtomic(RECORD_PATH, `${JSON.stringify(rec, null, 2)}\n`);
// in the repository's JSON style, so that `npm run lint` passes on a fresh record
execFileSync(join('node_modules', '.bin', 'biome'), ['format', '--write', RECORD_PATH], { stdio: 'ignore' });
console.error(`wrote ${RECORD_PATH}`);
printTables(rec);
