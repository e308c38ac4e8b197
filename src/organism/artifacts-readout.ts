// The organism's SAE is chosen by its *readout*: the hybrid (docs/hybrid.md) reads the category from the
// thinking model's single last-token activation wherever the two models' greedy tokens differ, while the
// SAE was trained on sentence means. The readout measures that use directly: on the thinking model's own
// train-split traces, teacher-forced through both models, at every position where the base model's greedy
// token differs from the thinking model's, does the SAE's argmax on that position's activation equal the
// label the SAE gives (annotation rule: raw mean of rows ts−1 … te−1) to the sentence the thinking
// model's next token belongs to? docs/demo.md has the measurements that made this the organism's rule.
import type { Context, Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { loadSae, type TopKSae } from '../taxonomy/sae.ts';
import type { TraceRecord } from '../traces/generate.ts';
import { encodePrompt, encodeText } from './vocab.ts';

export interface ReadoutEntry {
  layer: number;
  k: number;
  /** the SAE file (as the grid names it) */
  path: string;
}

export interface ReadoutResult extends ReadoutEntry {
  /** share of disagreement positions whose token argmax equals the sentence's label */
  readout: number;
  /** the same at positions that start a sentence (the thinking model is about to begin a new step) */
  boundary: number;
  /** and inside a sentence */
  inside: number;
}

export interface Readout {
  /** disagreement positions (boundary + inside) */
  positions: number;
  boundaryPositions: number;
  entries: ReadoutResult[];
}

/** ids of a trace as the hybrid feeds them (chat prompt + generated text) and each line's token span */
function traceIds(t: TraceRecord): {
  ids: number[];
  promptLength: number;
  spans: Array<{ start: number; end: number }>;
} {
  const ids = encodePrompt(t.question);
  const promptLength = ids.length;
  const spans: Array<{ start: number; end: number }> = [];
  const lines = t.generated.split('\n');
  lines.forEach((line, i) => {
    const start = ids.length;
    ids.push(...encodeText(line));
    spans.push({ start, end: ids.length });
    if (i < lines.length - 1) ids.push(...encodeText('\n'));
  });
  return { ids, promptLength, spans };
}

const argmax = (z: ArrayLike<number>, from = 0, n = z.length): number => {
  let best = 0;
  for (let i = 1; i < n; i++) if (z[from + i] > z[from + best]) best = i;
  return best;
};

/** One teacher-forced pass: the greedy token after every position and, if asked, the rows of `layers`. */
async function forward(
  ctx: Context,
  ids: number[],
  layers: readonly number[],
): Promise<{ greedy: Int32Array; rows: Map<number, Float32Array[]> }> {
  const greedy = new Int32Array(ids.length);
  const rows = new Map<number, Float32Array[]>(layers.map((l) => [l, []]));
  const seq = ctx.sequence();
  try {
    for (let start = 0; start < ids.length; start += ctx.nBatch) {
      const end = Math.min(ids.length, start + ctx.nBatch);
      const batch = [];
      for (let p = start; p < end; p++) batch.push({ token: ids[p], seq, pos: p, logits: true });
      const all = Array.from({ length: end - start }, (_, i) => i);
      const hooks = layers.map((l) => ({ hook: `blocks.${l}.hook_resid_post`, rows: all, capture: true }));
      const out = await ctx.decode(batch, hooks);
      out.logits.forEach((l, i) => {
        greedy[start + out.logitRows[i]] = argmax(l);
      });
      layers.forEach((l, k) => {
        rows.get(l)!.push(...out.captures[k]!.map((r) => Float32Array.from(r)));
      });
    }
  } finally {
    seq.dispose();
  }
  return { greedy, rows };
}

/** The readout of every SAE of the grid on `traces` (the thinking model's own greedy traces). */
export async function measureReadout(
  models: { base: Model; thinking: Model },
  traces: readonly TraceRecord[],
  entries: readonly ReadoutEntry[],
  opts: { threads?: number } = {},
): Promise<Readout> {
  if (!entries.length) {
    throw new ThinkwhenError(
      'NO_SELECTION',
      'the SAE grid is empty: nothing to choose from',
      'rerun the taxonomy chain',
    );
  }
  const saes: TopKSae[] = [];
  for (const e of entries) saes.push(await loadSae(e.path));
  const layers = [...new Set(entries.map((e) => e.layer))].sort((a, b) => a - b);
  const longest = Math.max(...traces.map((t) => traceIds(t).ids.length));
  const make = (m: Model) => m.createContext({ nCtx: longest + 1, nBatch: 512, nSeqMax: 1, threads: opts.threads });
  const bctx = make(models.base);
  const tctx = make(models.thinking);
  const hits = entries.map(() => ({ boundary: 0, inside: 0 }));
  let boundaryPositions = 0;
  let insidePositions = 0;
  try {
    for (const t of traces) {
      const { ids, promptLength, spans } = traceIds(t);
      const base = await forward(bctx, ids, []);
      const thinking = await forward(tctx, ids, layers);
      // each span's label per SAE, and the span each token belongs to (−1: a newline or the prompt)
      const spanOf = new Int32Array(ids.length).fill(-1);
      spans.forEach((s, i) => {
        for (let p = s.start; p < s.end; p++) spanOf[p] = i;
      });
      const labels = entries.map((e, j) =>
        spans.map((s) => {
          const r = thinking.rows.get(e.layer)!;
          const mean = new Float32Array(saes[j].dim);
          const n = s.end - s.start + 1; // rows s.start − 1 … s.end − 1: the annotation's one-token shift
          for (let p = s.start - 1; p < s.end; p++) for (let d = 0; d < mean.length; d++) mean[d] += r[p][d] / n;
          return argmax(saes[j].encodeDense(mean));
        }),
      );
      for (let p = promptLength - 1; p < ids.length - 1; p++) {
        const span = spanOf[p + 1];
        if (span < 0 || base.greedy[p] === thinking.greedy[p]) continue;
        const boundary = p + 1 === spans[span].start;
        if (boundary) boundaryPositions++;
        else insidePositions++;
        entries.forEach((e, j) => {
          const z = saes[j].encodeDense(thinking.rows.get(e.layer)![p]);
          if (argmax(z) === labels[j][span]) hits[j][boundary ? 'boundary' : 'inside']++;
        });
      }
    }
  } finally {
    bctx.free();
    tctx.free();
  }
  const positions = boundaryPositions + insidePositions;
  const share = (a: number, n: number) => (n ? a / n : 0);
  return {
    positions,
    boundaryPositions,
    entries: entries.map((e, j) => ({
      ...e,
      readout: share(hits[j].boundary + hits[j].inside, positions),
      boundary: share(hits[j].boundary, boundaryPositions),
      inside: share(hits[j].inside, insidePositions),
    })),
  };
}
