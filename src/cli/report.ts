import { buildReport, writeReport } from '../eval/report/index.ts';
import { renderMarkdown } from '../eval/report/markdown.ts';
import { defineCommand, int, ints, nums, text } from './options.ts';

export const command = defineCommand({
  name: 'report',
  summary: 'HTML/JSON/markdown report of run stores: accuracy, gap recovered, pass@k',
  usage: 'RUN... [options]',
  description: `Summarise one or more run stores (the SQLite files an evaluation writes) into
report.html (self-contained: inline CSS and SVG plots, opens offline),
report.json (every number, for scripts) and report.md (the tables).

What it computes, per run: accuracy (mean share of correct samples per problem,
= unbiased pass@1) with a Wilson 95% interval; unbiased pass@k curves when runs
have several samples per problem; tokens, fraction of tokens steered, truncation,
time and cost. Across runs: the paper's gap recovered for every run whose role is
'hybrid', given one 'base' and one 'thinking' run, and exact McNemar tests for
each pair of runs on the problems they share.`,
  options: {
    out: text({ arg: 'DIR', help: 'where to write report.html, report.json and report.md', default: 'report' }),
    title: text({ help: 'page title' }),
    roles: text({
      arg: 'LIST',
      help: "comma-separated roles, one per RUN in order, overriding each run's config.role: base, thinking, hybrid (or empty to keep)",
    }),
    grader: text({
      arg: 'NAME',
      help: "which grader's verdicts to use when a run holds several (it must be in every run)",
    }),
    k: ints({
      arg: 'LIST',
      help: 'pass@k values, e.g. 1,2,4,8, each at most the samples per problem of some run (default: powers of two up to n)',
      min: 1,
      max: 65536,
      example: '1,2,4',
    }),
    price: nums({
      arg: 'IN,OUT',
      help: 'cost per million prompt,generated tokens, e.g. 0.15,0.60',
      count: 2,
      example: '0.15,0.60',
      min: 0,
      max: 1e6,
    }),
    bootstrap: int({ help: 'bootstrap resamples for pass@k bands', min: 0, max: 100_000, default: 1000 }),
  },
  positionals: { min: 1, missing: 'no run stores given', fix: 'thinkwhen report RUN.sqlite... (see --help)' },
  examples: [
    "# the paper's comparison on GSM8K: base, thinking and hybrid runs",
    'thinkwhen report runs/base.sqlite runs/thinking.sqlite runs/hybrid.sqlite --out report/gsm8k',
    '# runs whose config has no role: give them in order',
    'thinkwhen report a.sqlite b.sqlite c.sqlite --roles base,thinking,hybrid',
    '# sampled runs (n = 16 per problem): pass@1..16 and their cost',
    'thinkwhen report runs/t06.sqlite --k 1,2,4,8,16 --price 0.15,0.60',
  ],
  async run({ values, positionals }) {
    const tty = process.stderr.isTTY;
    const { price } = values;
    const report = buildReport(positionals, {
      title: values.title,
      roles: values.roles?.split(',').map((r) => r.trim()),
      grader: values.grader,
      ks: values.k,
      price: price ? { inputPerMTok: price[0], outputPerMTok: price[1] } : undefined,
      bootstrap: values.bootstrap,
      onProgress: tty
        ? (done, total, path) =>
            process.stderr.write(`\r\x1b[Kreading runs ${done}/${total} ${path}${done === total ? '\n' : ''}`)
        : undefined,
    });
    const files = writeReport(report, values.out);
    process.stdout.write(renderMarkdown(report));
    process.stdout.write(`\nwrote ${files.html}\n      ${files.json}\n      ${files.markdown}\n`);
    return 0;
  },
});
