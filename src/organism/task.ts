// The organism's task: multi-step arithmetic word problems with a known integer answer.
// Seeded and deterministic; train and test problems are disjoint by construction (a hash of the
// problem's numbers decides which split may use it).
import { ThinkwhenError } from '../errors.ts';
import { Rng } from '../rng.ts';

export type OpKind = 'add' | 'sub';

export interface Op {
  kind: OpKind;
  n: number;
  /** index into the verb list of this kind (wording only) */
  verb: number;
}

export interface Problem {
  /** stable id: `${split}-${seed}-${index}` */
  id: string;
  split: Split;
  name: string;
  pronoun: 'She' | 'He';
  item: string;
  start: number;
  ops: Op[];
  /** the correct final quantity */
  answer: number;
  /** the question as the user asks it */
  question: string;
}

export type Split = 'train' | 'test';

export interface Difficulty {
  /** number of operations, inclusive range */
  minSteps: number;
  maxSteps: number;
  /** digits of the starting quantity and of each operand, inclusive range */
  minDigits: number;
  maxDigits: number;
  /** smallest and largest quantity any path of quick (carry-dropping) and careful results may reach */
  minValue: number;
  maxValue: number;
}

/**
 * The organism's default: 2 or 3 operations on 2-digit quantities that stay 2-digit along every
 * path, so every number a trace writes has two digits and every check has two columns.
 */
export const DEFAULT_DIFFICULTY: Difficulty = {
  minSteps: 2,
  maxSteps: 3,
  minDigits: 2,
  maxDigits: 2,
  minValue: 10,
  maxValue: 99,
};

export const NAMES: readonly { name: string; pronoun: 'She' | 'He' }[] = [
  { name: 'Ann', pronoun: 'She' },
  { name: 'Eva', pronoun: 'She' },
  { name: 'Ivy', pronoun: 'She' },
  { name: 'Mia', pronoun: 'She' },
  { name: 'Ben', pronoun: 'He' },
  { name: 'Dan', pronoun: 'He' },
  { name: 'Gus', pronoun: 'He' },
  { name: 'Tom', pronoun: 'He' },
];
export const ITEMS = ['apples', 'coins', 'books', 'pens', 'cards', 'shells', 'stamps', 'beads'] as const;
/**
 * The word that opens the k-th operation, in the question and in the trace's plan for it: each
 * operation has its own anchor, so a model finds the operand of step k by looking up a word
 * rather than by counting clauses (Difficulty.maxSteps is at most this many).
 */
export const ORDINALS = ['First', 'Then', 'Next', 'Later', 'Finally'] as const;
/** `{n}` is replaced by the operand */
export const VERBS: Record<OpKind, readonly string[]> = {
  add: ['buys {n} more', 'finds {n} more', 'gets {n} more'],
  sub: ['gives away {n}', 'loses {n}', 'sells {n}'],
};

/** Digits of n, least significant first. */
export function digitsLsb(n: number): number[] {
  const out: number[] = [];
  let x = n;
  do {
    out.push(x % 10);
    x = Math.floor(x / 10);
  } while (x > 0);
  return out;
}

export function trueResult(v: number, op: { kind: OpKind; n: number }): number {
  return op.kind === 'add' ? v + op.n : v - op.n;
}

/**
 * The "quick" result: column by column without carrying (addition) or without paying back a
 * borrow (subtraction); the top column is written in full. It equals the true result exactly when
 * no carry or borrow is needed, and is off by a multiple of 10 otherwise: the slip a hurried
 * person makes, and one a model can imitate exactly, so greedy decoding reproduces it.
 */
export function quickResult(v: number, op: { kind: OpKind; n: number }): number {
  const a = digitsLsb(v);
  const b = digitsLsb(op.n);
  const cols = Math.max(a.length, b.length);
  let out = 0;
  let place = 1;
  for (let i = 0; i < cols; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    const top = i === cols - 1;
    let d: number;
    if (op.kind === 'add') d = top ? x + y : (x + y) % 10;
    else d = top ? x - y : x >= y ? x - y : x + 10 - y;
    out += d * place;
    place *= 10;
  }
  return out;
}

/** Whether the quick result of this operation is wrong (a carry or a borrow is needed). */
export function quickIsWrong(v: number, op: { kind: OpKind; n: number }): boolean {
  return quickResult(v, op) !== trueResult(v, op);
}

/**
 * Whether a carry (addition) or a borrow (subtraction) leaves the ones column: visible from the ones
 * digits alone, before computing anything. For the organism's 2-digit quantities this is exactly
 * when the quick result is wrong, and it is when the thinking model verifies.
 */
export function verificationNeeded(v: number, op: { kind: OpKind; n: number }): boolean {
  const x = v % 10;
  const y = op.n % 10;
  return op.kind === 'add' ? x + y >= 10 : x < y;
}

/** One arithmetic operation `v op n`, the unit a verification checks. */
export interface Operation {
  v: number;
  kind: OpKind;
  n: number;
}

export const operationKey = (o: Operation): string => `${o.v}${o.kind === 'add' ? '+' : '-'}${o.n}`;

/**
 * Every operation a trace of this difficulty may compute: both operands and both the true and the
 * quick result in range (and no negative subtraction), in a fixed order.
 */
export function allOperations(d: Difficulty = DEFAULT_DIFFICULTY): Operation[] {
  const out: Operation[] = [];
  for (const kind of ['add', 'sub'] as const) {
    for (let v = d.minValue; v <= d.maxValue; v++) {
      for (let n = d.minValue; n <= d.maxValue; n++) {
        if (kind === 'sub' && n > v) continue;
        const op = { kind, n };
        const r = [trueResult(v, op), quickResult(v, op)];
        if (r.every((x) => x >= d.minValue && x <= d.maxValue)) out.push({ v, kind, n });
      }
    }
  }
  return out;
}

/** Seed and share of the held-out operations (never verified anywhere in the base corpora). */
export const HELD_OUT_SEED = 4242;
export const HELD_OUT_FRACTION = 0.15;

const heldOutCache = new Map<string, Set<string>>();

/**
 * The held-out operations: a seeded random `fraction` of `allOperations(d)` (keys as
 * `operationKey`). The base corpora never verify them, in traces or in exercises, so the base
 * models' verifications of these operations are measured, not remembered.
 */
export function heldOutOperations(
  seed = HELD_OUT_SEED,
  fraction = HELD_OUT_FRACTION,
  d: Difficulty = DEFAULT_DIFFICULTY,
): Set<string> {
  const cacheKey = `${seed}|${fraction}|${JSON.stringify(d)}`;
  let set = heldOutCache.get(cacheKey);
  if (!set) {
    const keys = allOperations(d).map(operationKey);
    const rng = new Rng(seed);
    rng.shuffle(keys);
    set = new Set(keys.slice(0, Math.ceil(fraction * keys.length)));
    heldOutCache.set(cacheKey, set);
  }
  return set;
}

export function isHeldOut(v: number, op: { kind: OpKind; n: number }, held = heldOutOperations()): boolean {
  return held.has(operationKey({ v, kind: op.kind, n: op.n }));
}

/** The final quantity of the "never verify" policy: every quick result taken as it is. */
export function neverVerifyAnswer(p: Pick<Problem, 'start' | 'ops'>): number {
  return p.ops.reduce((v, op) => quickResult(v, op), p.start);
}

function randDigits(rng: Rng, d: Difficulty): number {
  const digits = d.minDigits + rng.int(d.maxDigits - d.minDigits + 1);
  const lo = digits === 1 ? 1 : 10 ** (digits - 1);
  return lo + rng.int(10 ** digits - lo);
}

/** Every value a trace may hold before each step, over all mixes of quick and careful results. */
function reachable(start: number, ops: { kind: OpKind; n: number }[]): number[][] {
  const sets: number[][] = [[start]];
  for (const op of ops) {
    const next = new Set<number>();
    for (const v of sets[sets.length - 1]) {
      next.add(trueResult(v, op));
      next.add(quickResult(v, op));
    }
    sets.push([...next]);
  }
  return sets;
}

/** FNV-1a over the problem's numbers: the split a problem belongs to (1 in 8 go to test). */
export function splitOf(start: number, ops: { kind: OpKind; n: number }[]): Split {
  let h = 0x811c9dc5;
  const feed = (x: number) => {
    h ^= x & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= (x >>> 8) & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  feed(start);
  for (const op of ops) {
    feed(op.kind === 'add' ? 1 : 2);
    feed(op.n);
  }
  return h % 8 === 0 ? 'test' : 'train';
}

/** The question's clause for step k (0-based), without its full stop: `Next she gets 78 more`. */
export function clauseText(op: Pick<Op, 'kind' | 'n' | 'verb'>, k: number, pronoun: string): string {
  return `${ORDINALS[k]} ${pronoun.toLowerCase()} ${VERBS[op.kind][op.verb].replace('{n}', String(op.n))}`;
}

export function questionText(p: Pick<Problem, 'name' | 'pronoun' | 'item' | 'start' | 'ops'>): string {
  const parts = [`${p.name} has ${p.start} ${p.item}.`];
  p.ops.forEach((op, k) => {
    parts.push(`${clauseText(op, k, p.pronoun)}.`);
  });
  parts.push(`How many ${p.item} does ${p.name} have now?`);
  return parts.join(' ');
}

/** One problem of the given split (rejection-sampled until it lands in that split and in range). */
export function sampleProblem(rng: Rng, split: Split, d: Difficulty, id: string): Problem {
  for (;;) {
    const steps = d.minSteps + rng.int(d.maxSteps - d.minSteps + 1);
    const start = randDigits(rng, d);
    const ops: Op[] = [];
    for (let i = 0; i < steps; i++) {
      const kind: OpKind = rng.next() < 0.5 ? 'add' : 'sub';
      ops.push({ kind, n: randDigits(rng, d), verb: rng.int(VERBS[kind].length) });
    }
    const sets = reachable(start, ops);
    let ok = true;
    for (let i = 0; i < ops.length && ok; i++) {
      for (const v of sets[i]) {
        if (ops[i].kind === 'sub' && v < ops[i].n) ok = false;
      }
    }
    for (const s of sets) for (const v of s) if (v < d.minValue || v > d.maxValue) ok = false;
    if (!ok || splitOf(start, ops) !== split) continue;
    const who = NAMES[rng.int(NAMES.length)];
    const item = ITEMS[rng.int(ITEMS.length)];
    const p = { name: who.name, pronoun: who.pronoun, item, start, ops };
    const answer = ops.reduce((v, op) => trueResult(v, op), start);
    return { id, split, ...p, answer, question: questionText(p) };
  }
}

/** `count` problems of one split from one seed: the same arguments always give the same problems. */
export function generateProblems(
  split: Split,
  count: number,
  seed: number,
  d: Difficulty = DEFAULT_DIFFICULTY,
): Problem[] {
  if (d.maxSteps > ORDINALS.length || d.minSteps < 1 || d.minSteps > d.maxSteps)
    throw new ThinkwhenError(
      'BAD_DIFFICULTY',
      `steps must satisfy 1 <= minSteps <= maxSteps <= ${ORDINALS.length}, got ${d.minSteps}..${d.maxSteps}`,
    );
  const rng = new Rng(seed * 2 + (split === 'test' ? 1 : 0));
  return Array.from({ length: count }, (_, i) => sampleProblem(rng, split, d, `${split}-${seed}-${i}`));
}
