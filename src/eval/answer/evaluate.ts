/**
 * Two evaluators for expression trees:
 * - `evaluateExact`: Gaussian rationals (a + bi with BigInt rationals), for answers built from numbers,
 *   `+ - * /`, integer powers, `i` and perfect-power roots. Returns null as soon as anything irrational appears.
 * - `evaluateFloat`: complex doubles for everything else (π, √2, trig, variables at sample points).
 */
import type { Node } from './ast.ts';
import * as Q from './rational.ts';

export interface Exact {
  re: Q.Rational;
  im: Q.Rational;
}

const real = (re: Q.Rational): Exact => ({ re, im: Q.ZERO });
const isReal = (x: Exact): boolean => Q.isZero(x.im);

function exactMul(a: Exact, b: Exact): Exact {
  return {
    re: Q.sub(Q.mul(a.re, b.re), Q.mul(a.im, b.im)),
    im: Q.add(Q.mul(a.re, b.im), Q.mul(a.im, b.re)),
  };
}

function exactDiv(a: Exact, b: Exact): Exact | null {
  const norm = Q.add(Q.mul(b.re, b.re), Q.mul(b.im, b.im));
  if (Q.isZero(norm)) return null;
  const conj = { re: b.re, im: Q.neg(b.im) };
  const top = exactMul(a, conj);
  return { re: Q.div(top.re, norm), im: Q.div(top.im, norm) };
}

function exactPow(base: Exact, n: bigint): Exact | null {
  if (isReal(base)) {
    const r = Q.powInt(base.re, n);
    return r && real(r);
  }
  const absN = n < 0n ? -n : n;
  if (absN > 256n) return null;
  let result: Exact = real(Q.ONE);
  for (let k = 0n; k < absN; k++) result = exactMul(result, base);
  return n < 0n ? exactDiv(real(Q.ONE), result) : result;
}

const MAX_EXACT_FACTORIAL = 300n;

/** Exact value of the tree, or null if it is not a Gaussian rational we can build cheaply. */
export function evaluateExact(node: Node): Exact | null {
  switch (node.t) {
    case 'num':
      return real(node.value);
    case 'const':
      return node.name === 'i' ? { re: Q.ZERO, im: Q.ONE } : null;
    case 'sym':
    case 'pm':
      return null;
    case 'neg': {
      const a = evaluateExact(node.a);
      return a && { re: Q.neg(a.re), im: Q.neg(a.im) };
    }
    case 'bin': {
      const a = evaluateExact(node.a);
      if (!a) return null;
      const b = evaluateExact(node.b);
      if (!b) return null;
      switch (node.op) {
        case '+':
          return { re: Q.add(a.re, b.re), im: Q.add(a.im, b.im) };
        case '-':
          return { re: Q.sub(a.re, b.re), im: Q.sub(a.im, b.im) };
        case '*':
          return exactMul(a, b);
        case '/':
          return exactDiv(a, b);
        case '^': {
          if (!isReal(b)) return null;
          if (Q.isInteger(b.re)) return exactPow(a, b.re.num);
          // Rational exponent with a perfect-power base: 8^{2/3} = 4.
          if (!isReal(a) || b.re.den > 64n) return null;
          const root = Q.rootRational(a.re, Number(b.re.den));
          if (!root) return null;
          const r = Q.powInt(root, b.re.num);
          return r && real(r);
        }
      }
      return null;
    }
    case 'fn': {
      const args: Exact[] = [];
      for (const arg of node.args) {
        const v = evaluateExact(arg);
        if (!v) return null;
        args.push(v);
      }
      const [x, y] = args;
      switch (node.name) {
        case 'sqrt': {
          if (!isReal(x)) return null;
          if (Q.compare(x.re, Q.ZERO) < 0) {
            const r = Q.rootRational(Q.neg(x.re), 2);
            return r && { re: Q.ZERO, im: r };
          }
          const r = Q.rootRational(x.re, 2);
          return r && real(r);
        }
        case 'root': {
          if (!isReal(x) || !isReal(y) || !Q.isInteger(y.re) || y.re.num < 1n || y.re.num > 64n) return null;
          const r = Q.rootRational(x.re, Number(y.re.num));
          return r && real(r);
        }
        case 'abs':
          return isReal(x) ? real(Q.compare(x.re, Q.ZERO) < 0 ? Q.neg(x.re) : x.re) : null;
        case 'factorial': {
          if (!isReal(x) || !Q.isInteger(x.re) || x.re.num < 0n || x.re.num > MAX_EXACT_FACTORIAL) return null;
          let f = 1n;
          for (let k = 2n; k <= x.re.num; k++) f *= k;
          return real(Q.rat(f));
        }
        case 'binom': {
          if (!isReal(x) || !isReal(y) || !Q.isInteger(x.re) || !Q.isInteger(y.re)) return null;
          const n = x.re.num;
          const k = y.re.num;
          if (k < 0n || n < 0n || k > n) return real(Q.ZERO);
          if (k > 1000n && n - k > 1000n) return null;
          const kk = k < n - k ? k : n - k;
          let r = 1n;
          for (let j = 1n; j <= kk; j++) r = Q.checkSize((r * (n - kk + j)) / j);
          return real(Q.rat(r));
        }
        case 'floor':
        case 'ceil': {
          if (!isReal(x)) return null;
          const q = x.re.num / x.re.den; // truncates toward zero
          const exact = q * x.re.den === x.re.num;
          if (exact) return real(Q.rat(q));
          const down = x.re.num < 0n ? q - 1n : q;
          return real(Q.rat(node.name === 'floor' ? down : down + 1n));
        }
      }
      return null;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Complex floating point.

export interface Complex {
  re: number;
  im: number;
}

const C = (re: number, im = 0): Complex => ({ re, im });
const NAN = C(Number.NaN, Number.NaN);

const cAdd = (a: Complex, b: Complex): Complex => C(a.re + b.re, a.im + b.im);
const cSub = (a: Complex, b: Complex): Complex => C(a.re - b.re, a.im - b.im);
const cMul = (a: Complex, b: Complex): Complex => C(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
function cDiv(a: Complex, b: Complex): Complex {
  const d = b.re * b.re + b.im * b.im;
  if (d === 0) return NAN;
  return C((a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d);
}
const cAbs = (a: Complex): number => Math.hypot(a.re, a.im);
const cExp = (a: Complex): Complex => {
  const m = Math.exp(a.re);
  return a.im === 0 ? C(m) : C(m * Math.cos(a.im), m * Math.sin(a.im));
};
const cLog = (a: Complex): Complex => C(Math.log(cAbs(a)), Math.atan2(a.im, a.re));
function cSqrt(a: Complex): Complex {
  if (a.im === 0) return a.re >= 0 ? C(Math.sqrt(a.re)) : C(0, Math.sqrt(-a.re));
  const r = cAbs(a);
  const re = Math.sqrt((r + a.re) / 2);
  const im = Math.sign(a.im) * Math.sqrt((r - a.re) / 2);
  return C(re, im);
}
function cPow(a: Complex, b: Complex): Complex {
  if (b.im === 0 && Number.isInteger(b.re) && Math.abs(b.re) <= 1024) {
    // Repeated squaring keeps (-2)^3 real and exact-ish instead of going through log.
    let n = Math.abs(b.re);
    let base = a;
    let result = C(1);
    while (n > 0) {
      if (n & 1) result = cMul(result, base);
      base = cMul(base, base);
      n >>= 1;
    }
    return b.re < 0 ? cDiv(C(1), result) : result;
  }
  if (a.im === 0 && b.im === 0 && a.re > 0) return C(a.re ** b.re);
  // Real odd roots of negatives: (-8)^{1/3} = -2, as a grader (and sympy's real_root) would read it.
  if (a.im === 0 && b.im === 0 && a.re < 0) {
    const inv = 1 / b.re;
    if (Number.isInteger(Math.round(inv)) && Math.abs(inv - Math.round(inv)) < 1e-12 && Math.round(inv) % 2 !== 0) {
      return C(-((-a.re) ** b.re));
    }
  }
  if (a.re === 0 && a.im === 0) return b.re > 0 ? C(0) : NAN;
  return cExp(cMul(b, cLog(a)));
}
const cSin = (a: Complex): Complex => C(Math.sin(a.re) * Math.cosh(a.im), Math.cos(a.re) * Math.sinh(a.im));
const cCos = (a: Complex): Complex => C(Math.cos(a.re) * Math.cosh(a.im), -Math.sin(a.re) * Math.sinh(a.im));

function realOnly(a: Complex, f: (x: number) => number): Complex {
  return Math.abs(a.im) > 1e-12 ? NAN : C(f(a.re));
}

function gammaFactorial(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 170) return Number.NaN;
  let f = 1;
  for (let k = 2; k <= n; k++) f *= k;
  return f;
}

export type Env = ReadonlyMap<string, number>;

/** Complex value of the tree with symbols bound by `env`; NaN components when undefined there. */
export function evaluateFloat(node: Node, env: Env): Complex {
  switch (node.t) {
    case 'num':
      return C(Q.toNumber(node.value));
    case 'const':
      return node.name === 'pi'
        ? C(Math.PI)
        : node.name === 'e'
          ? C(Math.E)
          : node.name === 'i'
            ? C(0, 1)
            : C(Number.POSITIVE_INFINITY);
    case 'sym': {
      const v = env.get(node.name);
      return v === undefined ? NAN : C(v);
    }
    case 'pm':
      return NAN;
    case 'neg': {
      const a = evaluateFloat(node.a, env);
      return C(-a.re, -a.im);
    }
    case 'bin': {
      const a = evaluateFloat(node.a, env);
      const b = evaluateFloat(node.b, env);
      switch (node.op) {
        case '+':
          return cAdd(a, b);
        case '-':
          return cSub(a, b);
        case '*':
          return cMul(a, b);
        case '/':
          return cDiv(a, b);
        case '^':
          return cPow(a, b);
      }
      return NAN;
    }
    case 'fn': {
      const [x, y] = node.args.map((a) => evaluateFloat(a, env));
      switch (node.name) {
        case 'sqrt':
          return cSqrt(x);
        case 'root':
          return cPow(x, cDiv(C(1), y));
        case 'abs':
          return C(cAbs(x));
        case 'sin':
          return cSin(x);
        case 'cos':
          return cCos(x);
        case 'tan':
          return cDiv(cSin(x), cCos(x));
        case 'sec':
          return cDiv(C(1), cCos(x));
        case 'csc':
          return cDiv(C(1), cSin(x));
        case 'cot':
          return cDiv(cCos(x), cSin(x));
        case 'sinh':
          return C(Math.sinh(x.re) * Math.cos(x.im), Math.cosh(x.re) * Math.sin(x.im));
        case 'cosh':
          return C(Math.cosh(x.re) * Math.cos(x.im), Math.sinh(x.re) * Math.sin(x.im));
        case 'tanh':
          return realOnly(x, Math.tanh);
        case 'arcsin':
          return realOnly(x, Math.asin);
        case 'arccos':
          return realOnly(x, Math.acos);
        case 'arctan':
          return realOnly(x, Math.atan);
        case 'exp':
          return cExp(x);
        case 'ln':
          return cLog(x);
        // `\log` without a base: contest answers mean base 10 or e inconsistently; both sides read it alike.
        case 'log':
          return cLog(x);
        case 'logb':
          return cDiv(cLog(x), cLog(y));
        case 'factorial':
          return realOnly(x, gammaFactorial);
        case 'binom':
          return realOnly(x, (n) => {
            const k = y.re;
            return gammaFactorial(n) / (gammaFactorial(k) * gammaFactorial(n - k));
          });
        case 'floor':
          return realOnly(x, Math.floor);
        case 'ceil':
          return realOnly(x, Math.ceil);
      }
      return NAN;
    }
  }
}

export const isFiniteComplex = (z: Complex): boolean => Number.isFinite(z.re) && Number.isFinite(z.im);

/** |a - b| small relative to the larger magnitude (absolute near zero). */
export function closeComplex(a: Complex, b: Complex, tol: number): boolean {
  const diff = Math.hypot(a.re - b.re, a.im - b.im);
  return diff <= tol * Math.max(1, cAbs(a), cAbs(b));
}
