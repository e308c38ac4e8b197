// Where the time of `thinkwhen demo` goes: runs the demo into a fresh workspace and prints, per system
// (every greedy run and every pass@k run), wall seconds, CPU seconds of this process, generated
// tokens, and the demo's projected time at other sizes (linear in problems: an extrapolation).
//
//   THINKWHEN_THREADS=1 node --import tsx bench/demo.ts [--problems 100] [--pass-problems 30] [--samples 8]
//        [--parallel 8] [--lanes N] [--project 300,100] [--json] [--out DIR]
//
// --project P,Q: the projected seconds of a demo with P greedy problems and Q pass@k problems (same
// samples), from this run's per-problem cost. CPU seconds are the honest number on a shared machine;
// wall seconds include waiting for the cores. docs/demo.md ("Cost") has the measured table.
// --lanes N (default: the demo's, one per core): runs at once, THINKWHEN_THREADS (default 1) threads
// each. With more than one lane the runs overlap, so a system's CPU seconds cannot be told apart:
// they are measured per system with --lanes 1 only; the total and the projected wall time are
// measured with any.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { demoLanes, runDemo } from '../src/experiments/demo.ts';

const { values } = parseArgs({
  options: {
    problems: { type: 'string', default: '100' },
    'pass-problems': { type: 'string', default: '30' },
    samples: { type: 'string', default: '8' },
    temperature: { type: 'string', default: '0.8' },
    parallel: { type: 'string' },
    lanes: { type: 'string' },
    project: { type: 'string', default: '300,100' },
    out: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const problems = Number(values.problems);
const passProblems = Number(values['pass-problems']);
const samples = Number(values.samples);
const [projectProblems, projectPass] = values.project!.split(',').map(Number);
const lanes = values.lanes ? Number(values.lanes) : demoLanes();
const out = values.out ?? mkdtempSync(join(tmpdir(), 'thinkwhen-bench-demo-'));

interface Row {
  system: string;
  /** problems (greedy) or problems × samples (pass@k) generated now */
  generated: number;
  tokens: number;
  wall: number;
  /** null with several lanes: the runs overlap */
  cpu: number | null;
  sampled: boolean;
}
const rows: Row[] = [];
const started = new Map<string, { wall: number; cpu: number }>();
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
  lanes,
  threads: Number(process.env.THINKWHEN_THREADS ?? 1),
  onRunStart: (name) => {
    started.set(name, { wall: performance.now(), cpu: cpuSeconds() });
  },
  onRunEnd: (run) => {
    const start = started.get(run.name) ?? { wall: t0, cpu: 0 };
    rows.push({
      system: run.name,
      generated: run.generated,
      tokens: run.tokens,
      wall: (performance.now() - start.wall) / 1000,
      cpu: lanes === 1 ? cpuSeconds() - start.cpu : null,
      sampled: /-n\d+-t/.test(run.name),
    });
  },
});
const total = { wall: (performance.now() - t0) / 1000, cpu: cpuSeconds() };
if (!values.out) rmSync(out, { recursive: true, force: true });

// projection: each row scales with its own problem count. One lane: the sum of the scaled rows.
// Several: the whole run's wall and CPU times the scaled rows' share of the work (their wall
// seconds stand in for it), assuming the lanes stay as busy at the larger size.
const scale = (row: Row) => (row.sampled ? projectPass / passProblems : projectProblems / problems);
const sum = (f: (row: Row) => number) => rows.reduce((s, row) => s + f(row), 0);
const growth = sum((row) => row.wall * scale(row)) / sum((row) => row.wall);
const projected =
  lanes === 1
    ? { wall: sum((row) => row.wall * scale(row)), cpu: sum((row) => (row.cpu ?? 0) * scale(row)) }
    : { wall: total.wall * growth, cpu: total.cpu * growth };
const result = {
  settings: {
    problems,
    passProblems,
    samples,
    parallel: values.parallel ?? 'default',
    lanes,
    threads: process.env.THINKWHEN_THREADS,
  },
  systems: rows.map((row) => ({
    ...row,
    msPerToken: row.tokens && row.cpu !== null ? (1000 * row.cpu) / row.tokens : null,
  })),
  total,
  projected: { problems: projectProblems, passProblems: projectPass, ...projected, note: 'linear extrapolation' },
  accuracy: r.json.systems,
};
if (values.json) console.log(JSON.stringify(result, null, 2));
else {
  console.log(
    `demo: ${problems} problems, pass@k ${passProblems} × ${samples}, parallel ${values.parallel ?? 'default'}, ${lanes} lane(s)`,
  );
  console.log('system'.padEnd(24), 'generated', '  tokens', '  wall s', '   cpu s', ' cpu ms/token');
  for (const row of result.systems) {
    console.log(
      row.system.padEnd(24),
      String(row.generated).padStart(9),
      String(row.tokens).padStart(8),
      row.wall.toFixed(1).padStart(8),
      (row.cpu === null ? '-' : row.cpu.toFixed(1)).padStart(8),
      (row.msPerToken === null ? '-' : row.msPerToken.toFixed(2)).padStart(12),
    );
  }
  console.log(`total: ${total.wall.toFixed(0)} s wall, ${total.cpu.toFixed(0)} s cpu`);
  console.log(
    `projected (linear) for ${projectProblems} problems + pass@k on ${projectPass}: ${projected.wall.toFixed(0)} s wall, ${projected.cpu.toFixed(0)} s cpu`,
  );
}
