// The run store: one SQLite file per evaluation run (config, dataset checksum, generations with
// tokens and per-token annotations, grades, timings). Every write is one transaction keyed by
// (problem_id, sample_index), so a run killed at any point resumes without loss or double counting.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { ThinkwhenError } from '../errors.ts';
import type { DatasetInfo, Problem } from './datasets.ts';

export const STORE_SCHEMA_VERSION = 1;

/** What makes two runs comparable. Stores with different configs are never merged. */
export interface RunConfig {
  /** Label shown in reports. */
  name: string;
  /** `base`, `thinking` or `hybrid` (gap recovered needs one of each); free text otherwise. */
  role?: string;
  samplesPerProblem: number;
  [key: string]: unknown;
}

/** One shard of a run, 1-based: `{index: 2, count: 4}` is `--shard 2/4`. */
export interface Shard {
  index: number;
  count: number;
}

export interface GradeInput {
  /** Name of the grading rule, e.g. `math-verify` or `gsm8k-flexible`; one sample may carry several. */
  grader: string;
  correct: boolean;
  extracted?: string | null;
  detail?: unknown;
}

export interface GenerationInput {
  problemId: string;
  sampleIndex: number;
  text: string;
  promptTokens?: number;
  completionTokens?: number;
  /** Generated token ids, stored as little-endian int32. */
  tokens?: ArrayLike<number>;
  /** Per-token annotations (category, steered flag, candidate grid…), stored as JSON. */
  annotations?: unknown;
  /** Tokens where the hybrid steered the base model. */
  steeredTokens?: number;
  finishReason?: string;
  /** Epoch milliseconds. */
  startedAt?: number;
  finishedAt?: number;
  grades?: GradeInput[];
}

export interface GenerationRow {
  problemId: string;
  sampleIndex: number;
  text: string;
  promptTokens: number | null;
  completionTokens: number | null;
  tokens: Int32Array | null;
  annotations: unknown;
  steeredTokens: number | null;
  finishReason: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  durationMs: number | null;
}

export interface GradeRow extends GradeInput {
  problemId: string;
  sampleIndex: number;
}

export interface PendingItem {
  problem: Problem;
  sampleIndex: number;
}

export interface OpenOptions {
  config: RunConfig;
  dataset?: DatasetInfo;
  shard?: Shard | null;
  /**
   * Every write reaches the .sqlite file itself (a WAL checkpoint) within this many ms (default 5000),
   * so a killed run's .sqlite copied without its -wal misses only the last seconds. 0: at every write.
   */
  checkpointEveryMs?: number;
}

/** Opens `file` as SQLite, refusing a folder or a file SQLite cannot read, with a message that says so. */
function openDatabase(file: string, path: string, readonly: boolean): Database.Database {
  if (existsSync(file) && !statSync(file).isFile()) {
    throw new ThinkwhenError(
      'NOT_A_RUN_STORE',
      `${path} is a folder, not a run store`,
      'give the path of a .sqlite file',
    );
  }
  try {
    const db = new Database(file, readonly ? { readonly: true, fileMustExist: true } : {});
    db.pragma('busy_timeout = 10000');
    return db;
  } catch (err) {
    throw new ThinkwhenError('NOT_A_RUN_STORE', `${path} cannot be opened as a run store (${(err as Error).message})`);
  }
}

/** True when the database has no tables at all (a new or empty file). */
function isEmptyDatabase(db: Database.Database): boolean {
  return (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n === 0;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS problems (
  id TEXT PRIMARY KEY, idx INTEGER, question TEXT NOT NULL, answer TEXT NOT NULL, solution TEXT, meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS generations (
  problem_id TEXT NOT NULL, sample_index INTEGER NOT NULL, text TEXT NOT NULL,
  prompt_tokens INTEGER, completion_tokens INTEGER, tokens BLOB, annotations TEXT, steered_tokens INTEGER,
  finish_reason TEXT, started_at INTEGER, finished_at INTEGER, duration_ms REAL, session_id INTEGER,
  PRIMARY KEY (problem_id, sample_index)
);
CREATE TABLE IF NOT EXISTS grades (
  problem_id TEXT NOT NULL, sample_index INTEGER NOT NULL, grader TEXT NOT NULL, correct INTEGER NOT NULL,
  extracted TEXT, detail TEXT, graded_at INTEGER NOT NULL,
  PRIMARY KEY (problem_id, sample_index, grader)
);
CREATE TABLE IF NOT EXISTS sessions (
  id INTEGER PRIMARY KEY AUTOINCREMENT, pid INTEGER, host TEXT, started_at INTEGER NOT NULL, closed_at INTEGER
);
`;

/** JSON with object keys sorted, so equal configs serialise identically. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(
          Object.keys(x as object)
            .sort()
            .map((k) => [k, (x as Record<string, unknown>)[k]]),
        )
      : x,
  );
}

/** The parts of a dataset that must match between resumed or merged runs (not the machine-specific file path). */
export function datasetIdentity(d: DatasetInfo): Record<string, unknown> {
  return {
    name: d.name,
    split: d.split,
    sha256: d.sha256,
    start: d.start,
    limit: d.limit,
    fields: d.fields,
    answerFormat: d.answerFormat,
  };
}

/** Parses `--shard i/n` (1-based, like Playwright's `--shard`). */
export function parseShard(s: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new ThinkwhenError(
      'BAD_SHARD',
      `bad shard '${s}'`,
      'write i/n with 1 ≤ i ≤ n, e.g. --shard 1/4 … --shard 4/4',
    );
  }
  return { index, count };
}

/** Shard (1-based) a problem id belongs to: from its hash, so it depends on neither order nor machine. */
export function shardOf(id: string, count: number): number {
  const h = createHash('sha256').update(id).digest();
  return (h.readUInt32BE(0) % count) + 1;
}

export function selectShard<T extends { id: string }>(problems: T[], shard: Shard | null | undefined): T[] {
  if (!shard || shard.count === 1) return problems;
  return problems.filter((p) => shardOf(p.id, shard.count) === shard.index);
}

function diffKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys
    .filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k]))
    .map((k) => `${k} (${canonicalJson(a[k]) ?? 'absent'} vs ${canonicalJson(b[k]) ?? 'absent'})`);
}

function int32Blob(tokens: ArrayLike<number>): Buffer {
  const b = Buffer.alloc(tokens.length * 4);
  for (let i = 0; i < tokens.length; i++) b.writeInt32LE(tokens[i], i * 4);
  return b;
}

export class RunStore {
  readonly db: Database.Database;
  readonly path: string;
  readonly config: RunConfig;
  readonly dataset: DatasetInfo | null;
  readonly shard: Shard | null;
  private sessionId: number | null = null;
  private readonly readonly: boolean;
  private checkpointEveryMs = Number.POSITIVE_INFINITY;
  private lastCheckpoint = Date.now();
  private checkpointTimer: NodeJS.Timeout | null = null;

  private constructor(db: Database.Database, path: string, readonly: boolean) {
    this.db = db;
    this.path = path;
    this.readonly = readonly;
    const meta = Object.fromEntries(
      (db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((r) => [
        r.key,
        r.value,
      ]),
    );
    if (!meta.config)
      throw new ThinkwhenError('NOT_A_RUN_STORE', `${path} has no run config: is it a thinkwhen run store?`);
    this.config = JSON.parse(meta.config);
    this.dataset = meta.dataset ? JSON.parse(meta.dataset) : null;
    this.shard = meta.shard ? JSON.parse(meta.shard) : null;
  }

  /**
   * Opens (or creates) a run store for writing. Reopening with a different config, dataset or shard
   * is refused: resuming must not mix two runs.
   */
  static open(path: string, opts: OpenOptions): RunStore {
    const file = resolve(path);
    mkdirSync(dirname(file), { recursive: true });
    const db = openDatabase(file, path, false);
    try {
      // An existing database that is not a run store is someone else's: never add our tables to it.
      const foreign = !isEmptyDatabase(db) && !db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'meta'").get();
      if (foreign) {
        throw new ThinkwhenError(
          'NOT_A_RUN_STORE',
          `${path} is a SQLite database but not a thinkwhen run store; it was left untouched`,
          'write to a new .sqlite file',
        );
      }
    } catch (err) {
      db.close();
      if (err instanceof ThinkwhenError) throw err;
      throw new ThinkwhenError(
        'NOT_A_RUN_STORE',
        `${path} is not a SQLite database (${(err as Error).message})`,
        'write to a new .sqlite file',
      );
    }
    db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives any process crash (kill -9); only an OS crash may drop the last commits.
    db.pragma('synchronous = NORMAL');
    db.transaction(() => {
      db.exec(SCHEMA);
      const get = (k: string) =>
        (db.prepare('SELECT value FROM meta WHERE key = ?').get(k) as { value: string } | undefined)?.value;
      const put = (k: string, v: string) =>
        db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(k, v);
      const cfg = canonicalJson(opts.config);
      const stored = get('config');
      if (stored === undefined) {
        put('schema_version', String(STORE_SCHEMA_VERSION));
        put('config', cfg);
        put('created_at', String(Date.now()));
        put('shard', JSON.stringify(opts.shard ?? null));
        if (opts.dataset) put('dataset', JSON.stringify(opts.dataset));
        return;
      }
      if (stored !== cfg) {
        throw new ThinkwhenError(
          'RUN_CONFIG_MISMATCH',
          `${file} was started with a different config: ${diffKeys(JSON.parse(stored), JSON.parse(cfg)).join(', ')}`,
          'resume with the same settings, or write to a new run file',
        );
      }
      const ds = get('dataset');
      if (opts.dataset) {
        if (!ds) put('dataset', JSON.stringify(opts.dataset));
        else {
          const d = diffKeys(datasetIdentity(JSON.parse(ds)), datasetIdentity(opts.dataset));
          if (d.length) {
            throw new ThinkwhenError(
              'RUN_DATASET_MISMATCH',
              `${file} was started on different data: ${d.join(', ')}`,
              'write to a new run file',
            );
          }
        }
      }
      if (opts.shard !== undefined && get('shard') !== JSON.stringify(opts.shard)) {
        throw new ThinkwhenError(
          'RUN_SHARD_MISMATCH',
          `${file} belongs to shard ${get('shard')}, not ${JSON.stringify(opts.shard)}`,
          'give each shard its own run file',
        );
      }
    })();
    const store = new RunStore(db, file, false);
    store.checkpointEveryMs = opts.checkpointEveryMs ?? 5000;
    store.sessionId = Number(
      db
        .prepare('INSERT INTO sessions (pid, host, started_at) VALUES (?, ?, ?)')
        .run(process.pid, hostname(), Date.now()).lastInsertRowid,
    );
    return store;
  }

  /** Opens an existing store for reading only (reports, merge inputs). */
  static openReadonly(path: string): RunStore {
    const file = resolve(path);
    if (!existsSync(file))
      throw new ThinkwhenError(
        'RUN_NOT_FOUND',
        `no run store at ${path}`,
        'give the .sqlite file a `thinkwhen run --out FILE` wrote (or `thinkwhen demo` under runs/demo/PAIR/runs/)',
      );
    const db = openDatabase(file, path, true);
    try {
      db.prepare('SELECT 1 FROM meta LIMIT 1').get();
    } catch (err) {
      db.close();
      throw new ThinkwhenError(
        'NOT_A_RUN_STORE',
        `${path} is not a thinkwhen run store (${(err as Error).message})`,
        'give the .sqlite file a `thinkwhen run --out FILE` wrote',
      );
    }
    return new RunStore(db, file, true);
  }

  /** Registers problems (idempotent), so a report knows the run's whole problem set. */
  addProblems(problems: Problem[]): void {
    const ins = this.db.prepare(
      'INSERT OR IGNORE INTO problems (id, idx, question, answer, solution, meta) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.db.transaction(() => {
      problems.forEach((p, i) => {
        const idx = typeof p.meta.index === 'number' ? p.meta.index : i;
        ins.run(p.id, idx, p.question, p.answer, p.solution ?? null, JSON.stringify(p.meta));
      });
    })();
  }

  /** The (problem, sample) pairs not yet stored, in problem order. Registers the problems. */
  pending(problems: Problem[], samplesPerProblem = this.config.samplesPerProblem): PendingItem[] {
    this.addProblems(problems);
    const have = new Set(
      (
        this.db.prepare('SELECT problem_id, sample_index FROM generations').all() as {
          problem_id: string;
          sample_index: number;
        }[]
      ).map((r) => `${r.sample_index}\u0000${r.problem_id}`),
    );
    const out: PendingItem[] = [];
    for (const problem of problems) {
      for (let s = 0; s < samplesPerProblem; s++)
        if (!have.has(`${s}\u0000${problem.id}`)) out.push({ problem, sampleIndex: s });
    }
    return out;
  }

  /**
   * Stores one generation and its grades in one transaction. Returns false, changing nothing,
   * when that (problem, sample) is already stored: a resumed run may redo work but never counts it twice.
   */
  recordGeneration(g: GenerationInput): boolean {
    if (!Number.isInteger(g.sampleIndex) || g.sampleIndex < 0)
      throw new RangeError(`sampleIndex must be an integer ≥ 0`);
    const added = this.db.transaction(() => {
      const r = this.db
        .prepare(
          `INSERT OR IGNORE INTO generations (problem_id, sample_index, text, prompt_tokens, completion_tokens, tokens,
             annotations, steered_tokens, finish_reason, started_at, finished_at, duration_ms, session_id)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          g.problemId,
          g.sampleIndex,
          g.text,
          g.promptTokens ?? null,
          g.completionTokens ?? (g.tokens ? g.tokens.length : null),
          g.tokens ? int32Blob(g.tokens) : null,
          g.annotations === undefined ? null : JSON.stringify(g.annotations),
          g.steeredTokens ?? null,
          g.finishReason ?? null,
          g.startedAt ?? null,
          g.finishedAt ?? null,
          g.startedAt !== undefined && g.finishedAt !== undefined ? g.finishedAt - g.startedAt : null,
          this.sessionId,
        );
      if (r.changes === 0) return false;
      for (const grade of g.grades ?? [])
        this.writeGrade({ ...grade, problemId: g.problemId, sampleIndex: g.sampleIndex });
      return true;
    })();
    this.checkpointIfDue();
    return added;
  }

  /** Adds or replaces one grade (regrading with a new rule version is allowed). */
  recordGrade(g: GradeRow): void {
    this.db.transaction(() => this.writeGrade(g))();
    this.checkpointIfDue();
  }

  /**
   * Copies the write-ahead log into the .sqlite file. A killed run leaves its last commits in the
   * -wal file only; a copy of the .sqlite alone would silently miss them. PASSIVE: never waits for
   * readers, so a report reading the run meanwhile delays nothing.
   */
  checkpoint(): void {
    this.db.pragma('wal_checkpoint(PASSIVE)');
    this.lastCheckpoint = Date.now();
  }

  /** After a write: checkpoint now if the last one is old enough, else soon (a write never waits long). */
  private checkpointIfDue(): void {
    const wait = this.lastCheckpoint + this.checkpointEveryMs - Date.now();
    if (wait <= 0) this.checkpoint();
    else if (!this.checkpointTimer && Number.isFinite(wait)) {
      this.checkpointTimer = setTimeout(() => {
        this.checkpointTimer = null;
        if (this.db.open) this.checkpoint();
      }, wait);
      this.checkpointTimer.unref(); // never keeps the process alive
    }
  }

  private writeGrade(g: GradeRow): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO grades (problem_id, sample_index, grader, correct, extracted, detail, graded_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        g.problemId,
        g.sampleIndex,
        g.grader,
        g.correct ? 1 : 0,
        g.extracted ?? null,
        g.detail === undefined ? null : JSON.stringify(g.detail),
        Date.now(),
      );
  }

  counts(): { problems: number; generations: number; grades: number; sessions: number } {
    const n = (sql: string) => (this.db.prepare(sql).get() as { n: number }).n;
    return {
      problems: n('SELECT count(*) AS n FROM problems'),
      generations: n('SELECT count(*) AS n FROM generations'),
      grades: n('SELECT count(*) AS n FROM grades'),
      sessions: n('SELECT count(*) AS n FROM sessions'),
    };
  }

  /** True when every registered problem has all its samples. */
  done(): boolean {
    const rows = this.db
      .prepare(
        `SELECT count(g.sample_index) AS n FROM problems p
         LEFT JOIN generations g ON g.problem_id = p.id AND g.sample_index < ? GROUP BY p.id`,
      )
      .all(this.config.samplesPerProblem) as { n: number }[];
    return rows.length > 0 && rows.every((r) => r.n === this.config.samplesPerProblem);
  }

  problems(): Problem[] {
    return (this.db.prepare('SELECT * FROM problems ORDER BY idx, id').all() as Record<string, unknown>[]).map((r) => {
      const p: Problem = {
        id: r.id as string,
        question: r.question as string,
        answer: r.answer as string,
        meta: JSON.parse(r.meta as string),
      };
      if (r.solution !== null) p.solution = r.solution as string;
      return p;
    });
  }

  *generations(): Generator<GenerationRow> {
    for (const r of this.db
      .prepare('SELECT * FROM generations ORDER BY problem_id, sample_index')
      .iterate() as Iterable<Record<string, unknown>>) {
      const blob = r.tokens as Buffer | null;
      yield {
        problemId: r.problem_id as string,
        sampleIndex: r.sample_index as number,
        text: r.text as string,
        promptTokens: r.prompt_tokens as number | null,
        completionTokens: r.completion_tokens as number | null,
        tokens: blob ? new Int32Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength)) : null,
        annotations: r.annotations === null ? null : JSON.parse(r.annotations as string),
        steeredTokens: r.steered_tokens as number | null,
        finishReason: r.finish_reason as string | null,
        startedAt: r.started_at as number | null,
        finishedAt: r.finished_at as number | null,
        durationMs: r.duration_ms as number | null,
      };
    }
  }

  graders(): string[] {
    return (this.db.prepare('SELECT DISTINCT grader FROM grades ORDER BY grader').all() as { grader: string }[]).map(
      (r) => r.grader,
    );
  }

  grades(grader?: string): GradeRow[] {
    const rows = (
      grader
        ? this.db.prepare('SELECT * FROM grades WHERE grader = ? ORDER BY problem_id, sample_index').all(grader)
        : this.db.prepare('SELECT * FROM grades ORDER BY problem_id, sample_index, grader').all()
    ) as Record<string, unknown>[];
    return rows.map((r) => ({
      problemId: r.problem_id as string,
      sampleIndex: r.sample_index as number,
      grader: r.grader as string,
      correct: r.correct === 1,
      extracted: r.extracted as string | null,
      detail: r.detail === null ? undefined : JSON.parse(r.detail as string),
    }));
  }

  meta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, value);
  }

  /** Ends the session: everything is in the .sqlite file afterwards (the -wal is emptied). */
  close(): void {
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    this.checkpointTimer = null;
    if (!this.db.open) return;
    if (!this.readonly && this.sessionId !== null) {
      this.db.prepare('UPDATE sessions SET closed_at = ? WHERE id = ?').run(Date.now(), this.sessionId);
      // SQLite checkpoints when its last connection closes, but not while a reader holds the file.
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    }
    this.db.close();
  }
}
