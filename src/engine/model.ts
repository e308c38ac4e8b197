// A GGUF model loaded through llama.cpp: metadata, tokenizer with character offsets, chat template.
import { existsSync, statSync } from 'node:fs';
import { ThinkwhenError } from '../errors.ts';
import { readGguf } from '../gguf/read.ts';
import { type ChatMessage, type ChatTemplateOptions, renderChatTemplate } from './chat-template.ts';
import { Context, type ContextOptions } from './context.ts';
import { type NativeModel, native } from './native.ts';
import { checkSpecialTokens, type LoadedVocab, preflight } from './preflight.ts';
import { alignOffsets, TextStream } from './tokens.ts';

export interface ModelInfo {
  path: string;
  arch: string;
  name: string;
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  nVocab: number;
  nCtxTrain: number;
  nParams: number;
  bos: number;
  eos: number;
  eot: number;
  addBos: boolean;
  chatTemplate: string | null;
  description: string;
  metadata: Record<string, string>;
}

export interface LoadOptions {
  /** layers to offload to a GPU backend (default: all when one is present) */
  gpuLayers?: number;
  /** load only the tokenizer (tokenizer-only GGUFs, fast tokenisation) */
  vocabOnly?: boolean;
}

export interface TokenizeOptions {
  /** add BOS (and other special tokens) as the model's tokenizer config says; default false */
  addSpecial?: boolean;
  /** turn special-token text such as <|im_start|> into its token; default true */
  parseSpecial?: boolean;
}

export class Model {
  private pieceCache = new Map<number, Uint8Array>();
  private contexts = new Set<Context>();
  private freed = false;

  private constructor(
    readonly native: NativeModel,
    readonly info: ModelInfo,
  ) {}

  /** Loads a GGUF. Checks the file first, so bad input gets a clear message instead of a llama.cpp abort. */
  static async load(path: string, opts: LoadOptions = {}): Promise<Model> {
    if (!existsSync(path)) {
      throw new ThinkwhenError(
        'MODEL_NOT_FOUND',
        `model file not found: ${path}`,
        'check the path (or run `thinkwhen doctor` without --model)',
      );
    }
    if (statSync(path).isDirectory()) {
      throw new ThinkwhenError('NOT_GGUF', `${path} is a directory`, 'pass the .gguf file itself');
    }
    const gguf = readGguf(path); // throws NOT_GGUF / TRUNCATED_GGUF
    const arch = String(gguf.metadata.get('general.architecture')?.value ?? '');
    if (!opts.vocabOnly && gguf.tensors.length === 0) {
      throw new ThinkwhenError(
        'NO_WEIGHTS',
        `${path} holds no tensors (a tokenizer-only or adapter file?)`,
        'pass a model file, or load with vocabOnly',
      );
    }
    if (arch === 'controlvector') {
      throw new ThinkwhenError(
        'NOT_A_MODEL',
        `${path} is a control vector, not a model`,
        'load it with readControlVector() / --vector',
      );
    }
    preflight(gguf, { vocabOnly: opts.vocabOnly ?? false }); // values llama.cpp would abort on
    let nm: NativeModel;
    try {
      nm = await native().loadModel(path, opts.gpuLayers ?? 999, opts.vocabOnly ?? false);
    } catch (err) {
      throw new ThinkwhenError(
        'LOAD_FAILED',
        `llama.cpp could not load ${path}: ${(err as Error).message.trim()}`,
        "llama.cpp's message names the key or tensor it rejected; re-download or re-convert the file",
      );
    }
    let m: ReturnType<NativeModel['meta']>;
    try {
      m = nm.meta();
    } catch (err) {
      nm.free();
      throw new ThinkwhenError('LOAD_FAILED', `llama.cpp could not describe ${path}: ${(err as Error).message.trim()}`);
    }
    try {
      checkSpecialTokens(path, m as unknown as LoadedVocab);
    } catch (err) {
      nm.free();
      throw err;
    }
    const info: ModelInfo = {
      path,
      arch,
      name: String(gguf.metadata.get('general.name')?.value ?? ''),
      nLayer: m.nLayer as number,
      nEmbd: m.nEmbd as number,
      nHead: m.nHead as number,
      nHeadKv: m.nHeadKv as number,
      nVocab: m.nVocab as number,
      nCtxTrain: m.nCtxTrain as number,
      nParams: m.nParams as number,
      bos: m.bos as number,
      eos: m.eos as number,
      eot: m.eot as number,
      addBos: m.addBos as boolean,
      chatTemplate: (m.chatTemplate as string | null) ?? null,
      description: m.description as string,
      metadata: m.metadata,
    };
    return new Model(nm, info);
  }

  private alive(): NativeModel {
    if (this.freed)
      throw new ThinkwhenError('MODEL_FREED', 'this model has been freed', 'load it again with Model.load()');
    return this.native;
  }

  tokenize(text: string, opts: TokenizeOptions = {}): Int32Array {
    const nat = this.alive();
    try {
      return nat.tokenize(text, opts.addSpecial ?? false, opts.parseSpecial ?? true);
    } catch (err) {
      throw this.tokenizerError('tokenize the text', err);
    }
  }

  /** A llama.cpp tokenizer failure (e.g. an SPM vocabulary without the byte token a character needs). */
  private tokenizerError(what: string, err: unknown): ThinkwhenError {
    return new ThinkwhenError(
      'TOKENIZER_FAILED',
      `llama.cpp could not ${what} with the tokenizer of ${this.info.path}: ${(err as Error).message.trim()}`,
      "the file's tokenizer is incomplete or corrupt: re-download or re-convert it",
    );
  }

  /** The token's bytes as the model renders them (special tokens as their text). */
  tokenBytes(token: number): Uint8Array {
    let b = this.pieceCache.get(token);
    if (!b) {
      // The addon would truncate 2.5 to 2: an id that is not one is the caller's mistake, not the file's.
      if (!Number.isInteger(token) || token < 0 || token >= this.info.nVocab) {
        throw new ThinkwhenError(
          'BAD_TOKEN',
          `token id ${token} is outside the vocabulary (0..${this.info.nVocab - 1})`,
          'pass token ids of this model (from model.tokenize or its logits)',
        );
      }
      const nat = this.alive();
      try {
        b = new Uint8Array(nat.tokenPiece(token, true));
      } catch (err) {
        throw this.tokenizerError(`render token ${token}`, err);
      }
      this.pieceCache.set(token, b);
    }
    return b;
  }

  detokenize(tokens: ArrayLike<number>): string {
    const stream = new TextStream();
    let out = '';
    for (let i = 0; i < tokens.length; i++) out += stream.push(this.tokenBytes(tokens[i]));
    return out + stream.flush();
  }

  /**
   * Tokens with the character span [start, end) of each in `text` (UTF-16 indices).
   * Throws when the tokenizer changes the text so that spans are undefined.
   */
  tokenizeWithOffsets(
    text: string,
    opts: TokenizeOptions = {},
  ): { tokens: Int32Array; offsets: Array<[number, number]> } {
    const tokens = this.tokenize(text, { ...opts, addSpecial: false });
    const offsets = alignOffsets(
      text,
      Array.from(tokens, (t) => this.tokenBytes(t)),
    );
    if (!offsets) {
      throw new ThinkwhenError(
        'OFFSETS_UNAVAILABLE',
        "this model's tokenizer rewrites the text (normalisation), so token character offsets are undefined",
        'use a byte-level tokenizer, or map spans by re-tokenising sentence by sentence',
      );
    }
    return { tokens, offsets };
  }

  isEog(token: number): boolean {
    return this.alive().isEog(token);
  }

  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    const special = (id: number) => (id >= 0 ? Buffer.from(this.tokenBytes(id)).toString('utf8') : '');
    return renderChatTemplate(this.info.chatTemplate, messages, {
      bosToken: special(this.info.bos),
      eosToken: special(this.info.eos),
      ...opts,
    });
  }

  createContext(opts: ContextOptions = {}): Context {
    this.alive();
    const ctx = new Context(this, opts);
    this.contexts.add(ctx);
    return ctx;
  }

  /** @internal called by Context.free() */
  contextFreed(ctx: Context): void {
    this.contexts.delete(ctx);
  }

  /** Frees the weights. Refused while a context of this model is alive (it would read freed memory). */
  free(): void {
    if (this.freed) return;
    if (this.contexts.size > 0) {
      throw new ThinkwhenError(
        'MODEL_IN_USE',
        `this model still has ${this.contexts.size} live context(s)`,
        'free() every context of the model first',
      );
    }
    this.native.free();
    this.freed = true;
  }
}
