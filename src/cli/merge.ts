import { mergeStores } from '../eval/merge.ts';
import { defineCommand } from './options.ts';

export const command = defineCommand({
  name: 'merge',
  summary: 'combine run stores (shards of one run) into one, refusing mismatched runs',
  usage: 'OUT IN...',
  description: `Combine run stores into OUT, typically the shards of one evaluation run on
several machines (each started with --shard i/n or auto/n: docs/scale-out.md).
It warns when a shard of the run is missing. Every generation and grade is
kept exactly once; merging the same input twice adds nothing. OUT may already
exist (it must then belong to the same run).

Merge refuses, and writes nothing, when the inputs' run configs differ (model,
temperature, samples per problem, ...) or when they were run on different data
(the dataset file's sha256 or the slice differ): such numbers are not one run's.
Generations that appear in two inputs with different text are counted as
conflicts; the first input's copy is kept.`,
  options: {},
  positionals: {
    min: 2,
    missing: 'need an output and at least one input',
    fix: 'thinkwhen merge OUT.sqlite IN.sqlite... (see --help)',
  },
  examples: [
    '# four machines each evaluated one shard (--shard 1/4 ... --shard 4/4) into',
    '# runs/hybrid.1.sqlite ... runs/hybrid.4.sqlite; combine them anywhere:',
    'thinkwhen merge runs/hybrid.sqlite runs/hybrid.*.sqlite',
    'thinkwhen report runs/base.sqlite runs/thinking.sqlite runs/hybrid.sqlite',
  ],
  async run({ positionals }) {
    const [out, ...inputs] = positionals;
    const tty = process.stderr.isTTY;
    const r = mergeStores(out, inputs, { onProgress: tty ? (m) => process.stderr.write(`\r\x1b[K${m}`) : undefined });
    if (tty) process.stderr.write('\r\x1b[K');
    for (const x of r.inputs)
      console.log(`  ${x.path}  shard ${x.shard}: ${x.generations} generations, ${x.added} new`);
    console.log(`merged into ${r.out}: ${r.problems} problems, ${r.generations} generations`);
    if (r.duplicates) console.log(`  ${r.duplicates} generation(s) were already present and kept once`);
    if (r.missingShards.length) {
      const n = r.missingShards.length;
      console.error(
        `warning: shard${n > 1 ? 's' : ''} ${r.missingShards.join(', ')} of this run ${n > 1 ? 'are' : 'is'} not among the inputs: the merged store covers part of the problems (merge again when ${n > 1 ? 'they finish' : 'it finishes'})`,
      );
    }
    if (r.conflicts)
      console.error(`warning: ${r.conflicts} duplicate generation(s) differ between inputs; kept the first copy`);
    return 0;
  },
});
