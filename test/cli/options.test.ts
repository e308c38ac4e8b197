// The option tables (src/cli/options.ts): parsing, bounds, clamping and the generated help.
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import {
  choice,
  commandHelp,
  flag,
  int,
  ints,
  MAX_THREADS,
  num,
  parseOptions,
  text,
  threads,
} from '../../src/cli/options.ts';
import { ThinkwhenError } from '../../src/errors.ts';
import { cli } from '../helpers/cli.ts';

const table = {
  n: int({ help: 'a count', min: 1, max: 10, default: 3 }),
  x: num({ arg: 'X', help: 'a ratio', min: 0, max: 1 }),
  mode: choice({ help: 'how', choices: ['fast', 'slow'], default: 'fast' }),
  ks: ints({ help: 'some ks', min: 1, max: 64 }),
  file: text({ arg: 'FILE', help: 'the input', required: true }),
  threads: threads(),
  json: flag('as JSON'),
};
const spec = { name: 'demo', options: table };

function parse(argv: string[]) {
  const warnings: string[] = [];
  const parsed = parseOptions(spec, ['--file', 'f', ...argv], (m) => warnings.push(m));
  return { ...parsed.values, warnings };
}

function message(argv: string[]): string {
  try {
    parse(argv);
  } catch (err) {
    assert.ok(err instanceof ThinkwhenError);
    assert.equal(err.code, 'BAD_ARGUMENT');
    return err.message;
  }
  return 'no error';
}

describe('option tables', () => {
  it('parse values and defaults into typed values', () => {
    const v = parse(['--n', '7', '--x', '0.25', '--mode', 'slow', '--ks', '1, 2,64', '--json']);
    assert.deepEqual(v, {
      n: 7,
      x: 0.25,
      mode: 'slow',
      ks: [1, 2, 64],
      file: 'f',
      threads: undefined,
      json: true,
      warnings: [],
    });
    const d = parse([]);
    assert.equal(d.n, 3);
    assert.equal(d.mode, 'fast');
    assert.equal(d.x, undefined);
    assert.equal(d.json, false);
  });

  it('refuse anything outside the bounds, naming the option, the range and an example', () => {
    for (const bad of ['0', '11', '2.5', 'NaN', '1e12', 'Infinity', ' 3', '0x5', '']) {
      assert.equal(message([`--n=${bad}`]), `--n expects an integer from 1 to 10, got '${bad}' (fix: e.g. --n 3)`);
    }
    assert.match(message(['--x', '1.5']), /--x expects a number from 0 to 1, got '1.5'/);
    assert.match(
      message(['--mode', 'medium']),
      /--mode must be one of fast, slow, got 'medium' \(fix: e.g. --mode fast\)/,
    );
    assert.match(message(['--ks', '1,,2']), /--ks expects integers from 1 to 64 separated by commas/);
    assert.match(message(['--ks', '65']), /--ks expects integers from 1 to 64/);
    assert.match(message(['--file=']), /--file must not be empty/);
    assert.throws(() => parseOptions(spec, [], () => {}), /--file is required \(fix: pass --file FILE: the input\)/);
  });

  it('clamp --threads to the machine with a warning, and bound it', () => {
    const cores = availableParallelism();
    const v = parse(['--threads', String(cores + 3)]);
    assert.equal(v.threads, cores);
    assert.deepEqual(v.warnings, [`--threads ${cores + 3} is more than this machine's ${cores} cores; using ${cores}`]);
    assert.equal(parse(['--threads', '1']).threads, 1);
    assert.match(message(['--threads', String(MAX_THREADS + 1)]), /--threads expects an integer from 1 to 1024/);
  });

  it('generate the help: every option with its placeholder, bounds, choices and default', () => {
    const help = commandHelp({
      ...spec,
      summary: 's',
      usage: '--file FILE',
      description: 'Does a demo.',
      examples: ['thinkwhen demo --file a'],
      run: async () => 0,
    });
    assert.match(help, /^thinkwhen demo --file FILE\n\nDoes a demo\.\n\nOptions:\n/);
    assert.match(help, /--n N +a count \[1\.\.10; default 3\]/);
    assert.match(help, /--mode fast\|slow +how \[default fast\]/);
    assert.match(help, /--ks LIST +some ks \[each 1\.\.64\]/);
    assert.match(help, /--file FILE +the input \[required\]/);
    assert.match(help, /--threads N +CPU threads \(default: all cores\) \[1\.\.cores\]/);
    assert.match(help, /--json +as JSON\n/);
    assert.match(help, /Examples:\n {2}thinkwhen demo --file a$/);
  });
});

describe('every command teaches', () => {
  const commands = [
    'doctor',
    'gradcheck',
    'grade',
    'merge',
    'report',
    'traces',
    'activations',
    'organism build',
    'organism eval',
    'organism sample',
    'taxonomy train',
    'taxonomy score',
    'taxonomy show',
    'taxonomy annotate',
  ];
  it('--help and `thinkwhen help` print the same text, with options and examples', async () => {
    for (const c of commands) {
      const words = c.split(' ');
      const a = await cli([...words, '--help']);
      const b = await cli(['help', ...words]);
      assert.equal(a.code, 0, c);
      assert.equal(a.out, b.out, c);
      assert.ok(a.out.startsWith(`thinkwhen ${c}`), c);
      assert.match(a.out, /\nExamples:\n {2}\S/, c);
    }
    for (const group of ['organism', 'taxonomy']) {
      const r = await cli([group, '--help']);
      assert.match(r.out, /Subcommands:\n/);
      assert.equal(r.out, (await cli(['help', group])).out);
    }
  });

  it('unknown commands, subcommands and options are usage errors (exit 2)', async () => {
    const unknown = await cli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /unknown command 'frobnicate' \(fix: /);
    const sub = await cli(['taxonomy', 'frob']);
    assert.equal(sub.code, 2);
    assert.match(sub.err, /unknown taxonomy subcommand 'frob' \(fix: use train, score, show, annotate/);
    const none = await cli(['organism']);
    assert.equal(none.code, 2);
    assert.match(none.err, /no organism subcommand given/);
    const opt = await cli(['taxonomy', 'show', '--frob']);
    assert.equal(opt.code, 2);
    assert.match(
      opt.err,
      /^thinkwhen taxonomy show: Unknown option '--frob' \(fix: see thinkwhen taxonomy show --help\)/,
    );
  });
});
