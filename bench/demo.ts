// Where the time of `thinkwhen demo` goes: runs the demo into a fresh workspace and prints, per system
// (every greedy run and every pass@k run), wall seconds, CPU seconds of this process, generated
// tokens, and the demo's projected time at other sizes (linear in problems: an extrapolation).
//
//   THINKWHEN_THREADS=1 node --import tsx bench/demo.ts [--problems 100] [--pass-problems 30] [--samples 8]
//        [--parallel 8] [--project 300,100] [--json] [--out DIR]
//
// --project P,Q: the projected seconds of a demo with P greedy problems and Q pass@k problems (same
// samples), from this run's per-problem cost. CPU seconds are the honest number on a shared machine;
// wall seconds include waiting for the cores. docs/demo.md ("Cost") has the measured table.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runDemo } from '../src/experiments/demo.ts';

const { values } = parseArgs({
  options: {
    problems: { type: 'string', default: '100' },
    'pass-problems': { type: 'string', default: '30' },
    samples: { type: 'string', default: '8' },
    temperature: { type: 'string', default: '0.8' },
    parallel: { type: 'string' },
    project: { type: 'string', default: '300,100' },
    out: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const problems = Number(values.problems);
const passProblems = Number(values['pass-problems']);
const samples = Number(values.samples);
const [projectProblems, projectPass] = values.project!.split(',').map(Number);
const out = values.out ?? mkdtempSync(join(tmpdir(), 'thinkwhen-bench-demo-'));

interface Row {
  system: string;
  /** problems (greedy) or problems × samples (pass@k) generated now */
  generated: number;
  tokens: number;
  wall: number;
  cpu: number;
  sampled: boolean;
}
const rows: Row[] = [];
let started = { wall: 0, cpu: 0 };
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const t0 = performance.now();
const r = await runDemo({
  pair: 'default',
  problems,
  passAtK: { problems: passProblems, samples, temperature: Number(values.temperature), seed: 0 },
  out,
  parallel: values.parallel ? Number(values.parallel) : undefined,
  threads: Number(process.env.THINKWHEN_THREADS ?? 1),
  onRunStart: () => {
    started = { wall: performance.now(), cpu: cpuSeconds() };
  },
  onRunEnd: (run) => {
    rows.push({
      system: run.name,
      generated: run.generated,
      tokens: run.tokens,
      wall: (performance.now() - started.wall) / 1000,
      cpu: cpuSeconds() - started.cpu,
      sampled: /-n\d+-t/.test(run.name),
    });
  },
});
const total = { wall: (performance.now() - t0) / 1000, cpu: cpuSeconds() };
if (!values.out) rmSync(out, { recursive: true, force: true });

// projection: each row scales with its own problem count
const scale = (row: Row) => (row.sampled ? projectPass / passProblems : projectProblems / problems);
const projected = {
  wall: rows.reduce((s, row) => s + row.wall * scale(row), 0),
  cpu: rows.reduce((s, row) => s + row.cpu * scale(row), 0),
};
const result = {
  settings: {
    problems,
    passProblems,
    samples,
    parallel: values.parallel ?? 'default',
    threads: process.env.THINKWHEN_THREADS,
  },
  systems: rows.map((row) => ({ ...row, msPerToken: row.tokens ? (1000 * row.cpu) / row.tokens : null })),
  total,
  projected: { problems: projectProblems, passProblems: projectPass, ...projected, note: 'linear extrapolation' },
  accuracy: r.json.systems,
};
if (values.json) console.log(JSON.stringify(result, null, 2));
else {
  console.log(
    `demo: ${problems} problems, pass@k ${passProblems} × ${samples}, parallel ${values.parallel ?? 'default'}`,
  );
  console.log('system'.padEnd(24), 'generated', '  tokens', '  wall s', '   cpu s', ' cpu ms/token');
  for (const row of result.systems) {
    console.log(
      row.system.padEnd(24),
      String(row.generated).padStart(9),
      String(row.tokens).padStart(8),
      row.wall.toFixed(1).padStart(8),
      row.cpu.toFixed(1).padStart(8),
      (row.msPerToken ?? 0).toFixed(2).padStart(12),
    );
  }
  console.log(`total: ${total.wall.toFixed(0)} s wall, ${total.cpu.toFixed(0)} s cpu`);
  console.log(
    `projected (linear) for ${projectProblems} problems + pass@k on ${projectPass}: ${projected.wall.toFixed(0)} s wall, ${projected.cpu.toFixed(0)} s cpu`,
  );
}
