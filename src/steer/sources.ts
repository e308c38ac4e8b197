// The inputs of vector training as files: the thinking model's traces (`thinkwhen traces`), their
// annotation (`thinkwhen taxonomy annotate`) and the selected taxonomy (`selection.json`).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ThinkwhenError } from '../errors.ts';
import { readTraces, type TraceRecord } from '../traces/generate.ts';
import { extractThinking } from '../traces/sentences.ts';
import { type ExampleSource, parseAnnotatedThinking } from './examples.ts';

export interface AnnotatedRecord {
  question_id: string;
  annotated_thinking: string;
}

/** The parts of a taxonomy's selection.json the vectors need. */
export interface TaxonomySelection {
  layer: number;
  k: number;
  sae: string;
  metric?: string;
  categories: Array<{ id: number; title: string; size?: number; majorityType?: string }>;
}

export function readJsonl<T>(path: string, what: string, fix: string): T[] {
  if (!existsSync(path)) throw new ThinkwhenError('FILE_NOT_FOUND', `${what} not found: ${path}`, fix);
  const out: T[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      try {
        out.push(JSON.parse(line) as T);
      } catch {
        throw new ThinkwhenError('BAD_JSONL', `${path} line ${i + 1} is not JSON`, fix);
      }
    });
  return out;
}

export function readSelectionFile(dir: string): TaxonomySelection {
  const path = join(dir, 'selection.json');
  if (!existsSync(path)) {
    throw new ThinkwhenError(
      'NO_TAXONOMY',
      `${dir} has no selection.json`,
      'pass the taxonomy directory after `thinkwhen taxonomy score --dir DIR`',
    );
  }
  const s = JSON.parse(readFileSync(path, 'utf8')) as TaxonomySelection;
  if (!Number.isInteger(s.k) || !Array.isArray(s.categories)) {
    throw new ThinkwhenError('BAD_TAXONOMY', `${path} lacks k or categories`, 'rerun `thinkwhen taxonomy score`');
  }
  return s;
}

/** Every latent of the selected SAE with its title (latents without a category entry get 'latent k'). */
export function latentsOf(s: TaxonomySelection): Array<{ latent: number; title: string }> {
  const titles = new Map(s.categories.map((c) => [c.id, c.title]));
  return Array.from({ length: s.k }, (_, latent) => ({ latent, title: titles.get(latent) ?? `latent ${latent}` }));
}

/**
 * Joins traces and their annotation into example sources. `thinking` names the text the annotation
 * was made on: 'marker' = the paper's thinking span of the full response (default), 'generated' =
 * the model's output (models without <think>, like the organism).
 */
export function exampleSources(
  traces: readonly TraceRecord[],
  annotated: readonly AnnotatedRecord[],
  thinking: 'marker' | 'generated' = 'marker',
): ExampleSource[] {
  const byId = new Map(traces.map((t) => [t.id, t]));
  const out: ExampleSource[] = [];
  const missing: string[] = [];
  for (const a of annotated) {
    const t = byId.get(a.question_id);
    if (!t) {
      missing.push(a.question_id);
      continue;
    }
    const text = thinking === 'generated' ? extractThinking(t.generated).text : t.thinking;
    const segments = parseAnnotatedThinking(a.annotated_thinking ?? '');
    const lost = segments.find((s) => !text.includes(s.text));
    if (lost) {
      throw new ThinkwhenError(
        'ANNOTATION_MISMATCH',
        `trace ${t.id}: the annotated sentence ${JSON.stringify(lost.text.slice(0, 60))} is not in its thinking text (--thinking ${thinking})`,
        `annotate and train with the same --thinking choice (marker or generated)`,
      );
    }
    out.push({ id: t.id, question: t.question, thinking: text, segments });
  }
  if (missing.length) {
    throw new ThinkwhenError(
      'ANNOTATION_MISMATCH',
      `${missing.length} annotated traces are not in the trace file (first: ${missing[0]})`,
      'pass the trace file the annotation was made from',
    );
  }
  return out;
}

export async function readSources(
  tracesPath: string,
  annotatedPath: string,
  thinking: 'marker' | 'generated',
): Promise<ExampleSource[]> {
  if (!existsSync(tracesPath)) {
    throw new ThinkwhenError(
      'FILE_NOT_FOUND',
      `trace file not found: ${tracesPath}`,
      'pass the file `thinkwhen traces` wrote',
    );
  }
  const traces = (await readTraces(tracesPath)).records;
  const annotated = readJsonl<AnnotatedRecord>(
    annotatedPath,
    'annotated traces',
    'pass the file `thinkwhen taxonomy annotate` wrote',
  );
  return exampleSources(traces, annotated, thinking);
}

/**
 * The label most of a latent's annotated sentences have under `labeller`. Sentences without a label
 * count too: a latent whose sentences mostly have none gets null (its rates are then 0), never
 * the label of a minority.
 */
export function majorityLabels(
  sources: readonly ExampleSource[],
  labeller: (sentence: string) => string | null,
): Map<number, string | null> {
  const counts = new Map<number, Map<string | null, number>>();
  for (const s of sources) {
    for (const seg of s.segments) {
      const label = labeller(seg.text);
      const c = counts.get(seg.latent) ?? new Map<string | null, number>();
      c.set(label, (c.get(label) ?? 0) + 1);
      counts.set(seg.latent, c);
    }
  }
  const out = new Map<number, string | null>();
  for (const [latent, c] of counts) {
    let best: string | null = null;
    let most = 0;
    for (const [label, n] of c) {
      if (n > most) [best, most] = [label, n];
    }
    out.set(latent, best);
  }
  return out;
}
