/** The expression tree the LaTeX parser builds and the evaluators walk. */
import type { Rational } from './rational.ts';

export type BinaryOp = '+' | '-' | '*' | '/' | '^';
/** `≈` (`\approx`) only chains an approximation onto an answer: `x = \frac13 \approx 0.333`. */
export type RelationOp = '=' | '!=' | '<' | '<=' | '>' | '>=' | '≈';

export type Node =
  /** `decimal` marks a literal written with a point or exponent: it turns on 6-place rounding. */
  | { t: 'num'; value: Rational; decimal: boolean }
  | { t: 'sym'; name: string }
  | { t: 'const'; name: 'pi' | 'e' | 'i' | 'inf' }
  | { t: 'bin'; op: BinaryOp; a: Node; b: Node }
  | { t: 'neg'; a: Node }
  /** `a \pm b`; a unary `\pm b` has a = null. Expanded into two answers before comparison. */
  | { t: 'pm'; a: Node | null; b: Node }
  | { t: 'fn'; name: string; args: Node[] };

export const num = (value: Rational, decimal = false): Node => ({ t: 'num', value, decimal });
export const bin = (op: BinaryOp, a: Node, b: Node): Node => ({ t: 'bin', op, a, b });

/** Calls `visit` on every node (pre-order). */
export function walk(node: Node, visit: (n: Node) => void): void {
  visit(node);
  switch (node.t) {
    case 'bin':
      walk(node.a, visit);
      walk(node.b, visit);
      break;
    case 'neg':
      walk(node.a, visit);
      break;
    case 'pm':
      if (node.a) walk(node.a, visit);
      walk(node.b, visit);
      break;
    case 'fn':
      for (const a of node.args) walk(a, visit);
      break;
  }
}

export function someNode(node: Node, test: (n: Node) => boolean): boolean {
  let found = false;
  walk(node, (n) => {
    if (!found && test(n)) found = true;
  });
  return found;
}

export function freeSymbols(node: Node, into = new Set<string>()): Set<string> {
  walk(node, (n) => {
    if (n.t === 'sym') into.add(n.name);
  });
  return into;
}

export const hasDecimal = (node: Node): boolean => someNode(node, (n) => n.t === 'num' && n.decimal);
export const hasPlusMinus = (node: Node): boolean => someNode(node, (n) => n.t === 'pm');

/** +1 for `\infty`, -1 for `-\infty`, 0 otherwise. */
export function infinitySign(node: Node): number {
  if (node.t === 'const' && node.name === 'inf') return 1;
  if (node.t === 'neg') return -infinitySign(node.a);
  return 0;
}

/** Expands every `\pm` into both signs; capped so `a\pm b\pm c...` cannot blow up. */
export function expandPlusMinus(node: Node, limit = 16): Node[] {
  const go = (n: Node): Node[] => {
    switch (n.t) {
      case 'pm': {
        const bs = go(n.b);
        const as: (Node | null)[] = n.a ? go(n.a) : [null];
        const out: Node[] = [];
        for (const a of as)
          for (const b of bs) {
            out.push(a ? bin('+', a, b) : b, a ? bin('-', a, b) : { t: 'neg', a: b });
            if (out.length > limit) throw new RangeError('too many \\pm alternatives');
          }
        return out;
      }
      case 'bin': {
        const out: Node[] = [];
        for (const a of go(n.a))
          for (const b of go(n.b)) {
            out.push(bin(n.op, a, b));
            if (out.length > limit) throw new RangeError('too many \\pm alternatives');
          }
        return out;
      }
      case 'neg':
        return go(n.a).map((a) => ({ t: 'neg', a }));
      case 'fn': {
        let combos: Node[][] = [[]];
        for (const arg of n.args) {
          const next: Node[][] = [];
          for (const c of combos) for (const v of go(arg)) next.push([...c, v]);
          if (next.length > limit) throw new RangeError('too many \\pm alternatives');
          combos = next;
        }
        return combos.map((args) => ({ t: 'fn', name: n.name, args }));
      }
      default:
        return [n];
    }
  };
  return go(node);
}
