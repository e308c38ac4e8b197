/**
 * Answers built from matrix environments: one matrix (`pmatrix`, `bmatrix`, `array`, … also inside
 * `\left[ … \right]`), a named one (`\mathbf{M} = …`: the last side answers), or matrix arithmetic — sums,
 * scalar multiples, products, small integer powers and `^T` — evaluated cell by cell into expression trees.
 */
import { bin, hasDecimal, type Node, num } from './ast.ts';
import { evaluateExact } from './evaluate.ts';
import { MATRIX_ENVS } from './math-spans.ts';
import { ExprParser } from './parse-expr.ts';
import * as Q from './rational.ts';
import { ParseError, type Token, tokenize } from './tokenize.ts';
import type { Value } from './value.ts';

/** Evaluation-tree size per result cell: products and powers of big matrices stop here, not in the evaluator. */
const MAX_CELL_NODES = 4000;
/** Cells whose tree reaches this size are replaced by their exact value when they have one. */
const FOLD_AT = 16;
const MAX_POWER = 16;
/** Placeholder symbol names for the matrices inside an arithmetic expression (no input can spell them). */
const PLACEHOLDER = '\u0000m';

type Cells = Value[][];
type Operand = { scalar: Node } | { matrix: Node[][] };

/** Splits on a separator at brace depth 0 (matrix rows `\\` and cells `&`). */
function splitTopLevel(s: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && s.startsWith(sep, i) && depth === 0) {
      parts.push(s.slice(from, i));
      i += sep.length - 1;
      from = i + 1;
      continue;
    }
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') depth--;
    else if (c === sep && depth === 0) {
      parts.push(s.slice(from, i));
      from = i + 1;
    }
  }
  parts.push(s.slice(from));
  return parts;
}

interface Block {
  start: number;
  end: number;
  cells: Cells;
}

/** The matrix environments at the top level of `s`, each widened over brackets that wrap it directly. */
function findBlocks(s: string, parseCell: (cell: string) => Value): Block[] {
  const blocks: Block[] = [];
  const begin = /\\begin\{([a-zA-Z]+)\}/g;
  for (let m = begin.exec(s); m; m = begin.exec(s)) {
    const name = m[1];
    if (!MATRIX_ENVS.has(name)) continue;
    const endTag = `\\end{${name}}`;
    const close = s.indexOf(endTag, m.index + m[0].length);
    if (close < 0) throw new ParseError(`unclosed \\begin{${name}}`);
    let body = s.slice(m.index + m[0].length, close);
    if (name === 'array') body = body.replace(/^\s*\{[^{}]*\}/, ''); // column spec `{cc}`
    let start = m.index;
    let end = close + endTag.length;
    begin.lastIndex = end;
    const before = s.slice(0, start).trimEnd();
    const after = s.slice(end).trimStart();
    const pair = { '[': ']', '(': ')' }[before.at(-1) ?? ''];
    if (pair && after.startsWith(pair)) {
      start = before.length - 1;
      end = s.length - after.length + 1;
    }
    const rows = splitTopLevel(body, '\\\\')
      .map((r) => r.trim())
      .filter((r) => r !== '' && r !== '\\hline');
    if (rows.length === 0) throw new ParseError('empty matrix');
    const cells = rows.map((r) => splitTopLevel(r, '&').map((c) => parseCell(c.trim())));
    if (cells.some((r) => r.length !== cells[0].length)) throw new ParseError('ragged matrix');
    blocks.push({ start, end, cells });
  }
  return blocks;
}

const sizes = new WeakMap<Node, number>();

/** Size of the tree `node` stands for (shared subtrees counted each time, as the evaluator walks them). */
function treeSize(node: Node): number {
  const known = sizes.get(node);
  if (known !== undefined) return known;
  let size = 1;
  if (node.t === 'bin') size += treeSize(node.a) + treeSize(node.b);
  else if (node.t === 'neg') size += treeSize(node.a);
  else if (node.t === 'pm') size += (node.a ? treeSize(node.a) : 0) + treeSize(node.b);
  else if (node.t === 'fn') for (const a of node.args) size += treeSize(a);
  sizes.set(node, size);
  return size;
}

/**
 * A result cell, folded to its exact value once its tree grows (so `A^{8}` of a numeric matrix stays small),
 * and refused past the size cap when it cannot be folded (symbolic cells).
 */
function checked(node: Node): Node {
  if (treeSize(node) < FOLD_AT) return node;
  const exact = evaluateExact(node);
  if (exact) {
    const re = num(exact.re, hasDecimal(node));
    return Q.isZero(exact.im) ? re : bin('+', re, bin('*', num(exact.im), { t: 'const', name: 'i' }));
  }
  if (treeSize(node) > MAX_CELL_NODES) throw new ParseError('matrix expression too large');
  return node;
}

const map = (m: Node[][], f: (cell: Node) => Node): Node[][] => m.map((row) => row.map((c) => checked(f(c))));

function product(a: Node[][], b: Node[][]): Node[][] {
  if (a[0].length !== b.length) throw new ParseError('matrix shapes do not multiply');
  return a.map((row) =>
    b[0].map((_, j) => checked(row.map((x, k) => bin('*', x, b[k][j])).reduce((sum, t) => bin('+', sum, t)))),
  );
}

function power(m: Node[][], exponent: Node): Node[][] {
  if (exponent.t === 'sym' && exponent.name === 'T') return m[0].map((_, j) => m.map((row) => row[j]));
  const k = exponent.t === 'num' && exponent.value.den === 1n ? Number(exponent.value.num) : 0;
  if (k < 1 || k > MAX_POWER || m.length !== m[0].length) throw new ParseError('unsupported matrix power');
  let result = m;
  for (let i = 1; i < k; i++) result = product(result, m);
  return result;
}

/** Evaluates an expression tree whose placeholder symbols stand for `matrices`. */
function evaluate(node: Node, matrices: Node[][][]): Operand {
  const scalarOnly = (n: Node): Node => {
    const v = evaluate(n, matrices);
    if ('matrix' in v) throw new ParseError('matrix where a number is expected');
    return v.scalar;
  };
  switch (node.t) {
    case 'sym':
      return node.name.startsWith(PLACEHOLDER)
        ? { matrix: matrices[Number(node.name.slice(PLACEHOLDER.length))] }
        : { scalar: node };
    case 'neg': {
      const a = evaluate(node.a, matrices);
      return 'matrix' in a
        ? { matrix: map(a.matrix, (c) => ({ t: 'neg', a: c })) }
        : { scalar: { t: 'neg', a: a.scalar } };
    }
    case 'bin': {
      const a = evaluate(node.a, matrices);
      if (node.op === '^') return 'matrix' in a ? { matrix: power(a.matrix, node.b) } : { scalar: node };
      const b = evaluate(node.b, matrices);
      if ('scalar' in a && 'scalar' in b) return { scalar: bin(node.op, a.scalar, b.scalar) };
      if ('matrix' in a && 'matrix' in b) {
        if (node.op === '*') return { matrix: product(a.matrix, b.matrix) };
        if (node.op === '/') throw new ParseError('matrix division');
        const [x, y] = [a.matrix, b.matrix];
        if (x.length !== y.length || x[0].length !== y[0].length) throw new ParseError('matrix shapes do not add');
        return { matrix: x.map((row, i) => row.map((c, j) => checked(bin(node.op, c, y[i][j])))) };
      }
      // One scalar, one matrix: only `s * M`, `M * s` and `M / s` mean something.
      if (node.op === '*' && 'scalar' in a && 'matrix' in b)
        return { matrix: map(b.matrix, (c) => bin('*', a.scalar, c)) };
      if ((node.op === '*' || node.op === '/') && 'matrix' in a && 'scalar' in b) {
        return { matrix: map(a.matrix, (c) => bin(node.op, c, b.scalar)) };
      }
      throw new ParseError('a number added to a matrix');
    }
    case 'fn':
      return { scalar: { ...node, args: node.args.map(scalarOnly) } };
    case 'pm':
      return { scalar: { t: 'pm', a: node.a && scalarOnly(node.a), b: scalarOnly(node.b) } };
    default:
      return { scalar: node };
  }
}

function exprCells(cells: Cells): Node[][] {
  return cells.map((row) =>
    row.map((v) => {
      if (v.kind !== 'expr') throw new ParseError('matrix arithmetic on a cell that is not a number');
      return v.node;
    }),
  );
}

/**
 * The answer `s` as a matrix value, or null when it holds no matrix environment. Throws `ParseError` when
 * it does but cannot be read (the caller then compares it as a string).
 */
export function parseMatrixAnswer(s: string, parseCell: (cell: string) => Value): Value | null {
  if (!s.includes('\\begin{')) return null;
  const blocks = findBlocks(s, parseCell);
  if (blocks.length === 0) return null;
  if (blocks.length === 1 && s.slice(0, blocks[0].start).trim() === '' && s.slice(blocks[0].end).trim() === '') {
    return { kind: 'matrix', rows: blocks[0].cells };
  }
  const tokens: Token[] = [];
  let from = 0;
  blocks.forEach((block, i) => {
    tokens.push(...tokenize(s.slice(from, block.start)), { k: 'sym', v: `${PLACEHOLDER}${i}`, sp: true });
    from = block.end;
  });
  tokens.push(...tokenize(s.slice(from)));
  const { sides, ops } = new ExprParser(tokens).parseRelationChain();
  if (ops.some((op) => op !== '=')) throw new ParseError('relation between matrices');
  // `\mathbf{M} = …`, `AB = …`: the last side is the answer.
  const result = evaluate(
    sides[sides.length - 1],
    blocks.map((b) => exprCells(b.cells)),
  );
  if ('scalar' in result) throw new ParseError('matrix expression without a matrix result');
  return { kind: 'matrix', rows: result.matrix.map((row) => row.map((node): Value => ({ kind: 'expr', node }))) };
}
