// Prompts of the systems (docs/method.md §5): the paper's plain-text base prompt, encoded with the
// tokenizer's own special tokens (Llama-3 adds BOS, Qwen2.5 nothing), or the model's chat template
// (one user turn, generation prompt; the template writes its own special tokens), or a template of
// the user's with {question} (plain text) or {chat} (the rendered chat template).
import type { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';

export const PAPER_BASE_PROMPT =
  'Task: Answer the question below. Explain your reasoning step by step.\n\n\n\nQuestion:\n{question}\n\nStep by step answer:\n';

/** 'paper', 'chat', or a template holding {question} or {chat}. */
export type PromptSpec = 'paper' | 'chat' | string;

export function checkPromptSpec(spec: PromptSpec): void {
  if (spec !== 'paper' && spec !== 'chat' && !spec.includes('{question}') && !spec.includes('{chat}')) {
    throw new ThinkwhenError(
      'BAD_PROMPT',
      `prompt ${JSON.stringify(spec.slice(0, 60))} is neither 'paper' nor 'chat' and contains neither {question} nor {chat}`,
      "use 'paper', 'chat', or a template with {question} (or {chat}, the rendered chat template)",
    );
  }
}

export function promptIds(model: Model, spec: PromptSpec, question: string): number[] {
  checkPromptSpec(spec);
  const chat = () => model.applyChatTemplate([{ role: 'user', content: question }], { addGenerationPrompt: true });
  const template = spec === 'paper' ? PAPER_BASE_PROMPT : spec === 'chat' ? '{chat}' : spec;
  // One pass, so a question that contains "{chat}" is not expanded again.
  const text = template.replace(/\{question\}|\{chat\}/g, (m) => (m === '{chat}' ? chat() : question));
  const ids = Array.from(model.tokenize(text, { addSpecial: !template.includes('{chat}'), parseSpecial: true }));
  if (ids.length === 0) {
    throw new ThinkwhenError('EMPTY_PROMPT', `the prompt for ${JSON.stringify(question.slice(0, 60))} has no tokens`);
  }
  return ids;
}
