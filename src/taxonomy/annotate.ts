// Stage 5 (docs/method.md §2.5): every trace annotated sentence by sentence with the selected SAE, in the
// paper's format `["{z}:idx{k}"]{sentence}["end-section"]`.
import type { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import type { TraceRecord } from '../traces/generate.ts';
import { splitForAnnotation } from '../traces/sentences.ts';
import { activationRows, tokenSpanOfChars } from '../traces/spans.ts';
import { loadSentenceActivations } from './activation-store.ts';
import {
  type CaptureSettings,
  captureRows,
  checkStoreAgainstModel,
  DEFAULT_CAPTURE_SETTINGS,
  tokenizeTrace,
  traceText,
} from './capture.ts';
import { meanOfRows, saeInputForLabelling } from './preprocess.ts';
import { argmaxRows, loadSae } from './sae.ts';
import type { Selection } from './selection.ts';

export interface AnnotatedSentence {
  text: string;
  /** Latent index k (category "idx{k}"). */
  category: number;
  /** round(z_k, 2). */
  value: number;
  title?: string;
  charStart: number;
  charEnd: number;
}

export interface AnnotatedTrace {
  question_id: string;
  /** The paper's format: `["{z}:idx{k}"]{sentence}["end-section"]` per sentence, concatenated. */
  annotated_thinking: string;
  sentences: AnnotatedSentence[];
  /** Sentences of the annotation splitter that could not be placed in the tokens (skipped). */
  skipped: number;
}

export interface AnnotateOptions {
  /** A2: 'raw' sentence means (paper) or 'centred' with the training-time μ_L and L2 norm. */
  saeInput?: 'raw' | 'centred';
  context?: CaptureSettings['context'];
  thinking?: CaptureSettings['thinking'];
  bos?: CaptureSettings['bos'];
  threads?: number;
  nBatch?: number;
  onProgress?: (line: string) => void;
}

/** Python's `str(round(x, 2))` for a float. */
export function formatValue(x: number): string {
  const r = Math.round(x * 100) / 100;
  const s = String(r);
  return Number.isInteger(r) ? `${r}.0` : s;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The reference's locator: first `(?:^|[.?!;\n]|\n\n)\s*(sentence)` in the response; start of the group. */
export function locateForAnnotation(text: string, sentence: string): number {
  const re = new RegExp(`(?:^|(?:[.?!;\\n]|\\n\\n))\\s*(${escapeRegExp(sentence)})`, 'd');
  const m = re.exec(text);
  return m?.indices?.[1]?.[0] ?? -1;
}

/** Annotate traces with the selected SAE: one model pass per trace at the SAE layer. */
export async function annotateTraces(
  model: Model,
  traces: readonly TraceRecord[],
  selection: Pick<Selection, 'layer' | 'sae' | 'activations' | 'categories'>,
  options: AnnotateOptions = {},
): Promise<AnnotatedTrace[]> {
  const sae = await loadSae(selection.sae);
  const { nEmbd, nLayer } = model.info;
  if (sae.dim !== nEmbd) {
    throw new ThinkwhenError(
      'width-mismatch',
      `the SAE ${selection.sae} has width ${sae.dim} but ${model.info.path} has width ${nEmbd}`,
      'annotate with the thinking model whose activations trained the SAE',
    );
  }
  if (selection.layer >= nLayer) {
    throw new ThinkwhenError(
      'layer-out-of-range',
      `the selected layer ${selection.layer} is out of range: ${model.info.path} has ${nLayer} layers`,
      'annotate with the thinking model the taxonomy was built from',
    );
  }
  if (traces.length === 0) {
    throw new ThinkwhenError('no-traces', 'the trace set is empty: there is nothing to annotate', 'pass a trace file');
  }
  let mean: Float32Array | undefined;
  if (options.saeInput === 'centred') {
    await checkStoreAgainstModel(selection.activations, model);
    mean = (await loadSentenceActivations(selection.activations, selection.layer)).thinkingMean ?? undefined;
  }
  const titles = new Map(selection.categories.map((c) => [c.id, c.title]));
  const settings: CaptureSettings = {
    ...DEFAULT_CAPTURE_SETTINGS,
    context: options.context ?? DEFAULT_CAPTURE_SETTINGS.context,
    thinking: options.thinking ?? DEFAULT_CAPTURE_SETTINGS.thinking,
    bos: options.bos ?? DEFAULT_CAPTURE_SETTINGS.bos,
  };
  const out: AnnotatedTrace[] = [];
  const plans = traces.map((trace) => {
    const { text, thinking: th } = traceText(trace, settings);
    const thinking = th.text;
    const { tokens, c2t } = tokenizeTrace(model, text, settings.bos);
    const placed: Array<{ text: string; charStart: number; rows: { start: number; end: number } }> = [];
    let skipped = 0;
    for (const s of splitForAnnotation(thinking)) {
      const pos = locateForAnnotation(text, s.text);
      const span = pos < 0 ? null : tokenSpanOfChars(c2t, pos, pos + s.text.length, 'last-char');
      const rows = span ? activationRows(span, true) : null;
      if (!rows) {
        skipped++;
        continue;
      }
      placed.push({ text: s.text, charStart: pos, rows });
    }
    return { trace, tokens, placed, skipped };
  });
  const longest = Math.max(1, ...plans.map((p) => Math.max(0, ...p.placed.map((x) => x.rows.end))));
  const ctx = model.createContext({
    nCtx: longest + 1,
    nBatch: Math.min(options.nBatch ?? 512, longest),
    nSeqMax: 1,
    threads: options.threads,
  });
  try {
    for (const p of plans) {
      const sentences: AnnotatedSentence[] = [];
      if (p.placed.length) {
        const lo = Math.min(...p.placed.map((x) => x.rows.start));
        const hi = Math.max(...p.placed.map((x) => x.rows.end));
        const h = (await captureRows(model, ctx, p.tokens, lo, hi, [selection.layer])).get(selection.layer)!;
        const a = new Float32Array(p.placed.length * nEmbd);
        p.placed.forEach((x, i) => {
          a.set(meanOfRows(h, nEmbd, { start: x.rows.start - lo, end: x.rows.end - lo }), i * nEmbd);
        });
        const input = saeInputForLabelling(a, nEmbd, { mode: options.saeInput ?? 'raw', mean });
        const z = sae.encodeDense(input);
        const k = sae.latents;
        const best = argmaxRows(z, k);
        p.placed.forEach((x, i) => {
          sentences.push({
            text: x.text,
            category: best[i],
            value: Number(formatValue(z[i * k + best[i]])),
            title: titles.get(best[i]),
            charStart: x.charStart,
            charEnd: x.charStart + x.text.length,
          });
        });
      }
      const annotated = sentences
        .map((s) => `["${formatValue(s.value)}:idx${s.category}"]${s.text}["end-section"]`)
        .join('');
      out.push({ question_id: p.trace.id, annotated_thinking: annotated, sentences, skipped: p.skipped });
      options.onProgress?.(`taxonomy annotate: ${out.length}/${plans.length} traces`);
    }
  } finally {
    ctx.free();
  }
  return out;
}
