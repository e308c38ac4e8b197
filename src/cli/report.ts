import { parseArgs } from 'node:util';
import { ThinkwhenError } from '../errors.ts';
import { buildReport, writeReport } from '../eval/report/index.ts';
import { renderMarkdown } from '../eval/report/markdown.ts';
import type { Command } from './command.ts';

const help = `thinkwhen report RUN... [options]

Summarise one or more run stores (the SQLite files an evaluation writes) into
report.html (self-contained: inline CSS and SVG plots, opens offline),
report.json (every number, for scripts) and report.md (the tables).

What it computes, per run: accuracy (mean share of correct samples per problem,
= unbiased pass@1) with a Wilson 95% interval; unbiased pass@k curves when runs
have several samples per problem; tokens, fraction of tokens steered, truncation,
time and cost. Across runs: the paper's gap recovered for every run whose role is
'hybrid', given one 'base' and one 'thinking' run, and exact McNemar tests for
each pair of runs on the problems they share.

Options:
  --out DIR          where to write the three files (default: report/)
  --title TEXT       page title
  --roles LIST       comma-separated roles, one per RUN in order, overriding each
                     run's config.role: base, thinking, hybrid (or empty to keep)
  --grader NAME      which grader's verdicts to use when a run holds several
  --k LIST           pass@k values, e.g. 1,2,4,8 (default: powers of two up to n)
  --price IN,OUT     cost per million prompt,generated tokens, e.g. 0.15,0.60
  --bootstrap N      bootstrap resamples for pass@k bands (default 1000)

Examples:
  # the paper's comparison on GSM8K: base, thinking and hybrid runs
  thinkwhen report runs/base.sqlite runs/thinking.sqlite runs/hybrid.sqlite --out report/gsm8k

  # runs whose config has no role: give them in order
  thinkwhen report a.sqlite b.sqlite c.sqlite --roles base,thinking,hybrid

  # sampled runs (n = 16 per problem): pass@1..16 and their cost
  thinkwhen report runs/t06.sqlite --k 1,2,4,8,16 --price 0.15,0.60
`;

function list(s: string | undefined, what: string): number[] | undefined {
  if (s === undefined) return undefined;
  const xs = s.split(',').map((x) => Number(x.trim()));
  if (xs.some((x) => !Number.isFinite(x) || x < 0))
    throw new ThinkwhenError('BAD_ARGUMENT', `--${what} expects numbers separated by commas, got '${s}'`);
  return xs;
}

export const command: Command = {
  name: 'report',
  summary: 'HTML/JSON/markdown report of run stores: accuracy, gap recovered, pass@k',
  help,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: 'string', default: 'report' },
        title: { type: 'string' },
        roles: { type: 'string' },
        grader: { type: 'string' },
        k: { type: 'string' },
        price: { type: 'string' },
        bootstrap: { type: 'string' },
      },
    });
    if (positionals.length === 0) {
      throw new ThinkwhenError('REPORT_NO_RUNS', 'no run stores given', 'thinkwhen report RUN.sqlite... (see --help)');
    }
    const ks = list(values.k, 'k');
    if (ks?.some((k) => !Number.isInteger(k) || k < 1))
      throw new ThinkwhenError('BAD_ARGUMENT', '--k values must be integers ≥ 1');
    const price = list(values.price, 'price');
    if (price && price.length !== 2)
      throw new ThinkwhenError('BAD_ARGUMENT', '--price takes two numbers: IN,OUT per million tokens');
    const bootstrap = values.bootstrap === undefined ? undefined : Number(values.bootstrap);
    if (bootstrap !== undefined && !(Number.isInteger(bootstrap) && bootstrap >= 0)) {
      throw new ThinkwhenError('BAD_ARGUMENT', '--bootstrap must be an integer ≥ 0');
    }
    const tty = process.stderr.isTTY;
    const report = buildReport(positionals, {
      title: values.title,
      roles: values.roles?.split(',').map((r) => r.trim()),
      grader: values.grader,
      ks,
      price: price ? { inputPerMTok: price[0], outputPerMTok: price[1] } : undefined,
      bootstrap,
      onProgress: tty
        ? (done, total, path) =>
            process.stderr.write(`\r\x1b[Kreading runs ${done}/${total} ${path}${done === total ? '\n' : ''}`)
        : undefined,
    });
    const files = writeReport(report, values.out!);
    process.stdout.write(renderMarkdown(report));
    process.stdout.write(`\nwrote ${files.html}\n      ${files.json}\n      ${files.markdown}\n`);
    return 0;
  },
};
