/** Public API of the math answer grader. See docs/grader.md for the rules. */
export { type AnswerComparison, compareAnswers, isEquivalent, type Verdict, valuesEqual } from './equivalence.ts';
export {
  EXTRACTION_MODES,
  type Extraction,
  type ExtractionMode,
  type ExtractionRule,
  extractAnswer,
  extractAnswerWithRule,
} from './extract.ts';
export { describeAnswer, type GradeOptions, type GradeResult, gradeAnswer, gradeResponse } from './grade.ts';
export { buildJudgePrompt, type JudgeResult, judgeResponse } from './judge.ts';
export { DEFAULT_TIME_LIMIT_MS, GradeLimitError, type LimitReason, MAX_EXACT_BITS, MAX_EXACT_WORK } from './limits.ts';
export { type ParsedAnswer, parseAnswer } from './parse-answer.ts';
export { formatValue, type Value } from './value.ts';
