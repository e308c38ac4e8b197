// A stand-in for the Hugging Face hub: serves ../shared/data under the hub's URL layout
// (`/datasets/<repo>/resolve/<revision>/<file>`) on 127.0.0.1 and counts requests per path.
// GSM8K is published on the hub as parquet only, so that file is built from the JSONL copy.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';

export interface HubServer {
  url: string;
  requests: Map<string, number>;
  /** Bytes served for a hub path, for checksum assertions. */
  files: Map<string, Buffer>;
  close(): Promise<void>;
}

export function gsm8kParquet(jsonlPath: string): Buffer {
  const rows = readFileSync(jsonlPath, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { question: string; answer: string });
  const buf = parquetWriteBuffer({
    columnData: [
      { name: 'question', data: rows.map((r) => r.question), type: 'STRING' },
      { name: 'answer', data: rows.map((r) => r.answer), type: 'STRING' },
    ],
  });
  return Buffer.from(buf);
}

export async function startHubServer(dataDir: string): Promise<HubServer> {
  const files = new Map<string, Buffer>([
    ['/datasets/HuggingFaceH4/MATH-500/resolve/main/test.jsonl', readFileSync(join(dataDir, 'math500/test.jsonl'))],
    [
      '/datasets/openai/gsm8k/resolve/main/main/test-00000-of-00001.parquet',
      gsm8kParquet(join(dataDir, 'gsm8k/test.jsonl')),
    ],
  ]);
  const requests = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.set(path, (requests.get(path) ?? 0) + 1);
    const body = files.get(path);
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Entry not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    files,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}
