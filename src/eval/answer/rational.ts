/**
 * Exact rational numbers over BigInt. Answers such as `0.1 + 0.2` vs `3/10` or `2^{64}` must compare
 * exactly; floats would both lose digits and accept near-misses. Every result passes through `rat`, which
 * enforces the size caps of `limits.ts` before the (quadratic) gcd runs.
 */
import { chargeExactWork, GradeLimitError, MAX_EXACT_BITS } from './limits.ts';

export interface Rational {
  readonly num: bigint;
  readonly den: bigint; // always > 0, gcd(num, den) = 1
}

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) {
    const t = x % y;
    x = y;
    y = t;
  }
  return x;
}

const WORD = 1n << 64n;
const LIMIT = 1n << BigInt(MAX_EXACT_BITS);

/** Size in 64-bit words; cheap for the small numbers that nearly all answers use. */
function words(x: bigint): number {
  const a = x < 0n ? -x : x;
  return a < WORD ? 1 : Math.ceil(a.toString(16).length / 16);
}

/** Throws when `x` is past the per-intermediate cap. */
export function checkSize(x: bigint): bigint {
  if (x >= LIMIT || -x >= LIMIT) throw new GradeLimitError('exact arithmetic too large');
  return x;
}

export function rat(num: bigint, den = 1n): Rational {
  if (den === 0n) throw new RangeError('rational with zero denominator');
  if (den < 0n) {
    num = -num;
    den = -den;
  }
  checkSize(num);
  checkSize(den);
  if (den === 1n) return { num, den };
  if (num === 0n) return { num, den: 1n };
  chargeExactWork(words(num) * words(den));
  const g = gcd(num, den);
  return g > 1n ? { num: num / g, den: den / g } : { num, den };
}

export const ZERO = rat(0n);
export const ONE = rat(1n);

export const add = (a: Rational, b: Rational): Rational => rat(a.num * b.den + b.num * a.den, a.den * b.den);
export const sub = (a: Rational, b: Rational): Rational => rat(a.num * b.den - b.num * a.den, a.den * b.den);
export const mul = (a: Rational, b: Rational): Rational => rat(a.num * b.num, a.den * b.den);
export const neg = (a: Rational): Rational => ({ num: -a.num, den: a.den });
export const isZero = (a: Rational): boolean => a.num === 0n;
export const isInteger = (a: Rational): boolean => a.den === 1n;
export const equals = (a: Rational, b: Rational): boolean => a.num === b.num && a.den === b.den;
export const compare = (a: Rational, b: Rational): number => {
  const d = a.num * b.den - b.num * a.den;
  return d < 0n ? -1 : d > 0n ? 1 : 0;
};

export function div(a: Rational, b: Rational): Rational {
  if (b.num === 0n) throw new RangeError('division by zero');
  return rat(a.num * b.den, a.den * b.num);
}

function bitLength(x: bigint): number {
  return (x < 0n ? -x : x).toString(2).length;
}

/**
 * a^n for an integer n; null for 0 to a negative power. Throws `GradeLimitError` when the exact result would
 * pass the size cap (checked before anything is computed, so `10^{10^{10}}` costs nothing).
 */
export function powInt(a: Rational, n: bigint): Rational | null {
  if (n === 0n) return ONE;
  if (a.num === 0n) return n > 0n ? ZERO : null;
  const absN = n < 0n ? -n : n;
  if (a.den === 1n && (a.num === 1n || a.num === -1n)) return a.num === 1n || absN % 2n === 0n ? ONE : a;
  const size = Math.max(bitLength(a.num), bitLength(a.den));
  if (absN > BigInt(MAX_EXACT_BITS) || BigInt(size - 1) * absN > BigInt(MAX_EXACT_BITS)) {
    throw new GradeLimitError('exact arithmetic too large');
  }
  // The powers of a reduced fraction are reduced: no gcd needed.
  const num = checkSize(a.num ** absN);
  const den = checkSize(a.den ** absN);
  if (n > 0n) return { num, den };
  return num < 0n ? { num: -den, den: -num } : { num: den, den: num };
}

/** Exact integer k-th root of a non-negative bigint, or null when it is not a perfect power. */
export function intRoot(x: bigint, k: number): bigint | null {
  if (x < 0n) return null;
  if (x < 2n) return x;
  const bits = bitLength(x);
  // Newton's method from an over-estimate converges down to floor(root).
  let r = 1n << BigInt(Math.ceil(bits / k) + 1);
  const K = BigInt(k);
  for (;;) {
    const next = ((K - 1n) * r + x / r ** (K - 1n)) / K;
    if (next >= r) break;
    r = next;
  }
  return r ** K === x ? r : null;
}

/** Exact k-th root of a rational, or null when it is irrational (or negative with even k). */
export function rootRational(a: Rational, k: number): Rational | null {
  if (a.num < 0n) {
    if (k % 2 === 0) return null;
    const r = rootRational(neg(a), k);
    return r && neg(r);
  }
  const n = intRoot(a.num, k);
  const d = intRoot(a.den, k);
  return n !== null && d !== null ? rat(n, d) : null;
}

/** Parses `12`, `-3.25`, `.5`, `6.72e-5` exactly. Returns null for anything else. */
export function parseDecimal(text: string): Rational | null {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,6}))?$/.exec(text);
  if (!m) return null;
  const [, sign, intPart, fracPart = '', expPart] = m;
  if (intPart === '' && fracPart === '') return null;
  let r = rat(BigInt(`${intPart || '0'}${fracPart}`), 10n ** BigInt(fracPart.length));
  if (expPart) {
    const p = powInt(rat(10n), BigInt(expPart));
    if (!p) return null;
    r = mul(r, p);
  }
  return sign === '-' ? neg(r) : r;
}

export function toNumber(a: Rational): number {
  const n = Number(a.num);
  const d = Number(a.den);
  if (Number.isFinite(n) && Number.isFinite(d)) return n / d;
  // Scale both down to keep the quotient finite when the parts overflow separately.
  const shift = BigInt(Math.max(bitLength(a.num), bitLength(a.den)) - 1000);
  return Number(a.num >> shift) / Number(a.den >> shift);
}

/** round(a * 10^places) with halves away from zero: Math-Verify's "round both to 6 places". */
export function roundScaled(a: Rational, places: number): bigint {
  const scaled = a.num * 10n ** BigInt(places);
  const q = scaled / a.den;
  const r = scaled % a.den;
  const twice = (r < 0n ? -r : r) * 2n;
  if (twice >= a.den) return scaled < 0n ? q - 1n : q + 1n;
  return q;
}

export function formatRational(a: Rational): string {
  return a.den === 1n ? a.num.toString() : `${a.num}/${a.den}`;
}
