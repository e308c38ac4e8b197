// Fuzzes the model loader with hostile GGUF files: well-formed files with hostile metadata and
// byte mutations of small valid models and of the tokenizer-only GGUFs. Each file is loaded
// (and, when it loads, tokenized, its chat template rendered and one decode run) in a worker
// child process that loads file after file; an abort or a hang ends only that worker.
//
//   nice -n 15 node --import tsx bench/fuzz-gguf.ts --json            # 2,000 files, seed 1
//   nice -n 15 node --import tsx bench/fuzz-gguf.ts --full --json     # 10,000 files
//   options: --files N, --seed S, --workers W, --timeout-ms T, --keep DIR (write aborting/hanging files there)
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { basePaths, type FuzzJob, planJob, variant } from './fuzz-variants.ts';
import type { Outcome } from './fuzz-worker.ts';

export interface FuzzOptions {
  files: number;
  seed: number;
  workers?: number;
  /** a file taking longer than this is a hang (the worker is killed) */
  timeoutMs?: number;
  /** folder to write the files that aborted or hung, for replay */
  keep?: string;
  /** jobs to run instead of the planned ones (e.g. the named cases) */
  jobs?: FuzzJob[];
  onProgress?: (done: number, total: number) => void;
}

export interface FileResult {
  job: FuzzJob;
  what: string;
  outcome: Outcome | { kind: 'abort'; signal: string; stderr: string } | { kind: 'hang' };
}

export interface FuzzSummary {
  files: number;
  aborts: number;
  hangs: number;
  typed_errors: number;
  untyped_errors: number;
  loaded: number;
  /** typed error codes and how often each occurred */
  codes: Record<string, number>;
  seed: number;
  seconds: number;
}

const workerPath = join(dirname(fileURLToPath(import.meta.url)), 'fuzz-worker.ts');

class Worker {
  private child!: ChildProcess;
  private stderr = '';
  private ready!: Promise<void>;
  constructor(private scratch: string) {
    this.start();
  }

  private start(): void {
    this.stderr = '';
    this.child = fork(workerPath, [this.scratch], {
      execArgv: ['--import', 'tsx'],
      // GGML_NO_BACKTRACE: on an abort ggml would otherwise attach gdb (when installed), which
      // can take longer than the hang timeout and make an abort look like a hang.
      env: { ...process.env, THINKWHEN_THREADS: '1', GGML_NO_BACKTRACE: '1' },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('message', () => resolve());
      this.child.once('exit', (code, signal) =>
        reject(new Error(`fuzz worker died at start (${signal ?? code}): ${this.stderr}`)),
      );
    });
    this.ready.catch(() => undefined); // reported by the run() that awaits it
  }

  async run(job: FuzzJob, timeoutMs: number): Promise<FileResult['outcome']> {
    await this.ready;
    const child = this.child;
    this.stderr = '';
    return new Promise((resolve) => {
      const done = (outcome: FileResult['outcome'], restart: boolean) => {
        clearTimeout(timer);
        child.removeAllListeners('message');
        child.removeAllListeners('exit');
        if (restart) this.start();
        resolve(outcome);
      };
      // Writing the file does not count: the timer runs from the worker's 'loading' message.
      let timer: NodeJS.Timeout | undefined;
      child.on('message', (m: { index: number; loading?: true; outcome?: Outcome }) => {
        if (m.index !== job.index) return;
        if (m.loading) {
          timer = setTimeout(() => {
            child.kill('SIGKILL');
            done({ kind: 'hang' }, true);
          }, timeoutMs);
        } else if (m.outcome) {
          done(m.outcome, false);
        }
      });
      child.on('exit', (code, signal) => {
        done({ kind: 'abort', signal: signal ?? `exit ${code}`, stderr: this.stderr.slice(-1000) }, true);
      });
      child.send(job);
    });
  }

  stop(): void {
    this.child.removeAllListeners('exit');
    this.child.kill('SIGKILL');
  }
}

/** Runs the fuzz jobs over `workers` children and counts the outcomes. */
export async function fuzzGguf(opts: FuzzOptions): Promise<{ summary: FuzzSummary; results: FileResult[] }> {
  const t0 = Date.now();
  const bases = basePaths();
  const jobs = opts.jobs ?? Array.from({ length: opts.files }, (_, i) => planJob(opts.seed, i, bases));
  const scratchDir = mkdtempSync(join(tmpdir(), 'thinkwhen-fuzz-'));
  const nWorkers = Math.max(1, Math.min(opts.workers ?? 1, jobs.length));
  const workers = Array.from({ length: nWorkers }, (_, w) => new Worker(join(scratchDir, `w${w}.gguf`)));
  const results: FileResult[] = new Array(jobs.length);
  let next = 0;
  let done = 0;
  try {
    await Promise.all(
      workers.map(async (w) => {
        while (next < jobs.length) {
          const at = next++;
          const job = jobs[at];
          const outcome = await w.run(job, opts.timeoutMs ?? 30_000);
          const result: FileResult = { job, what: '', outcome };
          if (outcome.kind === 'abort' || outcome.kind === 'hang') {
            const v = variant(job);
            result.what = v.what;
            if (opts.keep) {
              mkdirSync(opts.keep, { recursive: true });
              writeFileSync(join(opts.keep, `${outcome.kind}-${job.seed}-${job.index}-${job.base}.gguf`), v.bytes);
            }
          }
          results[at] = result;
          opts.onProgress?.(++done, jobs.length);
        }
      }),
    );
  } finally {
    for (const w of workers) w.stop();
    rmSync(scratchDir, { recursive: true, force: true });
  }
  const count = (k: string) => results.filter((r) => r.outcome.kind === k).length;
  const codes: Record<string, number> = {};
  for (const r of results)
    if (r.outcome.kind === 'typed_error') codes[r.outcome.code] = (codes[r.outcome.code] ?? 0) + 1;
  const summary: FuzzSummary = {
    files: jobs.length,
    aborts: count('abort'),
    hangs: count('hang'),
    typed_errors: count('typed_error'),
    untyped_errors: count('untyped_error'),
    loaded: count('loaded'),
    codes,
    seed: opts.seed,
    seconds: Math.round((Date.now() - t0) / 1000),
  };
  return { summary, results };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const files = Number(arg('--files') ?? (process.argv.includes('--full') ? 10_000 : 2_000));
  const seed = Number(arg('--seed') ?? 1);
  const workers = Number(arg('--workers') ?? 1);
  const timeoutMs = Number(arg('--timeout-ms') ?? 30_000);
  for (const [name, v] of Object.entries({ files, seed, workers, timeoutMs })) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`--${name}: an integer ≥ 0 was expected, got ${v}`);
  }
  const { summary, results } = await fuzzGguf({
    files,
    seed,
    workers,
    timeoutMs,
    keep: arg('--keep'),
    onProgress: (d, n) => {
      if (d % 50 === 0 || d === n) process.stderr.write(`\rfuzz-gguf: ${d}/${n} files`);
    },
  });
  process.stderr.write('\n');
  for (const r of results) {
    if (r.outcome.kind === 'abort' || r.outcome.kind === 'hang' || r.outcome.kind === 'untyped_error') {
      const detail =
        'signal' in r.outcome ? `${r.outcome.signal} ${r.outcome.stderr.trim().split('\n').slice(-3).join(' | ')}` : '';
      process.stderr.write(
        `${r.outcome.kind}: #${r.job.index} ${r.job.base} ${JSON.stringify(r.job.kind)} ${r.what} ${detail}\n`,
      );
      if (r.outcome.kind === 'untyped_error') process.stderr.write(`  ${r.outcome.message.split('\n')[0]}\n`);
    }
  }
  if (json) {
    const { files: n, aborts, hangs, typed_errors, untyped_errors, loaded, codes } = summary;
    console.log(
      JSON.stringify({
        files: n,
        aborts,
        hangs,
        typed_errors,
        loaded,
        untyped_errors,
        codes,
        seed,
        seconds: summary.seconds,
      }),
    );
  } else {
    console.log(summary);
  }
  process.exitCode = summary.aborts + summary.hangs + summary.untyped_errors === 0 ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
