// `thinkwhen view`'s local web server: the page, its script and style, and the run data as JSON.
// Bound to 127.0.0.1 by default; the Content-Security-Policy lets the page load nothing from
// anywhere but this server, so it works offline and leaks nothing. docs/viewer.md.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ThinkwhenError } from '../errors.ts';
import { buildReport } from '../eval/report/index.ts';
import { type Decode, ViewerData } from './data.ts';
import { renderPage } from './page.ts';

export interface ViewerOptions {
  host?: string;
  port?: number;
  title?: string;
  /** a tokenizer for each run's candidate token ids (null: shown as #id) */
  decode?: (run: number) => Decode | null;
}

export interface RunningViewer {
  url: string;
  server: Server;
  data: ViewerData;
  close(): Promise<void>;
}

const asset = (name: string) => readFileSync(new URL(`./${name}`, import.meta.url), 'utf8');

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:";

export function startViewer(paths: string[], opts: ViewerOptions = {}): Promise<RunningViewer> {
  const data = new ViewerData(paths, opts.decode);
  const report = buildReport(paths, { bootstrap: 200 });
  const title = opts.title ?? `thinkwhen view: ${data.runs.map((r) => r.name).join(', ')}`;
  const files: Record<string, [string, string]> = {
    '/': ['text/html; charset=utf-8', renderPage(title, report, data)],
    '/app.js': ['text/javascript; charset=utf-8', asset('app.js')],
    '/app.css': ['text/css; charset=utf-8', asset('app.css')],
    '/api/problems': [
      'application/json',
      JSON.stringify({
        runs: data.runs.map(({ name, role, grader }) => ({ name, role, grader })),
        problems: data.problems,
      }),
    ],
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://viewer');
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'content-security-policy': CSP, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET') return send(405, 'text/plain', 'the viewer only answers GET');
    const file = files[url.pathname];
    if (file) return send(200, file[0], file[1]);
    if (url.pathname === '/api/problem') {
      const t = data.trace(url.searchParams.get('id') ?? '');
      if (!t) return send(404, 'application/json', JSON.stringify({ error: 'no such problem' }));
      return send(200, 'application/json', JSON.stringify(t));
    }
    if (url.pathname === '/favicon.ico') return send(204, 'text/plain', '');
    send(404, 'text/plain', 'not found');
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new ThinkwhenError(
          'LISTEN_FAILED',
          `cannot listen on ${opts.host ?? '127.0.0.1'}:${opts.port ?? 8081}: ${err.message}`,
          err.code === 'EADDRINUSE' ? 'pick another --port' : 'check --host and --port',
        ),
      ),
    );
    server.listen(opts.port ?? 8081, opts.host ?? '127.0.0.1', () => {
      const a = server.address() as AddressInfo;
      resolve({
        url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
        server,
        data,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
