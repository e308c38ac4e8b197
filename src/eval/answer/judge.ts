/**
 * The paper's optional LLM judge (docs/method.md §2.8): GPT-4.1 at temperature ~0, max 100 tokens, asked
 * YES/NO; correct iff the reply contains "yes" (case-insensitive). The HTTP client lives in src/llm/;
 * this module only builds the prompt and reads the reply, through an injected `complete` function.
 */
import type { ExtractionMode } from './extract.ts';
import { gradeResponse } from './grade.ts';

export interface JudgeInput {
  question: string;
  /** For GSM8K the paper passes the full gold solution ending in `#### n`. */
  gold: string;
  /** The full model response (reasoning included); whitespace is collapsed as the paper does. */
  response: string;
}

export interface JudgeOptions {
  /** Sends one prompt to the judge model and resolves with its reply text. */
  complete: (prompt: string) => Promise<string>;
  /**
   * When `complete` rejects: grade with the rule-based grader in this mode (the paper falls back to a
   * local numeric comparison), or `null` to rethrow. Default `gsm8k` (last-number fallback included).
   */
  fallbackMode?: ExtractionMode | null;
}

export interface JudgeResult {
  correct: boolean;
  /** `judge`: the model's reply decided; `fallback`: the call failed and the rule-based grader decided. */
  source: 'judge' | 'fallback';
  prompt: string;
  reply: string | null;
  error?: string;
}

const collapseWhitespace = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** The judge prompt, byte for byte as the authors' `evaluate_answer` builds it. */
export function buildJudgePrompt(question: string, gold: string, modelAnswer: string): string {
  return (
    'Please evaluate whether the following answer to a math problem is correct.\n\n' +
    `Question: ${question}\n\n` +
    `Correct answer: ${gold}\n\n` +
    `Model's answer: ${modelAnswer}\n\n` +
    "First, extract the final numerical answer from both the correct answer and model's answer. \n" +
    "Then determine if the model's final numerical answer is equivalent to the correct final numerical answer.\n" +
    "Just answer YES if the model's answer is correct, or NO if it's incorrect. Nothing else.\n"
  );
}

/** The paper's reading of the reply: any "yes" anywhere, case-insensitive. */
export const judgeSaysYes = (reply: string): boolean => reply.toLowerCase().includes('yes');

export async function judgeResponse(input: JudgeInput, options: JudgeOptions): Promise<JudgeResult> {
  const prompt = buildJudgePrompt(input.question, input.gold, collapseWhitespace(input.response));
  try {
    const reply = await options.complete(prompt);
    return { correct: judgeSaysYes(reply), source: 'judge', prompt, reply };
  } catch (err) {
    const mode = options.fallbackMode === undefined ? 'gsm8k' : options.fallbackMode;
    if (mode === null) throw err;
    const graded = gradeResponse(input.gold, input.response, { mode });
    return { correct: graded.correct, source: 'fallback', prompt, reply: null, error: String(err) };
  }
}
