// Equality of a run against the reference: the token streams must be identical, except where the
// reference took a decision by less than MARGIN (fp32 rounding of a KV-cached or batched decode
// differs from a full recompute in the last bits, and can flip a near-tie).
import type { TokenRecord } from './options.ts';

export const MARGIN = 1e-4;

export interface StreamComparison {
  id: string;
  /** tokens compared (up to the first difference, or the whole stream) */
  compared: number;
  /** first step where the streams differ, or −1 */
  firstDifference: number;
  /** the difference is at a step the reference decided by less than MARGIN */
  marginException: boolean;
  /** reference margin at the difference */
  margin: number | null;
}

export interface Comparison {
  /** no difference outside margin exceptions */
  equal: boolean;
  problems: number;
  comparedTokens: number;
  identical: number;
  marginExceptions: number;
  mismatches: number;
  details: StreamComparison[];
}

/** Same decision at a step: token, source, gate, steering, and for steered tokens the category and grid cell. */
export function sameStep(a: TokenRecord, b: TokenRecord): boolean {
  if (a.token !== b.token || a.source !== b.source || a.gate !== b.gate || a.steered !== b.steered) return false;
  if (!a.steered) return true;
  return a.latent === b.latent && a.coefficient === b.coefficient && a.window === b.window;
}

type Stream = { id: string; sample?: number; records: TokenRecord[] };
const key = (s: Stream) => `${s.id}\u0000${s.sample ?? 0}`;

/** Compares the streams of each (problem id, sample) of `reference` with those of `other`. */
export function compareStreams(reference: Stream[], other: Stream[]): Comparison {
  const byKey = new Map(other.map((r) => [key(r), r]));
  const details = reference.map((ref): StreamComparison => {
    const o = byKey.get(key(ref));
    const b = o?.records ?? [];
    const n = Math.max(ref.records.length, b.length);
    for (let i = 0; i < n; i++) {
      const x = ref.records[i];
      const y = b[i];
      if (x && y && sameStep(x, y)) continue;
      const margin = x?.margin ?? null;
      return {
        id: ref.id,
        compared: i,
        firstDifference: i,
        marginException: margin !== null && margin < MARGIN,
        margin,
      };
    }
    return { id: ref.id, compared: n, firstDifference: -1, marginException: false, margin: null };
  });
  const marginExceptions = details.filter((d) => d.marginException).length;
  const identical = details.filter((d) => d.firstDifference < 0).length;
  return {
    equal: identical + marginExceptions === details.length,
    problems: details.length,
    comparedTokens: details.reduce((s, d) => s + d.compared, 0),
    identical,
    marginExceptions,
    mismatches: details.length - identical - marginExceptions,
    details,
  };
}
