// One option table per command: each entry declares its name, type, bounds or choices, default and
// help, and from the table come the parser (node:util parseArgs), the validation and the `--help`
// text. A command never parses a value by hand, so every numeric option has bounds and every error
// names the option and what it takes. See docs/cli.md.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { ThinkwhenError } from '../errors.ts';
import type { Command } from './command.ts';

/** What an option's parser may use besides the raw value. */
export interface ParseContext {
  /** `--name`, for messages. */
  flag: string;
  /** A warning the command prints before it runs (e.g. a clamped value). */
  warn(message: string): void;
}

/** One option of a table. `T` is the parsed type (including `undefined` when optional without default). */
export interface Opt<T> {
  readonly boolean: boolean;
  /** The option may be given more than once (the parser gets every value, in order). */
  readonly multiple?: boolean;
  /** Placeholder in the help, e.g. FILE or N. */
  readonly arg: string;
  readonly help: string;
  /** Bounds, choices, default and "required", as the help shows them. */
  readonly notes: string[];
  parse(raw: string | boolean | string[] | undefined, ctx: ParseContext): T;
}

export type Options = Record<string, Opt<unknown>>;
export type Values<O extends Options> = { [K in keyof O]: O[K] extends Opt<infer T> ? T : never };

function bad(message: string, fix?: string): ThinkwhenError {
  return new ThinkwhenError('BAD_ARGUMENT', message, fix);
}

interface Base {
  help: string;
  arg?: string;
}

function missing(ctx: ParseContext, o: Base): ThinkwhenError {
  return bad(`${ctx.flag} is required`, `pass ${ctx.flag} ${o.arg ?? ''}`.trimEnd() + `: ${o.help}`);
}

/** A boolean switch (false when absent). */
export function flag(help: string): Opt<boolean> {
  return { boolean: true, arg: '', help, notes: [], parse: (raw) => raw === true };
}

interface TextSpec extends Base {
  required?: boolean;
  default?: string;
  /** Accept '' (an empty answer is an answer; an empty path is a mistake). */
  allowEmpty?: boolean;
}

/** A free-form string (a path, a name, a URL). */
export function text(o: TextSpec & ({ required: true } | { default: string })): Opt<string>;
export function text(o: TextSpec): Opt<string | undefined>;
export function text(o: TextSpec): Opt<string | undefined> {
  return {
    boolean: false,
    arg: o.arg ?? 'TEXT',
    help: o.help,
    notes: o.required ? ['required'] : o.default !== undefined ? [`default ${o.default}`] : [],
    parse(raw, ctx) {
      if (raw === undefined) {
        if (o.required) throw missing(ctx, o);
        return o.default;
      }
      if (raw === '' && !o.allowEmpty)
        throw bad(`${ctx.flag} must not be empty`, `give ${ctx.flag} a value: ${o.help}`);
      return String(raw);
    },
  };
}

/** A string option that may be repeated (`--title 3=Check --title 5=Wait`); [] when absent. */
export function texts(o: Base): Opt<string[]> {
  return {
    boolean: false,
    multiple: true,
    arg: o.arg ?? 'TEXT',
    help: o.help,
    notes: ['repeatable'],
    parse(raw, ctx) {
      const all = raw === undefined ? [] : Array.isArray(raw) ? raw : [String(raw)];
      if (all.includes('')) throw bad(`${ctx.flag} must not be empty`, `give ${ctx.flag} a value: ${o.help}`);
      return all;
    },
  };
}

interface NumberSpec extends Base {
  min: number;
  max: number;
  required?: boolean;
  default?: number;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function parseNumber(raw: string, ctx: ParseContext, o: NumberSpec, integer: boolean): number {
  // Decimal notation only: Number() would also take '', ' 3' and '0x5'.
  const n = DECIMAL.test(raw) ? Number(raw) : Number.NaN;
  const what = integer ? 'an integer' : 'a number';
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < o.min || n > o.max) {
    throw bad(`${ctx.flag} expects ${what} from ${o.min} to ${o.max}, got '${raw}'`, `e.g. ${ctx.flag} ${example(o)}`);
  }
  return n;
}

function example(o: NumberSpec): number {
  return o.default ?? Math.min(o.max, Math.max(o.min, 1));
}

function numberOpt(o: NumberSpec, integer: boolean): Opt<number | undefined> {
  const notes = [`${o.min}..${o.max}`];
  if (o.required) notes.unshift('required');
  else if (o.default !== undefined) notes.push(`default ${o.default}`);
  return {
    boolean: false,
    arg: o.arg ?? 'N',
    help: o.help,
    notes,
    parse(raw, ctx) {
      if (raw === undefined) {
        if (o.required) throw missing(ctx, o);
        return o.default;
      }
      return parseNumber(String(raw), ctx, o, integer);
    },
  };
}

type Given = { required: true } | { default: number };

/** An integer within [min, max]. */
export function int(o: NumberSpec & Given): Opt<number>;
export function int(o: NumberSpec): Opt<number | undefined>;
export function int(o: NumberSpec): Opt<number | undefined> {
  return numberOpt(o, true);
}

/** A finite number within [min, max]. */
export function num(o: NumberSpec & Given): Opt<number>;
export function num(o: NumberSpec): Opt<number | undefined>;
export function num(o: NumberSpec): Opt<number | undefined> {
  return numberOpt(o, false);
}

/** Most new tokens any generating command accepts (a model's own training context bounds it further). */
export const MAX_TOKENS = 1 << 20;

/** Most threads any command accepts before clamping to the machine. */
export const MAX_THREADS = 1024;

/**
 * `--threads N`: an integer ≥ 1; more than the machine's cores warns and uses the cores (ggml workers
 * spin, so oversubscribing makes decoding many times slower, never faster).
 */
export function threads(help = 'CPU threads (default: all cores)'): Opt<number | undefined> {
  const o = int({ arg: 'N', help, min: 1, max: MAX_THREADS });
  return {
    ...o,
    notes: ['1..cores'],
    parse(raw, ctx) {
      const n = o.parse(raw, ctx);
      const cores = availableParallelism();
      if (n !== undefined && n > cores) {
        ctx.warn(`${ctx.flag} ${n} is more than this machine's ${cores} cores; using ${cores}`);
        return cores;
      }
      return n;
    },
  };
}

/** One of a fixed set of words. */
export function choice<const C extends string>(o: Base & { choices: readonly C[]; default: NoInfer<C> }): Opt<C>;
export function choice<const C extends string>(o: Base & { choices: readonly C[] }): Opt<C | undefined>;
export function choice<const C extends string>(o: Base & { choices: readonly C[]; default?: C }): Opt<C | undefined> {
  return {
    boolean: false,
    arg: o.arg ?? o.choices.join('|'),
    help: o.help,
    notes: o.default !== undefined ? [`default ${o.default}`] : [],
    parse(raw, ctx) {
      if (raw === undefined) return o.default;
      if (!o.choices.includes(raw as C)) {
        throw bad(
          `${ctx.flag} must be one of ${o.choices.join(', ')}, got '${raw}'`,
          `e.g. ${ctx.flag} ${o.choices[0]}`,
        );
      }
      return raw as C;
    },
  };
}

interface ListSpec extends Base {
  min: number;
  max: number;
  /** Exactly this many values. */
  count?: number;
  /** A word standing for the empty list (e.g. `none`). */
  empty?: string;
  /** A valid value for error messages (default: min,min+1 or as many as `count`). */
  example?: string;
}

function listOpt(o: ListSpec, integer: boolean): Opt<number[] | undefined> {
  const notes = [`each ${o.min}..${o.max}`];
  if (o.count) notes.unshift(`${o.count} values`);
  return {
    boolean: false,
    arg: o.arg ?? 'LIST',
    help: o.help,
    notes,
    parse(raw, ctx) {
      if (raw === undefined) return undefined;
      const s = String(raw);
      if (o.empty !== undefined && s === o.empty) return [];
      const parts = s.split(',').map((x) => x.trim());
      const what = integer ? 'integers' : 'numbers';
      const fix = `e.g. ${ctx.flag} ${o.example ?? Array.from({ length: o.count ?? 2 }, (_, i) => Math.min(o.max, o.min + i)).join(',')}`;
      if (o.count !== undefined && parts.length !== o.count) {
        throw bad(`${ctx.flag} takes ${o.count} ${what} separated by commas, got '${s}'`, fix);
      }
      return parts.map((x) => {
        const n = DECIMAL.test(x) ? Number(x) : Number.NaN;
        if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < o.min || n > o.max) {
          throw bad(`${ctx.flag} expects ${what} from ${o.min} to ${o.max} separated by commas, got '${s}'`, fix);
        }
        return n;
      });
    },
  };
}

/** Comma-separated integers, each within [min, max]. */
export function ints(o: ListSpec): Opt<number[] | undefined> {
  return listOpt(o, true);
}

/** Comma-separated finite numbers, each within [min, max]. */
export function nums(o: ListSpec): Opt<number[] | undefined> {
  return listOpt(o, false);
}

// ---------------------------------------------------------------------------------------------
// Commands

export interface Parsed<O extends Options> {
  values: Values<O>;
  positionals: string[];
}

export interface CommandSpec<O extends Options> {
  /** `traces`, or `taxonomy score` for a subcommand. */
  name: string;
  summary: string;
  /** What follows `thinkwhen NAME` in the usage line, e.g. `--model FILE --out FILE [options]`. */
  usage: string;
  /** Prose: what the command does and how (the teaching part of `--help`). */
  description: string;
  options: O;
  /** Positional arguments: how many are allowed; `missing` is the message when too few are given. */
  positionals?: { min: number; max?: number; missing?: string; fix: string };
  /** Example command lines (comments start with #). */
  examples: string[];
  /** Text after the options (exit status, files written...). */
  epilogue?: string;
  run(args: Parsed<O>): Promise<number>;
}

const COLUMN = 24;
const WIDTH = 100;

/** Words into lines that fit the help column. */
function wrap(words: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const w of words.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + w.length > WIDTH - COLUMN) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines;
}

/** The "Options:" block generated from a table. */
export function optionsHelp(options: Options): string {
  const out: string[] = [];
  for (const [name, o] of Object.entries(options)) {
    const left = `  --${name}${o.arg ? ` ${o.arg}` : ''}`;
    const body = o.notes.length ? `${o.help} [${o.notes.join('; ')}]` : o.help;
    const lines = wrap(body).map((l) => ' '.repeat(COLUMN) + l);
    // The help starts on the option's own line when the name leaves room, else on the next.
    if (left.length + 2 <= COLUMN) out.push(left.padEnd(COLUMN) + lines[0].trimStart(), ...lines.slice(1));
    else out.push(left, ...lines);
  }
  return out.join('\n');
}

/** The whole `--help` text of one command. */
export function commandHelp<O extends Options>(spec: CommandSpec<O>): string {
  const parts = [`thinkwhen ${spec.name} ${spec.usage}`.trimEnd(), '', spec.description.trim()];
  if (Object.keys(spec.options).length) parts.push('', 'Options:', optionsHelp(spec.options));
  if (spec.epilogue) parts.push('', spec.epilogue.trim());
  parts.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  return parts.join('\n');
}

/** Parses and validates `argv` against a table. Warnings go to `warn`. */
export function parseOptions<O extends Options>(
  spec: Pick<CommandSpec<O>, 'name' | 'options' | 'positionals'>,
  argv: string[],
  warn: (message: string) => void,
): Parsed<O> {
  const config: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    config[name] = { type: o.boolean ? 'boolean' : 'string', ...(o.multiple ? { multiple: true } : {}) };
  }
  const { values: raw, positionals } = parseArgs({
    args: argv,
    options: config,
    allowPositionals: spec.positionals !== undefined,
    strict: true,
  });
  const p = spec.positionals;
  if (p && positionals.length < p.min) throw bad(p.missing ?? `too few arguments`, p.fix);
  if (p?.max !== undefined && positionals.length > p.max)
    throw bad(`unexpected argument '${positionals[p.max]}'`, p.fix);
  const values: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    values[name] = o.parse(raw[name] as string | boolean | string[] | undefined, { flag: `--${name}`, warn });
  }
  return { values: values as Values<O>, positionals };
}

/** A command from its table. */
export function defineCommand<O extends Options>(spec: CommandSpec<O>): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    help: () => commandHelp(spec),
    async run(argv) {
      const parsed = parseOptions(spec, argv, (m) => console.error(`thinkwhen ${spec.name}: warning: ${m}`));
      return spec.run(parsed);
    },
  };
}

/** A command made of subcommands (`thinkwhen organism build|eval|sample`), each with its own table. */
export function defineGroup(group: {
  name: string;
  summary: string;
  description: string;
  examples: string[];
  subcommands: Command[];
}): Command {
  const subName = (c: Command) => c.name.slice(group.name.length + 1);
  const find = (word: string | undefined) => group.subcommands.find((c) => subName(c) === word);
  const overview = () =>
    [
      `thinkwhen ${group.name} <${group.subcommands.map(subName).join('|')}> [options]`,
      '',
      group.description.trim(),
      '',
      'Subcommands:',
      ...group.subcommands.map((c) => `  ${subName(c).padEnd(COLUMN - 2)}${c.summary}`),
      '',
      `Run \`thinkwhen ${group.name} SUBCOMMAND --help\` for the options of one.`,
      '',
      'Examples:',
      ...group.examples.map((e) => `  ${e}`),
    ].join('\n');
  return {
    name: group.name,
    summary: group.summary,
    subcommands: group.subcommands.map(subName),
    help: (path = []) => find(path[0])?.help() ?? overview(),
    async run(argv) {
      const [word, ...rest] = argv;
      const sub = find(word);
      if (!sub) {
        throw bad(
          word === undefined || word.startsWith('-')
            ? `no ${group.name} subcommand given`
            : `unknown ${group.name} subcommand '${word}'`,
          `use ${group.subcommands.map(subName).join(', ')} (see thinkwhen ${group.name} --help)`,
        );
      }
      return sub.run(rest);
    },
  };
}
