import { createReadStream, existsSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { ThinkwhenError } from '../errors.ts';
import {
  EXTRACTION_MODES,
  type ExtractionMode,
  type GradeResult,
  gradeAnswer,
  gradeResponse,
} from '../eval/answer/index.ts';
import {
  createJudgeClient,
  DEFAULT_JUDGE_CACHE,
  DEFAULT_JUDGE_MODEL,
  type JudgeClient,
} from '../eval/answer/judge-client.ts';
import { DEFAULT_TIME_LIMIT_MS } from '../eval/answer/limits.ts';
import { choice, defineCommand, flag, int, num, text } from './options.ts';

interface LineResult {
  equivalent: boolean;
  reason?: string;
  gold_parsed?: string | null;
  pred_parsed?: string | null;
  extracted?: string | null;
  error?: string;
  judge?: boolean | null;
  judge_source?: 'judge' | 'cache' | 'fallback' | 'skipped';
  judge_reply?: string | null;
  judge_error?: string;
}

interface ParsedLine {
  result: LineResult;
  /** Present when the line can go to the judge (it has a "question"). */
  judgeInput?: { question: string; gold: string; response: string };
}

/** Accepts strings, and numbers for convenience (GSM8K golds are often stored as numbers). */
function field(obj: Record<string, unknown>, name: string): string {
  const v = obj[name];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (v === undefined) throw new Error(`missing field "${name}"`);
  throw new Error(`field "${name}" must be a string, got ${v === null ? 'null' : typeof v}`);
}

/** One graded pair as printed: the verdict, the parsed forms, and the bound that stopped it, if any. */
function lineResult(r: GradeResult, mode: ExtractionMode | undefined): LineResult {
  const out: LineResult = { equivalent: r.correct, gold_parsed: r.goldParsed, pred_parsed: r.predParsed };
  if (mode) out.extracted = r.extracted;
  if (r.reason) out.reason = r.reason;
  return out;
}

function gradeLine(line: string, mode: ExtractionMode | undefined, timeLimitMs: number): ParsedLine {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch (err) {
    throw new Error(`malformed JSON: ${(err as Error).message}`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new Error('expected a JSON object');
  const record = obj as Record<string, unknown>;
  const gold = field(record, 'gold');
  const pred = field(record, 'pred');
  const question = record.question === undefined ? undefined : field(record, 'question');
  const graded = mode ? gradeResponse(gold, pred, { mode, timeLimitMs }) : gradeAnswer(gold, pred, { timeLimitMs });
  const result = lineResult(graded, mode);
  return question === undefined ? { result } : { result, judgeInput: { question, gold, response: pred } };
}

async function write(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
}

/** Lines read ahead of the oldest unprinted one (their judge calls queue in the judge client). */
const JUDGE_WINDOW = 256;

async function gradeJsonl(
  source: string,
  mode: ExtractionMode | undefined,
  timeLimitMs: number,
  judge?: JudgeClient,
): Promise<number> {
  let input: Readable;
  if (source === '-') input = process.stdin;
  else {
    if (!existsSync(source) || !statSync(source).isFile()) {
      throw new ThinkwhenError('GRADE_NO_FILE', `no such file: ${source}`, 'give a JSONL file path, or - for stdin');
    }
    input = createReadStream(source, { encoding: 'utf8' });
  }
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  const counts = { judged: 0, fallback: 0, skipped: 0, disagree: 0 };
  let lineNo = 0;
  let bad = 0;
  let limited = 0;
  // Output in input order while judge calls run concurrently (the client caps requests in flight).
  const pending: Promise<LineResult>[] = [];
  const flushOldest = async () => {
    const result = await (pending.shift() as Promise<LineResult>);
    await write(`${JSON.stringify(result)}\n`);
  };
  let fatal: unknown = null;
  for await (const line of lines) {
    if (fatal) break; // the judge cannot work: stop reading; flushing below rethrows in line order
    lineNo++;
    let parsed: ParsedLine;
    try {
      if (line.trim() === '') throw new Error('empty line');
      parsed = gradeLine(line, mode, timeLimitMs);
      if (parsed.result.reason) limited++;
    } catch (err) {
      bad++;
      const message = (err as Error).message;
      process.stderr.write(`thinkwhen grade: line ${lineNo}: ${message}\n`);
      parsed = { result: { equivalent: false, error: message } };
    }
    const { result, judgeInput } = parsed;
    let done: Promise<LineResult>;
    if (!judge) done = Promise.resolve(result);
    else if (!judgeInput) {
      counts.skipped++;
      done = Promise.resolve({ ...result, judge: null, judge_source: 'skipped' });
    } else {
      done = judge.judge(judgeInput).then((v): LineResult => {
        if (v.correct === null) counts.fallback++;
        else {
          counts.judged++;
          if (v.correct !== result.equivalent) counts.disagree++;
        }
        const out: LineResult = { ...result, judge: v.correct, judge_source: v.source, judge_reply: v.reply };
        if (v.error !== undefined) out.judge_error = v.error;
        return out;
      });
      // Rejections are observed in order by flushOldest; this keeps a later one from going unhandled.
      done.catch((err) => {
        fatal ??= err;
      });
    }
    pending.push(done);
    if (pending.length >= JUDGE_WINDOW) await flushOldest();
  }
  while (pending.length > 0) await flushOldest();
  if (lineNo === 0) {
    throw new ThinkwhenError(
      'GRADE_EMPTY_INPUT',
      `${source === '-' ? 'stdin' : source} has no lines to grade`,
      'give one JSON object per line: {"gold": "...", "pred": "..."}',
    );
  }
  if (limited > 0) {
    process.stderr.write(
      `thinkwhen grade: ${limited} of ${lineNo} lines stopped at a size or time bound (see "reason"); graded not equivalent\n`,
    );
  }
  if (bad > 0) process.stderr.write(`thinkwhen grade: ${bad} of ${lineNo} lines could not be graded\n`);
  if (judge) {
    const s = judge.stats();
    process.stderr.write(
      `thinkwhen grade: judge ${judge.model} at ${judge.baseUrl}: ${counts.judged} verdicts ` +
        `(${s.requests} requests, ${s.cacheHits} from cache), ${counts.fallback} fallback, ${counts.skipped} skipped; ` +
        `judge and rule-based grader disagree on ${counts.disagree}\n`,
    );
  }
  return bad > 0 ? 1 : 0;
}

export const command = defineCommand({
  name: 'grade',
  summary: 'is a predicted math answer equivalent to the gold one? (one pair, or JSONL)',
  usage: `--gold ANSWER --pred ANSWER [--extract MODE] [--time-limit S]
thinkwhen grade --jsonl FILE [--extract MODE] [--time-limit S] [--judge [--judge-url URL] [--judge-model NAME] ...]`,
  description: `Decide whether a predicted math answer is equivalent to the gold answer, with
the rule-based grader described in docs/grader.md: exact rational arithmetic,
LaTeX normalisation (\\dfrac, \\text{}, units, %, degrees, thousands commas),
order-free solution lists and \\pm, ordered tuples, open/closed intervals,
matrices, and symbolic equality by evaluation at fixed random points.
Empty predictions are never correct.

LLM judge (--jsonl only; the paper's GPT-4.1 judge, docs/grader.md): --judge also
asks an OpenAI-compatible chat endpoint the paper's YES/NO prompt for each line
carrying "question" (gold and pred are passed as given: pred = the full response,
gold = the full solution for GSM8K). It adds to each output line "judge":
true|false|null and "judge_source": judge (fresh call) | cache (cached reply) |
fallback (call failed, see --judge-fallback) | skipped (no "question", or a bad
line). "equivalent" stays the rule-based verdict; judge null means no judge
verdict, so use "equivalent".`,
  options: {
    gold: text({
      arg: 'ANSWER',
      help: 'the reference answer (a full "... #### 18" solution or a boxed solution also works: the answer is taken from it)',
      allowEmpty: true,
    }),
    pred: text({
      arg: 'ANSWER',
      help: 'the predicted answer; prints true or false (exit 0 either way)',
      allowEmpty: true,
    }),
    jsonl: text({
      arg: 'FILE',
      help: 'grade one JSON object per line, {"gold": ..., "pred": ...}; FILE may be - for stdin. Prints one line per input line: {"equivalent": bool, "gold_parsed": ..., "pred_parsed": ...}. A bad line prints {"equivalent": false, "error": "..."}, is reported on stderr with its line number, and makes the exit status 1 after the remaining lines are graded. An empty FILE (or stdin) is a usage error (exit 2). A line whose comparison passed a bound prints "equivalent": false with "reason": "exact arithmetic too large" or "time budget exceeded" (counted on stderr).',
    }),
    extract: choice({
      arg: 'MODE',
      help: 'treat pred as a whole model response and extract its final answer first (math: last \\boxed{}, else "the answer is ...", else the last LaTeX math span; gsm8k: "####", box, "the answer is", else the "= result" of the final sentence, else the last math span or number; docs/grader.md)',
      choices: EXTRACTION_MODES,
    }),
    'time-limit': num({
      arg: 'S',
      help: 'seconds each comparison (each --jsonl line) may take before it is cut off as not equivalent, with the reason',
      min: 0.000001,
      max: 3600,
      default: DEFAULT_TIME_LIMIT_MS / 1000,
    }),
    judge: flag('also ask an LLM judge (see above; --jsonl only)'),
    'judge-url': text({
      arg: 'URL',
      help: 'endpoint base URL, e.g. http://127.0.0.1:8080/v1 (default: env OPENAI_BASE_URL, else https://api.openai.com/v1; API key from env OPENAI_API_KEY, may be empty locally)',
    }),
    'judge-model': text({
      arg: 'NAME',
      help: `judge model (default ${DEFAULT_JUDGE_MODEL}); sent with temperature 0, max_tokens 100`,
    }),
    'judge-cache': text({
      arg: 'DIR',
      help: `on-disk cache of judge calls keyed by a hash of URL, model and prompt (default ${DEFAULT_JUDGE_CACHE} under the working directory); a rerun makes no request for cached lines`,
    }),
    'judge-retries': int({ help: 'retries per call on 429/5xx/timeouts/network (default 4)', min: 0, max: 100 }),
    'judge-concurrency': int({
      help: 'calls in flight (default 8); output stays in input order',
      min: 1,
      max: 256,
    }),
    'judge-fallback': flag(
      'when a call fails, print "judge": null with "judge_source": "fallback" and "judge_error", and go on (the rule-based verdict decides that line). Without it, an unreachable endpoint, a refused key, an unknown model or a call that keeps failing stops the run with an error (exit 2); lines judged so far stay cached.',
    ),
  },
  positionals: { min: 0, max: 0, fix: "quote answers: --gold '1,-2'" },
  examples: [
    "thinkwhen grade --gold '\\frac{1}{2}' --pred '0.5'              # true",
    "thinkwhen grade --gold '(3,4]' --pred '(3,4)'                   # false: open/closed",
    "thinkwhen grade --gold '1,-2' --pred 'x = -2 \\text{ or } x = 1'  # true: order-free",
    "thinkwhen grade --gold 18 --pred 'So she makes $18.00 a day.' --extract gsm8k",
    'printf \'%s\\n\' \'{"gold":"2,125","pred":"2125"}\' | thinkwhen grade --jsonl -',
    'thinkwhen grade --jsonl runs.jsonl --extract gsm8k --judge \\',
    '    --judge-url http://127.0.0.1:8080/v1 --judge-model qwen2.5-7b-instruct',
  ],
  async run({ values }) {
    const mode = values.extract;
    const timeLimitMs = values['time-limit'] * 1000;
    const judgeFlags = Object.entries(values)
      .filter(([k, v]) => k.startsWith('judge-') && v !== undefined && v !== false)
      .map(([k]) => k);
    if (!values.judge && judgeFlags.length > 0) {
      throw new ThinkwhenError('BAD_ARGUMENT', `--${judgeFlags[0]} needs --judge`, 'add --judge to use the LLM judge');
    }
    if (values.jsonl !== undefined) {
      if (values.gold !== undefined || values.pred !== undefined) {
        throw new ThinkwhenError('BAD_ARGUMENT', '--jsonl cannot be combined with --gold/--pred', 'use one form');
      }
      const judge = values.judge
        ? createJudgeClient({
            baseUrl: values['judge-url'],
            model: values['judge-model'],
            cacheDir: values['judge-cache'] ?? DEFAULT_JUDGE_CACHE,
            maxRetries: values['judge-retries'],
            concurrency: values['judge-concurrency'],
            fallback: values['judge-fallback'],
          })
        : undefined;
      return gradeJsonl(values.jsonl, mode, timeLimitMs, judge);
    }
    if (values.judge) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        '--judge needs --jsonl (the judge prompt needs the question)',
        `printf '%s\\n' '{"question":"...","gold":"18","pred":"..."}' | thinkwhen grade --jsonl - --judge`,
      );
    }
    if (values.gold === undefined || values.pred === undefined) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        'need --gold and --pred, or --jsonl FILE',
        "thinkwhen grade --gold '\\frac12' --pred 0.5 (see --help)",
      );
    }
    const r = mode
      ? gradeResponse(values.gold, values.pred, { mode, timeLimitMs })
      : gradeAnswer(values.gold, values.pred, { timeLimitMs });
    console.log(r.correct ? 'true' : 'false');
    if (r.reason) process.stderr.write(`thinkwhen grade: not equivalent: ${r.reason}\n`);
    return 0;
  },
});
