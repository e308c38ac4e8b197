/** Public API of the math answer grader. See docs/grader.md for the rules. */
export { isEquivalent, valuesEqual } from './equivalence.ts';
export {
  EXTRACTION_MODES,
  type Extraction,
  type ExtractionMode,
  type ExtractionRule,
  extractAnswer,
  extractAnswerWithRule,
} from './extract.ts';
export { describeAnswer, type GradeOptions, type GradeResult, gradeResponse } from './grade.ts';
export { buildJudgePrompt, type JudgeResult, judgeResponse } from './judge.ts';
export { type ParsedAnswer, parseAnswer } from './parse-answer.ts';
export { formatValue, type Value } from './value.ts';
