/**
 * Stage 1 of the taxonomy (docs/method.md §2.1): thinking-model responses on a question set.
 *
 *  - prompt = the model's own chat template over one user message holding the question text only,
 *    with the generation prompt (no system message unless the template adds one);
 *  - greedy by default, `maxTokens` cap (paper: 1000), many questions decoded together in one context;
 *  - `fullResponse` = prompt + generated text (the reference's vLLM path); `generated` = the new text only
 *    (its nnsight path, ambiguity A1) — both are stored, the activation stage picks one;
 *  - `thinking` = the paper's `extract_thinking_process(fullResponse)`;
 *  - output: JSONL. The first line is a header (`TraceHeader`: format tag and the settings), then one record
 *    per question, appended as one write when its batch finishes. A rerun skips the ids already in the
 *    file (a torn last line from a crash is cut off first), so it resumes. A file that does not start
 *    with the header is not ours: it is never appended to or truncated.
 */
import { existsSync, statSync } from 'node:fs';
import { appendFile, mkdir, open, readFile, rename, truncate, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type Context, generate, type Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { loadDataset } from '../eval/datasets.ts';
import { extractThinking } from './sentences.ts';

/** A ground-truth sentence type over `[start, end)` of the trace's `thinking` text (UTF-16 offsets). */
export interface SpanLabel {
  start: number;
  end: number;
  label: string;
}

export interface Question {
  id: string;
  question: string;
  meta?: Record<string, unknown>;
}

export interface TraceRecord {
  id: string;
  question: string;
  /** The rendered chat-template prompt. */
  prompt: string;
  /** The model's new text only. */
  generated: string;
  /** prompt + generated. */
  fullResponse: string;
  /** The paper's thinking span of `fullResponse`. */
  thinking: string;
  /** UTF-16 offset of `thinking` in `fullResponse`. */
  thinkingStart: number;
  finishReason: string;
  promptTokens: number;
  generatedTokens: number;
  model: string;
  maxTokens: number;
  temperature: number;
  meta?: Record<string, unknown>;
  /** Ground-truth sentence types, when the source knows them (the model organism). */
  spanLabels?: SpanLabel[];
}

/** First line of a trace file: marks it as ours and records the settings a resume must match. */
export interface TraceHeader {
  format: typeof TRACE_FORMAT;
  version: 1;
  settings: TraceSettings;
}

export interface TraceSettings {
  model: string;
  maxTokens: number;
  temperature: number;
  seed: number;
  promptSuffix: string;
}

export const TRACE_FORMAT = 'thinkwhen-traces';

function isHeader(x: unknown): x is TraceHeader {
  return typeof x === 'object' && x !== null && (x as TraceHeader).format === TRACE_FORMAT;
}

export interface TraceGenerationOptions {
  /** Generated-token cap per question (paper: 1000). */
  maxTokens?: number;
  /** Questions decoded together (sequences of one context). */
  batch?: number;
  /** 0 = greedy (paper). */
  temperature?: number;
  seed?: number;
  /** Text appended to the rendered prompt, e.g. "<think>\n" for templates that do not add it. */
  promptSuffix?: string;
  /** Extra chat-template variables. */
  templateExtra?: Record<string, unknown>;
  threads?: number;
  /** Stderr-style progress lines. */
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

export interface TraceGenerationSummary {
  total: number;
  skipped: number;
  generated: number;
  tokens: number;
  seconds: number;
  out: string;
}

/** Questions from a JSONL file: `question` (or `questionField`) required, `id` optional (else line number). */
export async function readQuestionsJsonl(
  path: string,
  options: { questionField?: string; idField?: string } = {},
): Promise<Question[]> {
  if (!existsSync(path)) {
    throw new ThinkwhenError('QUESTIONS_NOT_FOUND', `no such question file: ${path}`, 'check the --questions path');
  }
  const qf = options.questionField ?? 'question';
  const idf = options.idField ?? 'id';
  const lines = (await readFile(path, 'utf8')).split('\n');
  const out: Question[] = [];
  const seen = new Set<string>();
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line);
    } catch (err) {
      throw new ThinkwhenError(
        'QUESTIONS_MALFORMED',
        `${path}:${i + 1}: not valid JSON (${(err as Error).message})`,
        'each line must be one JSON object such as {"id": "q1", "question": "..."}',
      );
    }
    const q = row[qf];
    if (typeof q !== 'string' || q.trim() === '') {
      throw new ThinkwhenError(
        'QUESTIONS_MALFORMED',
        `${path}:${i + 1}: no string field "${qf}"`,
        'name the question field with --question-field',
      );
    }
    const id = row[idf] === undefined ? `line-${i + 1}` : String(row[idf]);
    if (seen.has(id)) {
      throw new ThinkwhenError('QUESTIONS_MALFORMED', `${path}:${i + 1}: duplicate id "${id}"`, 'make ids unique');
    }
    seen.add(id);
    const meta: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(row)) if (k !== qf && k !== idf) meta[k] = v;
    out.push({ id, question: q, meta });
  });
  return out;
}

/** Questions from the evaluation harness's datasets (built-in name or file with a field mapping). */
export async function questionsFromDataset(options: Parameters<typeof loadDataset>[0]): Promise<Question[]> {
  const { problems } = await loadDataset(options);
  return problems.map((p) => ({ id: p.id, question: p.question, meta: { answer: p.answer, ...p.meta } }));
}

/**
 * Read a trace file. A torn last line (a crash mid-write) is reported in `tornAt` (its byte offset) and
 * left out; any other malformed line is an error. The header line is returned apart (null in trace files
 * written by other tools, which are read all the same).
 */
export async function readTraces(
  path: string,
): Promise<{ records: TraceRecord[]; tornAt: number | null; header: TraceHeader | null }> {
  if (!existsSync(path)) {
    throw new ThinkwhenError(
      'TRACES_NOT_FOUND',
      `no such trace file: ${path}`,
      'generate traces first (thinkwhen traces)',
    );
  }
  const text = await readFile(path, 'utf8');
  const records: TraceRecord[] = [];
  let header: TraceHeader | null = null;
  let at = 0;
  let tornAt: number | null = null;
  let lineNo = 0;
  while (at < text.length) {
    const nl = text.indexOf('\n', at);
    const line = text.slice(at, nl < 0 ? text.length : nl);
    lineNo++;
    if (lineNo === 1 && nl >= 0 && line.startsWith(`{"format":"${TRACE_FORMAT}"`)) {
      header = JSON.parse(line) as TraceHeader;
    } else if (line.trim()) {
      try {
        const rec = JSON.parse(line) as TraceRecord;
        if (typeof rec.id !== 'string' || typeof rec.fullResponse !== 'string') throw new Error('not a trace record');
        records.push(rec);
      } catch (err) {
        if (nl < 0) {
          tornAt = Buffer.byteLength(text.slice(0, at));
          break;
        }
        throw new ThinkwhenError(
          'TRACES_MALFORMED',
          `${path}:${lineNo}: ${(err as Error).message}`,
          'each line must be a trace record written by `thinkwhen traces`; remove the bad line',
        );
      }
    }
    if (nl < 0) break;
    at = nl + 1;
  }
  return { records, tornAt, header };
}

/** The header of `path` if it starts with one (read from its first line only), else null. */
async function readHeader(path: string): Promise<TraceHeader | null> {
  const file = await open(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await file.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    const nl = text.indexOf('\n');
    if (nl < 0) return null;
    try {
      const x: unknown = JSON.parse(text.slice(0, nl));
      return isHeader(x) ? x : null;
    } catch {
      return null;
    }
  } finally {
    await file.close();
  }
}

/**
 * Makes sure `out` is a trace file of ours for `settings`: creates it (header first, written atomically)
 * or checks an existing one. Refuses any existing file that does not start with our header, so that
 * resuming never truncates or appends to a file someone else wrote.
 */
async function claimTraceFile(out: string, settings: TraceSettings): Promise<void> {
  const st = existsSync(out) ? statSync(out) : null;
  if (st && !st.isFile()) {
    throw new ThinkwhenError('NOT_OUR_FILE', `${out} is not a file`, 'give --out a file path');
  }
  if (!st || st.size === 0) {
    await mkdir(dirname(out), { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    const header: TraceHeader = { format: TRACE_FORMAT, version: 1, settings };
    await writeFile(tmp, `${JSON.stringify(header)}\n`);
    await rename(tmp, out);
    return;
  }
  const header = await readHeader(out);
  if (!header) {
    throw new ThinkwhenError(
      'NOT_OUR_FILE',
      `${out} exists and is not a trace file written by thinkwhen traces (no trace header on its first line); it was left untouched`,
      'write to a new --out file, or move that file away',
    );
  }
  const diff = (Object.keys(settings) as (keyof TraceSettings)[]).filter((k) => header.settings[k] !== settings[k]);
  if (diff.length) {
    throw new ThinkwhenError(
      'TRACES_MISMATCH',
      `${out} holds traces made with other settings (${diff.map((k) => `${k} ${JSON.stringify(header.settings[k])}, now ${JSON.stringify(settings[k])}`).join('; ')})`,
      'write to a new --out file, or rerun with the same model and settings to resume',
    );
  }
}

/** Build one trace record from a prompt and the model's output. */
export function makeTraceRecord(
  q: Question,
  prompt: string,
  generated: string,
  extra: Pick<TraceRecord, 'finishReason' | 'promptTokens' | 'generatedTokens' | 'model' | 'maxTokens' | 'temperature'>,
): TraceRecord {
  const fullResponse = prompt + generated;
  const { text, start } = extractThinking(fullResponse);
  const rec: TraceRecord = {
    id: q.id,
    question: q.question,
    prompt,
    generated,
    fullResponse,
    thinking: text,
    thinkingStart: start,
    ...extra,
  };
  if (q.meta && Object.keys(q.meta).length) rec.meta = q.meta;
  return rec;
}

function idSeed(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return h >>> 0;
}

export function renderPrompt(model: Model, question: string, options: TraceGenerationOptions = {}): string {
  const rendered = model.applyChatTemplate([{ role: 'user', content: question }], {
    addGenerationPrompt: true,
    extra: options.templateExtra,
  });
  return rendered + (options.promptSuffix ?? '');
}

/** Generate traces for every question not yet in `out`; see the module comment. */
export async function generateTraces(
  model: Model,
  questions: readonly Question[],
  out: string,
  options: TraceGenerationOptions = {},
): Promise<TraceGenerationSummary> {
  const t0 = Date.now();
  const maxTokens = options.maxTokens ?? 1000;
  const temperature = options.temperature ?? 0;
  const batch = options.batch ?? 8;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new ThinkwhenError('BAD_ARGUMENT', `max tokens must be a positive integer, got ${maxTokens}`);
  }
  if (!Number.isInteger(batch) || batch < 1) {
    throw new ThinkwhenError('BAD_ARGUMENT', `batch must be a positive integer, got ${batch}`);
  }
  if (questions.length === 0) {
    throw new ThinkwhenError('NO_QUESTIONS', 'the question set is empty', 'pass a non-empty JSONL file or dataset');
  }
  const settings: TraceSettings = {
    model: model.info.path,
    maxTokens,
    temperature,
    seed: options.seed ?? 0,
    promptSuffix: options.promptSuffix ?? '',
  };
  // Every prompt is rendered and sized before the file is touched: a bad setting writes nothing.
  const prompts = new Map(questions.map((q) => [q.id, renderPrompt(model, q.question, options)]));
  let longest = 0;
  for (const p of prompts.values()) longest = Math.max(longest, model.tokenize(p).length);
  const trained = model.info.nCtxTrain;
  if (trained > 0 && longest + maxTokens > trained) {
    throw new ThinkwhenError(
      'CONTEXT_TOO_LONG',
      `the longest prompt (${longest} tokens) plus ${maxTokens} new tokens exceeds the model's training context of ${trained} tokens`,
      longest < trained ? `use --max-tokens ${trained - longest} or less` : 'shorten the questions',
    );
  }
  await claimTraceFile(out, settings);
  const done = new Set<string>();
  const { records, tornAt } = await readTraces(out);
  if (tornAt !== null) {
    await truncate(out, tornAt);
    options.onProgress?.(`traces: cut a torn last line from ${out}`);
  }
  for (const r of records) done.add(r.id);
  const todo = questions.filter((q) => !done.has(q.id));
  const skipped = questions.length - todo.length;
  if (skipped) options.onProgress?.(`traces: ${skipped} of ${questions.length} already in ${out}, resuming`);
  if (todo.length === 0) {
    return { total: questions.length, skipped, generated: 0, tokens: 0, seconds: 0, out };
  }

  const seqs = Math.min(batch, todo.length);
  const perSeq = longest + maxTokens + 1;
  let ctx: Context | null = null;
  let tokens = 0;
  let written = 0;
  try {
    ctx = model.createContext({ nCtx: perSeq * seqs, nBatch: 512, nSeqMax: seqs, threads: options.threads });
    for (let start = 0; start < todo.length; start += seqs) {
      const slice = todo.slice(start, start + seqs);
      const results = await generate(
        ctx,
        slice.map((_, i) => ({
          prompt: prompts.get(slice[i].id)!,
          maxTokens,
          // Seeded per question id, so a resumed run samples what an uninterrupted one would.
          sampler: { temperature, seed: ((options.seed ?? 0) ^ idSeed(slice[i].id)) >>> 0 },
        })),
        { signal: options.signal },
      );
      if (options.signal?.aborted) break;
      const lines = results.map((r, i) => {
        tokens += r.tokens.length;
        const rec = makeTraceRecord(slice[i], prompts.get(slice[i].id)!, r.text, {
          finishReason: r.finishReason,
          promptTokens: r.promptTokens,
          generatedTokens: r.tokens.length,
          model: model.info.path,
          maxTokens,
          temperature,
        });
        return `${JSON.stringify(rec)}\n`;
      });
      // One write per record: a crash leaves whole records plus at most one torn line.
      for (const line of lines) await appendFile(out, line);
      written += lines.length;
      const secs = (Date.now() - t0) / 1000;
      options.onProgress?.(
        `traces: ${skipped + written}/${questions.length} questions, ${tokens} tokens, ${(tokens / Math.max(secs, 1e-3)).toFixed(1)} tok/s`,
      );
    }
  } finally {
    ctx?.free();
  }
  return {
    total: questions.length,
    skipped,
    generated: written,
    tokens,
    seconds: (Date.now() - t0) / 1000,
    out,
  };
}
