/**
 * A client for any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama-server, this
 * project's server), on Node's global fetch.
 *
 * - Retries with exponential backoff and full jitter on 429, 5xx, timeouts, network errors and malformed
 *   responses (unparseable body, missing message, or content that fails the caller's parser); a
 *   `Retry-After` header (seconds or HTTP date) sets the wait instead, capped at `maxRetryAfterMs`.
 * - At most `concurrency` requests in flight; each attempt has its own timeout (AbortController).
 * - Every successful call is cached on disk by content hash (see cache.ts); a cached call makes no request.
 * - Failures that retrying cannot fix (unreachable endpoint after retries, 401/403, unknown model,
 *   other 4xx) throw ThinkwhenError naming the problem and the fix.
 */
import { ThinkwhenError } from '../errors.ts';
import { cacheKey, LlmCache } from './cache.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Request body fields besides model and messages (temperature, max_tokens, response_format, …). */
export type ChatParams = Record<string, unknown>;

export interface LlmClientOptions {
  /** Default: env OPENAI_BASE_URL, else https://api.openai.com/v1. */
  baseUrl?: string;
  /** Default: env OPENAI_API_KEY (may be empty for local servers). */
  apiKey?: string;
  /** Default model when a call names none. */
  model?: string;
  /** Directory of the call cache; no caching when omitted. */
  cacheDir?: string;
  concurrency?: number;
  timeoutMs?: number;
  /** Retries after the first attempt. */
  maxRetries?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Longest wait a Retry-After header can impose. */
  maxRetryAfterMs?: number;
  /** Progress hook: requests, cache hits, retries with their reason. */
  onEvent?: (event: LlmEvent) => void;
}

export type RetryReason = 'rate-limited' | 'server-error' | 'timeout' | 'network' | 'malformed';

export type LlmEvent =
  | { type: 'retry'; reason: RetryReason; attempt: number; waitMs: number; detail: string }
  | { type: 'cache-hit'; key: string }
  | { type: 'request'; key: string; attempt: number };

export interface LlmStats {
  requests: number;
  cacheHits: number;
  retries: Record<RetryReason, number>;
  failures: number;
}

export interface ChatOptions<T> {
  model?: string;
  params?: ChatParams;
  /** Parse/validate the content; throwing marks the response malformed (retried, not cached). */
  parse?: (content: string) => T;
  /** Extra cache-key text, not sent: separates deliberate repeats of one request (e.g. repetitions). */
  cacheTag?: string;
}

export interface ChatResult<T = string> {
  content: string;
  value: T;
  cached: boolean;
  key: string;
}

class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/** A failure worth retrying. */
class Transient extends Error {
  constructor(
    readonly reason: RetryReason,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value.trim());
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export class LlmClient {
  readonly baseUrl: string;
  readonly model: string | undefined;
  readonly stats: LlmStats = {
    requests: 0,
    cacheHits: 0,
    retries: { 'rate-limited': 0, 'server-error': 0, timeout: 0, network: 0, malformed: 0 },
    failures: 0,
  };
  private readonly apiKey: string;
  private readonly cache: LlmCache | null;
  private readonly semaphore: Semaphore;
  private readonly opts: Required<
    Pick<LlmClientOptions, 'timeoutMs' | 'maxRetries' | 'backoffBaseMs' | 'backoffMaxMs' | 'maxRetryAfterMs'>
  >;

  constructor(private readonly options: LlmClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? process.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1').replace(/\/+$/, '');
    this.apiKey = options.apiKey ?? process.env.OPENAI_API_KEY ?? '';
    this.model = options.model;
    this.cache = options.cacheDir ? new LlmCache(options.cacheDir) : null;
    this.semaphore = new Semaphore(Math.max(1, options.concurrency ?? 8));
    this.opts = {
      timeoutMs: options.timeoutMs ?? 120_000,
      maxRetries: options.maxRetries ?? 6,
      backoffBaseMs: options.backoffBaseMs ?? 1000,
      backoffMaxMs: options.backoffMaxMs ?? 60_000,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 120_000,
    };
  }

  /** One chat completion; returns the assistant's content (and the parsed value when `parse` is given). */
  async chat<T = string>(messages: ChatMessage[], options: ChatOptions<T> = {}): Promise<ChatResult<T>> {
    const model = options.model ?? this.model;
    if (!model) {
      throw new ThinkwhenError(
        'LLM_NO_MODEL',
        'no LLM model named for this call',
        'pass --llm-model (or the model option)',
      );
    }
    const params = options.params ?? {};
    const key = cacheKey({ baseUrl: this.baseUrl, model, messages, params, tag: options.cacheTag });
    const parse = options.parse ?? ((c: string) => c as unknown as T);
    const hit = await this.cache?.get(key);
    if (hit) {
      try {
        const value = parse(hit.content);
        this.stats.cacheHits++;
        this.options.onEvent?.({ type: 'cache-hit', key });
        return { content: hit.content, value, cached: true, key };
      } catch {
        // A cached entry the current parser rejects is refetched.
      }
    }
    return this.semaphore.run(() => this.withRetries(key, model, messages, params, parse));
  }

  private async withRetries<T>(
    key: string,
    model: string,
    messages: ChatMessage[],
    params: ChatParams,
    parse: (content: string) => T,
  ): Promise<ChatResult<T>> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.stats.requests++;
        this.options.onEvent?.({ type: 'request', key, attempt });
        const { content, response } = await this.once(model, messages, params);
        let value: T;
        try {
          value = parse(content);
        } catch (err) {
          throw new Transient('malformed', `response content rejected: ${(err as Error).message}`);
        }
        await this.cache?.set({
          key,
          request: { baseUrl: this.baseUrl, model, messages, params },
          content,
          response,
          createdAt: new Date().toISOString(),
        });
        return { content, value, cached: false, key };
      } catch (err) {
        if (!(err instanceof Transient)) {
          this.stats.failures++;
          throw err;
        }
        if (attempt >= this.opts.maxRetries) {
          this.stats.failures++;
          throw this.finalError(err, attempt + 1);
        }
        const backoff = Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** attempt);
        const waitMs =
          err.retryAfterMs !== undefined
            ? Math.min(err.retryAfterMs, this.opts.maxRetryAfterMs)
            : Math.random() * backoff;
        this.stats.retries[err.reason]++;
        this.options.onEvent?.({
          type: 'retry',
          reason: err.reason,
          attempt: attempt + 1,
          waitMs,
          detail: err.message,
        });
        await sleep(waitMs);
      }
    }
  }

  private finalError(err: Transient, attempts: number): ThinkwhenError {
    const where = `${this.baseUrl}/chat/completions`;
    if (err.reason === 'network') {
      return new ThinkwhenError(
        'LLM_UNREACHABLE',
        `cannot reach the LLM endpoint ${where} after ${attempts} attempts (${err.message})`,
        'start the server or set OPENAI_BASE_URL / --llm-base-url to a reachable OpenAI-compatible endpoint; use offline labels to skip the LLM',
      );
    }
    if (err.reason === 'timeout') {
      return new ThinkwhenError(
        'LLM_TIMEOUT',
        `the LLM endpoint ${where} did not answer within ${this.opts.timeoutMs} ms, ${attempts} attempts`,
        'raise the timeout, lower the concurrency, or check the server load',
      );
    }
    return new ThinkwhenError(
      'LLM_FAILED',
      `the LLM endpoint ${where} kept failing (${err.reason}: ${err.message}) after ${attempts} attempts`,
      err.reason === 'malformed'
        ? 'use a model that follows the requested output format (JSON mode), or inspect the raw responses'
        : 'retry later or lower the concurrency',
    );
  }

  private async once(
    model: string,
    messages: ChatMessage[],
    params: ChatParams,
  ): Promise<{ content: string; response: unknown }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.opts.timeoutMs);
    let res: Response;
    let text: string;
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
      res = await fetch(`${this.baseUrl}/chat/completions`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ ...params, model, messages }),
        signal: controller.signal,
      });
      text = await res.text();
    } catch (err) {
      if (controller.signal.aborted) throw new Transient('timeout', `no answer within ${this.opts.timeoutMs} ms`);
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new Transient('network', cause?.code ?? cause?.message ?? (err as Error).message);
    } finally {
      clearTimeout(timer);
    }
    if (res.status === 429) {
      throw new Transient(
        'rate-limited',
        `HTTP 429 ${text.slice(0, 200)}`,
        parseRetryAfter(res.headers.get('retry-after')),
      );
    }
    if (res.status >= 500) {
      throw new Transient(
        'server-error',
        `HTTP ${res.status} ${text.slice(0, 200)}`,
        parseRetryAfter(res.headers.get('retry-after')),
      );
    }
    if (res.status === 401 || res.status === 403) {
      throw new ThinkwhenError(
        'LLM_UNAUTHORIZED',
        `the LLM endpoint ${this.baseUrl} refused the API key (HTTP ${res.status}): ${text.slice(0, 200)}`,
        'set OPENAI_API_KEY (or --llm-api-key) to a valid key for this endpoint',
      );
    }
    if (res.status === 404 || (res.status === 400 && /model/i.test(text))) {
      throw new ThinkwhenError(
        'LLM_BAD_MODEL',
        `the LLM endpoint ${this.baseUrl} does not serve model "${model}" (HTTP ${res.status}): ${text.slice(0, 200)}`,
        'pass a model the endpoint lists at GET /models (--llm-model), or check that the base URL ends in /v1',
      );
    }
    if (res.status >= 400) {
      throw new ThinkwhenError(
        'LLM_BAD_REQUEST',
        `the LLM endpoint ${this.baseUrl} rejected the request (HTTP ${res.status}): ${text.slice(0, 300)}`,
        'check the request parameters this endpoint supports',
      );
    }
    let body: { choices?: Array<{ message?: { content?: unknown } }> };
    try {
      body = JSON.parse(text);
    } catch {
      throw new Transient('malformed', `response body is not JSON: ${text.slice(0, 120)}`);
    }
    const content = body?.choices?.[0]?.message?.content;
    if (typeof content !== 'string') throw new Transient('malformed', 'response has no choices[0].message.content');
    return { content, response: body };
  }
}

/**
 * Parse a JSON object from model output, tolerating a ```json fence or text around the object.
 * Throws when no object parses (the client then retries the call).
 */
export function parseJsonContent(content: string): Record<string, unknown> {
  const fenced = content.match(/```(?:json)?\s*([\s\S]*?)```/);
  const candidates = [content, fenced?.[1] ?? ''];
  const first = content.indexOf('{');
  const last = content.lastIndexOf('}');
  if (first >= 0 && last > first) candidates.push(content.slice(first, last + 1));
  for (const c of candidates) {
    try {
      const v = JSON.parse(c.trim());
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // try the next candidate
    }
  }
  throw new Error(`no JSON object in: ${content.slice(0, 120)}`);
}
