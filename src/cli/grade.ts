import { createReadStream, existsSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { ThinkwhenError } from '../errors.ts';
import {
  describeAnswer,
  EXTRACTION_MODES,
  type ExtractionMode,
  gradeResponse,
  isEquivalent,
} from '../eval/answer/index.ts';
import type { Command } from './command.ts';

const help = `thinkwhen grade --gold ANSWER --pred ANSWER [--extract MODE]
thinkwhen grade --jsonl FILE [--extract MODE]

Decide whether a predicted math answer is equivalent to the gold answer, with
the rule-based grader described in docs/grader.md: exact rational arithmetic,
LaTeX normalisation (\\dfrac, \\text{}, units, %, degrees, thousands commas),
order-free solution lists and \\pm, ordered tuples, open/closed intervals,
matrices, and symbolic equality by evaluation at fixed random points.
Empty predictions are never correct.

Options:
  --gold ANSWER    the reference answer (a full "... #### 18" solution or a
                   boxed solution also works: the answer is taken from it)
  --pred ANSWER    the predicted answer; prints true or false (exit 0 either way)
  --jsonl FILE     grade one JSON object per line, {"gold": ..., "pred": ...};
                   FILE may be - for stdin. Prints one line per input line:
                   {"equivalent": bool, "gold_parsed": ..., "pred_parsed": ...}
                   A bad line prints {"equivalent": false, "error": "..."}, is
                   reported on stderr with its line number, and makes the exit
                   status 1 after the remaining lines are graded.
  --extract MODE   treat pred as a whole model response and extract its final
                   answer first: boxed | math | gsm8k-strict | gsm8k
                   (math: last \\boxed{}, else "the answer is ..."; gsm8k: "####",
                   box, "the answer is", else the last number)

Examples:
  thinkwhen grade --gold '\\frac{1}{2}' --pred '0.5'              # true
  thinkwhen grade --gold '(3,4]' --pred '(3,4)'                   # false: open/closed
  thinkwhen grade --gold '1,-2' --pred 'x = -2 \\text{ or } x = 1'  # true: order-free
  thinkwhen grade --gold 18 --pred 'So she makes $18.00 a day.' --extract gsm8k
  printf '%s\\n' '{"gold":"2,125","pred":"2125"}' | thinkwhen grade --jsonl -
`;

interface LineResult {
  equivalent: boolean;
  gold_parsed?: string | null;
  pred_parsed?: string | null;
  extracted?: string | null;
  error?: string;
}

/** Accepts strings, and numbers for convenience (GSM8K golds are often stored as numbers). */
function field(obj: Record<string, unknown>, name: string): string {
  const v = obj[name];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (v === undefined) throw new Error(`missing field "${name}"`);
  throw new Error(`field "${name}" must be a string, got ${v === null ? 'null' : typeof v}`);
}

function gradeLine(line: string, mode: ExtractionMode | undefined): LineResult {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch (err) {
    throw new Error(`malformed JSON: ${(err as Error).message}`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new Error('expected a JSON object');
  const gold = field(obj as Record<string, unknown>, 'gold');
  const pred = field(obj as Record<string, unknown>, 'pred');
  if (mode) {
    const r = gradeResponse(gold, pred, { mode });
    return { equivalent: r.correct, gold_parsed: r.goldParsed, pred_parsed: r.predParsed, extracted: r.extracted };
  }
  return { equivalent: isEquivalent(gold, pred), gold_parsed: describeAnswer(gold), pred_parsed: describeAnswer(pred) };
}

async function write(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
}

async function gradeJsonl(source: string, mode: ExtractionMode | undefined): Promise<number> {
  let input: Readable;
  if (source === '-') input = process.stdin;
  else {
    if (!existsSync(source) || !statSync(source).isFile()) {
      throw new ThinkwhenError('GRADE_NO_FILE', `no such file: ${source}`, 'give a JSONL file path, or - for stdin');
    }
    input = createReadStream(source, { encoding: 'utf8' });
  }
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let lineNo = 0;
  let bad = 0;
  for await (const line of lines) {
    lineNo++;
    let result: LineResult;
    try {
      if (line.trim() === '') throw new Error('empty line');
      result = gradeLine(line, mode);
    } catch (err) {
      bad++;
      const message = (err as Error).message;
      process.stderr.write(`thinkwhen grade: line ${lineNo}: ${message}\n`);
      result = { equivalent: false, error: message };
    }
    await write(`${JSON.stringify(result)}\n`);
  }
  if (bad > 0) process.stderr.write(`thinkwhen grade: ${bad} of ${lineNo} lines could not be graded\n`);
  return bad > 0 ? 1 : 0;
}

export const command: Command = {
  name: 'grade',
  summary: 'is a predicted math answer equivalent to the gold one? (one pair, or JSONL)',
  help,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        gold: { type: 'string' },
        pred: { type: 'string' },
        jsonl: { type: 'string' },
        extract: { type: 'string' },
      },
    });
    if (positionals.length > 0) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        `unexpected argument '${positionals[0]}'`,
        "quote answers: --gold '1,-2'",
      );
    }
    const mode = values.extract as ExtractionMode | undefined;
    if (mode !== undefined && !EXTRACTION_MODES.includes(mode)) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        `unknown --extract mode '${mode}'`,
        `use one of ${EXTRACTION_MODES.join(', ')}`,
      );
    }
    if (values.jsonl !== undefined) {
      if (values.gold !== undefined || values.pred !== undefined) {
        throw new ThinkwhenError('BAD_ARGUMENT', '--jsonl cannot be combined with --gold/--pred', 'use one form');
      }
      return gradeJsonl(values.jsonl, mode);
    }
    if (values.gold === undefined || values.pred === undefined) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        'need --gold and --pred, or --jsonl FILE',
        "thinkwhen grade --gold '\\frac12' --pred 0.5 (see --help)",
      );
    }
    const correct = mode
      ? gradeResponse(values.gold, values.pred, { mode }).correct
      : isEquivalent(values.gold, values.pred);
    console.log(correct ? 'true' : 'false');
    return 0;
  },
};
