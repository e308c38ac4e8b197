// Fetches dataset files laid out like the Hugging Face hub
// (`<endpoint>/datasets/<repo>/resolve/<revision>/<file>`) into an on-disk cache.
// The endpoint is configurable so mirrors, air-gapped copies and tests can stand in for the hub.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ThinkwhenError } from '../errors.ts';

export interface HubFile {
  /** `owner/name` of a dataset repository, e.g. `HuggingFaceH4/MATH-500`. */
  repo: string;
  /** Path inside the repository, e.g. `test.jsonl` or `main/test-00000-of-00001.parquet`. */
  file: string;
  /** Branch, tag or commit; `main` by default. */
  revision?: string;
}

export interface DownloadOptions {
  /** Base URL of the hub; default `$THINKWHEN_HF_ENDPOINT`, then `$HF_ENDPOINT`, then https://huggingface.co. */
  endpoint?: string;
  /** Cache folder; default `$THINKWHEN_CACHE_DIR/datasets` or `~/.cache/thinkwhen/datasets`. */
  cacheDir?: string;
  /** Never touch the network; only the cache answers (also `THINKWHEN_OFFLINE=1` or `HF_HUB_OFFLINE=1`). */
  offline?: boolean;
  /** Called while bytes arrive (total is null when the server sends no length). */
  onProgress?: (received: number, total: number | null) => void;
}

export interface DownloadedFile {
  path: string;
  url: string;
  sha256: string;
  bytes: number;
  fromCache: boolean;
}

export function hubEndpoint(opts: DownloadOptions = {}): string {
  const e = opts.endpoint ?? process.env.THINKWHEN_HF_ENDPOINT ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co';
  return e.replace(/\/+$/, '');
}

export function hubUrl(f: HubFile, opts: DownloadOptions = {}): string {
  const file = f.file.split('/').map(encodeURIComponent).join('/');
  return `${hubEndpoint(opts)}/datasets/${f.repo}/resolve/${encodeURIComponent(f.revision ?? 'main')}/${file}`;
}

export function defaultCacheDir(): string {
  if (process.env.THINKWHEN_CACHE_DIR) return join(process.env.THINKWHEN_CACHE_DIR, 'datasets');
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'thinkwhen', 'datasets');
}

function isOffline(opts: DownloadOptions): boolean {
  if (opts.offline !== undefined) return opts.offline;
  return process.env.THINKWHEN_OFFLINE === '1' || process.env.HF_HUB_OFFLINE === '1';
}

/** Where a hub file lives in the cache. The endpoint is part of the key so a mirror never poisons the hub's copy. */
export function cachePath(f: HubFile, opts: DownloadOptions = {}): string {
  const host = hubEndpoint(opts)
    .replace(/^https?:\/\//, '')
    .replace(/[^A-Za-z0-9._-]+/g, '_');
  return join(opts.cacheDir ?? defaultCacheDir(), host, f.repo, f.revision ?? 'main', f.file);
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Returns the cached copy when present, otherwise downloads it (atomically: temp file, then rename). */
export async function downloadHubFile(f: HubFile, opts: DownloadOptions = {}): Promise<DownloadedFile> {
  const url = hubUrl(f, opts);
  const dest = cachePath(f, opts);
  if (existsSync(dest)) {
    const bytes = readFileSync(dest);
    return {
      path: dest,
      url,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      bytes: bytes.length,
      fromCache: true,
    };
  }
  if (isOffline(opts)) {
    throw new ThinkwhenError(
      'DATASET_NOT_CACHED',
      `offline and ${f.repo}/${f.file} is not in the cache (${dest})`,
      'unset THINKWHEN_OFFLINE/HF_HUB_OFFLINE once to download it, or pass a local file',
    );
  }
  const headers: Record<string, string> = {};
  if (process.env.HF_TOKEN) headers.authorization = `Bearer ${process.env.HF_TOKEN}`;
  let res: Response;
  try {
    res = await fetch(url, { headers, redirect: 'follow' });
  } catch (err) {
    throw new ThinkwhenError(
      'DOWNLOAD_FAILED',
      `could not reach ${url}: ${(err as Error).message}`,
      'check the network, set THINKWHEN_HF_ENDPOINT to a reachable mirror, or pass a local file',
    );
  }
  if (!res.ok || !res.body) {
    throw new ThinkwhenError(
      'DOWNLOAD_FAILED',
      `GET ${url} answered ${res.status} ${res.statusText}`,
      res.status === 401 || res.status === 403
        ? 'the dataset may be gated: set HF_TOKEN'
        : 'check the repository and file name, or pass a local file',
    );
  }
  const total = Number(res.headers.get('content-length')) || null;
  const chunks: Uint8Array[] = [];
  let received = 0;
  const hash = createHash('sha256');
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    chunks.push(chunk);
    hash.update(chunk);
    received += chunk.length;
    opts.onProgress?.(received, total);
  }
  if (total !== null && received !== total) {
    throw new ThinkwhenError('DOWNLOAD_FAILED', `GET ${url}: got ${received} of ${total} bytes`, 'retry the download');
  }
  mkdirSync(dirname(dest), { recursive: true });
  const tmp = `${dest}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(tmp, Buffer.concat(chunks));
    renameSync(tmp, dest);
  } finally {
    rmSync(tmp, { force: true });
  }
  return { path: dest, url, sha256: hash.digest('hex'), bytes: received, fromCache: false };
}
