/**
 * Stage 1 of the taxonomy (docs/method.md §2.1): thinking-model responses on a question set.
 *
 *  - prompt = the model's own chat template over one user message holding the question text only,
 *    with the generation prompt (no system message unless the template adds one);
 *  - greedy by default, `maxTokens` cap (paper: 1000), many questions decoded together in one context;
 *  - `fullResponse` = prompt + generated text (the reference's vLLM path); `generated` = the new text only
 *    (its nnsight path, ambiguity A1) — both are stored, the activation stage picks one;
 *  - `thinking` = the paper's `extract_thinking_process(fullResponse)`;
 *  - output: JSONL, one record per question, appended as one write when its batch finishes. A rerun skips
 *    the ids already in the file (a torn last line from a crash is cut off first), so it resumes.
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, truncate } from 'node:fs/promises';
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
    throw new ThinkwhenError('questions-not-found', `no such question file: ${path}`, 'check the --questions path');
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
        'questions-malformed',
        `${path}:${i + 1}: not valid JSON (${(err as Error).message})`,
        'each line must be one JSON object such as {"id": "q1", "question": "..."}',
      );
    }
    const q = row[qf];
    if (typeof q !== 'string' || q.trim() === '') {
      throw new ThinkwhenError(
        'questions-malformed',
        `${path}:${i + 1}: no string field "${qf}"`,
        'name the question field with --question-field',
      );
    }
    const id = row[idf] === undefined ? `line-${i + 1}` : String(row[idf]);
    if (seen.has(id)) {
      throw new ThinkwhenError('questions-malformed', `${path}:${i + 1}: duplicate id "${id}"`, 'make ids unique');
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
 * left out; any other malformed line is an error.
 */
export async function readTraces(path: string): Promise<{ records: TraceRecord[]; tornAt: number | null }> {
  if (!existsSync(path)) {
    throw new ThinkwhenError(
      'traces-not-found',
      `no such trace file: ${path}`,
      'generate traces first (thinkwhen traces)',
    );
  }
  const text = await readFile(path, 'utf8');
  const records: TraceRecord[] = [];
  let at = 0;
  let tornAt: number | null = null;
  let lineNo = 0;
  while (at < text.length) {
    const nl = text.indexOf('\n', at);
    const line = text.slice(at, nl < 0 ? text.length : nl);
    lineNo++;
    if (line.trim()) {
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
          'traces-malformed',
          `${path}:${lineNo}: ${(err as Error).message}`,
          'each line must be a trace record written by `thinkwhen traces`; remove the bad line',
        );
      }
    }
    if (nl < 0) break;
    at = nl + 1;
  }
  return { records, tornAt };
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
  const batch = Math.max(1, options.batch ?? 8);
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new ThinkwhenError('bad-option', `max tokens must be a positive integer, got ${maxTokens}`);
  }
  if (questions.length === 0) {
    throw new ThinkwhenError('no-questions', 'the question set is empty', 'pass a non-empty JSONL file or dataset');
  }
  await mkdir(dirname(out), { recursive: true });
  const done = new Set<string>();
  if (existsSync(out)) {
    const { records, tornAt } = await readTraces(out);
    if (tornAt !== null) {
      await truncate(out, tornAt);
      options.onProgress?.(`traces: cut a torn last line from ${out}`);
    }
    for (const r of records) {
      if (r.model !== model.info.path || r.maxTokens !== maxTokens || r.temperature !== temperature) {
        throw new ThinkwhenError(
          'traces-mismatch',
          `${out} holds traces made with other settings (model ${r.model}, max tokens ${r.maxTokens}, temperature ${r.temperature})`,
          'write to a new --out file, or rerun with the same model and settings to resume',
        );
      }
      done.add(r.id);
    }
  }
  const todo = questions.filter((q) => !done.has(q.id));
  const skipped = questions.length - todo.length;
  if (skipped) options.onProgress?.(`traces: ${skipped} of ${questions.length} already in ${out}, resuming`);
  if (todo.length === 0) {
    return { total: questions.length, skipped, generated: 0, tokens: 0, seconds: 0, out };
  }

  const prompts = todo.map((q) => renderPrompt(model, q.question, options));
  const promptLengths = prompts.map((p) => model.tokenize(p).length);
  const longest = Math.max(...promptLengths);
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
          prompt: prompts[start + i],
          maxTokens,
          // Seeded per question id, so a resumed run samples what an uninterrupted one would.
          sampler: { temperature, seed: ((options.seed ?? 0) ^ idSeed(slice[i].id)) >>> 0 },
        })),
        { signal: options.signal },
      );
      if (options.signal?.aborted) break;
      const lines = results.map((r, i) => {
        tokens += r.tokens.length;
        const rec = makeTraceRecord(slice[i], prompts[start + i], r.text, {
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
