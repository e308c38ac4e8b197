// What the viewer shows, read from run stores: the problems with each run's first sample (text,
// verdict, steered tokens) and, for hybrid runs, the per-token records (category, coefficient,
// window, candidates with the thinking model's log-probs). docs/viewer.md.
import { RunStore } from '../eval/store.ts';

/** One token of a trace as the page draws it. */
export interface TraceToken {
  text: string;
  steered?: true;
  latent?: number | null;
  title?: string | null;
  coefficient?: number;
  window?: number;
  vector?: string;
  /** base greedy token's text (what the base model would have said) */
  baseText?: string;
  candidates?: { text: string; coefficient: number; window: number; logp: number | null }[];
  chosen?: number;
  reachedThinking?: boolean;
}

export interface ViewerRun {
  name: string;
  role: string | null;
  path: string;
  grader: string | null;
}

export interface SystemCell {
  correct: boolean | null;
  /** generated tokens and steered ones (null: the run does not say) */
  length: number | null;
  steered: number | null;
}

export interface ProblemItem {
  id: string;
  question: string;
  answer: string;
  /** one cell per run, in run order; null when that run has no sample for this problem */
  systems: (SystemCell | null)[];
  /** category titles this problem's hybrid traces steered with */
  categories: string[];
}

export interface ProblemTrace {
  id: string;
  question: string;
  answer: string;
  systems: (TraceCell | null)[];
}

/** One run's sample of one problem; `trace` holds per-token records (hybrid runs), else null. */
export interface TraceCell extends SystemCell {
  text: string;
  finishReason: string | null;
  trace: TraceToken[] | null;
}

/** Turns token ids into text (a tokenizer of the run's base model), when one is known. */
export type Decode = (id: number) => string;

interface StoredRecord {
  text?: unknown;
  steered?: unknown;
  latent?: unknown;
  title?: unknown;
  coefficient?: unknown;
  window?: unknown;
  vector?: unknown;
  baseGreedy?: unknown;
  candidates?: unknown;
  chosen?: unknown;
  reachedThinking?: unknown;
}

function records(annotations: unknown): StoredRecord[] | null {
  const list = Array.isArray(annotations)
    ? annotations
    : annotations && typeof annotations === 'object' && Array.isArray((annotations as { records?: unknown }).records)
      ? (annotations as { records: unknown[] }).records
      : null;
  return list ? list.filter((r): r is StoredRecord => r !== null && typeof r === 'object') : null;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function traceToken(r: StoredRecord, decode: Decode | null): TraceToken {
  const t: TraceToken = { text: typeof r.text === 'string' ? r.text : '' };
  const tokenText = (id: unknown) => (typeof id !== 'number' ? '?' : decode ? decode(id) : `#${id}`);
  if (r.steered === true) {
    t.steered = true;
    t.latent = num(r.latent) ?? null;
    t.title = typeof r.title === 'string' ? r.title : null;
    t.coefficient = num(r.coefficient);
    t.window = num(r.window);
    if (typeof r.vector === 'string') t.vector = r.vector;
    t.baseText = tokenText(r.baseGreedy);
    if (Array.isArray(r.candidates)) {
      t.candidates = r.candidates.map(
        (c: { token?: unknown; coefficient?: unknown; window?: unknown; logp?: unknown }) => ({
          text: tokenText(c.token),
          coefficient: num(c.coefficient) ?? 0,
          window: num(c.window) ?? 0,
          logp: num(c.logp) ?? null,
        }),
      );
      t.chosen = num(r.chosen);
    }
    if (typeof r.reachedThinking === 'boolean') t.reachedThinking = r.reachedThinking;
  }
  return t;
}

/** A steered token's category as the filters and colours name it. */
export function categoryName(t: TraceToken): string {
  return t.title ?? `latent ${t.latent ?? '?'}`;
}

/** The run stores of one viewer session, read once at start (a viewer shows a snapshot). */
export class ViewerData {
  readonly runs: ViewerRun[] = [];
  readonly problems: ProblemItem[] = [];
  private readonly traces = new Map<string, ProblemTrace>();

  constructor(paths: string[], decode: (run: number) => Decode | null = () => null) {
    const byId = new Map<string, ProblemTrace>();
    const order: string[] = [];
    paths.forEach((path, k) => {
      const store = RunStore.openReadonly(path);
      try {
        const graders = store.graders();
        const grader =
          typeof store.config.grader === 'string' && graders.includes(store.config.grader)
            ? store.config.grader
            : (graders[0] ?? null);
        this.runs.push({
          name: store.config.name,
          role: typeof store.config.role === 'string' ? store.config.role : null,
          path,
          grader,
        });
        for (const p of store.problems()) {
          if (!byId.has(p.id)) {
            byId.set(p.id, { id: p.id, question: p.question, answer: p.answer, systems: [] });
            order.push(p.id);
          }
        }
        const verdict = new Map<string, boolean>();
        if (grader) for (const g of store.grades(grader)) if (g.sampleIndex === 0) verdict.set(g.problemId, g.correct);
        const dec = decode(k);
        for (const g of store.generations()) {
          if (g.sampleIndex !== 0) continue;
          const trace = byId.get(g.problemId);
          if (!trace) continue;
          const recs = records(g.annotations);
          const tokens = recs ? recs.map((r) => traceToken(r, dec)) : null;
          trace.systems[k] = {
            text: g.text,
            finishReason: g.finishReason,
            trace: tokens,
            correct: verdict.get(g.problemId) ?? null,
            length: g.completionTokens ?? (tokens ? tokens.length : null),
            steered: g.steeredTokens ?? (tokens ? tokens.filter((t) => t.steered).length : null),
          };
        }
      } finally {
        store.close();
      }
    });
    for (const id of order) {
      const t = byId.get(id)!;
      for (let k = 0; k < paths.length; k++) t.systems[k] ??= null;
      this.traces.set(id, t);
      const categories = new Set<string>();
      for (const s of t.systems) {
        for (const tok of s?.trace ?? []) if (tok.steered) categories.add(categoryName(tok));
      }
      this.problems.push({
        id,
        question: t.question,
        answer: t.answer,
        systems: t.systems.map((s) => (s ? { correct: s.correct, length: s.length, steered: s.steered } : null)),
        categories: [...categories].sort(),
      });
    }
  }

  trace(id: string): ProblemTrace | undefined {
    return this.traces.get(id);
  }
}
