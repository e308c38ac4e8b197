// Decisions of one hybrid step, shared by the fast loop and the reference so that both decide
// with the same arithmetic: greedy tokens with their margins, the guardrail's scores and its
// first-in-grid-order choice.
import type { Bridge } from './bridge.ts';
import type { Candidate } from './options.ts';

/** Greedy token (first index on ties) and its lead over the runner-up (0 on a tie). */
export function argmaxMargin(x: Float32Array): { id: number; margin: number } {
  let best = 0;
  let second = Number.NEGATIVE_INFINITY;
  for (let i = 1; i < x.length; i++) {
    if (x[i] > x[best]) {
      second = x[best];
      best = i;
    } else if (x[i] > second) second = x[i];
  }
  return { id: best, margin: x[best] - second };
}

/** The thinking model's next-token log-probabilities at one step. */
export class ThinkingScores {
  private lse: number;
  /** the largest log-probability any token has (that of the greedy token) */
  readonly max: number;

  constructor(
    readonly logits: Float32Array,
    greedy: number,
  ) {
    const top = logits[greedy];
    let s = 0;
    for (let i = 0; i < logits.length; i++) s += Math.exp(logits[i] - top);
    this.lse = top + Math.log(s);
    this.max = top - this.lse;
  }

  /** log p(id); −Infinity for id −1 (an empty re-encoding) */
  logp(id: number): number {
    return id < 0 ? Number.NEGATIVE_INFINITY : this.logits[id] - this.lse;
  }
}

/** A candidate base token scored by the thinking model (the first token of its re-encoding). */
export function scoreCandidate(
  bridge: Bridge,
  scores: ThinkingScores,
  coefficient: number,
  window: number,
  token: number,
): Candidate {
  return { coefficient, window, token, logp: scores.logp(bridge.scoreToken(token)) };
}

/** Index of the highest-scoring candidate, the first in grid order on ties (the paper's strict <). */
export function chooseCandidate(cands: Candidate[]): number {
  let best = 0;
  for (let i = 1; i < cands.length; i++) if (cands[i].logp > cands[best].logp) best = i;
  return best;
}

/** How far the chosen candidate leads the best candidate scored by another thinking token. */
export function guardrailMargin(bridge: Bridge, cands: Candidate[], chosen: number): number {
  const win = bridge.scoreToken(cands[chosen].token);
  let other = Number.NEGATIVE_INFINITY;
  for (const c of cands) if (bridge.scoreToken(c.token) !== win && c.logp > other) other = c.logp;
  const m = cands[chosen].logp - other;
  return Number.isNaN(m) ? 0 : m;
}

/** The top-n token ids of logits, best first (ties: lower id first). */
export function topTokens(logits: Float32Array, n: number): number[] {
  const k = Math.min(n, logits.length);
  const ids: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    if (ids.length < k) {
      ids.push(i);
      if (ids.length === k) ids.sort((a, b) => logits[b] - logits[a] || a - b);
    } else if (logits[i] > logits[ids[k - 1]]) {
      let j = k - 1;
      while (j > 0 && logits[i] > logits[ids[j - 1]]) j--;
      ids.splice(j, 0, i);
      ids.pop();
    }
  }
  return ids;
}
