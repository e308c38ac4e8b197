/**
 * Stage 2 of the taxonomy (docs/method.md §2.2): the mean residual stream of every thinking sentence at a set
 * of layers, captured through the engine in one pass of the model per trace (one hook per layer in the
 * same decodes), written to a sentence-activation store (activation-store.ts).
 *
 * Per trace:
 *  - context = `fullResponse` (prompt + output, the reference's vLLM path; default) or `generated` (A1);
 *  - thinking = `extract_thinking_process(context)` (or of the output only, for templates without
 *    `<think>`), split with the paper's splitter (≥ 3 words);
 *  - tokens with character offsets of the same text; `bos: 'paper'` prepends BOS when the tokenizer adds
 *    one, as `tokenizer.encode(full_response)` does even when the template already starts with BOS (A1);
 *  - sentence → token span `[tok(c0), tok(c1))` (first occurrence of the sentence text, as the paper),
 *    rows `[ts − 1, te)` (the one-token shift), mean of `resid_post[L]` over them;
 *  - thinking vector = mean over `[min ts, max te)` of the located sentences, folded into μ_L;
 *  - ground-truth sentence types, when the trace has `spanLabels`, are attached to the records.
 *
 * Resumable: finished traces are checkpointed in `parts/part-NNNNN.{jsonl,safetensors}` (the safetensors
 * file, written last by rename, marks a part complete). When every trace is captured, the store is built
 * from the parts in trace order, so a resumed capture gives the same store as an uninterrupted one.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import type { SpanLabel, TraceRecord } from '../traces/generate.ts';
import { extractThinking, splitIntoSentences } from '../traces/sentences.ts';
import { charToTokenMap, type LocatedSentence, locateSentence } from '../traces/spans.ts';
import { type Manifest, SentenceActivationWriter, type SentenceRecord } from './activation-store.ts';
import { checkLayers } from './layers.ts';
import { meanOfRows } from './preprocess.ts';
import { readSafetensors, writeSafetensors } from './safetensors.ts';

export interface CaptureSettings {
  /** The text run through the model (A1): prompt + output (default, vLLM path) or the output only (nnsight path). */
  context: 'full' | 'generated';
  /**
   * Where the thinking is: 'marker' (paper) = `extract_thinking_process` of that text (after `<think>`,
   * else from the start, prompt included); 'generated' = the same extraction on the model's output only,
   * for models whose template has no `<think>` (the model organism).
   */
  thinking: 'marker' | 'generated';
  /** 'paper': prepend BOS when the tokenizer adds one (double BOS after a BOS template); 'template': never. */
  bos: 'paper' | 'template';
  /** 'find': first occurrence of the sentence text (paper); 'span': the sentence's own position. */
  locate: 'find' | 'span';
  /** The one-token shift (rows ts−1 … te−1); default true. */
  shift: boolean;
  minWords: number;
}

export const DEFAULT_CAPTURE_SETTINGS: CaptureSettings = {
  context: 'full',
  thinking: 'marker',
  bos: 'paper',
  locate: 'find',
  shift: true,
  minWords: 3,
};

export interface CaptureOptions extends Partial<CaptureSettings> {
  layers: number[];
  /** Ground-truth type of a sentence text (e.g. the organism's parser); overrides trace span labels. */
  labeller?: (sentence: string) => string | null;
  /** Traces per checkpoint part. */
  partTraces?: number;
  /** Tokens per decode. */
  nBatch?: number;
  threads?: number;
  shardRows?: number;
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

export interface CaptureRecord extends SentenceRecord {
  /** Index of the sentence among the trace's split sentences. */
  sentenceIndex: number;
  /** Ground-truth type, when the trace carries span labels. */
  label?: string;
}

interface CaptureConfig extends CaptureSettings {
  format: 'thinkwhen-capture/1';
  model: string;
  dim: number;
  nLayer: number;
  layers: number[];
}

export interface CaptureSummary {
  dir: string;
  traces: number;
  capturedNow: number;
  sentences: number;
  /** Sentences the splitter found that could not be placed in the tokens (skipped, as the paper does). */
  unlocated: number;
  tracesWithoutSentences: number;
  manifest: Manifest;
}

/** Ground-truth label of a sentence: the span label that overlaps it most (null when none overlaps). */
export function labelForSpan(labels: readonly SpanLabel[], start: number, end: number): string | null {
  let best: string | null = null;
  let bestOverlap = 0;
  for (const l of labels) {
    const overlap = Math.min(end, l.end) - Math.max(start, l.start);
    if (overlap > bestOverlap) {
      bestOverlap = overlap;
      best = l.label;
    }
  }
  return best;
}

export interface PlannedTrace {
  trace: TraceRecord;
  text: string;
  tokens: Int32Array;
  sentences: Array<{ record: CaptureRecord; located: LocatedSentence }>;
  unlocated: number;
  /** Unshifted token span of the thinking part covered by the located sentences. */
  thinkingTokens: { start: number; end: number } | null;
}

/** The text given to the model and the thinking span in it, under the capture settings. */
export function traceText(
  trace: TraceRecord,
  settings: Pick<CaptureSettings, 'context' | 'thinking'>,
): { text: string; thinking: { text: string; start: number } } {
  const text = settings.context === 'generated' ? trace.generated : trace.fullResponse;
  if (typeof text !== 'string' || (settings.thinking === 'generated' && typeof trace.generated !== 'string')) {
    throw new ThinkwhenError(
      'traces-malformed',
      `trace ${trace.id} lacks its ${settings.context === 'generated' ? 'generated' : 'fullResponse'} text`,
      'use a trace file written by `thinkwhen traces`',
    );
  }
  if (settings.thinking === 'marker') return { text, thinking: extractThinking(text) };
  const t = extractThinking(trace.generated);
  const offset = settings.context === 'full' ? text.length - trace.generated.length : 0;
  return { text, thinking: { text: t.text, start: t.start + offset } };
}

/**
 * Tokens of a trace text and the char→token map, with the model's BOS in front under the paper's
 * reading (`bos: 'paper'`), where it takes row 0 and no characters.
 */
export function tokenizeTrace(
  model: Model,
  text: string,
  bos: CaptureSettings['bos'],
): { tokens: Int32Array; c2t: Int32Array } {
  const tok = model.tokenizeWithOffsets(text);
  let tokens = tok.tokens;
  let offsets = tok.offsets;
  if (bos === 'paper' && model.info.addBos && model.info.bos >= 0) {
    tokens = Int32Array.from([model.info.bos, ...tokens]);
    offsets = [[0, 0], ...offsets];
  }
  return { tokens, c2t: charToTokenMap(offsets, text.length) };
}

/** Tokenise a trace and place its sentences (no model pass). */
export function planTrace(
  model: Model,
  trace: TraceRecord,
  settings: CaptureSettings,
  labeller?: CaptureOptions['labeller'],
): PlannedTrace {
  const { text, thinking } = traceText(trace, settings);
  const split = splitIntoSentences(thinking.text, { minWords: settings.minWords });
  const { tokens, c2t } = tokenizeTrace(model, text, settings.bos);
  // Span labels refer to the trace's own thinking text; use them only when this reading has the same one.
  const labels = trace.spanLabels && trace.thinking === thinking.text ? trace.spanLabels : null;
  const sentences: PlannedTrace['sentences'] = [];
  let unlocated = 0;
  let lo = Number.POSITIVE_INFINITY;
  let hi = -1;
  split.forEach((s, i) => {
    const located = locateSentence(text, s, c2t, {
      locate: settings.locate,
      thinkingStart: thinking.start,
      endRule: 'next-char',
      shift: settings.shift,
    });
    if (!located) {
      unlocated++;
      return;
    }
    lo = Math.min(lo, located.tokens.start);
    hi = Math.max(hi, located.tokens.end);
    const record: CaptureRecord = {
      traceId: trace.id,
      sentence: s.text,
      tokenStart: located.tokens.start,
      tokenEnd: located.tokens.end,
      charStart: located.charStart,
      charEnd: located.charEnd,
      sentenceIndex: i,
    };
    if (labeller) {
      const label = labeller(s.text);
      if (label !== null) record.label = label;
    } else if (labels) {
      const label = labelForSpan(labels, s.start, s.end);
      if (label !== null) record.label = label;
    }
    sentences.push({ record, located });
  });
  return { trace, text, tokens, sentences, unlocated, thinkingTokens: hi > lo ? { start: lo, end: hi } : null };
}

/**
 * One model pass over the trace's tokens (up to the last row needed), capturing rows `[lo, hi)` at every
 * layer; returns row-major [hi − lo, dim] per layer and `lo`.
 */
export async function captureRows(
  model: Model,
  ctx: ReturnType<Model['createContext']>,
  tokens: Int32Array,
  lo: number,
  hi: number,
  layers: readonly number[],
): Promise<Map<number, Float32Array>> {
  const dim = model.info.nEmbd;
  const out = new Map<number, Float32Array>();
  for (const l of layers) out.set(l, new Float32Array((hi - lo) * dim));
  const seq = ctx.sequence();
  try {
    for (let start = 0; start < hi; start += ctx.nBatch) {
      const end = Math.min(hi, start + ctx.nBatch);
      const batch = [];
      for (let p = start; p < end; p++) batch.push({ token: tokens[p], seq, pos: p });
      const rows: number[] = [];
      for (let p = Math.max(start, lo); p < end; p++) rows.push(p - start);
      if (rows.length === 0) {
        await ctx.decode(batch);
        continue;
      }
      const hooks = layers.map((l) => ({ hook: `blocks.${l}.hook_resid_post`, rows, capture: true }));
      const res = await ctx.decode(batch, hooks);
      layers.forEach((l, k) => {
        const caps = res.captures[k]!;
        const dst = out.get(l)!;
        rows.forEach((r, j) => {
          dst.set(caps[j], (start + r - lo) * dim);
        });
      });
    }
  } finally {
    seq.dispose();
  }
  return out;
}

const partName = (i: number) => `part-${String(i).padStart(5, '0')}`;

interface PartTrace {
  traceId: string;
  sentences: number;
  unlocated: number;
  hasThinking: boolean;
}

interface PartLine {
  trace?: PartTrace;
  record?: CaptureRecord;
}

async function readConfig(dir: string): Promise<CaptureConfig | null> {
  const path = join(dir, 'capture.json');
  if (!existsSync(path)) return null;
  return JSON.parse(await readFile(path, 'utf8')) as CaptureConfig;
}

/** Complete parts in order: their traces, records and tensors are read lazily by the caller. */
async function listParts(dir: string): Promise<string[]> {
  const partsDir = join(dir, 'parts');
  if (!existsSync(partsDir)) return [];
  const names = (await readdir(partsDir)).filter((n) => /^part-\d{5}\.safetensors$/.test(n)).sort();
  return names.map((n) => join(partsDir, n.replace(/\.safetensors$/, '')));
}

async function readPartLines(base: string): Promise<PartLine[]> {
  const text = await readFile(`${base}.jsonl`, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as PartLine);
}

/** Check a store directory against a model: the width and layers it was captured with. */
export async function checkStoreAgainstModel(dir: string, model: Model): Promise<void> {
  const config = await readConfig(dir);
  if (config && config.dim !== model.info.nEmbd) {
    throw new ThinkwhenError(
      'width-mismatch',
      `the activations in ${dir} were captured from a model of width ${config.dim} (${config.model}), but ${model.info.path} has width ${model.info.nEmbd}`,
      'use the model the activations came from, or capture into a new directory',
    );
  }
}

/** Capture sentence activations of `traces` into `dir` (resumable; see the module comment). */
export async function captureSentenceActivations(
  model: Model,
  traces: readonly TraceRecord[],
  dir: string,
  options: CaptureOptions,
): Promise<CaptureSummary> {
  const settings: CaptureSettings = {
    context: options.context ?? DEFAULT_CAPTURE_SETTINGS.context,
    thinking: options.thinking ?? DEFAULT_CAPTURE_SETTINGS.thinking,
    bos: options.bos ?? DEFAULT_CAPTURE_SETTINGS.bos,
    locate: options.locate ?? DEFAULT_CAPTURE_SETTINGS.locate,
    shift: options.shift ?? DEFAULT_CAPTURE_SETTINGS.shift,
    minWords: options.minWords ?? DEFAULT_CAPTURE_SETTINGS.minWords,
  };
  const { nLayer, nEmbd: dim } = model.info;
  const layers = checkLayers(options.layers, nLayer);
  if (traces.length === 0) {
    throw new ThinkwhenError(
      'no-traces',
      'the trace set is empty: there is nothing to capture',
      'generate traces first (thinkwhen traces) and pass that file',
    );
  }
  const config: CaptureConfig = {
    format: 'thinkwhen-capture/1',
    model: model.info.path,
    dim,
    nLayer,
    layers,
    ...settings,
  };
  await checkStoreAgainstModel(dir, model);
  const previous = await readConfig(dir);
  if (previous) {
    const same =
      previous.dim === dim &&
      previous.layers.join(',') === layers.join(',') &&
      previous.context === settings.context &&
      previous.thinking === settings.thinking &&
      previous.bos === settings.bos &&
      previous.locate === settings.locate &&
      previous.shift === settings.shift &&
      previous.minWords === settings.minWords;
    if (!same) {
      throw new ThinkwhenError(
        'capture-mismatch',
        `${dir} holds a capture with other settings (layers ${previous.layers.join(',')}, context ${previous.context}, thinking ${previous.thinking}, bos ${previous.bos}, locate ${previous.locate}, shift ${previous.shift}, min words ${previous.minWords})`,
        'capture into a new directory, or rerun with the same settings to resume',
      );
    }
  } else {
    await mkdir(join(dir, 'parts'), { recursive: true });
    await writeFile(join(dir, 'capture.json'), `${JSON.stringify(config, null, 2)}\n`);
  }
  await mkdir(join(dir, 'parts'), { recursive: true });

  // What the complete parts already hold; leftovers of an interrupted part are removed.
  const parts = await listParts(dir);
  const done = new Set<string>();
  for (const base of parts) for (const l of await readPartLines(base)) if (l.trace) done.add(l.trace.traceId);
  for (const n of await readdir(join(dir, 'parts'))) {
    const base = join(dir, 'parts', n.replace(/\.(jsonl|safetensors|tmp)$/, ''));
    if (!parts.includes(base)) await rm(join(dir, 'parts', n), { force: true });
  }
  const ids = new Set<string>();
  for (const t of traces) {
    if (ids.has(t.id)) {
      throw new ThinkwhenError('traces-malformed', `trace id "${t.id}" appears twice`, 'make trace ids unique');
    }
    ids.add(t.id);
  }
  const todo = traces.filter((t) => !done.has(t.id));
  if (done.size && todo.length) {
    options.onProgress?.(`activations: ${done.size} traces already captured in ${dir}, resuming`);
  }

  const partTraces = Math.max(1, options.partTraces ?? 64);
  let capturedNow = 0;
  if (todo.length) {
    const t0 = Date.now();
    const planned = todo.map((t) => planTrace(model, t, settings, options.labeller));
    const longest = Math.max(1, ...planned.map((p) => (p.thinkingTokens ? p.thinkingTokens.end : 0)));
    const nBatch = Math.min(options.nBatch ?? 512, longest);
    const ctx = model.createContext({ nCtx: longest + 1, nBatch, nSeqMax: 1, threads: options.threads });
    let partIndex = parts.length;
    let tokens = 0;
    try {
      for (let s = 0; s < planned.length; s += partTraces) {
        const group = planned.slice(s, s + partTraces);
        const lines: string[] = [];
        const rows = new Map<number, Float32Array[]>(layers.map((l) => [l, []]));
        const thinkingRows = new Map<number, Float32Array[]>(layers.map((l) => [l, []]));
        for (const p of group) {
          if (options.signal?.aborted) break;
          const part: PartTrace = {
            traceId: p.trace.id,
            sentences: p.sentences.length,
            unlocated: p.unlocated,
            hasThinking: p.thinkingTokens !== null,
          };
          lines.push(JSON.stringify({ trace: part }));
          if (p.thinkingTokens && p.sentences.length) {
            const lo = Math.min(p.thinkingTokens.start, ...p.sentences.map((x) => x.located.rows.start));
            const hi = Math.max(p.thinkingTokens.end, ...p.sentences.map((x) => x.located.rows.end));
            const acts = await captureRows(model, ctx, p.tokens, lo, hi, layers);
            tokens += hi;
            for (const l of layers) {
              const h = acts.get(l)!;
              for (const x of p.sentences) {
                rows
                  .get(l)!
                  .push(meanOfRows(h, dim, { start: x.located.rows.start - lo, end: x.located.rows.end - lo }));
              }
              thinkingRows
                .get(l)!
                .push(meanOfRows(h, dim, { start: p.thinkingTokens.start - lo, end: p.thinkingTokens.end - lo }));
            }
            for (const x of p.sentences) lines.push(JSON.stringify({ record: x.record }));
          }
          capturedNow++;
        }
        if (options.signal?.aborted) break;
        const base = join(dir, 'parts', partName(partIndex++));
        await writeFile(`${base}.jsonl`, `${lines.join('\n')}\n`);
        const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
        for (const l of layers) {
          tensors[`layer.${l}`] = stack(rows.get(l)!, dim);
          tensors[`thinking.${l}`] = stack(thinkingRows.get(l)!, dim);
        }
        await writeSafetensors(`${base}.tmp`, tensors);
        await rename(`${base}.tmp`, `${base}.safetensors`);
        const secs = (Date.now() - t0) / 1000;
        options.onProgress?.(
          `activations: ${done.size + capturedNow}/${traces.length} traces, ${tokens} tokens, ${(tokens / Math.max(secs, 1e-3)).toFixed(0)} tok/s`,
        );
      }
    } finally {
      ctx.free();
    }
    if (options.signal?.aborted) {
      throw new ThinkwhenError('aborted', 'activation capture interrupted', 'rerun the same command to resume');
    }
  }
  return { ...(await buildStore(dir, traces, config, options.shardRows, options.onProgress)), capturedNow };
}

function stack(vs: Float32Array[], dim: number): { dtype: 'F32'; shape: number[]; data: Float32Array } {
  const data = new Float32Array(vs.length * dim);
  vs.forEach((v, i) => {
    data.set(v, i * dim);
  });
  return { dtype: 'F32', shape: [vs.length, dim], data };
}

/** Build (or confirm) the store from the parts, in the order of `traces`. */
async function buildStore(
  dir: string,
  traces: readonly TraceRecord[],
  config: CaptureConfig,
  shardRows: number | undefined,
  onProgress: CaptureOptions['onProgress'],
): Promise<Omit<CaptureSummary, 'capturedNow'>> {
  const { dim, layers } = config;
  interface Held {
    part: PartTrace;
    records: CaptureRecord[];
    base: string;
    rowOffset: number;
    thinkingIndex: number;
  }
  const byTrace = new Map<string, Held>();
  for (const base of await listParts(dir)) {
    let row = 0;
    let thinking = 0;
    let current: Held | null = null;
    for (const line of await readPartLines(base)) {
      if (line.trace) {
        current = { part: line.trace, records: [], base, rowOffset: row, thinkingIndex: -1 };
        if (line.trace.hasThinking && line.trace.sentences > 0) current.thinkingIndex = thinking++;
        byTrace.set(line.trace.traceId, current);
      } else if (line.record && current) {
        current.records.push(line.record);
        row++;
      }
    }
  }
  const held = traces.map((t) => {
    const h = byTrace.get(t.id);
    if (!h) throw new ThinkwhenError('capture-incomplete', `trace ${t.id} has not been captured`, 'rerun the capture');
    return h;
  });
  const sentences = held.reduce((s, h) => s + h.records.length, 0);
  const unlocated = held.reduce((s, h) => s + h.part.unlocated, 0);
  const tracesWithoutSentences = held.filter((h) => h.records.length === 0).length;
  if (sentences === 0) {
    throw new ThinkwhenError(
      'no-sentences',
      `none of the ${traces.length} traces has a thinking sentence the splitter keeps (≥ ${config.minWords} words) and the tokens can place`,
      'check the traces (empty or truncated thinking?), raise --max-tokens when generating, or lower --min-words',
    );
  }
  const metadata: Record<string, string> = {
    model: config.model,
    context: config.context,
    thinking: config.thinking,
    bos: config.bos,
    locate: config.locate,
    shift: String(config.shift),
    minWords: String(config.minWords),
    traces: String(traces.length),
  };
  // Up to date when the manifest describes exactly these traces.
  if (existsSync(join(dir, 'manifest.json'))) {
    const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    if (m.rows === sentences && m.metadata.traceIds === traceIdsDigest(traces)) {
      return { dir, traces: traces.length, sentences, unlocated, tracesWithoutSentences, manifest: m };
    }
    await rm(join(dir, 'manifest.json'));
  }
  metadata.traceIds = traceIdsDigest(traces);
  onProgress?.(`activations: writing the store (${sentences} sentences, ${layers.length} layers)`);
  const writer = await SentenceActivationWriter.create(dir, { layers, dim, shardRows, metadata });
  const cache = new Map<string, Record<string, Float32Array>>();
  const tensorsOf = async (base: string) => {
    let t = cache.get(base);
    if (!t) {
      const f = await readSafetensors(`${base}.safetensors`);
      t = {};
      for (const [name, tensor] of Object.entries(f.tensors)) t[name] = tensor.data as Float32Array;
      cache.clear();
      cache.set(base, t);
    }
    return t;
  };
  for (const h of held) {
    if (h.records.length === 0) continue;
    const t = await tensorsOf(h.base);
    for (const l of layers) {
      const th = t[`thinking.${l}`];
      writer.addThinkingVector(l, th.subarray(h.thinkingIndex * dim, (h.thinkingIndex + 1) * dim));
    }
    for (let i = 0; i < h.records.length; i++) {
      const r = h.rowOffset + i;
      const vectors = new Map<number, Float32Array>();
      for (const l of layers) vectors.set(l, t[`layer.${l}`].subarray(r * dim, (r + 1) * dim));
      await writer.add(h.records[i], vectors);
    }
  }
  const manifest = await writer.close();
  return { dir, traces: traces.length, sentences, unlocated, tracesWithoutSentences, manifest };
}

function traceIdsDigest(traces: readonly TraceRecord[]): string {
  let h = 2166136261;
  for (const t of traces) {
    for (let i = 0; i < t.id.length; i++) h = Math.imul(h ^ t.id.charCodeAt(i), 16777619);
    h = Math.imul(h ^ 10, 16777619);
  }
  return `${traces.length}:${(h >>> 0).toString(16)}`;
}
