// Per-request steering for the server: the `steering` field of a request names vectors (sent inline
// as base64 float32, or by name / file from the server's vector library), where to add them (layer or
// hook), how strongly (coefficient) and on which positions. docs/serve.md describes the field.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { checkVector, hookName, parseHook } from '../engine/hooks.ts';
import type { ModelInfo } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { type ControlVector, readControlVector } from '../gguf/control-vector.ts';
import type { SteeringOp } from './batcher.ts';
import { badField, RequestError, requestErrorFrom } from './request-error.ts';

const bad = (message: string, param: string, fix: string) => badField(param, message, fix);

/**
 * Vectors a server can steer with by name or file: the control-vector GGUFs of its `--vector-dir`
 * folders, named by file name without `.gguf` (`latent-3`), or, in a vector set, by category title.
 */
export class VectorLibrary {
  private cache = new Map<string, { mtimeMs: number; cv: ControlVector }>();

  constructor(readonly dirs: string[] = []) {
    for (const d of dirs) {
      if (!existsSync(d) || !statSync(d).isDirectory())
        throw new ThinkwhenError('NOT_A_FOLDER', `--vector-dir ${d} is not a folder`, 'pass a folder of .gguf files');
    }
  }

  /** Every name a request may use, with its file. */
  names(): Map<string, string> {
    const out = new Map<string, string>();
    for (const d of this.dirs) {
      for (const f of readdirSync(d).sort()) if (f.endsWith('.gguf')) out.set(f.slice(0, -5), join(d, f));
      for (const [title, file] of manifestTitles(d)) if (!out.has(title)) out.set(title, file);
    }
    return out;
  }

  byName(name: string, param: string): ControlVector {
    const file = this.names().get(name);
    if (!file) {
      const known = [...this.names().keys()];
      throw new RequestError(
        400,
        'UNKNOWN_VECTOR',
        `unknown vector name '${name}'`,
        known.length
          ? `use one of ${known.map((k) => `'${k}'`).join(', ')}`
          : 'this server has no named vectors: start it with --vector-dir DIR, or send the vector inline',
        param,
      );
    }
    return this.load(file, param);
  }

  /** A file inside one of the vector folders (never outside them: requests cannot read the server's disk). */
  byFile(file: string, param: string): ControlVector {
    if (this.dirs.length === 0) {
      throw bad(
        'this server has no vector folders',
        param,
        'start it with --vector-dir DIR, or send the vector inline',
      );
    }
    if (isAbsolute(file) || normalize(file).split(sep).includes('..')) {
      throw bad(
        `vector file '${file}' is outside the vector folders`,
        param,
        "name a file relative to a --vector-dir folder, without '..'",
      );
    }
    for (const d of this.dirs) {
      const p = resolve(d, file);
      if (existsSync(p) && statSync(p).isFile()) return this.load(p, param);
    }
    throw bad(
      `vector file '${file}' is not in the server's vector folders`,
      param,
      'list the folders the server was started with (--vector-dir)',
    );
  }

  private load(file: string, param: string): ControlVector {
    const mtimeMs = statSync(file).mtimeMs;
    const hit = this.cache.get(file);
    if (hit && hit.mtimeMs === mtimeMs) return hit.cv;
    try {
      const cv = readControlVector(file);
      this.cache.set(file, { mtimeMs, cv });
      return cv;
    } catch (err) {
      throw bad(
        `vector file is not a usable control vector: ${(err as Error).message}`,
        param,
        'write it with `thinkwhen vectors train` or `vectors import`',
      );
    }
  }
}

/** Category titles of a vector set's manifest.json (title → file). */
function manifestTitles(dir: string): [string, string][] {
  const p = join(dir, 'manifest.json');
  if (!existsSync(p)) return [];
  try {
    const m = JSON.parse(readFileSync(p, 'utf8')) as { categories?: { title?: unknown; file?: unknown }[] };
    return (m.categories ?? [])
      .filter((c) => typeof c.title === 'string' && typeof c.file === 'string')
      .map((c) => [c.title as string, join(dir, c.file as string)]);
  } catch {
    return [];
  }
}

function decodeVector(v: unknown, param: string): Float32Array {
  if (Array.isArray(v)) {
    if (!v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw bad('an inline vector must hold finite numbers', param, 'send an array of numbers or base64 float32');
    }
    return Float32Array.from(v as number[]);
  }
  const fix = 'send an array of numbers, or base64 of little-endian float32 (n_embd × 4 bytes)';
  if (typeof v !== 'string') throw bad('vector must be a base64 string or an array of numbers', param, fix);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw bad('vector is not valid base64', param, fix);
  const bytes = Buffer.from(v, 'base64');
  if (bytes.length % 4 !== 0)
    throw bad(`vector holds ${bytes.length} bytes, not a whole number of float32`, param, fix);
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

/** Encodes a vector for the `vector` field (what a client does). */
export function encodeVector(v: Float32Array): string {
  const b = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) b.writeFloatLE(v[i], i * 4);
  return b.toString('base64');
}

function positionRange(p: unknown, promptTokens: number, param: string): [number, number] {
  if (p === undefined || p === 'all') return [0, Number.POSITIVE_INFINITY];
  if (p === 'prompt') return [0, promptTokens];
  if (p === 'generated') return [promptTokens, Number.POSITIVE_INFINITY];
  if (Array.isArray(p) && p.length === 2) {
    const [from, to] = p;
    const ok = (x: unknown) => Number.isInteger(x) && (x as number) >= 0;
    if (ok(from) && (to === null || (ok(to) && (to as number) > (from as number)))) {
      return [from as number, to === null ? Number.POSITIVE_INFINITY : (to as number)];
    }
  }
  throw bad(
    `positions ${JSON.stringify(p)} is not a position range`,
    param,
    "send 'all', 'prompt', 'generated' or [from, to): absolute positions, integers ≥ 0, to > from or null",
  );
}

function finite(v: unknown, fallback: number, param: string): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw bad(`${param} must be a finite number, got ${JSON.stringify(v)}`, param, 'send a number such as 4');
  }
  return v;
}

/** Parses a request's `steering` field into the operations the batcher applies. */
export function parseSteering(
  field: unknown,
  info: ModelInfo,
  promptTokens: number,
  library: VectorLibrary,
): SteeringOp[] {
  if (field === undefined || field === null) return [];
  const list = Array.isArray(field) ? field : [field];
  if (list.length > 64)
    throw bad('at most 64 steering entries per request', 'steering', 'merge vectors into fewer entries');
  const ops: SteeringOp[] = [];
  list.forEach((entry, i) => {
    const at = `steering[${i}]`;
    const entryFix = 'send {"layer": L, "vector": [...]} or {"name": "latent-3", "coefficient": 4} (docs/serve.md)';
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) throw bad(`${at} must be an object`, at, entryFix);
    const e = entry as Record<string, unknown>;
    const sources = ['vector', 'name', 'file'].filter((k) => e[k] !== undefined);
    if (sources.length !== 1) throw bad(`${at} needs exactly one of 'vector', 'name' or 'file'`, at, entryFix);
    for (const k of Object.keys(e)) {
      if (!['vector', 'name', 'file', 'layer', 'hook', 'coefficient', 'positions'].includes(k)) {
        throw bad(
          `unknown key '${k}' in ${at}`,
          `${at}.${k}`,
          'use vector, name, file, layer, hook, coefficient, positions',
        );
      }
    }
    if (e.layer !== undefined && e.hook !== undefined)
      throw bad(`${at} has both 'layer' and 'hook'`, at, 'send one of them');
    let hook: string | null = null;
    try {
      if (e.hook !== undefined) {
        if (typeof e.hook !== 'string') {
          throw bad(`${at}.hook must be a string`, `${at}.hook`, 'send a hook name such as blocks.2.hook_resid_post');
        }
        hook = hookName(parseHook(e.hook));
      } else if (e.layer !== undefined) {
        if (!Number.isInteger(e.layer)) {
          throw bad(
            `${at}.layer must be an integer, got ${JSON.stringify(e.layer)}`,
            `${at}.layer`,
            `send a layer 1..${info.nLayer - 1}`,
          );
        }
        hook = `blocks.${e.layer}.hook_resid_post`;
      }
      if (hook) {
        const { layer } = parseHook(hook);
        if (layer >= info.nLayer) {
          throw bad(
            `layer ${layer} is out of range: the model has ${info.nLayer} layers`,
            at,
            `send a layer 0..${info.nLayer - 1}`,
          );
        }
      }
    } catch (err) {
      if (err instanceof ThinkwhenError) {
        throw requestErrorFrom(err, `${at}.hook`, 'send blocks.L.hook_resid_post or blocks.L.hook_resid_pre');
      }
      throw err;
    }
    const coefficient = finite(e.coefficient, 1, `${at}.coefficient`);
    const [from, to] = positionRange(e.positions, promptTokens, `${at}.positions`);
    let vectors: [string, Float32Array][];
    if (e.vector !== undefined) {
      if (!hook) throw bad(`${at} has an inline vector but no 'layer' or 'hook'`, at, 'add "layer": L');
      vectors = [[hook, decodeVector(e.vector, `${at}.vector`)]];
    } else {
      if (typeof e[sources[0]] !== 'string') {
        throw bad(`${at}.${sources[0]} must be a string`, `${at}.${sources[0]}`, entryFix);
      }
      const cv =
        e.name !== undefined
          ? library.byName(e.name as string, `${at}.name`)
          : library.byFile(e.file as string, `${at}.file`);
      if (hook) {
        // A control vector's direction.L acts at blocks.L.hook_resid_post.
        const { layer } = parseHook(hook);
        const d = cv.directions.get(layer);
        if (!d) {
          throw bad(
            `the vector has no direction for layer ${layer}`,
            at,
            `use a layer it has: ${[...cv.directions.keys()].join(', ')}`,
          );
        }
        vectors = [[hook, d]];
      } else {
        vectors = [...cv.directions].map(([l, d]) => [`blocks.${l}.hook_resid_post`, d]);
      }
    }
    for (const [h, v] of vectors) {
      try {
        checkVector(v, info.nEmbd, `${at} vector`);
      } catch (err) {
        if (!(err instanceof ThinkwhenError)) throw err;
        throw requestErrorFrom(err, `${at}.${sources[0]}`, `send ${info.nEmbd} finite numbers (the model's n_embd)`);
      }
      const scaled = new Float32Array(v.length);
      for (let k = 0; k < v.length; k++) scaled[k] = v[k] * coefficient;
      ops.push({ hook: h, vector: scaled, from, to });
    }
  });
  return ops;
}
