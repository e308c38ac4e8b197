// The OpenAI-compatible HTTP server: /v1/models, /v1/chat/completions, /v1/completions (SSE streaming
// or not), /health. Bound to 127.0.0.1 by default; optional bearer key; limits on body size,
// max_tokens and waiting requests (429 + Retry-After); a per-request timeout; a request whose client
// disconnects is cancelled and its sequence freed before the next decode. Every error is a JSON
// object with a code and a fix (request-error.ts). docs/serve.md.
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ErrorCode, ThinkwhenError } from '../errors.ts';
import type { Generation, ServedModel } from './models.ts';
import { type ParsedRequest, parseChat, parseCompletion } from './openai.ts';
import { badField, RequestError, requestErrorFrom } from './request-error.ts';

export interface ServerOptions {
  host?: string;
  port?: number;
  /** required as `Authorization: Bearer KEY` when set */
  apiKey?: string;
  /** largest request body in bytes (default 4 MiB) */
  maxBodyBytes?: number;
  /** a request running longer is stopped (default 600 s) */
  timeoutMs?: number;
  /** seconds a refused (429) client is told to wait (default 1) */
  retryAfterS?: number;
  /** on close, how long running requests may take to finish before they are cancelled (default 10 s) */
  graceMs?: number;
}

export interface RunningServer {
  url: string;
  server: Server;
  /**
   * Stops accepting requests, lets running ones finish for up to `graceMs`, cancels the rest (their
   * clients get a 503 or a stream error), then frees the models.
   */
  close(): Promise<void>;
}

const FINISH: Record<Generation['finishReason'], string> = { stop: 'stop', length: 'length', aborted: 'stop' };

/** Why a request was cancelled. */
type AbortReason = 'client' | 'timeout' | 'shutdown';

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
    ...headers,
  });
  res.end(data);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = (what: string) =>
    new RequestError(
      413,
      'BODY_TOO_LARGE',
      `the body ${what}; this server takes at most ${limit} bytes`,
      'send a smaller body (or restart the server with a larger --max-body)',
    );
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(tooLarge(`has ${declared} bytes`));
      req.resume(); // drain, so the 413 reaches the client
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(tooLarge(`exceeds ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function authorized(req: IncomingMessage, key: string | undefined): boolean {
  if (!key) return true;
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Engine and hybrid errors that a request's own values cause: answered 400, not 500. */
const CLIENT_CODES = new Set<ErrorCode>([
  'BAD_HOOK',
  'BAD_HYBRID_OPTION',
  'BAD_HYBRID_PAIR',
  'BAD_PROMPT',
  'BAD_VECTOR',
  'CHAT_TEMPLATE_BUDGET',
  'CHAT_TEMPLATE_FAILED',
  'EMPTY_PROMPT',
  'REQUEST_TOO_LONG',
  'VECTOR_NOT_FINITE',
  'VECTOR_WIDTH',
]);

/** Any error as the status and body the client gets. */
function asRequestError(err: unknown): RequestError {
  if (err instanceof RequestError) return err;
  if (err instanceof ThinkwhenError) {
    if (err.code === 'BUSY')
      return new RequestError(
        429,
        'BUSY',
        `the server is busy: ${err.message.replace(/ \(fix: .*\)$/, '')}`,
        'retry after the Retry-After seconds',
      );
    if (err.code === 'SERVER_CLOSING')
      return new RequestError(
        503,
        'SERVER_CLOSING',
        'the server is shutting down',
        'retry on another instance, or once it is back',
      );
    // What the engine and the hybrid refuse about a request's own values (an option, a vector).
    if (CLIENT_CODES.has(err.code)) return requestErrorFrom(err, null, 'check the request against docs/serve.md');
    return new RequestError(500, 'SERVER_ERROR', err.message, err.fix ?? 'see the server log');
  }
  return new RequestError(
    500,
    'SERVER_ERROR',
    `internal error: ${(err as Error)?.message ?? String(err)}`,
    'this is a bug in thinkwhen: please report it with the request',
  );
}

export function startServer(models: ServedModel[], opts: ServerOptions = {}): Promise<RunningServer> {
  const byId = new Map(models.map((m) => [m.id, m]));
  const maxBody = opts.maxBodyBytes ?? 4 << 20;
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const created = Math.floor(Date.now() / 1000);
  const live = new Map<AbortController, Promise<void>>();
  let closing = false;

  async function completion(req: IncomingMessage, res: ServerResponse, kind: 'chat' | 'completion'): Promise<void> {
    const raw = await readBody(req, maxBody);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw new RequestError(
        400,
        'MALFORMED_JSON',
        `the body is not JSON: ${(err as Error).message}`,
        'send a JSON object with content-type application/json',
      );
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      throw new RequestError(400, 'MALFORMED_JSON', 'the body must be a JSON object', 'send {"model": ..., ...}');
    }
    const name = (body as { model?: unknown }).model;
    const model = typeof name === 'string' ? byId.get(name) : undefined;
    if (typeof name === 'string' && !model) {
      throw new RequestError(
        404,
        'UNKNOWN_MODEL',
        `model '${name}' does not exist`,
        `use one of ${[...byId.keys()].map((k) => `'${k}'`).join(', ')} (GET /v1/models)`,
        'model',
      );
    }
    const cap = model?.maxTokens ?? 1;
    const parsed: ParsedRequest =
      kind === 'chat'
        ? parseChat(body as Record<string, unknown>, cap)
        : parseCompletion(body as Record<string, unknown>, cap);
    if (!model) throw badField('model', 'model is required', 'send "model"');
    if (closing) throw new ThinkwhenError('SERVER_CLOSING', 'the server is shutting down');

    // Cancel when the client goes away, the request runs out of time or the server shuts down.
    const abort = new AbortController();
    let finished!: () => void;
    live.set(
      abort,
      new Promise<void>((r) => {
        finished = r;
      }),
    );
    const timer = setTimeout(() => abort.abort('timeout' satisfies AbortReason), timeoutMs);
    res.on('close', () => {
      if (!res.writableFinished) abort.abort('client' satisfies AbortReason);
    });
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
    const object = kind === 'chat' ? 'chat.completion' : 'text_completion';
    const stamp = Math.floor(Date.now() / 1000);
    const chunk = (delta: string | null, finish: string | null) =>
      kind === 'chat'
        ? {
            id,
            object: 'chat.completion.chunk',
            created: stamp,
            model: parsed.model,
            choices: [
              { index: 0, delta: delta === null ? {} : { content: delta }, logprobs: null, finish_reason: finish },
            ],
          }
        : {
            id,
            object,
            created: stamp,
            model: parsed.model,
            choices: [{ index: 0, text: delta ?? '', logprobs: null, finish_reason: finish }],
          };
    const sse = (data: unknown) => {
      if (!res.writableEnded) res.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      if (kind === 'chat') {
        sse({
          ...chunk(null, null),
          choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
        });
      }
    };
    try {
      if (parsed.stream) start();
      let gen: Generation;
      try {
        gen = await model.generate(parsed, abort.signal, (text) => {
          if (parsed.stream && text) sse(chunk(text, null));
        });
      } catch (err) {
        if (!started) throw err;
        // Headers are out: the error goes into the stream, which then ends.
        sse(asRequestError(err).body());
        res.end('data: [DONE]\n\n');
        return;
      }
      if (gen.finishReason === 'aborted') {
        const reason = abort.signal.reason as AbortReason;
        if (reason === 'client') return; // nobody to answer
        const err =
          reason === 'timeout'
            ? new RequestError(
                504,
                'REQUEST_TIMEOUT',
                `the request ran longer than the server's ${timeoutMs / 1000} s timeout and was stopped`,
                'lower max_tokens, or restart the server with a larger --timeout',
              )
            : new RequestError(
                503,
                'SERVER_CLOSING',
                'the server shut down before the request finished',
                'retry once the server is back',
              );
        if (started) {
          sse(err.body());
          res.end('data: [DONE]\n\n');
        } else sendJson(res, err.status, err.body());
        return;
      }
      const usage = {
        prompt_tokens: gen.promptTokens,
        completion_tokens: gen.completionTokens,
        total_tokens: gen.promptTokens + gen.completionTokens,
      };
      const extra = gen.extra ? { thinkwhen: gen.extra } : {};
      if (parsed.stream) {
        sse({ ...chunk(null, FINISH[gen.finishReason]), ...extra });
        if (parsed.includeUsage) sse({ ...chunk(null, null), choices: [], usage });
        res.end('data: [DONE]\n\n');
        return;
      }
      const choice =
        kind === 'chat'
          ? {
              index: 0,
              message: { role: 'assistant', content: gen.text },
              logprobs: null,
              finish_reason: FINISH[gen.finishReason],
            }
          : { index: 0, text: gen.text, logprobs: null, finish_reason: FINISH[gen.finishReason] };
      sendJson(res, 200, { id, object, created: stamp, model: parsed.model, choices: [choice], usage, ...extra });
    } finally {
      clearTimeout(timer);
      live.delete(abort);
      finished();
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health' && req.method === 'GET') {
      sendJson(res, closing ? 503 : 200, {
        status: closing ? 'closing' : 'ok',
        models: Object.fromEntries(models.map((m) => [m.id, m.load()])),
      });
      return;
    }
    if (!authorized(req, opts.apiKey)) {
      throw new RequestError(
        401,
        'UNAUTHORIZED',
        'missing or wrong API key',
        'send the header Authorization: Bearer <the key the server was started with>',
      );
    }
    if (path === '/v1/models' && req.method === 'GET') {
      sendJson(res, 200, {
        object: 'list',
        data: models.map((m) => ({ id: m.id, object: 'model', created, owned_by: 'thinkwhen', role: m.role })),
      });
      return;
    }
    const one = /^\/v1\/models\/([^/]+)$/.exec(path);
    if (one && req.method === 'GET') {
      let id: string;
      try {
        id = decodeURIComponent(one[1]);
      } catch {
        id = one[1];
      }
      const m = byId.get(id);
      if (!m)
        throw new RequestError(
          404,
          'UNKNOWN_MODEL',
          `model '${id}' does not exist`,
          'GET /v1/models lists the models',
          'model',
        );
      sendJson(res, 200, { id: m.id, object: 'model', created, owned_by: 'thinkwhen', role: m.role });
      return;
    }
    const routes: Record<string, 'chat' | 'completion'> = {
      '/v1/chat/completions': 'chat',
      '/v1/completions': 'completion',
    };
    const kind = routes[path];
    if (kind) {
      if (req.method !== 'POST')
        throw new RequestError(
          405,
          'METHOD_NOT_ALLOWED',
          `${path} takes POST, not ${req.method}`,
          `send POST ${path} with a JSON body`,
        );
      await completion(req, res, kind);
      return;
    }
    throw new RequestError(
      404,
      'NO_ROUTE',
      `no route ${req.method} ${path}`,
      'the routes are GET /v1/models, POST /v1/chat/completions, POST /v1/completions, GET /health',
    );
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const e = asRequestError(err);
      const headers: Record<string, string> = e.status === 429 ? { 'retry-after': String(opts.retryAfterS ?? 1) } : {};
      sendJson(res, e.status, e.body(), headers);
    });
  });
  // Slow or stalled clients cannot hold a connection open forever.
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;

  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const fix =
        err.code === 'EADDRINUSE'
          ? 'pick another --port, or stop the process that holds it'
          : err.code === 'EACCES'
            ? 'ports below 1024 need privileges: pick --port ≥ 1024'
            : 'check --host and --port';
      reject(
        new ThinkwhenError(
          'LISTEN_FAILED',
          `cannot listen on ${opts.host ?? '127.0.0.1'}:${opts.port ?? 8080}: ${err.message}`,
          fix,
        ),
      );
    });
    server.listen(opts.port ?? 8080, opts.host ?? '127.0.0.1', () => {
      const a = server.address() as AddressInfo;
      const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      let closed: Promise<void> | null = null;
      resolve({
        url: `http://${host}:${a.port}`,
        server,
        close() {
          closed ??= (async () => {
            closing = true;
            const stopped = new Promise<void>((r) => server.close(() => r()));
            server.closeIdleConnections();
            const grace = new Promise<void>((r) => setTimeout(r, opts.graceMs ?? 10_000).unref());
            await Promise.race([Promise.all(live.values()), grace]);
            for (const c of live.keys()) c.abort('shutdown' satisfies AbortReason);
            await Promise.all(live.values());
            server.closeAllConnections();
            await stopped;
            for (const m of models) await m.close();
          })();
          return closed;
        },
      });
    });
  });
}
