/** The structured form of one answer, and its canonical text (what `thinkwhen grade` prints as *_parsed). */
import type { Node, RelationOp } from './ast.ts';
import { type Exact, evaluateExact } from './evaluate.ts';
import { DEFAULT_TIME_LIMIT_MS, withinLimits } from './limits.ts';
import { formatRational, isZero } from './rational.ts';

export type Value =
  | { kind: 'expr'; node: Node }
  /** `x = 5`, `y = 2x + 3`, `-2 \le x \le 7`: sides.length = ops.length + 1. */
  | { kind: 'relation'; sides: Node[]; ops: RelationOp[] }
  /** A word answer (`\text{Evelyn}`, `east`) or a multiple-choice letter; lower-cased, spaces collapsed. */
  | { kind: 'text'; text: string }
  /** A bracketed comma list: a tuple, or (with two items) an interval `(a, b]`. */
  | { kind: 'seq'; open: '(' | '['; close: ')' | ']'; items: Value[] }
  /** Order-free: `\{1, 2\}`, a bare list `1, -2` (braces = false), or the two roots of `a \pm b`. */
  | { kind: 'set'; items: Value[]; braces: boolean }
  | { kind: 'union'; parts: Value[] }
  | { kind: 'matrix'; rows: Value[][] }
  /** Could not be parsed: compared as its normalised string only. */
  | { kind: 'raw'; text: string };

const PRECEDENCE: Record<string, number> = { '+': 1, '-': 1, '*': 2, '/': 2, '^': 3 };

export function formatNode(node: Node, parent = 0): string {
  switch (node.t) {
    case 'num': {
      const s = formatRational(node.value);
      return (s.startsWith('-') || s.includes('/')) && parent >= 2 ? `(${s})` : s;
    }
    case 'sym':
      return node.name;
    case 'const':
      return node.name === 'inf' ? 'oo' : node.name;
    case 'neg': {
      const s = `-${formatNode(node.a, 3)}`;
      return parent >= 2 ? `(${s})` : s;
    }
    case 'pm': {
      const s = node.a ? `${formatNode(node.a, 1)} ± ${formatNode(node.b, 2)}` : `±${formatNode(node.b, 3)}`;
      return parent > 0 ? `(${s})` : s;
    }
    case 'bin': {
      const p = PRECEDENCE[node.op];
      const left = formatNode(node.a, node.op === '^' ? p + 1 : p);
      const right = formatNode(node.b, node.op === '^' ? p : p + 1);
      const s =
        node.op === '*' ? `${left}*${right}` : node.op === '^' ? `${left}^${right}` : `${left} ${node.op} ${right}`;
      return p < parent ? `(${s})` : s;
    }
    case 'fn':
      if (node.name === 'factorial') return `${formatNode(node.args[0], 4)}!`;
      return `${node.name}(${node.args.map((a) => formatNode(a)).join(', ')})`;
  }
}

/** The exact value when it is cheap to get; a value past the grader's bounds prints as written. */
function exactForDisplay(node: Node): Exact | null {
  try {
    return withinLimits(DEFAULT_TIME_LIMIT_MS, () => evaluateExact(node));
  } catch (err) {
    if (err instanceof RangeError) return null;
    throw err;
  }
}

export function formatValue(value: Value): string {
  switch (value.kind) {
    case 'expr': {
      // Exact numbers print as one reduced value, so `\frac{2}{4}` and `0.5` both show `1/2`.
      const exact = exactForDisplay(value.node);
      if (exact && isZero(exact.im)) return formatRational(exact.re);
      return formatNode(value.node);
    }
    case 'relation':
      return value.sides.map((s, i) => (i === 0 ? formatNode(s) : ` ${value.ops[i - 1]} ${formatNode(s)}`)).join('');
    case 'text':
      return JSON.stringify(value.text);
    case 'seq':
      return `${value.open}${value.items.map(formatValue).join(', ')}${value.close}`;
    case 'set':
      return `{${value.items.map(formatValue).join(', ')}}`;
    case 'union':
      return value.parts.map(formatValue).join(' U ');
    case 'matrix':
      return `[${value.rows.map((r) => `[${r.map(formatValue).join(', ')}]`).join(', ')}]`;
    case 'raw':
      return `raw:${value.text}`;
  }
}
