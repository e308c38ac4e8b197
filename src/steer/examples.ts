// Training examples for steering vectors, extracted as the paper's code does (method.md §2.6 and
// §2.9, `train-vectors/optimize_steering_vectors.py`):
//
// text   = basePrompt(question) + thinking            (the base model's prompt, then the thinking text)
// bias   : prompt = basePrompt(question), target = the whole thinking, for every annotated response
//          with ≥ 20 words; seeded shuffle; the first N.
// latent : every annotated segment but the last one of its response; located in `text` with
//          `(?:[.?!;\n]|\n\n)\s*(segment)` (first match, from the start of the text, so a repeated
//          sentence always finds its first occurrence); it must lie inside a sentence of the
//          paper's splitter; prompt = text before it, which must end at a sentence boundary; target
//          = the segment, ≥ minWords words (paper 7). Then: sort by the annotated SAE activation,
//          keep the top 4·(nTrain + nHeldout); sort by the base model's perplexity of the target
//          (hardest first); the first nTrain train, the next nHeldout are held out.
// Every sort is stable (Python's `sorted(..., reverse=True)` keeps ties in input order).
import { countWords, pyStrip, splitIntoSentences } from '../traces/sentences.ts';

/** The paper's base-model prompt (method.md §5); `{question}` is replaced by the question text. */
export const PAPER_BASE_PROMPT =
  'Task: Answer the question below. Explain your reasoning step by step.\n\n\n\nQuestion:\n{question}\n\nStep by step answer:\n';

export const basePromptFrom =
  (template: string) =>
  (question: string): string =>
    template.replaceAll('{question}', question);

export interface AnnotatedSegment {
  text: string;
  latent: number;
  /** the annotated SAE activation z_k (rounded to 2 decimals by the annotation) */
  value: number;
}

/** One annotated response: what the examples are cut from. */
export interface ExampleSource {
  id: string;
  question: string;
  /** the thinking text the annotation was made on */
  thinking: string;
  segments: AnnotatedSegment[];
}

export interface TextExample {
  traceId: string;
  /** -1 for the bias */
  latent: number;
  /** annotated activation (bias examples: 0) */
  value: number;
  prompt: string;
  target: string;
}

export interface SelectedExample extends TextExample {
  /** the base model's perplexity of the target after the prompt (natural log CE, exp) */
  perplexity: number;
}

const ANNOTATION = /\["(-?[0-9.]+(?:e[-+]?\d+)?):idx(\d+)"\]([\s\S]*?)\["end-section"\]/g;

/** The annotation stage's `["{z}:idx{k}"]sentence["end-section"]…` string, as segments. */
export function parseAnnotatedThinking(annotated: string): AnnotatedSegment[] {
  return [...annotated.matchAll(ANNOTATION)].map((m) => ({ value: Number(m[1]), latent: Number(m[2]), text: m[3] }));
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The paper's locator for category examples: no `^` alternative, so the text must follow punctuation or a newline. */
export function locateSegment(text: string, segment: string): number {
  const re = new RegExp(`(?:[.?!;\\n]|\\n\\n)\\s*(${escapeRegExp(segment)})`, 'd');
  return re.exec(text)?.indices?.[1]?.[0] ?? -1;
}

const BOUNDARY = '.?!;\n';

/** `prompt[-1]`, `prompt[-2]` or `prompt.strip()[-1]` is sentence-ending punctuation or a newline. */
export function endsAtBoundary(prompt: string): boolean {
  const stripped = pyStrip(prompt);
  const last = (s: string, k: number) => (s.length >= k ? s[s.length - k] : '');
  return [last(prompt, 1), last(prompt, 2), last(stripped, 1)].some((c) => c !== '' && BOUNDARY.includes(c));
}

export interface CategoryExtractOptions {
  basePrompt: (question: string) => string;
  /** paper 7 */
  minWords: number;
}

/** Every usable segment of every response, grouped by latent id (method.md §2.6 steps 1–2). */
export function categoryExamples(
  sources: readonly ExampleSource[],
  o: CategoryExtractOptions,
): Map<number, TextExample[]> {
  const out = new Map<number, TextExample[]>();
  for (const src of sources) {
    const text = o.basePrompt(src.question) + src.thinking;
    const sentences = splitIntoSentences(text, { minWords: 0 }).map((s) => s.text);
    for (const seg of src.segments.slice(0, -1)) {
      const pos = locateSegment(text, seg.text);
      if (pos < 0) continue;
      if (!sentences.some((s) => s.includes(seg.text))) continue;
      const prompt = text.slice(0, pos);
      if (!endsAtBoundary(prompt) || countWords(seg.text) < o.minWords) continue;
      const list = out.get(seg.latent) ?? [];
      list.push({ traceId: src.id, latent: seg.latent, value: seg.value, prompt, target: seg.text });
      out.set(seg.latent, list);
    }
  }
  return out;
}

export interface BiasExtractOptions {
  basePrompt: (question: string) => string;
  /** paper 20 */
  minWords?: number;
  n: number;
  /** a permutation of 0..len-1 (the paper: random.seed(42); random.shuffle) */
  shuffle: (n: number) => number[];
}

/** The bias vector's examples: (base prompt, whole thinking) of annotated responses. */
export function biasExamples(sources: readonly ExampleSource[], o: BiasExtractOptions): TextExample[] {
  const usable = sources
    .filter((s) => s.segments.length > 0 && countWords(s.thinking) >= (o.minWords ?? 20))
    .map((s) => ({ traceId: s.id, latent: -1, value: 0, prompt: o.basePrompt(s.question), target: s.thinking }));
  return o
    .shuffle(usable.length)
    .slice(0, o.n)
    .map((i) => usable[i]);
}

export interface SelectOptions {
  nTrain: number;
  nHeldout: number;
  /** the base model's perplexity of each example's target (prompt and target tokenised together) */
  perplexity: (examples: TextExample[]) => Promise<number[]>;
}

/** Step 3: the 4·(nTrain + nHeldout) examples with the highest annotated activation. */
export function activationPrefilter(examples: readonly TextExample[], nTrain: number, nHeldout: number): TextExample[] {
  return [...examples].sort((a, b) => b.value - a.value).slice(0, 4 * (nTrain + nHeldout));
}

/** Steps 4–5: hardest first by the base model's perplexity; the first nTrain train, the next nHeldout held out. */
export function rankByPerplexity(
  examples: readonly TextExample[],
  perplexity: readonly number[],
  nTrain: number,
  nHeldout: number,
): { train: SelectedExample[]; heldOut: SelectedExample[] } {
  const ranked = examples
    .map((e, i) => ({ ...e, perplexity: perplexity[i] }))
    .sort((a, b) => b.perplexity - a.perplexity)
    .slice(0, nTrain + nHeldout);
  return { train: ranked.slice(0, nTrain), heldOut: ranked.slice(nTrain) };
}

/** Steps 3–5 for one latent. */
export async function selectCategoryExamples(
  examples: readonly TextExample[],
  o: SelectOptions,
): Promise<{ train: SelectedExample[]; heldOut: SelectedExample[] }> {
  const kept = activationPrefilter(examples, o.nTrain, o.nHeldout);
  return rankByPerplexity(kept, await o.perplexity(kept), o.nTrain, o.nHeldout);
}
