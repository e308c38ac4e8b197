// A real OpenAI-compatible HTTP server on 127.0.0.1 (random port) for tests. The `respond` callback
// decides, per request, what to send: a normal completion, an HTTP error, a malformed body, or a hang.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Reply =
  | { content: string; delayMs?: number }
  | { status: number; body?: string; headers?: Record<string, string> }
  | { raw: string }
  | { hang: true };

export interface SeenRequest {
  body: { model: string; messages: Array<{ role: string; content: string }>; [k: string]: unknown };
  headers: IncomingMessage['headers'];
  /** 1-based count of requests with this same last-message content so far. */
  nth: number;
}

export interface FakeServer {
  baseUrl: string;
  requests: SeenRequest[];
  /** Most requests the server held open at once. */
  peakConcurrency: () => number;
  close(): Promise<void>;
}

export async function startFakeOpenAI(respond: (req: SeenRequest) => Reply): Promise<FakeServer> {
  const requests: SeenRequest[] = [];
  const perPrompt = new Map<string, number>();
  const hanging = new Set<ServerResponse>();
  let open = 0;
  let peak = 0;
  const server = createServer((req, res) => {
    open++;
    peak = Math.max(peak, open);
    res.on('close', () => open--);
    let data = '';
    req.on('data', (c) => {
      data += c;
    });
    req.on('end', () => {
      const body = JSON.parse(data);
      const prompt = body.messages.at(-1).content as string;
      const nth = (perPrompt.get(prompt) ?? 0) + 1;
      perPrompt.set(prompt, nth);
      const seen: SeenRequest = { body, headers: req.headers, nth };
      requests.push(seen);
      const reply = respond(seen);
      if ('hang' in reply) {
        hanging.add(res);
        return;
      }
      if ('raw' in reply) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(reply.raw);
        return;
      }
      if ('status' in reply) {
        res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
        res.end(reply.body ?? JSON.stringify({ error: { message: `status ${reply.status}` } }));
        return;
      }
      const send = () =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            id: `chatcmpl-${requests.length}`,
            object: 'chat.completion',
            model: body.model,
            choices: [{ index: 0, message: { role: 'assistant', content: reply.content }, finish_reason: 'stop' }],
          }),
        );
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    peakConcurrency: () => peak,
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
