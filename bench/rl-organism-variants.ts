// The RL variants of docs/rl.md on the shipped organism, each through the real CLI
// (`thinkwhen organism rl --json …`), collected into bench/results/rl-organism-variants.json with the
// command that produced each line. Runs resume from their work folders (runs/organism-rl/NAME), so a
// rerun after all have finished rewrites the file in seconds. Two runs go at once, one thread each.
// Run: node --import tsx bench/rl-organism-variants.ts [NAME ...]   (default: all)
import { execFile } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const out = join(root, 'bench', 'results', 'rl-organism-variants.json');

/** Every variant: the default settings but pass@k on 64 samples, and its change. */
const VARIANTS: Record<string, string[]> = {
  random: ['--reward', 'random'],
  format: ['--reward', 'format'],
  one_shot: ['--one-shot'],
  cost0: ['--token-cost', '0'], // no cost per token
  lr1e4: ['--lr', '1e-4'], // a larger step
  lr1e4_kl: ['--lr', '1e-4', '--kl', '0.1'], // the larger step held near the base by a KL penalty
};
const COMMON = ['--json', '--threads', '1', '--pass-samples', '64'];

const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(VARIANTS);
for (const n of names) if (!VARIANTS[n]) throw new Error(`no variant ${n} (${Object.keys(VARIANTS).join(', ')})`);

async function variant(name: string) {
  const args = ['organism', 'rl', ...COMMON, ...VARIANTS[name], '--work', `runs/organism-rl/${name}`];
  const t0 = performance.now();
  const r = await run(process.execPath, [join(root, 'bin', 'thinkwhen.js'), ...args], {
    cwd: root,
    env: { ...process.env, THINKWHEN_THREADS: '1' },
    maxBuffer: 1 << 26,
  });
  const seconds = (performance.now() - t0) / 1000;
  console.error(`${name}: ${seconds.toFixed(0)} s`);
  return { command: `thinkwhen ${args.join(' ')}`, line: JSON.parse(r.stdout.trim()) };
}

const previous = (() => {
  try {
    return JSON.parse(readFileSync(out, 'utf8')).variants ?? {};
  } catch {
    return {};
  }
})();
const results: Record<string, unknown> = { ...previous };
for (let i = 0; i < names.length; i += 2) {
  const pair = names.slice(i, i + 2);
  const done = await Promise.all(pair.map(variant));
  pair.forEach((n, j) => {
    results[n] = done[j];
  });
}
const ordered = Object.fromEntries(Object.keys(VARIANTS).flatMap((n) => (results[n] ? [[n, results[n]]] : [])));
writeFileSync(`${out}.tmp`, `${JSON.stringify({ variants: ordered }, null, 2)}\n`);
renameSync(`${out}.tmp`, out);
console.error(`wrote ${out}`);
