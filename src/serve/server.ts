// The OpenAI-compatible HTTP server: /v1/models, /v1/chat/completions, /v1/completions (SSE streaming
// or not), /health. Bound to 127.0.0.1 by default; optional bearer key; limits on body size,
// max_tokens and waiting requests (429 + Retry-After); a per-request timeout; a request whose client
// disconnects is cancelled and its sequence freed before the next decode. docs/serve.md.
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ThinkwhenError } from '../errors.ts';
import type { Generation, ServedModel } from './models.ts';
import { type ParsedRequest, parseChat, parseCompletion } from './openai.ts';
import { RequestError } from './steering.ts';

export interface ServerOptions {
  host?: string;
  port?: number;
  /** required as `Authorization: Bearer KEY` when set */
  apiKey?: string;
  /** largest request body in bytes (default 4 MiB) */
  maxBodyBytes?: number;
  /** a request running longer is stopped (default 600 s) */
  timeoutMs?: number;
  /** seconds a refused (429) client is told to wait */
  retryAfterS?: number;
}

export interface RunningServer {
  url: string;
  server: Server;
  /** Stops accepting, cancels waiting requests, lets running ones finish their current decode, frees the models. */
  close(): Promise<void>;
}

const FINISH: Record<Generation['finishReason'], string> = { stop: 'stop', length: 'length', aborted: 'stop' };

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
    ...headers,
  });
  res.end(data);
}

function errorBody(message: string, type: string, param: string | null = null, code: string | null = null) {
  return { error: { message, type, param, code } };
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(
        new RequestError(
          413,
          'request_too_large',
          `the body has ${declared} bytes; this server takes at most ${limit}`,
        ),
      );
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new RequestError(413, 'request_too_large', `the body exceeds ${limit} bytes`));
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

export function startServer(models: ServedModel[], opts: ServerOptions = {}): Promise<RunningServer> {
  const byId = new Map(models.map((m) => [m.id, m]));
  const maxBody = opts.maxBodyBytes ?? 4 << 20;
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const created = Math.floor(Date.now() / 1000);
  const live = new Set<AbortController>();

  async function completion(req: IncomingMessage, res: ServerResponse, kind: 'chat' | 'completion'): Promise<void> {
    const raw = await readBody(req, maxBody);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw new RequestError(400, 'invalid_request_error', `malformed JSON body: ${(err as Error).message}`);
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      throw new RequestError(400, 'invalid_request_error', 'the body must be a JSON object');
    }
    const name = (body as { model?: unknown }).model;
    const model = typeof name === 'string' ? byId.get(name) : undefined;
    if (typeof name === 'string' && !model) {
      throw new RequestError(
        404,
        'model_not_found',
        `model '${name}' does not exist; this server has ${[...byId.keys()].map((k) => `'${k}'`).join(', ')}`,
        'model',
      );
    }
    const cap = model?.maxTokens ?? 1;
    const parsed: ParsedRequest =
      kind === 'chat'
        ? parseChat(body as Record<string, unknown>, cap)
        : parseCompletion(body as Record<string, unknown>, cap);

    // Cancel when the client goes away or the request runs out of time.
    const abort = new AbortController();
    live.add(abort);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, timeoutMs);
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
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
      const gen = await model!.generate(parsed, abort.signal, (text) => {
        if (parsed.stream && text) sse(chunk(text, null));
      });
      if (timedOut) {
        const msg = `the request ran longer than the server's ${timeoutMs / 1000} s timeout and was stopped`;
        if (started) {
          sse(errorBody(msg, 'timeout'));
          res.end('data: [DONE]\n\n');
        } else sendJson(res, 504, errorBody(msg, 'timeout'));
        return;
      }
      if (gen.finishReason === 'aborted') return; // the client left: nobody to answer
      const usage = {
        prompt_tokens: gen.promptTokens,
        completion_tokens: gen.completionTokens,
        total_tokens: gen.promptTokens + gen.completionTokens,
      };
      if (parsed.stream) {
        sse(chunk(null, FINISH[gen.finishReason]));
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
      sendJson(res, 200, { id, object, created: stamp, model: parsed.model, choices: [choice], usage });
    } catch (err) {
      if (!started) throw err;
      // Headers are out: report the error in the stream and close it.
      sse(errorBody((err as Error).message, 'server_error'));
      res.end('data: [DONE]\n\n');
    } finally {
      clearTimeout(timer);
      live.delete(abort);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health' && req.method === 'GET') {
      sendJson(res, 200, {
        status: 'ok',
        models: Object.fromEntries(models.map((m) => [m.id, m.load()])),
      });
      return;
    }
    if (!authorized(req, opts.apiKey)) {
      throw new RequestError(401, 'invalid_api_key', 'missing or wrong API key: send Authorization: Bearer <key>');
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
      const m = byId.get(decodeURIComponent(one[1]));
      if (!m) throw new RequestError(404, 'model_not_found', `model '${decodeURIComponent(one[1])}' does not exist`);
      sendJson(res, 200, { id: m.id, object: 'model', created, owned_by: 'thinkwhen', role: m.role });
      return;
    }
    const routes: Record<string, 'chat' | 'completion'> = {
      '/v1/chat/completions': 'chat',
      '/v1/completions': 'completion',
    };
    const kind = routes[path];
    if (kind) {
      if (req.method !== 'POST') throw new RequestError(405, 'invalid_request_error', `${path} takes POST`);
      await completion(req, res, kind);
      return;
    }
    throw new RequestError(404, 'not_found', `no route ${req.method} ${path} (try /v1/models)`);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof RequestError) {
        sendJson(res, err.status, errorBody(err.message, err.code, err.param));
      } else if (err instanceof ThinkwhenError && err.code === 'BUSY') {
        sendJson(res, 429, errorBody(`the server is busy (${err.message})`, 'rate_limit_exceeded'), {
          'retry-after': String(opts.retryAfterS ?? 1),
        });
      } else if (err instanceof ThinkwhenError && err.code === 'REQUEST_TOO_LONG') {
        sendJson(res, 400, errorBody(err.message, 'context_length_exceeded'));
      } else if (err instanceof ThinkwhenError && err.code === 'SERVER_CLOSING') {
        sendJson(res, 503, errorBody(err.message, 'server_closing'));
      } else {
        sendJson(res, 500, errorBody(`internal error: ${(err as Error).message}`, 'server_error'));
      }
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
            : undefined;
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
      resolve({
        url: `http://${host}:${a.port}`,
        server,
        async close() {
          for (const c of live) c.abort();
          const closed = new Promise<void>((r) => server.close(() => r()));
          server.closeAllConnections();
          await closed;
          for (const m of models) await m.close();
        },
      });
    });
  });
}
