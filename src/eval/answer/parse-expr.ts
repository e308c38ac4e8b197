/**
 * Recursive-descent parser from answer tokens to an expression tree. Covers what contest answers use:
 * `\frac`, `\sqrt[n]{}`, powers, implicit products, trig/log functions, `|x|`, `n!`, `\binom`, `\pm`,
 * mixed numbers, base subscripts. Depth is capped, so nesting cannot blow the stack.
 */
import { bin, type Node, num, type RelationOp } from './ast.ts';
import { add, isInteger, parseDecimal, rat } from './rational.ts';
import { FUNCTIONS, ParseError, type Token } from './tokenize.ts';

const MAX_DEPTH = 60;

/** Commands that are neither values nor functions: seeing one where a value should start is an error. */
const NOT_PRIMARY = new Set([
  'times',
  'cdot',
  'div',
  'ast',
  'pm',
  'mp',
  'le',
  'leq',
  'ge',
  'geq',
  'ne',
  'neq',
  'lt',
  'gt',
  'leqslant',
  'geqslant',
  'in',
  'cup',
  'cap',
  'to',
  'rightarrow',
  'implies',
  'equiv',
  'cdots',
  'ldots',
  'dots',
  'vdots',
  'rfloor',
  'rceil',
  'end',
  'begin',
  'mathbb',
  'emptyset',
  'varnothing',
  'setminus',
  'mid',
  'colon',
  'quad',
]);

const CONSTANTS: Record<string, Node> = {
  pi: { t: 'const', name: 'pi' },
  infty: { t: 'const', name: 'inf' },
  inf: { t: 'const', name: 'inf' },
  infinity: { t: 'const', name: 'inf' },
  infin: { t: 'const', name: 'inf' },
};

const RELATIONS: Record<string, RelationOp> = {
  '=': '=',
  '<': '<',
  '>': '>',
  le: '<=',
  leq: '<=',
  leqslant: '<=',
  ge: '>=',
  geq: '>=',
  geqslant: '>=',
  ne: '!=',
  neq: '!=',
  lt: '<',
  gt: '>',
  approx: '≈',
};

export function relationOf(tok: Token | undefined): RelationOp | undefined {
  if (!tok) return undefined;
  if (tok.k === 'op' || tok.k === 'cmd') return RELATIONS[tok.v];
  return undefined;
}

export class ExprParser {
  private pos: number;
  private depth = 0;
  private absDepth = 0;

  constructor(
    private readonly toks: Token[],
    start = 0,
    private readonly end = toks.length,
  ) {
    this.pos = start;
  }

  /** Parses the whole range as a chain `e1 op e2 op e3 ...` (no relation: one side, no ops). */
  parseRelationChain(): { sides: Node[]; ops: RelationOp[] } {
    const sides = [this.parseExpr()];
    const ops: RelationOp[] = [];
    for (let op = relationOf(this.peek()); op; op = relationOf(this.peek())) {
      this.pos++;
      ops.push(op);
      sides.push(this.parseExpr());
    }
    if (this.pos < this.end) throw new ParseError(`unexpected '${this.peek()?.v}'`);
    return { sides, ops };
  }

  /** Parses the whole range as one expression. */
  parseAll(): Node {
    const node = this.parseExpr();
    if (this.pos < this.end) throw new ParseError(`unexpected '${this.peek()?.v}'`);
    return node;
  }

  private peek(offset = 0): Token | undefined {
    const i = this.pos + offset;
    return i < this.end ? this.toks[i] : undefined;
  }

  private isOp(v: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t !== undefined && t.k === 'op' && t.v === v;
  }

  private isCmd(names: readonly string[] | string, offset = 0): boolean {
    const t = this.peek(offset);
    return t !== undefined && t.k === 'cmd' && (typeof names === 'string' ? t.v === names : names.includes(t.v));
  }

  private expectOp(v: string): void {
    if (!this.isOp(v)) throw new ParseError(`expected '${v}'`);
    this.pos++;
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) throw new ParseError('expression nested too deeply');
  }

  private parseExpr(): Node {
    this.enter();
    let left = this.parseTerm();
    for (;;) {
      if (this.isOp('+') || this.isOp('-')) {
        const op = this.toks[this.pos++].v as '+' | '-';
        left = bin(op, left, this.parseTerm());
      } else if (this.isCmd(['pm', 'mp'])) {
        this.pos++;
        left = { t: 'pm', a: left, b: this.parseTerm() };
      } else break;
    }
    this.depth--;
    return left;
  }

  private startsFactor(): boolean {
    const t = this.peek();
    if (!t) return false;
    if (t.k === 'num' || t.k === 'sym') return true;
    if (t.k === 'cmd') return !NOT_PRIMARY.has(t.v) && relationOf(t) === undefined;
    if (t.k === 'op') return t.v === '(' || t.v === '{' || (t.v === '|' && this.absDepth === 0);
    return false;
  }

  private parseTerm(): Node {
    let left = this.parseUnary();
    for (;;) {
      if (this.isOp('*') || this.isCmd(['times', 'cdot', 'ast'])) {
        this.pos++;
        left = bin('*', left, this.parseUnary());
      } else if (this.isOp('/') || this.isCmd('div')) {
        this.pos++;
        left = bin('/', left, this.parseUnary());
      } else if (this.startsFactor()) {
        const mixed = this.tryMixedNumber(left);
        left = mixed ?? bin('*', left, this.parsePower());
      } else break;
    }
    return left;
  }

  /** `15\frac{39}{40}` and `7 3/4` are mixed numbers (Math-Verify, PRM800K), not products. */
  private tryMixedNumber(left: Node): Node | null {
    const negative = left.t === 'neg';
    const whole = negative ? left.a : left;
    if (whole.t !== 'num' || whole.decimal || !isInteger(whole.value)) return null;
    const save = this.pos;
    let frac: Node | null = null;
    if (this.isCmd('frac')) {
      this.pos++;
      const a = this.parseArgument();
      const b = this.parseArgument();
      frac = bin('/', a, b);
    } else {
      const t0 = this.peek();
      const t2 = this.peek(2);
      // Plain `7 3/4`: only when it is the whole remaining expression.
      if (t0?.k === 'num' && t0.sp && this.isOp('/', 1) && t2?.k === 'num' && this.pos + 3 === this.end) {
        this.pos += 3;
        frac = bin('/', this.numberNode(t0.v), this.numberNode(t2.v));
      }
    }
    const isIntLit = (n: Node | null): boolean => n !== null && n.t === 'num' && !n.decimal && isInteger(n.value);
    if (
      frac &&
      frac.t === 'bin' &&
      isIntLit(frac.a) &&
      isIntLit(frac.b) &&
      (this.pos >= this.end || !this.startsFactor())
    ) {
      const a = frac.a as Extract<Node, { t: 'num' }>;
      const b = frac.b as Extract<Node, { t: 'num' }>;
      if (b.value.num === 0n) return null;
      const value = add(whole.value, rat(a.value.num, b.value.num));
      const node = num(value);
      return negative ? { t: 'neg', a: node } : node;
    }
    this.pos = save;
    return null;
  }

  private parseUnary(): Node {
    if (this.isOp('-')) {
      this.pos++;
      this.enter();
      const a = this.parseUnary();
      this.depth--;
      return { t: 'neg', a };
    }
    if (this.isOp('+')) {
      this.pos++;
      return this.parseUnary();
    }
    if (this.isCmd(['pm', 'mp'])) {
      this.pos++;
      return { t: 'pm', a: null, b: this.parseUnary() };
    }
    return this.parsePower();
  }

  private parsePower(): Node {
    const base = this.parsePostfix();
    if (this.isOp('^')) {
      this.pos++;
      this.enter();
      const exponent = this.parseScript();
      this.depth--;
      return bin('^', base, exponent);
    }
    return base;
  }

  /** The argument of `^`: a brace group, a single token, or a signed single token (`x^-1`). */
  private parseScript(): Node {
    if (this.isOp('-')) {
      this.pos++;
      return { t: 'neg', a: this.parseScript() };
    }
    if (this.isOp('(')) return this.parsePrimary();
    return this.parseArgument();
  }

  private parsePostfix(): Node {
    let node = this.parsePrimary();
    while (this.isOp('!')) {
      this.pos++;
      node = { t: 'fn', name: 'factorial', args: [node] };
    }
    return node;
  }

  private numberNode(text: string): Node {
    const clean = text.endsWith('.') ? text.slice(0, -1) : text;
    const value = parseDecimal(clean);
    if (!value) throw new ParseError(`bad number '${text}'`);
    return num(value, /[.eE]/.test(clean));
  }

  /**
   * A LaTeX macro argument: `{...}` or one token. A multi-digit number gives only its first digit
   * (`\frac12` = 1/2, `x^23` = x^2 * 3), as TeX reads it.
   */
  private parseArgument(): Node {
    const t = this.peek();
    if (!t) throw new ParseError('missing argument');
    if (t.k === 'op' && t.v === '{') return this.parseGroup('{', '}');
    if (t.k === 'num' && t.v.length > 1) {
      this.toks[this.pos] = { ...t, v: t.v.slice(1), sp: false };
      return this.numberNode(t.v[0]);
    }
    if (t.k === 'num' || t.k === 'sym' || (t.k === 'cmd' && (CONSTANTS[t.v] || !NOT_PRIMARY.has(t.v))))
      return this.parsePrimary();
    throw new ParseError(`bad argument '${t.v}'`);
  }

  private parseGroup(open: string, close: string): Node {
    this.expectOp(open);
    this.enter();
    const inner = this.parseExpr();
    this.depth--;
    this.expectOp(close);
    return inner;
  }

  private parsePrimary(): Node {
    const t = this.peek();
    if (!t) throw new ParseError('unexpected end of answer');
    this.enter();
    try {
      return this.parsePrimaryToken(t);
    } finally {
      this.depth--;
    }
  }

  private parsePrimaryToken(t: Token): Node {
    if (t.k === 'num') {
      this.pos++;
      const node = this.numberNode(t.v);
      // `204_5`, `4210_{5}`: a base subscript; Math-Verify keeps the digits as written.
      if (this.isOp('_')) {
        this.pos++;
        this.parseArgument();
      }
      return node;
    }
    if (t.k === 'sym') {
      this.pos++;
      let name = t.v;
      if (this.isOp('_')) {
        this.pos++;
        name += `_${this.subscriptText()}`;
      }
      if (name === 'e') return { t: 'const', name: 'e' };
      if (name === 'i') return { t: 'const', name: 'i' };
      return { t: 'sym', name };
    }
    if (t.k === 'op') {
      if (t.v === '(') return this.parseGroup('(', ')');
      if (t.v === '[') return this.parseGroup('[', ']');
      if (t.v === '{') return this.parseGroup('{', '}');
      if (t.v === '|') {
        this.pos++;
        this.absDepth++;
        const inner = this.parseExpr();
        this.absDepth--;
        this.expectOp('|');
        return { t: 'fn', name: 'abs', args: [inner] };
      }
      throw new ParseError(`unexpected '${t.v}'`);
    }
    // Commands.
    this.pos++;
    const name = t.v;
    const constant = CONSTANTS[name];
    if (constant) return constant;
    switch (name) {
      case 'frac': {
        const a = this.parseArgument();
        return bin('/', a, this.parseArgument());
      }
      case 'sqrt': {
        if (this.isOp('[')) {
          const index = this.parseGroup('[', ']');
          return { t: 'fn', name: 'root', args: [this.parseArgument(), index] };
        }
        if (this.isOp('(')) return { t: 'fn', name: 'sqrt', args: [this.parseGroup('(', ')')] };
        return { t: 'fn', name: 'sqrt', args: [this.parseArgument()] };
      }
      case 'binom': {
        const n = this.parseArgument();
        return { t: 'fn', name: 'binom', args: [n, this.parseArgument()] };
      }
      case 'lfloor':
      case 'lceil': {
        const inner = this.parseExpr();
        const closer = name === 'lfloor' ? 'rfloor' : 'rceil';
        if (!this.isCmd(closer)) throw new ParseError(`expected \\${closer}`);
        this.pos++;
        return { t: 'fn', name: name === 'lfloor' ? 'floor' : 'ceil', args: [inner] };
      }
      default:
        if (FUNCTIONS.has(name)) return this.parseFunction(name);
        if (NOT_PRIMARY.has(name)) throw new ParseError(`unexpected \\${name}`);
        // Greek letters and other named symbols (`\theta`, `\alpha`).
        return { t: 'sym', name: `\\${name}` };
    }
  }

  /** `\sin^2 x`, `\log_2 8`, `\cos(2x)`, `\sin 2x \cos x` (the argument stops at the next function). */
  private parseFunction(name: string): Node {
    let power: Node | null = null;
    let base: Node | null = null;
    for (let k = 0; k < 2; k++) {
      if (this.isOp('^') && !power) {
        this.pos++;
        power = this.parseScript();
      } else if (this.isOp('_') && !base && name === 'log') {
        this.pos++;
        base = this.parseArgument();
      }
    }
    let arg: Node;
    if (this.isOp('(')) arg = this.parseGroup('(', ')');
    else {
      if (!this.startsFactor()) throw new ParseError(`\\${name} without an argument`);
      arg = this.parsePower();
      while (this.startsFactor() && !this.isCmd([...FUNCTIONS])) arg = bin('*', arg, this.parsePower());
    }
    let node: Node = base ? { t: 'fn', name: 'logb', args: [arg, base] } : { t: 'fn', name, args: [arg] };
    // `\sin^{-1} x` is the inverse function, not a reciprocal.
    if (
      power &&
      power.t === 'neg' &&
      power.a.t === 'num' &&
      power.a.value.num === 1n &&
      power.a.value.den === 1n &&
      !base
    ) {
      node = { t: 'fn', name: `arc${name}`, args: [arg] };
    } else if (power) node = bin('^', node, power);
    return node;
  }

  /** Subscript of a symbol as text: `x_1`, `a_{n+1}` (kept literal: `a_{n+1}` is a name, not a sum). */
  private subscriptText(): string {
    const t = this.peek();
    if (!t) throw new ParseError('missing subscript');
    if (t.k === 'op' && t.v === '{') {
      let depth = 0;
      let text = '';
      while (this.pos < this.end) {
        const u = this.toks[this.pos++];
        if (u.k === 'op' && u.v === '{') depth++;
        else if (u.k === 'op' && u.v === '}') depth--;
        text += u.k === 'cmd' ? `\\${u.v}` : u.v;
        if (depth === 0) return text.slice(1, -1);
      }
      throw new ParseError('unclosed subscript');
    }
    if (t.k === 'num' && t.v.length > 1) {
      // `x_12` is x_1 times 12's remaining digit, as TeX reads a one-token subscript.
      this.toks[this.pos] = { ...t, v: t.v.slice(1), sp: false };
      return t.v[0];
    }
    this.pos++;
    return t.k === 'cmd' ? `\\${t.v}` : t.v;
  }
}
