/** Grading a whole model response against a gold answer: extraction, then equivalence. */
import { compareParsed } from './equivalence.ts';
import { type ExtractionMode, type ExtractionRule, extractAnswerWithRule, reduceToAnswer } from './extract.ts';
import { parseAnswer } from './parse-answer.ts';
import { formatValue } from './value.ts';

export interface GradeResult {
  correct: boolean;
  /** The answer pulled out of the response, or null when none was found. */
  extracted: string | null;
  /** Which extraction rule fired. */
  rule: ExtractionRule | null;
  /** Canonical forms of the parsed gold and prediction (null: empty / not found). */
  goldParsed: string | null;
  predParsed: string | null;
}

export interface GradeOptions {
  /** Extraction rules to apply to the response; default `math`. Use `gsm8k` for GSM8K. */
  mode?: ExtractionMode;
}

/** Canonical text of one answer as the grader reads it (null when empty). */
export function describeAnswer(answer: string): string | null {
  const parsed = parseAnswer(reduceToAnswer(answer));
  return parsed ? formatValue(parsed.value) : null;
}

/**
 * Grades `responseText` (a full model output) against `gold` (an answer such as `\frac{1}{2}`, or a full
 * GSM8K solution ending in `#### n`, or a boxed solution).
 */
export function gradeResponse(gold: string, responseText: string, options: GradeOptions = {}): GradeResult {
  const extraction = extractAnswerWithRule(responseText, { mode: options.mode ?? 'math' });
  const goldAnswer = parseAnswer(reduceToAnswer(gold));
  const predAnswer = extraction ? parseAnswer(extraction.answer) : null;
  return {
    correct: goldAnswer !== null && predAnswer !== null && compareParsed(goldAnswer, predAnswer),
    extracted: extraction?.answer ?? null,
    rule: extraction?.rule ?? null,
    goldParsed: goldAnswer ? formatValue(goldAnswer.value) : null,
    predParsed: predAnswer ? formatValue(predAnswer.value) : null,
  };
}
