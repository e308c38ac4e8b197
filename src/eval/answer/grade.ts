/** Grading a whole model response (or one answer) against a gold answer: extraction, then equivalence. */
import { type AnswerComparison, compareAnswers } from './equivalence.ts';
import { type ExtractionMode, type ExtractionRule, extractAnswerWithRule, reduceGold } from './extract.ts';
import { DEFAULT_TIME_LIMIT_MS, type LimitReason } from './limits.ts';
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
  /** Present when a size or time bound stopped the comparison (`correct` is then false). */
  reason?: LimitReason;
}

export interface GradeOptions {
  /** Extraction rules to apply to the response; default `math`. Use `gsm8k` for GSM8K. */
  mode?: ExtractionMode;
  /** Wall-clock budget of the comparison (default 5 s); past it the result is false with a `reason`. */
  timeLimitMs?: number;
}

/** Canonical text of one answer as the grader reads it (null when empty). */
export function describeAnswer(answer: string): string | null {
  const parsed = parseAnswer(reduceGold(answer));
  return parsed ? formatValue(parsed.value) : null;
}

function result(comparison: AnswerComparison, extracted: string | null, rule: ExtractionRule | null): GradeResult {
  const out: GradeResult = {
    correct: comparison.equivalent,
    extracted,
    rule,
    goldParsed: comparison.gold ? formatValue(comparison.gold.value) : null,
    predParsed: comparison.pred ? formatValue(comparison.pred.value) : null,
  };
  if (comparison.reason) out.reason = comparison.reason;
  return out;
}

/**
 * Grades `responseText` (a full model output) against `gold` (an answer such as `\frac{1}{2}`, or a full
 * GSM8K solution ending in `#### n`, or a boxed solution).
 */
export function gradeResponse(gold: string, responseText: string, options: GradeOptions = {}): GradeResult {
  const extraction = extractAnswerWithRule(responseText, { mode: options.mode ?? 'math' });
  const comparison = compareAnswers(gold, extraction?.answer ?? '', options.timeLimitMs ?? DEFAULT_TIME_LIMIT_MS);
  return result(comparison, extraction?.answer ?? null, extraction?.rule ?? null);
}

/** Grades one predicted answer (not a whole response) against `gold`; `extracted` and `rule` are null. */
export function gradeAnswer(gold: string, pred: string, options: Pick<GradeOptions, 'timeLimitMs'> = {}): GradeResult {
  return result(compareAnswers(gold, pred, options.timeLimitMs ?? DEFAULT_TIME_LIMIT_MS), null, null);
}
