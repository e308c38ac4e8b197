// Renders a GGUF's own `tokenizer.chat_template` with a Jinja implementation made for chat templates.
//
// A template is code from the model file: it can loop, recurse or build strings without end. It
// runs on a worker thread with a heap limit, and the caller waits for it synchronously (Atomics)
// at most `timeoutMs`; a template over budget is stopped and reported, the process lives on.
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
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
  /** Longest a render may take (default 5,000 ms). */
  timeoutMs?: number;
  /** Longest output accepted (default 4,000,000 characters). */
  maxOutputChars?: number;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_OUTPUT_CHARS = 4_000_000;
/** The renderer's heap: far above any real prompt, far below what takes a machine down. */
const WORKER_HEAP_MB = 256;
const WORKER_START_MS = 60_000;

interface Renderer {
  worker: Worker;
  flag: Int32Array;
  requests: MessagePort;
  replies: MessagePort;
}

type Reply = { text: string } | { error: 'output'; chars: number } | { error: 'parse' | 'render'; message: string };

let renderer: Renderer | undefined;

function startRenderer(): Renderer {
  const flag = new Int32Array(new SharedArrayBuffer(12));
  const requests = new MessageChannel();
  const replies = new MessageChannel();
  const worker = new Worker(new URL('./chat-template-worker.mjs', import.meta.url), {
    execArgv: [],
    workerData: { flag, requests: requests.port2, replies: replies.port2 },
    transferList: [requests.port2, replies.port2],
    resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
  });
  worker.unref();
  // A worker killed by its heap limit reports here; the caller notices through its time budget.
  worker.on('error', () => undefined);
  return { worker, flag, requests: requests.port1, replies: replies.port1 };
}

function stopRenderer(r: Renderer): void {
  if (renderer === r) renderer = undefined;
  r.requests.close();
  r.replies.close();
  void r.worker.terminate();
}

/** Renders on the worker thread; blocks the caller until the reply or the budget runs out. */
function renderOnWorker(
  source: string,
  context: Record<string, unknown>,
  timeoutMs: number,
  maxOutputChars: number,
): Reply {
  const fresh = renderer === undefined;
  renderer ??= startRenderer();
  const r = renderer;
  Atomics.store(r.flag, 1, 0);
  r.requests.postMessage({ source, context, maxOutputChars });
  Atomics.store(r.flag, 0, 1);
  Atomics.notify(r.flag, 0);
  // A new worker first loads the Jinja library: that start-up is not the template's time.
  const status = Atomics.wait(r.flag, 1, 0, timeoutMs + (fresh ? WORKER_START_MS : 0));
  const reply = status === 'timed-out' ? undefined : receiveMessageOnPort(r.replies);
  if (!reply) {
    stopRenderer(r);
    throw new ThinkwhenError(
      'CHAT_TEMPLATE_BUDGET',
      `the chat template did not finish within ${timeoutMs} ms and ${WORKER_HEAP_MB} MB (it loops, or builds an unbounded string)`,
      'fix tokenizer.chat_template in the model file, or render the prompt yourself (raw prompts)',
    );
  }
  return reply.message as Reply;
}

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
  const maxOutputChars = opts.maxOutputChars ?? DEFAULT_MAX_OUTPUT_CHARS;
  const context = {
    messages,
    add_generation_prompt: opts.addGenerationPrompt ?? true,
    bos_token: opts.bosToken ?? '',
    eos_token: opts.eosToken ?? '',
    ...opts.extra,
  };
  const reply = renderOnWorker(source, context, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, maxOutputChars);
  if ('text' in reply) return reply.text;
  if (reply.error === 'output') {
    throw new ThinkwhenError(
      'CHAT_TEMPLATE_BUDGET',
      `the chat template produced ${reply.chars} characters, more than the ${maxOutputChars} allowed`,
      'fix tokenizer.chat_template in the model file, or raise maxOutputChars',
    );
  }
  throw new ThinkwhenError(
    reply.error === 'parse' ? 'CHAT_TEMPLATE_INVALID' : 'CHAT_TEMPLATE_FAILED',
    `the chat template ${reply.error === 'parse' ? 'does not parse' : 'failed'}: ${reply.message}`,
    'fix tokenizer.chat_template in the model file, or render the prompt yourself (raw prompts)',
  );
}
