// The OpenAI request bodies the server takes (/v1/chat/completions, /v1/completions), checked field by
// field: every refusal names the field, what it takes and how to fix it. Fields beyond OpenAI's:
// `steering` (src/serve/steering.ts), `hybrid` (the hybrid model's per-request policy, src/serve/hybrid.ts),
// `top_k`, `min_p`. Unknown fields are ignored, as OpenAI-compatible servers do.
import type { ChatMessage, SamplerOptions } from '../engine/index.ts';
import { badField } from './request-error.ts';

export interface CommonParams {
  model: string;
  /** undefined: as many as fit the model's context */
  maxTokens: number | undefined;
  sampler: SamplerOptions;
  /** the request's own `temperature` and `seed` (undefined: not sent); the hybrid model defaults differently */
  temperature: number | undefined;
  seed: number | undefined;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  /** the raw `steering` field, parsed by the model that serves it */
  steering: unknown;
  /** the raw `hybrid` field (hybrid models only) */
  hybrid: unknown;
}

export type ParsedRequest =
  | ({ kind: 'chat'; messages: ChatMessage[] } & CommonParams)
  | ({ kind: 'completion'; prompt: string } & CommonParams);

function num(body: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw badField(
      key,
      `${key} must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`,
      `send ${key} within ${min}..${max} or leave it out`,
    );
  }
  return v;
}

function int(body: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw badField(
      key,
      `${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`,
      `send ${key} within ${min}..${max} or leave it out`,
    );
  }
  return v;
}

function common(body: Record<string, unknown>, maxTokensCap: number): CommonParams {
  if (typeof body.model !== 'string' || !body.model) {
    throw badField('model', 'model is required', 'send "model": one of the ids GET /v1/models lists');
  }
  int(body, 'n', 1, 1); // one choice per request
  const maxTokens = int(body, 'max_completion_tokens', 1, maxTokensCap) ?? int(body, 'max_tokens', 1, maxTokensCap);
  let stop: string[] = [];
  if (typeof body.stop === 'string') stop = [body.stop];
  else if (Array.isArray(body.stop)) stop = body.stop;
  else if (body.stop !== undefined && body.stop !== null) {
    throw badField('stop', 'stop must be a string or an array of strings', 'send "stop": ["\\n\\n"] or leave it out');
  }
  if (stop.length > 4 || !stop.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 256)) {
    throw badField('stop', 'stop takes at most 4 non-empty strings of at most 256 characters', 'shorten the stop list');
  }
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') {
    throw badField('stream', 'stream must be true or false', 'send "stream": true for server-sent events');
  }
  const so = body.stream_options;
  if (so !== undefined && so !== null && (typeof so !== 'object' || Array.isArray(so))) {
    throw badField(
      'stream_options',
      'stream_options must be an object',
      'send {"include_usage": true} or leave it out',
    );
  }
  const seed = int(body, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const temperature = num(body, 'temperature', 0, 2);
  return {
    model: body.model,
    maxTokens,
    sampler: {
      temperature: temperature ?? 1,
      topP: num(body, 'top_p', 0, 1) ?? 1,
      topK: int(body, 'top_k', 0, 1 << 20) ?? 0,
      minP: num(body, 'min_p', 0, 1) ?? 0,
      // OpenAI's sampling is random unless a seed is given.
      seed: seed ?? Math.floor(Math.random() * 2 ** 32),
    },
    temperature,
    seed,
    stop,
    stream: body.stream === true,
    includeUsage: (so as { include_usage?: unknown } | undefined)?.include_usage === true,
    steering: body.steering,
    hybrid: body.hybrid,
  };
}

function contentText(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part, i) => {
        if (part && typeof part === 'object' && (part as { type?: unknown }).type === 'text') {
          const t = (part as { text?: unknown }).text;
          if (typeof t === 'string') return t;
        }
        throw badField(
          `${param}[${i}]`,
          'only text content parts are served',
          'send {"type": "text", "text": "..."} parts or a string',
        );
      })
      .join('');
  }
  throw badField(param, 'content must be a string or an array of text parts', 'send "content": "your text"');
}

export function parseChat(body: Record<string, unknown>, maxTokensCap: number): ParsedRequest {
  const c = common(body, maxTokensCap);
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw badField(
      'messages',
      'messages must be a non-empty array',
      'send "messages": [{"role": "user", "content": "..."}]',
    );
  }
  const messages = body.messages.map((m, i) => {
    if (!m || typeof m !== 'object') {
      throw badField(`messages[${i}]`, 'a message must be an object', 'send {"role": "user", "content": "..."}');
    }
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || !['system', 'developer', 'user', 'assistant'].includes(role)) {
      throw badField(
        `messages[${i}].role`,
        `role ${JSON.stringify(role)} is not served`,
        'use system, developer, user or assistant',
      );
    }
    return { role: role === 'developer' ? 'system' : role, content: contentText(content, `messages[${i}].content`) };
  });
  return { kind: 'chat', messages, ...c };
}

export function parseCompletion(body: Record<string, unknown>, maxTokensCap: number): ParsedRequest {
  const c = common(body, maxTokensCap);
  let prompt = body.prompt;
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string') prompt = prompt[0];
  if (typeof prompt !== 'string' || prompt.length === 0) {
    throw badField(
      'prompt',
      'prompt must be a non-empty string (one prompt per request)',
      'send "prompt": "your text"; for several prompts send several requests',
    );
  }
  return { kind: 'completion', prompt, ...c };
}
