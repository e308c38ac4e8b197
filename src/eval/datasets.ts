// Evaluation datasets: GSM8K, MATH500, MATH and any JSONL/parquet file with a field mapping,
// loaded from a local path or from the hub layout (download.ts), sliced, with stable ids and a checksum.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { ThinkwhenError } from '../errors.ts';
import { type DownloadOptions, downloadHubFile, type HubFile } from './download.ts';

export interface Problem {
  /** Stable across runs and slices: the dataset's own id field, else `<name>/<split>/<row index>`. */
  id: string;
  question: string;
  /** Gold final answer as a string (GSM8K: the text after `####`; MATH: the last `\boxed{}`). */
  answer: string;
  /** Worked solution, when the dataset has one. */
  solution?: string;
  /** Remaining fields of the row (subject, level, …), plus `index`, the row's position in the file. */
  meta: Record<string, unknown>;
}

/** How the gold answer is obtained from the answer field. */
export type AnswerFormat = 'raw' | 'gsm8k' | 'boxed';

export interface FieldMap {
  question: string;
  /** Field holding the gold; for `boxed` it may be the solution field. */
  answer: string;
  id?: string;
  solution?: string;
}

export interface DatasetInfo {
  name: string;
  split: string;
  /** Local path or URL the bytes came from. */
  source: string;
  /** The file actually read (for downloads: the cached copy). */
  file: string;
  format: 'jsonl' | 'parquet';
  /** SHA-256 of the file's bytes: two runs with equal checksums saw the same data. */
  sha256: string;
  /** Rows in the whole file, before slicing. */
  rows: number;
  start: number;
  limit: number | null;
  /** Problems after slicing. */
  count: number;
  fields: FieldMap;
  answerFormat: AnswerFormat;
}

export interface LoadedDataset {
  info: DatasetInfo;
  problems: Problem[];
}

interface Builtin {
  fields: FieldMap;
  answerFormat: AnswerFormat;
  /** Path under the local data folder, and the public hub copy. */
  splits: Record<string, { local: string; hub?: HubFile }>;
}

// The public copies the paper used (docs/method.md §2.8). On the hub GSM8K exists only as parquet.
export const BUILTIN_DATASETS: Record<string, Builtin> = {
  gsm8k: {
    fields: { question: 'question', answer: 'answer', solution: 'answer' },
    answerFormat: 'gsm8k',
    splits: {
      test: { local: 'gsm8k/test.jsonl', hub: { repo: 'openai/gsm8k', file: 'main/test-00000-of-00001.parquet' } },
      train: { local: 'gsm8k/train.jsonl', hub: { repo: 'openai/gsm8k', file: 'main/train-00000-of-00001.parquet' } },
    },
  },
  math500: {
    fields: { question: 'problem', answer: 'answer', solution: 'solution', id: 'unique_id' },
    answerFormat: 'raw',
    splits: { test: { local: 'math500/test.jsonl', hub: { repo: 'HuggingFaceH4/MATH-500', file: 'test.jsonl' } } },
  },
  // The full MATH test split has no canonical single-file hub copy; it loads from a local file only.
  math: {
    fields: { question: 'problem', answer: 'solution', solution: 'solution', id: 'unique_id' },
    answerFormat: 'boxed',
    splits: { test: { local: 'math/test.jsonl' } },
  },
};

/** The paper's slices (docs/method.md §2.8): the first 500 GSM8K test problems; all of MATH500. */
export const PAPER_SLICES = {
  gsm8k: { dataset: 'gsm8k', split: 'test', start: 0, limit: 500 },
  math500: { dataset: 'math500', split: 'test', start: 0, limit: 500 },
} as const;

export interface LoadOptions extends DownloadOptions {
  /** A built-in name (`gsm8k`, `math500`, `math`); omit when `path` names a custom file. */
  dataset?: string;
  split?: string;
  /** A local JSONL or parquet file; overrides the built-in location. */
  path?: string;
  /** Folder holding local copies in the built-in layout (`gsm8k/test.jsonl`, …); default `$THINKWHEN_DATA_DIR`. */
  dataDir?: string;
  /** Field mapping for custom files (defaults: question, answer, id when present). */
  fields?: Partial<FieldMap>;
  answerFormat?: AnswerFormat;
  /** Label for a custom file (default: its base name). */
  name?: string;
  start?: number;
  limit?: number;
}

/** Content of the last `\boxed{…}` (or `\fbox{…}`) with balanced braces; `\boxed 5` up to `$` or end. */
export function lastBoxed(text: string): string | null {
  const at = Math.max(text.lastIndexOf('\\boxed'), text.lastIndexOf('\\fbox'));
  if (at < 0) return null;
  let i = at + (text.startsWith('\\boxed', at) ? 6 : 5);
  while (text[i] === ' ') i++;
  if (text[i] !== '{') {
    const rest = text.slice(i);
    const end = rest.indexOf('$');
    const v = (end < 0 ? rest : rest.slice(0, end)).trim();
    return v || null;
  }
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    if (text[j] === '{') depth++;
    else if (text[j] === '}') {
      depth--;
      if (depth === 0) return text.slice(i + 1, j);
    }
  }
  return null;
}

/** GSM8K gold: the text after the last `####`. */
export function gsm8kGold(answer: string): string | null {
  const at = answer.lastIndexOf('####');
  if (at < 0) return null;
  const v = answer.slice(at + 4).trim();
  return v || null;
}

interface Row {
  value: Record<string, unknown>;
  /** 1-based line in a JSONL file; row number in a parquet file. */
  line: number;
}

/** Parses JSONL; a malformed line is reported with its line number. Blank lines are skipped. */
export function parseJsonl(text: string, source: string): Row[] {
  const rows: Row[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new ThinkwhenError(
        'DATASET_MALFORMED',
        `${source}:${i + 1}: not valid JSON (${(err as Error).message})`,
        'fix or remove that line; each line must be one JSON object',
      );
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ThinkwhenError('DATASET_MALFORMED', `${source}:${i + 1}: expected a JSON object, got ${typeof value}`);
    }
    rows.push({ value: value as Record<string, unknown>, line: i + 1 });
  }
  return rows;
}

async function parseParquet(bytes: Buffer, source: string): Promise<Row[]> {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let objects: Record<string, unknown>[];
  try {
    objects = (await parquetReadObjects({ file })) as Record<string, unknown>[];
  } catch (err) {
    throw new ThinkwhenError('DATASET_MALFORMED', `${source}: not a readable parquet file (${(err as Error).message})`);
  }
  // int64 columns arrive as bigint, which JSON cannot hold.
  return objects.map((o, i) => ({
    value: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])),
    line: i + 1,
  }));
}

function toProblem(
  row: Row,
  index: number,
  fields: FieldMap,
  format: AnswerFormat,
  idPrefix: string,
  source: string,
): Problem {
  const where = `${source}:${row.line}`;
  const get = (f: string, required: boolean): string | undefined => {
    const v = row.value[f];
    if (v === undefined || v === null) {
      if (required) {
        throw new ThinkwhenError(
          'DATASET_MALFORMED',
          `${where}: missing field '${f}'`,
          'map the fields with --question-field/--answer-field',
        );
      }
      return undefined;
    }
    return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  };
  const question = get(fields.question, true)!;
  const rawAnswer = get(fields.answer, true)!;
  const gold = format === 'gsm8k' ? gsm8kGold(rawAnswer) : format === 'boxed' ? lastBoxed(rawAnswer) : rawAnswer;
  if (gold === null) {
    throw new ThinkwhenError(
      'DATASET_MALFORMED',
      `${where}: no gold answer in '${fields.answer}' (${format === 'gsm8k' ? 'no "####"' : 'no \\boxed{}'})`,
    );
  }
  const used = new Set([fields.question, fields.answer, fields.id, fields.solution]);
  const meta: Record<string, unknown> = { index };
  for (const [k, v] of Object.entries(row.value)) if (!used.has(k)) meta[k] = v;
  const id = fields.id ? get(fields.id, true)! : `${idPrefix}/${index}`;
  const solution = fields.solution ? get(fields.solution, false) : undefined;
  return solution === undefined ? { id, question, answer: gold, meta } : { id, question, answer: gold, solution, meta };
}

interface Resolved {
  file: string;
  source: string;
}

async function resolveFile(opts: LoadOptions, builtin: Builtin | undefined, split: string): Promise<Resolved> {
  if (opts.path) {
    const file = resolve(opts.path);
    if (!existsSync(file)) throw new ThinkwhenError('DATASET_NOT_FOUND', `no such file: ${opts.path}`);
    return { file, source: file };
  }
  if (!builtin) throw new ThinkwhenError('DATASET_UNKNOWN', 'no dataset named and no file given');
  const s = builtin.splits[split];
  if (!s) {
    throw new ThinkwhenError(
      'DATASET_UNKNOWN',
      `dataset '${opts.dataset}' has no split '${split}'`,
      `use one of: ${Object.keys(builtin.splits).join(', ')}`,
    );
  }
  const dataDir = opts.dataDir ?? process.env.THINKWHEN_DATA_DIR;
  if (dataDir && existsSync(join(dataDir, s.local))) {
    const file = resolve(dataDir, s.local);
    return { file, source: file };
  }
  if (!s.hub) {
    throw new ThinkwhenError(
      'DATASET_NOT_FOUND',
      `'${opts.dataset}' ${split} is not downloadable and no local copy was found${dataDir ? ` under ${dataDir}` : ''}`,
      `pass --data-dir with a folder holding ${s.local}, or --path FILE`,
    );
  }
  const d = await downloadHubFile(s.hub, opts);
  return { file: d.path, source: d.url };
}

/** Loads, validates and slices a dataset. Ids and the checksum do not depend on the slice. */
export async function loadDataset(opts: LoadOptions): Promise<LoadedDataset> {
  const builtin = opts.dataset ? BUILTIN_DATASETS[opts.dataset] : undefined;
  if (opts.dataset && !builtin && !opts.path) {
    throw new ThinkwhenError(
      'DATASET_UNKNOWN',
      `unknown dataset '${opts.dataset}'`,
      `use one of ${Object.keys(BUILTIN_DATASETS).join(', ')}, or a file path with a field mapping`,
    );
  }
  const split = opts.split ?? 'test';
  const name = opts.name ?? opts.dataset ?? basename(opts.path ?? 'dataset', extname(opts.path ?? ''));
  const fields: FieldMap = {
    question: 'question',
    answer: 'answer',
    ...(builtin?.fields ?? {}),
    ...Object.fromEntries(Object.entries(opts.fields ?? {}).filter(([, v]) => v !== undefined)),
  };
  const answerFormat = opts.answerFormat ?? builtin?.answerFormat ?? 'raw';
  const { file, source } = await resolveFile(opts, builtin, split);
  const bytes = readFileSync(file);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const format = file.endsWith('.parquet') ? 'parquet' : 'jsonl';
  const rows = format === 'parquet' ? await parseParquet(bytes, source) : parseJsonl(bytes.toString('utf8'), source);

  // Custom files get an id field automatically when they have one.
  if (!builtin && !opts.fields?.id && rows.length > 0 && 'id' in rows[0].value) fields.id = 'id';
  const idPrefix = builtin ? `${name}/${split}` : name;
  const all = rows.map((r, i) => toProblem(r, i, fields, answerFormat, idPrefix, source));
  const seen = new Map<string, number>();
  all.forEach((p, i) => {
    const prev = seen.get(p.id);
    if (prev !== undefined) {
      throw new ThinkwhenError(
        'DATASET_MALFORMED',
        `${source}:${rows[i].line}: duplicate id '${p.id}' (first at ${source}:${rows[prev].line})`,
        'ids must be unique; drop the id mapping to number rows instead',
      );
    }
    seen.set(p.id, i);
  });

  const start = opts.start ?? 0;
  if (!Number.isInteger(start) || start < 0)
    throw new ThinkwhenError('BAD_SLICE', `start must be an integer ≥ 0, got ${start}`);
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 0)) {
    throw new ThinkwhenError('BAD_SLICE', `limit must be an integer ≥ 0, got ${opts.limit}`);
  }
  const problems = all.slice(start, opts.limit === undefined ? undefined : start + opts.limit);
  return {
    info: {
      name,
      split,
      source,
      file,
      format,
      sha256,
      rows: rows.length,
      start,
      limit: opts.limit ?? null,
      count: problems.length,
      fields,
      answerFormat,
    },
    problems,
  };
}
