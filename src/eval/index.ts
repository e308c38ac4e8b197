// Library entry for the evaluation harness (the answer grader lives in ./answer/).
export * from './datasets.ts';
export * from './download.ts';
export * from './majority.ts';
export * from './merge.ts';
export * from './metrics.ts';
export { buildReport, type Report, type WrittenReport, writeReport } from './report/index.ts';
export { type RunSummary, summarizeRun } from './report/summarize.ts';
export * from './store.ts';
