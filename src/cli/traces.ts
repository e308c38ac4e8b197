import { realpathSync } from 'node:fs';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { generateTraces, type Question, questionsFromDataset, readQuestionsJsonl } from '../traces/generate.ts';
import { defineCommand, int, MAX_TOKENS, num, text, threads } from './options.ts';

/** The same file, by real path (a symlink or `./x` vs `x` is still the same file). */
function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

export const command = defineCommand({
  name: 'traces',
  summary: 'generate thinking-model traces on a question set (taxonomy stage 1, resumable)',
  usage: '--model THINKING.gguf (--questions FILE.jsonl | --dataset NAME) --out TRACES.jsonl',
  description: `Stage 1 of the reasoning taxonomy (docs/method.md §2.1): the thinking model's
responses to a question set. Each question becomes one user message (question
text only) rendered with the model's own chat template; decoding is greedy
unless --temperature is set, capped at --max-tokens new tokens, and --batch
questions are decoded together. Every record holds the prompt, the generated
text, prompt+generated ("fullResponse") and the paper's thinking span (after
the first <think>, up to </think>).

The output is resumable: a header line (the settings), then one JSON line per
question, appended as soon as its batch finishes; rerunning the same command
skips questions already in the file (a torn last line from a crash is cut off
first). An existing --out that does not start with that header is someone
else's file: it is refused and left untouched. Resuming with other settings
(model, --max-tokens, --temperature, --seed, --think-prefix) is refused too.`,
  options: {
    model: text({ arg: 'FILE', help: 'thinking model (GGUF)', required: true }),
    questions: text({ arg: 'FILE', help: 'JSONL with a "question" field and an optional "id"' }),
    'question-field': text({ arg: 'F', help: 'name of the question field (default question)' }),
    'id-field': text({ arg: 'F', help: 'name of the id field (default id)' }),
    dataset: text({ arg: 'NAME', help: 'or a dataset of the evaluation harness: gsm8k, math500, math' }),
    split: text({ arg: 'NAME', help: 'dataset split (default test)' }),
    'data-dir': text({ arg: 'DIR', help: 'folder with local dataset copies (default $THINKWHEN_DATA_DIR)' }),
    path: text({ arg: 'FILE', help: 'a local JSONL/parquet file read through the harness' }),
    start: int({ help: 'first question of the slice', min: 0, max: 2 ** 31, default: 0 }),
    limit: int({ help: 'questions in the slice (default: all)', min: 1, max: 2 ** 31 }),
    out: text({
      arg: 'FILE',
      help: 'trace JSONL to write or resume; an existing file must be one this command wrote',
      required: true,
    }),
    'max-tokens': int({
      help: "cap on generated tokens (the paper's 1000); prompt + cap must fit the model's training context",
      min: 1,
      max: MAX_TOKENS,
      default: 1000,
    }),
    batch: int({ help: 'questions decoded together', min: 1, max: 256, default: 8 }),
    temperature: num({ arg: 'T', help: '0 = greedy', min: 0, max: 10, default: 0 }),
    seed: int({ help: 'sampling seed when T > 0', min: 0, max: 2 ** 32 - 1, default: 0 }),
    'think-prefix': text({
      help: "text appended to the rendered prompt, e.g. '<think>\\n' for templates that do not open the thinking block themselves",
    }),
    threads: threads(),
  },
  examples: [
    'thinkwhen traces --model r1-distill-qwen-1.5b.gguf --questions questions.jsonl --out runs/traces.jsonl',
    'thinkwhen traces --model thinking.gguf --dataset gsm8k --limit 200 --out runs/gsm8k-traces.jsonl --batch 16',
    '# interrupted? run the same command again: finished questions are skipped',
  ],
  async run({ values }) {
    if (!values.questions && !values.dataset && !values.path) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        'no questions given',
        'pass --questions FILE.jsonl, --dataset NAME or --path FILE',
      );
    }
    for (const input of [values.questions, values.path]) {
      if (input !== undefined && sameFile(input, values.out)) {
        throw new ThinkwhenError(
          'OUT_IS_INPUT',
          `--out ${values.out} is the question file`,
          'write the traces to a new file',
        );
      }
    }
    const { start, limit } = values;
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
    const model = await Model.load(values.model);
    try {
      const summary = await generateTraces(model, questions, values.out, {
        maxTokens: values['max-tokens'],
        batch: values.batch,
        temperature: values.temperature,
        seed: values.seed,
        promptSuffix: values['think-prefix']?.replaceAll('\\n', '\n'),
        threads: values.threads,
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
});
