/**
 * Category titles without an LLM: the words most distinctive of each category against all the others.
 * A word's score for category c is p_c(w) · ln(p_c(w) / p_rest(w)) (its contribution to the KL divergence
 * of c's word distribution from the rest's, add-α smoothed), counted once per sentence (document
 * frequency), so one long sentence cannot dominate. Words in fewer than `minSentences` sentences of the
 * category and common function words are skipped. Deterministic; ties break alphabetically.
 */
import type { Category } from './labelling.ts';

const STOPWORDS = new Set(
  (
    'a an the and or but if then so of to in on at by for with from as is are was were be been being it its ' +
    'this that these those i we you he she they me my our your his her their them us do does did done have has ' +
    'had not no yes can could would should will shall may might must just also than too very which what who ' +
    'whom whose when where why how there here into onto about over under up down out off all any both each few ' +
    'more most other some such only own same s t am let lets'
  ).split(' '),
);

export function words(sentence: string): string[] {
  return (sentence.toLowerCase().match(/[\p{L}\p{N}]+(?:'[\p{L}]+)?/gu) ?? []).filter(
    (w) => !STOPWORDS.has(w) && !/^\p{N}+$/u.test(w),
  );
}

export interface OfflineCategory extends Category {
  topWords: Array<{ word: string; score: number }>;
  size: number;
}

export function offlineCategoryLabels(
  sentences: readonly string[],
  labels: ArrayLike<number>,
  latents: number,
  options: { topWords?: number; minSentences?: number; alpha?: number; examples?: number } = {},
): OfflineCategory[] {
  const alpha = options.alpha ?? 0.5;
  const counts = Array.from({ length: latents }, () => new Map<string, number>());
  const totals = new Array<number>(latents).fill(0);
  const overall = new Map<string, number>();
  const members: number[][] = Array.from({ length: latents }, () => []);
  sentences.forEach((s, i) => {
    const c = labels[i];
    members[c].push(i);
    for (const w of new Set(words(s))) {
      counts[c].set(w, (counts[c].get(w) ?? 0) + 1);
      overall.set(w, (overall.get(w) ?? 0) + 1);
      totals[c]++;
    }
  });
  const vocab = overall.size || 1;
  const grand = totals.reduce((a, b) => a + b, 0);
  return Array.from({ length: latents }, (_, c) => {
    const scored: Array<{ word: string; score: number }> = [];
    for (const [w, n] of counts[c]) {
      if (n < (options.minSentences ?? 2)) continue;
      const pIn = (n + alpha) / (totals[c] + alpha * vocab);
      const pOut = ((overall.get(w) ?? 0) - n + alpha) / (grand - totals[c] + alpha * vocab);
      scored.push({ word: w, score: pIn * Math.log(pIn / pOut) });
    }
    scored.sort((a, b) => b.score - a.score || (a.word < b.word ? -1 : 1));
    const top = scored.filter((s) => s.score > 0).slice(0, options.topWords ?? 3);
    const title = top.length ? top.map((t) => t.word).join(' / ') : members[c].length ? 'Miscellaneous' : 'Unused';
    const shown = members[c].slice(0, options.examples ?? 3).map((i) => `"${sentences[i]}"`);
    const description = members[c].length
      ? `${members[c].length} sentences; most distinctive words: ${top.map((t) => t.word).join(', ') || 'none'}. Examples: ${shown.join(' ')}`
      : 'No sentence has this category as its strongest latent.';
    return { id: c, title, description, topWords: top, size: members[c].length };
  });
}
