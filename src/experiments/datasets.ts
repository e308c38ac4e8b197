// The problem sets `thinkwhen run` evaluates on: GSM8K (the first 500 test problems, as the
// paper), MATH500, the organism's held-out test set, or any JSONL/parquet file; with the grading
// rules each one is scored by.
import { createHash } from 'node:crypto';
import { ThinkwhenError } from '../errors.ts';
import type { ExtractionMode } from '../eval/answer/index.ts';
import {
  type AnswerFormat,
  type DatasetInfo,
  type FieldMap,
  loadDataset,
  PAPER_SLICES,
  type Problem,
} from '../eval/datasets.ts';
import { generateProblems, TEST_SEED } from '../organism/index.ts';

export interface Grader {
  /** stored grade name */
  name: string;
  mode: ExtractionMode;
}

export interface RunDataset {
  info: DatasetInfo;
  problems: Problem[];
  /** every grader a generation is scored by; the first is the headline */
  graders: Grader[];
}

export const NAMED_DATASETS = ['gsm8k', 'math500', 'organism'] as const;

/** Problems of the organism's test split when no --limit is given (as `organism eval`). */
export const ORGANISM_TEST_COUNT = 500;

const grader = (mode: ExtractionMode): Grader => ({ name: `rules-${mode}`, mode });

export interface RunDatasetOptions {
  /** gsm8k, math500, organism, or a path to a JSONL/parquet file */
  dataset: string;
  /** problems from the start (GSM8K default 500, organism default 500, else all) */
  limit?: number;
  /** folder with gsm8k/test.jsonl and math500/test.jsonl (default $THINKWHEN_DATA_DIR, else the hub) */
  dataDir?: string;
  fields?: Partial<FieldMap>;
  answerFormat?: AnswerFormat;
}

/** Most organism problems a run takes: they are rejection-sampled (about 7 ms each on this project's machine). */
export const ORGANISM_MAX_COUNT = 10000;

export async function loadRunDataset(o: RunDatasetOptions): Promise<RunDataset> {
  if (o.dataset === 'organism') {
    const count = o.limit ?? ORGANISM_TEST_COUNT;
    if (count > ORGANISM_MAX_COUNT) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        `--limit ${count}: the organism's test set is generated on demand, at most ${ORGANISM_MAX_COUNT} problems`,
        `use --limit ${ORGANISM_MAX_COUNT} or less`,
      );
    }
    return organismDataset(count);
  }
  if (o.dataset === 'gsm8k' || o.dataset === 'math500') {
    const slice = PAPER_SLICES[o.dataset];
    const d = await loadDataset({ ...slice, limit: o.limit ?? slice.limit, dataDir: o.dataDir });
    // GSM8K: lm-eval's flexible rule (#### or boxed, else the last number) is the headline, the strict one beside it.
    const graders = o.dataset === 'gsm8k' ? [grader('gsm8k'), grader('gsm8k-strict')] : [grader('math')];
    return { ...d, graders };
  }
  const d = await loadDataset({ path: o.dataset, limit: o.limit, fields: o.fields, answerFormat: o.answerFormat });
  return { ...d, graders: [grader('math')] };
}

/** The organism's held-out problems (the split `organism eval` measures on), as evaluation problems. */
export function organismDataset(count: number): RunDataset {
  const problems: Problem[] = generateProblems('test', count, TEST_SEED).map((p, index) => ({
    id: p.id,
    question: p.question,
    answer: String(p.answer),
    meta: { index, start: p.start, ops: p.ops },
  }));
  const sha256 = createHash('sha256')
    .update(problems.map((p) => JSON.stringify([p.id, p.question, p.answer])).join('\n'))
    .digest('hex');
  return {
    info: {
      name: 'organism',
      split: 'test',
      source: `organism test split, seed ${TEST_SEED} (src/organism/task.ts)`,
      file: '',
      format: 'jsonl',
      sha256,
      rows: count,
      start: 0,
      limit: count,
      count,
      fields: { question: 'question', answer: 'answer', id: 'id' },
      answerFormat: 'raw',
    },
    problems,
    graders: [grader('math')],
  };
}
