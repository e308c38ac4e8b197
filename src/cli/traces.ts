import { parseArgs } from 'node:util';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { generateTraces, type Question, questionsFromDataset, readQuestionsJsonl } from '../traces/generate.ts';
import { int } from './args.ts';
import type { Command } from './command.ts';

const help = `thinkwhen traces --model THINKING.gguf (--questions FILE.jsonl | --dataset NAME) --out TRACES.jsonl

Stage 1 of the reasoning taxonomy (docs/method.md §2.1): the thinking model's
responses to a question set. Each question becomes one user message (question
text only) rendered with the model's own chat template; decoding is greedy
unless --temperature is set, capped at --max-tokens new tokens, and --batch
questions are decoded together. Every record holds the prompt, the generated
text, prompt+generated ("fullResponse") and the paper's thinking span (after
the first <think>, up to </think>).

The output is resumable: one JSON line per question, appended as soon as its
batch finishes; rerunning the same command skips questions already in the file
(a torn last line from a crash is cut off first).

Options:
  --model FILE         thinking model (GGUF)
  --questions FILE     JSONL with a "question" field and an optional "id"
  --question-field F   name of the question field (default question)
  --id-field F         name of the id field (default id)
  --dataset NAME       or a dataset of the evaluation harness: gsm8k, math500, math
  --split NAME         dataset split (default test)
  --data-dir DIR       folder with local dataset copies (default $THINKWHEN_DATA_DIR)
  --path FILE          a local JSONL/parquet file read through the harness
  --start N, --limit N slice of the questions (default: all)
  --out FILE           trace JSONL to write or resume (required)
  --max-tokens N       cap on generated tokens (default 1000, the paper's)
  --batch N            questions decoded together (default 8)
  --temperature T      0 = greedy (default)
  --seed N             sampling seed when T > 0 (default 0)
  --think-prefix TEXT  text appended to the rendered prompt, e.g. '<think>\\n' for
                       templates that do not open the thinking block themselves
  --threads N          CPU threads (default: all cores)

Examples:
  thinkwhen traces --model r1-distill-qwen-1.5b.gguf --questions questions.jsonl --out runs/traces.jsonl
  thinkwhen traces --model thinking.gguf --dataset gsm8k --limit 200 --out runs/gsm8k-traces.jsonl --batch 16
  # interrupted? run the same command again: finished questions are skipped
`;

export const command: Command = {
  name: 'traces',
  summary: 'generate thinking-model traces on a question set (taxonomy stage 1, resumable)',
  help,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        questions: { type: 'string' },
        'question-field': { type: 'string' },
        'id-field': { type: 'string' },
        dataset: { type: 'string' },
        split: { type: 'string' },
        'data-dir': { type: 'string' },
        path: { type: 'string' },
        start: { type: 'string' },
        limit: { type: 'string' },
        out: { type: 'string' },
        'max-tokens': { type: 'string' },
        batch: { type: 'string' },
        temperature: { type: 'string' },
        seed: { type: 'string' },
        'think-prefix': { type: 'string' },
        threads: { type: 'string' },
      },
    });
    if (!values.model) throw new ThinkwhenError('bad-argument', '--model is required', 'pass the thinking model GGUF');
    if (!values.out) throw new ThinkwhenError('bad-argument', '--out is required', 'name the trace JSONL to write');
    if (!values.questions && !values.dataset && !values.path) {
      throw new ThinkwhenError(
        'bad-argument',
        'no questions given',
        'pass --questions FILE.jsonl, --dataset NAME or --path FILE',
      );
    }
    const start = int(values.start, 'start') ?? 0;
    const limit = int(values.limit, 'limit');
    let questions: Question[];
    if (values.questions) {
      questions = await readQuestionsJsonl(values.questions, {
        questionField: values['question-field'],
        idField: values['id-field'],
      });
      questions = questions.slice(start, limit === undefined ? undefined : start + limit);
    } else {
      questions = await questionsFromDataset({
        dataset: values.dataset,
        split: values.split,
        dataDir: values['data-dir'],
        path: values.path,
        start,
        limit,
        fields: values['question-field'] ? { question: values['question-field'] } : undefined,
      });
    }
    const temperature = values.temperature === undefined ? 0 : Number(values.temperature);
    if (!Number.isFinite(temperature) || temperature < 0) {
      throw new ThinkwhenError('bad-argument', `--temperature expects a number ≥ 0, got '${values.temperature}'`);
    }
    const model = await Model.load(values.model);
    try {
      const summary = await generateTraces(model, questions, values.out, {
        maxTokens: int(values['max-tokens'], 'max-tokens', 1),
        batch: int(values.batch, 'batch', 1),
        temperature,
        seed: int(values.seed, 'seed'),
        promptSuffix: values['think-prefix']?.replaceAll('\\n', '\n'),
        threads: int(values.threads, 'threads', 1),
        onProgress: (line) => console.error(line),
      });
      console.log(
        `${summary.generated} traces written to ${summary.out} (${summary.skipped} already there, ${summary.tokens} tokens, ${summary.seconds.toFixed(1)} s)`,
      );
    } finally {
      model.free();
    }
    return 0;
  },
};
