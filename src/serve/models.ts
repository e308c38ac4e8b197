// What the server serves: named models that take a parsed request and generate, streaming text.
// A plain model (base or thinking) runs on its own continuous batcher; the hybrid model
// (src/serve/hybrid.ts) runs a base/thinking pair with its SAE and vectors.
import type { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { Batcher, type BatchResult } from './batcher.ts';
import type { ParsedRequest } from './openai.ts';
import { badField, RequestError } from './request-error.ts';
import { parseSteering, type VectorLibrary } from './steering.ts';

export interface Generation {
  promptTokens: number;
  completionTokens: number;
  text: string;
  finishReason: BatchResult['finishReason'];
  /** what the response adds under `thinkwhen` (the hybrid's steering statistics) */
  extra?: Record<string, unknown>;
}

export interface ServedModel {
  id: string;
  /** 'base', 'thinking', 'hybrid' or 'model' (shown in /v1/models) */
  role: string;
  /** Most new tokens one request may ask for. */
  readonly maxTokens: number;
  generate(req: ParsedRequest, signal: AbortSignal, onText: (text: string) => void): Promise<Generation>;
  load(): { active: number; queued: number };
  close(): Promise<void>;
}

export interface PlainModelOptions {
  /** tokens one request may hold, prompt included (default: the model's training context, at most 4096) */
  ctxSize?: number;
  parallel: number;
  queue: number;
  threads?: number;
  library: VectorLibrary;
}

/** A GGUF model served as is, with per-request steering. */
export class PlainModel implements ServedModel {
  readonly batcher: Batcher;
  readonly ctxSize: number;

  constructor(
    readonly id: string,
    readonly role: string,
    readonly model: Model,
    private readonly opts: PlainModelOptions,
  ) {
    this.ctxSize = opts.ctxSize ?? Math.min(model.info.nCtxTrain || 4096, 4096);
    if (!Number.isInteger(this.ctxSize) || this.ctxSize < 2) {
      throw new ThinkwhenError('BAD_ARGUMENT', `context size ${this.ctxSize} is too small`, 'pass --ctx-size ≥ 2');
    }
    // Every running request fits at its largest, plus one batch of slack for the KV cache's cell search.
    this.batcher = new Batcher(model, {
      parallel: opts.parallel,
      queue: opts.queue,
      nCtx: opts.parallel * this.ctxSize + 512,
      threads: opts.threads,
      perRequest: this.ctxSize,
    });
  }

  get maxTokens(): number {
    return this.ctxSize - 1;
  }

  /** The prompt's tokens: the model's chat template for chat requests, the text itself (with BOS) otherwise. */
  tokenize(req: ParsedRequest): Int32Array {
    if (req.kind === 'completion') return this.model.tokenize(req.prompt, { addSpecial: true });
    let text: string;
    try {
      text = this.model.applyChatTemplate(req.messages, { addGenerationPrompt: true });
    } catch (err) {
      if (err instanceof ThinkwhenError && err.code === 'NO_CHAT_TEMPLATE') {
        throw badField('messages', `model '${this.id}' has no chat template`, 'use /v1/completions with a prompt');
      }
      throw badField('messages', `the chat template failed: ${(err as Error).message}`, 'check the messages');
    }
    // The template writes the special tokens itself.
    return this.model.tokenize(text, { addSpecial: false, parseSpecial: true });
  }

  async generate(req: ParsedRequest, signal: AbortSignal, onText: (text: string) => void): Promise<Generation> {
    if (req.hybrid !== undefined && req.hybrid !== null) {
      throw badField(
        'hybrid',
        `'hybrid' applies to the hybrid model, not '${this.id}'`,
        "send it with model 'hybrid', or leave it out",
      );
    }
    const prompt = this.tokenize(req);
    const room = checkLength(this.id, prompt.length, req, this.ctxSize);
    const steering = parseSteering(req.steering, this.model.info, prompt.length, this.opts.library);
    const r = await this.batcher.submit({
      prompt,
      maxTokens: req.maxTokens ?? room,
      sampler: req.sampler,
      stop: req.stop,
      steering,
      signal,
      onText,
    });
    return {
      promptTokens: r.promptTokens,
      completionTokens: r.tokens.length,
      text: r.text,
      finishReason: r.finishReason,
    };
  }

  load(): { active: number; queued: number } {
    return this.batcher.load;
  }

  close(): Promise<void> {
    return this.batcher.close();
  }
}

/** Tokens left for generation after the prompt; refuses prompts and max_tokens that do not fit. */
export function checkLength(model: string, promptTokens: number, req: ParsedRequest, ctxSize: number): number {
  const param = req.kind === 'chat' ? 'messages' : 'prompt';
  if (promptTokens === 0) throw badField(param, 'the prompt encodes to no tokens', 'send some text');
  if (promptTokens >= ctxSize) {
    throw new RequestError(
      400,
      'REQUEST_TOO_LONG',
      `the prompt has ${promptTokens} tokens; model '${model}' holds ${ctxSize} per request`,
      "shorten the prompt (or restart the server with a larger --ctx-size, up to the model's training context)",
      param,
    );
  }
  const room = ctxSize - promptTokens;
  if (req.maxTokens !== undefined && req.maxTokens > room) {
    throw new RequestError(
      400,
      'REQUEST_TOO_LONG',
      `the prompt (${promptTokens} tokens) plus max_tokens (${req.maxTokens}) exceed the ${ctxSize} tokens model '${model}' holds per request`,
      `send max_tokens ≤ ${room}, or leave it out`,
      'max_tokens',
    );
  }
  return room;
}
