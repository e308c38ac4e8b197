// The two tokenizers of a hybrid pair: the gate's token comparison and the paper's
// cross-tokenizer bridge (decode the emitted token, re-encode the text on both sides without
// special tokens; docs/method.md §2.7 step 5, A12).
import type { Model } from '../engine/index.ts';
import type { GateMode } from './options.ts';

/** What one emitted token appends: its text and the ids each model is fed. */
export interface Bridged {
  text: string;
  baseIds: number[];
  thinkIds: number[];
}

/** True when both models map every id to the same bytes (then ids and strings gate alike). */
export function identicalVocabularies(a: Model, b: Model): boolean {
  if (a.info.nVocab !== b.info.nVocab) return false;
  for (let id = 0; id < a.info.nVocab; id++) {
    if (!Buffer.from(a.tokenBytes(id)).equals(b.tokenBytes(id))) return false;
  }
  return true;
}

export class Bridge {
  /** how the gate compares: 'ids' or 'strings' ('auto' resolved) */
  readonly gate: 'ids' | 'strings';
  readonly identical: boolean;
  private fromBaseCache = new Map<number, Bridged>();
  private fromThinkingCache = new Map<number, Bridged>();

  constructor(
    readonly base: Model,
    readonly thinking: Model,
    mode: GateMode,
  ) {
    this.identical = identicalVocabularies(base, thinking);
    this.gate = mode === 'auto' ? (this.identical ? 'ids' : 'strings') : mode;
  }

  /** The gate: do the two greedy tokens agree? */
  agree(baseToken: number, thinkingToken: number): boolean {
    if (this.gate === 'ids') return baseToken === thinkingToken;
    return Buffer.from(this.base.tokenBytes(baseToken)).equals(this.thinking.tokenBytes(thinkingToken));
  }

  /** A base token, decoded and re-encoded on both sides (cached: tokenization is deterministic). */
  fromBase(token: number): Bridged {
    let b = this.fromBaseCache.get(token);
    if (!b) {
      b = this.bridge(this.base.detokenize([token]));
      this.fromBaseCache.set(token, b);
    }
    return b;
  }

  /** A thinking token (the oracle policy emits these). */
  fromThinking(token: number): Bridged {
    let b = this.fromThinkingCache.get(token);
    if (!b) {
      b = this.bridge(this.thinking.detokenize([token]));
      this.fromThinkingCache.set(token, b);
    }
    return b;
  }

  private bridge(text: string): Bridged {
    const enc = (m: Model) => Array.from(m.tokenize(text, { addSpecial: false, parseSpecial: true }));
    return { text, baseIds: enc(this.base), thinkIds: enc(this.thinking) };
  }

  /** The thinking token a base candidate is scored by: the first of its re-encoding, or −1 when empty. */
  scoreToken(baseToken: number): number {
    const ids = this.fromBase(baseToken).thinkIds;
    return ids.length ? ids[0] : -1;
  }
}
