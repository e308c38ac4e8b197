// Renders a GGUF's own `tokenizer.chat_template` with a Jinja implementation made for chat templates.
import { Template } from '@huggingface/jinja';
import { ThinkwhenError } from '../errors.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | string;
  content: string;
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  /** Extra variables some templates read (e.g. enable_thinking). */
  extra?: Record<string, unknown>;
}

const cache = new Map<string, Template>();

export function renderChatTemplate(
  source: string | null,
  messages: ChatMessage[],
  opts: ChatTemplateOptions = {},
): string {
  if (!source) {
    throw new ThinkwhenError(
      'NO_CHAT_TEMPLATE',
      'the model has no tokenizer.chat_template',
      'pass a template explicitly, or use raw prompts (--raw)',
    );
  }
  let template = cache.get(source);
  if (!template) {
    template = new Template(source);
    cache.set(source, template);
  }
  return template.render({
    messages,
    add_generation_prompt: opts.addGenerationPrompt ?? true,
    bos_token: opts.bosToken ?? '',
    eos_token: opts.eosToken ?? '',
    ...opts.extra,
  });
}
