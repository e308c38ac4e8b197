/**
 * Glue between the paper's LLM judge (judge.ts: prompt and verdict) and the OpenAI-compatible client
 * (src/llm/client.ts: HTTP, retries, on-disk cache). Used by `thinkwhen grade --jsonl --judge`.
 *
 * Failures: configuration problems (endpoint unreachable, key refused, unknown model) are rethrown as
 * ThinkwhenError naming the `--judge-*` fix, and every later or queued call fails at once with the same
 * error instead of retrying on its own. With `fallback: true`, a failed call yields no verdict
 * instead (`source: 'fallback'`: the rule-based grader decides), and after a configuration problem the
 * remaining calls are tried once each, without retries, so cached verdicts are still served but a dead
 * endpoint does not cost a full backoff per line.
 */
import { ThinkwhenError } from '../../errors.ts';
import { type ChatParams, LlmClient, type LlmClientOptions } from '../../llm/client.ts';
import { type JudgeInput, judgeResponse } from './judge.ts';

/** The paper's judge model (docs/method.md §2.8). */
export const DEFAULT_JUDGE_MODEL = 'gpt-4.1';
/** Default cache directory, relative to the working directory. */
export const DEFAULT_JUDGE_CACHE = '.thinkwhen-cache/llm';
/**
 * The paper calls GPT-4.1 with temperature 1e-19 and max_tokens 100; 0 is the portable spelling of
 * "greedy" (some servers reject denormal-looking temperatures).
 */
export const JUDGE_PARAMS: ChatParams = { temperature: 0, max_tokens: 100 };

/** Client errors that mean the judge cannot work at all, whatever the line. */
const CONFIG_ERRORS = new Set(['llm-unreachable', 'llm-unauthorized', 'llm-bad-model', 'llm-no-model']);

export interface JudgeClientOptions extends Pick<LlmClientOptions, 'baseUrl' | 'apiKey' | 'cacheDir'> {
  model?: string;
  maxRetries?: number;
  concurrency?: number;
  /** When a call fails, return no verdict (`source: 'fallback'`) instead of throwing. */
  fallback?: boolean;
  /** Test hook: client options merged over the defaults (backoff, timeout). */
  clientOptions?: LlmClientOptions;
}

export interface JudgeVerdict {
  /** The judge's verdict; null when it gave none (fallback: use the rule-based grader). */
  correct: boolean | null;
  /** `judge`: a fresh call decided; `cache`: a cached reply decided; `fallback`: the call failed. */
  source: 'judge' | 'cache' | 'fallback';
  reply: string | null;
  error?: string;
}

export interface JudgeClient {
  readonly baseUrl: string;
  readonly model: string;
  judge(input: JudgeInput): Promise<JudgeVerdict>;
  /** Requests sent and cache hits so far (both clients). */
  stats(): { requests: number; cacheHits: number };
}

function explain(err: unknown, baseUrl: string, model: string): unknown {
  if (!(err instanceof ThinkwhenError)) return err;
  const advice = 'or drop --judge to grade with the rule-based grader only, or add --judge-fallback';
  switch (err.code) {
    case 'llm-unreachable':
      return new ThinkwhenError(
        'JUDGE_UNREACHABLE',
        `the judge endpoint is unreachable: ${err.message.replace(/ \(fix: .*\)$/s, '')}`,
        `start the server, or point --judge-url (default: env OPENAI_BASE_URL) at a reachable OpenAI-compatible endpoint ending in /v1, ${advice}`,
      );
    case 'llm-unauthorized':
      return new ThinkwhenError(
        'JUDGE_UNAUTHORIZED',
        `the judge endpoint ${baseUrl} refused the API key`,
        `set OPENAI_API_KEY to a valid key for this endpoint, ${advice}`,
      );
    case 'llm-bad-model':
      return new ThinkwhenError(
        'JUDGE_BAD_MODEL',
        `the judge endpoint ${baseUrl} does not serve model "${model}"`,
        `pass --judge-model with a model listed at ${baseUrl}/models, ${advice}`,
      );
    default:
      return new ThinkwhenError(
        'JUDGE_FAILED',
        `the judge call failed: ${err.message}`,
        `rerun (verdicts obtained so far are cached), ${advice}`,
      );
  }
}

export function createJudgeClient(options: JudgeClientOptions = {}): JudgeClient {
  const model = options.model ?? DEFAULT_JUDGE_MODEL;
  const base: LlmClientOptions = {
    baseUrl: options.baseUrl,
    apiKey: options.apiKey,
    cacheDir: options.cacheDir,
    model,
    maxRetries: options.maxRetries ?? 4,
    concurrency: options.concurrency,
    ...options.clientOptions,
  };
  const client = new LlmClient(base);
  // Used once the endpoint is known to be unusable (fallback mode only): cache hits, else fail fast.
  let degraded: LlmClient | null = null;
  // Without fallback, the first failure is final: later calls rethrow it without touching the network.
  let fatal: unknown = null;
  // Calls queue here (not inside the client) so that a queued call sees a failure that happened while
  // it waited.
  const limit = Math.max(1, options.concurrency ?? 8);
  let active = 0;
  const waiting: Array<() => void> = [];
  const acquire = async (): Promise<void> => {
    if (active < limit) active++;
    else await new Promise<void>((resolve) => waiting.push(resolve)); // the releaser hands its slot over
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else active--;
  };

  return {
    baseUrl: client.baseUrl,
    model,
    stats: () => ({
      requests: client.stats.requests + (degraded?.stats.requests ?? 0),
      cacheHits: client.stats.cacheHits + (degraded?.stats.cacheHits ?? 0),
    }),
    async judge(input) {
      await acquire();
      try {
        return await judgeOnce(input);
      } finally {
        release();
      }
    },
  };

  async function judgeOnce(input: JudgeInput): Promise<JudgeVerdict> {
    if (fatal) throw fatal;
    let cached = false;
    const use = degraded ?? client;
    const complete = async (prompt: string): Promise<string> => {
      const r = await use.chat([{ role: 'user', content: prompt }], { params: JUDGE_PARAMS });
      cached = r.cached;
      return r.content;
    };
    try {
      const r = await judgeResponse(input, { complete, fallbackMode: null });
      return { correct: r.correct, source: cached ? 'cache' : 'judge', reply: r.reply };
    } catch (err) {
      const explained = explain(err, client.baseUrl, model);
      if (!options.fallback) {
        fatal ??= explained;
        throw fatal;
      }
      if (err instanceof ThinkwhenError && CONFIG_ERRORS.has(err.code) && !degraded) {
        degraded = new LlmClient({ ...base, maxRetries: 0 });
      }
      return { correct: null, source: 'fallback', reply: null, error: (explained as Error).message };
    }
  }
}
