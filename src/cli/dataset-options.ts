// The problem-set options `thinkwhen run` and `thinkwhen hybrid` share, and the one way both turn
// them into a dataset (src/experiments/datasets.ts).
import { loadRunDataset, ORGANISM_TEST_COUNT, type RunDataset } from '../experiments/datasets.ts';
import { choice, int, text } from './options.ts';

/** The option-table fragment; `datasetDefault` ends the --dataset help (what happens without it). */
export function datasetOptions(datasetDefault: string) {
  return {
    dataset: text({
      arg: 'NAME|FILE',
      help: `gsm8k (first 500 of test, as the paper), math500, organism (the organism's held-out test set, ${ORGANISM_TEST_COUNT} problems), or a JSONL/parquet file (${datasetDefault})`,
    }),
    limit: int({ help: 'only the first N problems (a quick look)', min: 1, max: 10_000_000 }),
    'data-dir': text({
      arg: 'DIR',
      help: 'local copies of gsm8k/test.jsonl, math500/test.jsonl (default $THINKWHEN_DATA_DIR, else downloaded from the hub once)',
    }),
    'question-field': text({ arg: 'F', help: 'question field of a custom file (default question)' }),
    'answer-field': text({ arg: 'F', help: 'gold answer field of a custom file (default answer)' }),
    'id-field': text({ arg: 'F', help: 'id field of a custom file (default id, else the row number)' }),
    'answer-format': choice({
      arg: 'F',
      help: 'how the gold is read from the answer field of a custom file: as is (raw, the default), after "####" (gsm8k), or the last \\boxed{} (boxed)',
      choices: ['raw', 'gsm8k', 'boxed'],
    }),
  };
}

/** What the fragment parses to. */
export interface DatasetValues {
  limit?: number;
  'data-dir'?: string;
  'question-field'?: string;
  'answer-field'?: string;
  'id-field'?: string;
  'answer-format'?: 'raw' | 'gsm8k' | 'boxed';
}

/** Loads the named dataset (or file) with the fragment's options. */
export function loadDatasetOption(name: string, values: DatasetValues): Promise<RunDataset> {
  return loadRunDataset({
    dataset: name,
    limit: values.limit,
    dataDir: values['data-dir'],
    fields: { question: values['question-field'], answer: values['answer-field'], id: values['id-field'] },
    answerFormat: values['answer-format'],
  });
}
