// The offline judge: the paper's three autograder metrics (docs/method.md §2.4) with a bag-of-words reader
// instead of an LLM, so (layer, K) can be selected without one.

/** Lower-cased words, numbers as `<num>`, and every other non-space character as its own token. */
export function lexicalTokens(sentence: string): string[] {
  return (sentence.toLowerCase().match(/\p{L}+|\p{N}+|[^\s\p{L}\p{N}]/gu) ?? []).map((t) =>
    /^\p{N}+$/u.test(t) ? '<num>' : t,
  );
}

export interface LexicalScores {
  /** Macro F1 of a per-category naive-Bayes reader (this category vs the rest, equal priors). */
  f1: number;
  /** Mean fit of a sentence to its category: cosine between its tf-idf vector and the category's profile. */
  completeness: number;
  /** Share of category pairs whose tf-idf word profiles have 1 − cos > 0.5. */
  orthogonality: number;
  /** mean(f1, completeness, orthogonality), the offline final score. */
  final: number;
}

/**
 * Offline analogue of the paper's final score (§2.4), for selecting (layer, K) without an LLM. Each
 * category is "described" by its sentences' word distribution (multinomial, add-½ smoothing) and read
 * back by naive Bayes instead of an LLM:
 *  - F1: for each category, sentences are classified in/out by the log-likelihood ratio of its
 *    distribution against the other categories' pooled distribution; macro F1 over used categories;
 *  - completeness: how well a sentence fits its category, the cosine between its tf-idf vector and the
 *    category's tf-idf profile (mean word frequencies × idf), averaged over sentences;
 *  - orthogonality: pairs of categories whose tf-idf profiles differ (1 − cosine > 0.5), as a share.
 * Splitting one kind of sentence over several latents makes their profiles alike (orthogonality and
 * F1 fall); merging different kinds blurs a profile (completeness falls).
 */
export class LexicalJudge {
  private readonly docs: Int32Array[];
  private readonly vocab: number;
  private readonly idf: Float64Array;

  constructor(readonly sentences: readonly string[]) {
    const ids = new Map<string, number>();
    this.docs = sentences.map((s) =>
      Int32Array.from(lexicalTokens(s), (t) => {
        let id = ids.get(t);
        if (id === undefined) {
          id = ids.size;
          ids.set(t, id);
        }
        return id;
      }),
    );
    this.vocab = Math.max(1, ids.size);
    const df = new Float64Array(this.vocab);
    for (const d of this.docs) for (const v of new Set(d)) df[v]++;
    const n = Math.max(1, sentences.length);
    this.idf = Float64Array.from(df, (x) => (x > 0 ? Math.log(n / x) : 0));
  }

  score(labels: ArrayLike<number>, k: number): LexicalScores {
    const V = this.vocab;
    const n = this.docs.length;
    const alpha = 0.5;
    const counts = Array.from({ length: k }, () => new Float64Array(V));
    const totals = new Float64Array(k);
    const sizes = new Float64Array(k);
    const all = new Float64Array(V);
    this.docs.forEach((d, i) => {
      const c = labels[i];
      sizes[c]++;
      for (const v of d) {
        counts[c][v]++;
        all[v]++;
      }
      totals[c] += d.length;
    });
    const grand = totals.reduce((a, b) => a + b, 0);
    const live = [...Array(k).keys()].filter((c) => sizes[c] > 0);
    const logp = counts.map((cnt, c) => Float64Array.from(cnt, (x) => Math.log((x + alpha) / (totals[c] + alpha * V))));

    let f1 = 0;
    for (const c of live) {
      const rest = Float64Array.from(all, (x, v) =>
        Math.log((x - counts[c][v] + alpha) / (grand - totals[c] + alpha * V)),
      );
      let tp = 0;
      let fp = 0;
      let fn = 0;
      this.docs.forEach((d, i) => {
        let llr = 0;
        for (const v of d) llr += logp[c][v] - rest[v];
        const inside = labels[i] === c;
        if (llr > 0 && inside) tp++;
        else if (llr > 0) fp++;
        else if (inside) fn++;
      });
      const precision = tp + fp ? tp / (tp + fp) : 0;
      const recall = tp + fn ? tp / (tp + fn) : 0;
      f1 += precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    }
    f1 = live.length ? f1 / live.length : 0;

    const profiles = live.map((c) =>
      Float64Array.from(counts[c], (x, v) => (x / Math.max(1, totals[c])) * this.idf[v]),
    );
    let pairs = 0;
    let apart = 0;
    for (let a = 0; a < profiles.length; a++) {
      for (let b = a + 1; b < profiles.length; b++) {
        let dot = 0;
        let na = 0;
        let nb = 0;
        for (let v = 0; v < V; v++) {
          dot += profiles[a][v] * profiles[b][v];
          na += profiles[a][v] ** 2;
          nb += profiles[b][v] ** 2;
        }
        const cos = na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
        pairs++;
        if (1 - cos > 0.5) apart++;
      }
    }
    const orthogonality = pairs ? apart / pairs : 1;

    // Completeness: how well each sentence fits its category's profile (cosine of tf-idf vectors).
    const norms = profiles.map((p) => Math.sqrt(p.reduce((acc, x) => acc + x * x, 0)));
    const slot = new Int32Array(k).fill(-1);
    live.forEach((c, j) => {
      slot[c] = j;
    });
    let completeness = 0;
    const tf = new Map<number, number>();
    this.docs.forEach((d, i) => {
      const j = slot[labels[i]];
      tf.clear();
      for (const v of d) tf.set(v, (tf.get(v) ?? 0) + 1);
      let dot = 0;
      let sq = 0;
      for (const [v, c] of tf) {
        const w = c * this.idf[v];
        dot += w * profiles[j][v];
        sq += w * w;
      }
      if (sq > 0 && norms[j] > 0) completeness += dot / (Math.sqrt(sq) * norms[j]);
    });
    completeness = n ? completeness / n : 0;
    return { f1, completeness, orthogonality, final: (f1 + completeness + orthogonality) / 3 };
  }
}
