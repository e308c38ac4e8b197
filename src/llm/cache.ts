/**
 * On-disk cache of LLM calls, keyed by a SHA-256 of the canonical JSON of (base URL, model, messages,
 * params). One file per call under `<dir>/<2 hex>/<hash>.json`, written atomically, so concurrent runs
 * and crashes never leave a half-written entry, and reruns are free and reproducible.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** JSON with object keys sorted, so equal requests hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function cacheKey(request: unknown): string {
  return createHash('sha256').update(canonicalJson(request)).digest('hex');
}

export interface CacheEntry {
  key: string;
  request: unknown;
  content: string;
  /** The endpoint's full JSON response, for auditing. */
  response: unknown;
  createdAt: string;
}

export class LlmCache {
  constructor(readonly dir: string) {}

  private path(key: string): string {
    return join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    try {
      return JSON.parse(await readFile(this.path(key), 'utf8')) as CacheEntry;
    } catch {
      return undefined;
    }
  }

  async set(entry: CacheEntry): Promise<void> {
    const path = this.path(entry.key);
    await mkdir(join(this.dir, entry.key.slice(0, 2)), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    await writeFile(tmp, JSON.stringify(entry));
    await rename(tmp, path);
  }
}
