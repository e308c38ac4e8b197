// The hybrid model as a served model: each request is one problem of the hybrid loop
// (src/hybrid, `hybridRun`) on the shared base/thinking pair, with the server's defaults and the
// request's `hybrid` field (its policy, grid, pure-steering cell, seed). Up to `parallel` requests
// run at once, each with its own KV caches; `queue` more wait; beyond that, BUSY (429).
// Greedy unless the request sends a temperature (then it samples, docs/hybrid.md "Sampling").
import { ThinkwhenError } from '../errors.ts';
import { type PromptSpec, promptIds } from '../experiments/prompts.ts';
import {
  type HybridOptions,
  type HybridPair,
  type HybridResult,
  hybridGenerate,
  POLICIES,
  resolveOptions,
} from '../hybrid/index.ts';
import { checkLength, type Generation, type ServedModel } from './models.ts';
import type { ParsedRequest } from './openai.ts';
import { badField, requestErrorFrom } from './request-error.ts';

export interface HybridServeOptions {
  /** requests generating at once */
  parallel: number;
  /** requests waiting beyond `parallel` */
  queue: number;
  /** tokens one request may hold, prompt included (default: the base model's training context, at most 4096) */
  ctxSize?: number;
  /** chat requests: how the user message becomes each model's prompt (PromptSpec, docs/hybrid.md) */
  basePrompt: PromptSpec;
  thinkingPrompt: PromptSpec;
  /** the server's hybrid options (policy, grid, speculate, threads...), which a request may override */
  defaults: HybridOptions;
}

/** The request keys of the `hybrid` field and the option each sets. */
const FIELDS = {
  policy: 'policy',
  coefficients: 'coefficients',
  windows: 'windows',
  coefficient: 'pureCoefficient',
  window: 'pureWindow',
  missing_vector: 'missingVector',
  seed: 'seed',
} as const;

/** The request's `hybrid` field as options (values are checked by resolveOptions). */
export function parseHybridField(field: unknown, defaults: HybridOptions): HybridOptions {
  if (field === undefined || field === null) return defaults;
  const fix = `send e.g. {"policy": "only_bias", "coefficients": [0.5, 1], "windows": [0, -1]}; keys: ${Object.keys(FIELDS).join(', ')}`;
  if (typeof field !== 'object' || Array.isArray(field)) throw badField('hybrid', 'hybrid must be an object', fix);
  const f = field as Record<string, unknown>;
  for (const k of Object.keys(f))
    if (!(k in FIELDS)) throw badField(`hybrid.${k}`, `unknown key '${k}' in hybrid`, fix);
  const numbers = (k: string): number[] | undefined => {
    const v = f[k];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length === 0 || v.length > 64 || !v.every((x) => typeof x === 'number')) {
      throw badField(`hybrid.${k}`, `hybrid.${k} must be a list of 1 to 64 numbers`, fix);
    }
    return v as number[];
  };
  const scalar = <T>(k: string, type: 'number' | 'string'): T | undefined => {
    const v = f[k];
    if (v === undefined) return undefined;
    if (typeof v !== type) throw badField(`hybrid.${k}`, `hybrid.${k} must be a ${type}`, fix);
    return v as T;
  };
  const policy = scalar<string>('policy', 'string');
  if (policy !== undefined && !(POLICIES as readonly string[]).includes(policy)) {
    throw badField('hybrid.policy', `unknown policy '${policy}'`, `use one of ${POLICIES.join(', ')}`);
  }
  const grid = defaults.grid ?? { coefficients: [], windows: [] };
  const out: HybridOptions = {
    ...defaults,
    policy: (policy as HybridOptions['policy']) ?? defaults.policy,
    grid: {
      coefficients: numbers('coefficients') ?? grid.coefficients,
      windows: numbers('windows') ?? grid.windows,
    },
    pureCoefficient: scalar<number>('coefficient', 'number') ?? defaults.pureCoefficient,
    pureWindow: scalar<number>('window', 'number') ?? defaults.pureWindow,
    missingVector:
      (scalar<string>('missing_vector', 'string') as HybridOptions['missingVector']) ?? defaults.missingVector,
    seed: scalar<number>('seed', 'number') ?? defaults.seed,
  };
  if (!out.grid?.coefficients.length) out.grid = defaults.grid;
  try {
    resolveOptions(out);
  } catch (err) {
    if (err instanceof ThinkwhenError) throw requestErrorFrom(err, 'hybrid', fix);
    throw err;
  }
  return out;
}

/**
 * The request's sampling fields as hybrid options. Without `temperature` the hybrid decodes greedily
 * (the paper's setting; OpenAI's default of 1 applies to the plain models only). At temperature > 0
 * the draws are those of docs/hybrid.md, "Sampling": the same seed gives the same text. The seed is
 * `hybrid.seed` or OpenAI's `seed` (they must agree when both are sent); without either, a sampled
 * request draws a random one (as OpenAI does) and a greedy one keeps the server's.
 */
export function hybridSampling(
  req: ParsedRequest,
  defaults: HybridOptions,
): Pick<HybridOptions, 'temperature' | 'topP' | 'seed'> {
  const { topK, minP, topP = 1 } = req.sampler;
  if (topK) throw badField('top_k', 'the hybrid model draws with temperature and top_p only', 'leave top_k out');
  if (minP) throw badField('min_p', 'the hybrid model draws with temperature and top_p only', 'leave min_p out');
  if (!(topP > 0)) throw badField('top_p', 'the hybrid model takes top_p in (0, 1]', 'send top_p > 0 (1 = off)');
  if (req.seed !== undefined && !(req.seed >= 0 && req.seed <= 0xffffffff)) {
    throw badField('seed', `the hybrid model takes a seed from 0 to 4294967295, got ${req.seed}`, 'send such a seed');
  }
  const fieldSeed = (req.hybrid as { seed?: unknown } | null | undefined)?.seed as number | undefined;
  if (fieldSeed !== undefined && req.seed !== undefined && fieldSeed !== req.seed) {
    throw badField(
      'seed',
      `seed ${req.seed} and hybrid.seed ${fieldSeed} disagree`,
      'send one of them (they set the same seed)',
    );
  }
  const temperature = req.temperature ?? 0;
  const seed = fieldSeed ?? req.seed ?? (temperature > 0 ? Math.floor(Math.random() * 2 ** 32) : (defaults.seed ?? 0));
  return { temperature, topP, seed };
}

/** A counting gate: `parallel` holders, `queue` waiters, BUSY beyond. */
class Slots {
  private active = 0;
  private waiting: (() => void)[] = [];

  constructor(
    private readonly parallel: number,
    private readonly queue: number,
  ) {}

  get load(): { active: number; queued: number } {
    return { active: this.active, queued: this.waiting.length };
  }

  async acquire(signal: AbortSignal): Promise<boolean> {
    if (this.active < this.parallel) {
      this.active++;
      return true;
    }
    if (this.waiting.length >= this.queue) {
      throw new ThinkwhenError(
        'BUSY',
        `${this.active} hybrid requests are running and ${this.waiting.length} waiting`,
        'retry later',
      );
    }
    return new Promise<boolean>((resolve) => {
      const wake = () => {
        signal.removeEventListener('abort', leave);
        resolve(true);
      };
      const leave = () => {
        this.waiting.splice(this.waiting.indexOf(wake), 1);
        resolve(false);
      };
      this.waiting.push(wake);
      signal.addEventListener('abort', leave, { once: true });
    });
  }

  /** Hands the slot to the next waiter, or frees it. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

export class HybridModel implements ServedModel {
  readonly role = 'hybrid';
  readonly ctxSize: number;
  private readonly slots: Slots;
  private readonly running = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    readonly id: string,
    readonly pair: HybridPair,
    private readonly opts: HybridServeOptions,
  ) {
    this.ctxSize =
      opts.ctxSize ?? Math.min(pair.base.info.nCtxTrain || 4096, pair.thinking.info.nCtxTrain || 4096, 4096);
    this.slots = new Slots(opts.parallel, opts.queue);
    resolveOptions(opts.defaults); // a bad server default fails at start, not per request
  }

  get maxTokens(): number {
    return this.ctxSize - 1;
  }

  load(): { active: number; queued: number } {
    return this.slots.load;
  }

  async generate(req: ParsedRequest, signal: AbortSignal, onText: (text: string) => void): Promise<Generation> {
    if (this.closed) throw new ThinkwhenError('SERVER_CLOSING', 'the server is shutting down');
    if (req.steering !== undefined && req.steering !== null) {
      throw badField(
        'steering',
        "the hybrid model steers itself: 'steering' applies to the base and thinking models",
        "send 'hybrid' options instead, or use model 'base'",
      );
    }
    let question: string;
    let basePrompt: PromptSpec;
    let thinkingPrompt: PromptSpec;
    if (req.kind === 'completion') {
      // The prompt as given, on both sides.
      question = req.prompt;
      basePrompt = thinkingPrompt = '{question}';
    } else {
      const users = req.messages.filter((m) => m.role === 'user');
      if (req.messages.length !== 1 || users.length !== 1) {
        throw badField(
          'messages',
          'the hybrid model takes one user message (each side renders it with its own prompt)',
          'send one {"role": "user"} message, or use /v1/completions with the whole text',
        );
      }
      question = users[0].content;
      basePrompt = this.opts.basePrompt;
      thinkingPrompt = this.opts.thinkingPrompt;
    }
    const options = { ...parseHybridField(req.hybrid, this.opts.defaults), ...hybridSampling(req, this.opts.defaults) };
    let room: number;
    let promptTokens: number;
    let prompt: { base: number[]; thinking: number[] };
    try {
      prompt = {
        base: promptIds(this.pair.base, basePrompt, question),
        thinking: promptIds(this.pair.thinking, thinkingPrompt, question),
      };
      promptTokens = prompt.base.length;
      room = Math.min(
        checkLength(this.id, promptTokens, req, this.ctxSize),
        checkLength(this.id, prompt.thinking.length, req, this.ctxSize),
      );
    } catch (err) {
      if (err instanceof ThinkwhenError)
        throw requestErrorFrom(err, req.kind === 'chat' ? 'messages' : 'prompt', 'check the prompt');
      throw err;
    }
    if (!(await this.slots.acquire(signal))) {
      return { promptTokens, completionTokens: 0, text: '', finishReason: 'aborted' };
    }
    const run = this.runOne(prompt, { ...options, maxTokens: req.maxTokens ?? room }, req.stop, signal, onText);
    this.running.add(run);
    try {
      return await run;
    } finally {
      this.running.delete(run);
      this.slots.release();
    }
  }

  private async runOne(
    prompt: { base: number[]; thinking: number[] },
    options: HybridOptions,
    stop: string[],
    signal: AbortSignal,
    onText: (text: string) => void,
  ): Promise<Generation> {
    // Our own controller: a stop string ends the run as well as the client's signal does.
    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const holdBack = Math.max(0, ...stop.map((s) => s.length - 1));
    let text = '';
    let sent = 0;
    let stopped = false;
    let result: HybridResult | null = null;
    try {
      const events = hybridGenerate(this.pair, [{ id: 'request', prompt }], {
        ...options,
        batch: 1,
        signal: ctl.signal,
      });
      for await (const ev of events) {
        if (ev.type === 'done') {
          result = ev.result;
          continue;
        }
        const r = ev.record;
        const eos = r.source === 'base' ? this.pair.base.isEog(r.token) : this.pair.thinking.isEog(r.token);
        if (stopped || eos) continue;
        text += r.text;
        const at = stop.map((s) => text.indexOf(s, Math.max(0, sent - s.length))).filter((i) => i >= 0);
        if (at.length) {
          text = text.slice(0, Math.min(...at));
          stopped = true;
          ctl.abort();
        }
        const safe = stopped ? text.length : text.length - holdBack;
        if (safe > sent) {
          onText(text.slice(sent, safe));
          sent = safe;
        }
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (!result) throw new ThinkwhenError('SERVER_ERROR', 'the hybrid run ended without a result');
    const finishReason = stopped ? 'stop' : result.finishReason === 'eos' ? 'stop' : result.finishReason;
    if (!stopped && finishReason !== 'aborted' && text.length > sent) onText(text.slice(sent));
    if (!stopped && result.finishReason !== 'aborted') text = result.text;
    const steered = result.records.filter((r) => r.steered);
    return {
      promptTokens: result.promptTokens.base,
      completionTokens: result.records.length,
      text,
      finishReason,
      extra: {
        tokens: result.records.length,
        steered_tokens: steered.length,
        steered: steered.map((r) => ({
          step: r.step,
          text: r.text,
          latent: r.latent,
          title: r.title,
          coefficient: r.coefficient ?? null,
          window: r.window ?? null,
        })),
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.running]);
  }
}
