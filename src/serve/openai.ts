// The OpenAI request bodies the server takes (/v1/chat/completions, /v1/completions), checked field by
// field: every refusal names the field and what it takes. Fields beyond OpenAI's: `steering`
// (src/serve/steering.ts), `hybrid` (the hybrid model's per-request policy), `top_k`, `min_p`.
import type { ChatMessage, SamplerOptions } from '../engine/index.ts';
import { RequestError } from './steering.ts';

export interface CommonParams {
  model: string;
  /** undefined: as many as fit the model's context */
  maxTokens: number | undefined;
  sampler: SamplerOptions;
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

const bad = (message: string, param: string | null = null) =>
  new RequestError(400, 'invalid_request_error', message, param);

function num(body: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw bad(`${key} must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`, key);
  }
  return v;
}

function int(body: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = num(body, key, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw bad(`${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`, key);
  }
  return v;
}

function common(body: Record<string, unknown>, maxTokensCap: number): CommonParams {
  if (typeof body.model !== 'string' || !body.model) throw bad('model is required (a name from /v1/models)', 'model');
  const n = int(body, 'n', 1, 1);
  void n; // only n = 1 is served
  const maxTokens = int(body, 'max_completion_tokens', 1, maxTokensCap) ?? int(body, 'max_tokens', 1, maxTokensCap);
  let stop: string[] = [];
  if (typeof body.stop === 'string') stop = [body.stop];
  else if (Array.isArray(body.stop)) stop = body.stop;
  else if (body.stop !== undefined && body.stop !== null)
    throw bad('stop must be a string or an array of strings', 'stop');
  if (stop.length > 4 || !stop.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 256)) {
    throw bad('stop takes at most 4 non-empty strings of at most 256 characters', 'stop');
  }
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') {
    throw bad('stream must be true or false', 'stream');
  }
  const so = body.stream_options;
  if (so !== undefined && so !== null && (typeof so !== 'object' || Array.isArray(so))) {
    throw bad('stream_options must be an object', 'stream_options');
  }
  const seed = int(body, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const temperature = num(body, 'temperature', 0, 2) ?? 1;
  return {
    model: body.model,
    maxTokens,
    sampler: {
      temperature,
      topP: num(body, 'top_p', 0, 1) ?? 1,
      topK: int(body, 'top_k', 0, 1 << 20) ?? 0,
      minP: num(body, 'min_p', 0, 1) ?? 0,
      // OpenAI's sampling is random unless a seed is given.
      seed: seed ?? Math.floor(Math.random() * 2 ** 32),
    },
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
        throw bad('only text content parts are served', `${param}[${i}]`);
      })
      .join('');
  }
  throw bad('content must be a string or an array of text parts', param);
}

export function parseChat(body: Record<string, unknown>, maxTokensCap: number): ParsedRequest {
  const c = common(body, maxTokensCap);
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw bad('messages must be a non-empty array of {role, content}', 'messages');
  }
  const messages = body.messages.map((m, i) => {
    if (!m || typeof m !== 'object') throw bad('must be an object {role, content}', `messages[${i}]`);
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || !['system', 'developer', 'user', 'assistant'].includes(role)) {
      throw bad('role must be system, developer, user or assistant', `messages[${i}].role`);
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
    throw bad('prompt must be a non-empty string (one prompt per request)', 'prompt');
  }
  return { kind: 'completion', prompt, ...c };
}
