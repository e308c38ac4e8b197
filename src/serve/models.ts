// What the server serves: named models that take a parsed request and generate, streaming text.
// A plain model (base or thinking) runs on its own continuous batcher; the hybrid model
// (src/serve/hybrid.ts) runs a base/thinking pair.
import type { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { Batcher, type BatchResult } from './batcher.ts';
import type { ParsedRequest } from './openai.ts';
import { parseSteering, RequestError, type VectorLibrary } from './steering.ts';

export interface Generation {
  promptTokens: number;
  completionTokens: number;
  text: string;
  finishReason: BatchResult['finishReason'];
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
        throw new RequestError(
          400,
          'invalid_request_error',
          `model '${this.id}' has no chat template: use /v1/completions with a prompt`,
          'messages',
        );
      }
      throw new RequestError(400, 'invalid_request_error', `the chat template failed: ${(err as Error).message}`);
    }
    // The template writes the special tokens itself.
    return this.model.tokenize(text, { addSpecial: false, parseSpecial: true });
  }

  async generate(req: ParsedRequest, signal: AbortSignal, onText: (text: string) => void): Promise<Generation> {
    if (req.hybrid !== undefined && req.hybrid !== null) {
      throw new RequestError(
        400,
        'invalid_request_error',
        `'hybrid' applies to the hybrid model, not '${this.id}'`,
        'hybrid',
      );
    }
    const prompt = this.tokenize(req);
    if (prompt.length === 0) throw new RequestError(400, 'invalid_request_error', 'the prompt is empty', 'prompt');
    if (prompt.length >= this.ctxSize) {
      throw new RequestError(
        400,
        'context_length_exceeded',
        `the prompt has ${prompt.length} tokens; model '${this.id}' holds ${this.ctxSize} per request`,
        req.kind === 'chat' ? 'messages' : 'prompt',
      );
    }
    const room = this.ctxSize - prompt.length;
    if (req.maxTokens !== undefined && req.maxTokens > room) {
      throw new RequestError(
        400,
        'context_length_exceeded',
        `the prompt (${prompt.length} tokens) plus max_tokens (${req.maxTokens}) exceed the ${this.ctxSize} tokens model '${this.id}' holds per request`,
        'max_tokens',
      );
    }
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
