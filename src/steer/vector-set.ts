// A vector set: one directory with `manifest.json` and one llama.cpp control-vector GGUF per
// vector (the bias and one per taxonomy latent). Vectors are keyed by latent id, never by their
// position among the categories that happen to be present (the paper's index shift, method.md
// §2.9). Loading refuses anything ambiguous or wrong instead of guessing: a latent listed twice,
// a file used twice or not listed at all (the paper's `os.listdir` race), a missing file, a file
// whose values differ from the manifest, a vector of the wrong width, NaN/Inf.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { hookName, parseHook } from '../engine/hooks.ts';
import type { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { readControlVector, writeControlVector } from '../gguf/control-vector.ts';
import { metaValue, readGguf } from '../gguf/read.ts';

export const VECTOR_SET_FORMAT = 'thinkwhen-vectors/1';
export const MANIFEST = 'manifest.json';

/** 'imported': vectors brought in from repeng / llama.cpp / EasySteer files (`vectors import`). */
export type VectorMethod = 'optimised' | 'diffmean' | 'imported';

export interface ModelRef {
  /** the path the vectors were made with (informational: the hash identifies the model) */
  file: string;
  sha256: string;
  arch: string;
  nEmbd: number;
  nLayer: number;
}

export interface VectorEntry {
  file: string;
  norm: number;
  n_train: number;
  /** mean training loss per epoch (base-10 units); [] for gradient-free vectors */
  loss_curve: number[];
  [extra: string]: unknown;
}

export interface CategoryEntry extends VectorEntry {
  latent: number;
  title: string;
  n_heldout: number;
}

export interface SkippedEntry {
  latent: number;
  title: string;
  reason: string;
}

export interface VectorSetManifest {
  format: typeof VECTOR_SET_FORMAT;
  method: VectorMethod;
  model: ModelRef;
  /** the apply layer: apply_site is blocks.{layer}.hook_resid_post */
  layer: number;
  train_site: string;
  apply_site: string;
  bias: VectorEntry | null;
  categories: CategoryEntry[];
  skipped: SkippedEntry[];
  /** where the taxonomy came from (SAE file, layer, K, annotated traces); null when none */
  sae: Record<string, unknown> | null;
  /** false while `vectors train` is still adding vectors (a set that is not complete does not load) */
  complete?: boolean;
  [extra: string]: unknown;
}

export interface VectorSet {
  dir: string;
  manifest: VectorSetManifest;
  layer: number;
  /** e.g. 'blocks.3.hook_resid_post' */
  applyHook: string;
  bias: Float32Array | null;
  vectors: Map<number, Float32Array>;
  titles: Map<number, string>;
  /** latents without a vector, with the reason */
  skipped: Map<number, string>;
  /** problems that do not stop loading (a model file with another hash but the same shape) */
  warnings: string[];
}

export interface LoadVectorSetOptions {
  /** refuse a model whose file hash differs from the manifest's (default: a warning) */
  strictModel?: boolean;
}

const bad = (message: string, fix?: string) => new ThinkwhenError('BAD_VECTOR_SET', message, fix);

// ---------------------------------------------------------------------------------------------
// Model identity

const hashCache = new Map<string, string>();

/** SHA-256 of a file, streamed; cached per (path, size, mtime) for the life of the process. */
export async function fileSha256(path: string): Promise<string> {
  const st = statSync(path);
  const key = `${path}\0${st.size}\0${st.mtimeMs}`;
  const hit = hashCache.get(key);
  if (hit) return hit;
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) h.update(chunk as Buffer);
  const digest = h.digest('hex');
  hashCache.set(key, digest);
  return digest;
}

/** Identity of a model file: hash and the shape a vector must fit. */
export async function modelRef(path: string): Promise<ModelRef> {
  const g = readGguf(path);
  const arch = String(metaValue(g, 'general.architecture') ?? '');
  const nEmbd = Number(metaValue(g, `${arch}.embedding_length`));
  const nLayer = Number(metaValue(g, `${arch}.block_count`));
  if (!Number.isInteger(nEmbd) || !Number.isInteger(nLayer)) {
    throw new ThinkwhenError(
      'NOT_A_MODEL',
      `${path} has no ${arch}.embedding_length / block_count`,
      'pass a model GGUF',
    );
  }
  return { file: path, sha256: await fileSha256(path), arch, nEmbd, nLayer };
}

// ---------------------------------------------------------------------------------------------
// Sites

/**
 * The llama.cpp control-vector slot of an apply site: direction.L acts at blocks.L.hook_resid_post,
 * so blocks.L.hook_resid_pre is direction.(L-1). llama.cpp has no slot below 1.
 */
export function controlVectorLayer(applySite: string): number {
  const p = parseHook(applySite);
  const slot = p.site === 'resid_post' ? p.layer : p.layer - 1;
  if (slot < 1) {
    throw new ThinkwhenError(
      'BAD_SITE',
      `${applySite} has no llama.cpp control-vector slot (direction.L exists for L ≥ 1 and acts at blocks.L.hook_resid_post)`,
      'pick a layer ≥ 1',
    );
  }
  return slot;
}

/** The paper's sites (method.md A3): trained at the input of block L, applied at its output. */
export function defaultSites(layer: number, sameSite = false): { train_site: string; apply_site: string } {
  const apply = hookName({ layer, site: 'resid_post' });
  return { train_site: sameSite ? apply : hookName({ layer, site: 'resid_pre' }), apply_site: apply };
}

// ---------------------------------------------------------------------------------------------
// Writing

export function vectorNorm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/** Writes one vector as a control-vector GGUF in `dir` (atomic); returns the file name. */
export function writeVectorFile(
  dir: string,
  file: string,
  manifest: Pick<VectorSetManifest, 'apply_site' | 'model' | 'method'>,
  vector: Float32Array,
): string {
  checkFileName(file);
  writeControlVector(join(dir, file), {
    modelHint: manifest.model.arch,
    nEmbd: vector.length,
    directions: new Map([[controlVectorLayer(manifest.apply_site), vector]]),
    method: manifest.method,
  });
  return file;
}

/** Writes a file through a temporary one and a rename: a crash never leaves half a file. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** Writes manifest.json atomically. */
export function writeManifest(dir: string, manifest: VectorSetManifest): void {
  writeFileAtomic(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
}

export const biasFile = 'bias.gguf';
export const latentFile = (latent: number) => `latent-${latent}.gguf`;

// ---------------------------------------------------------------------------------------------
// Loading

function checkFileName(file: unknown): asserts file is string {
  if (typeof file !== 'string' || file !== basename(file) || !file.endsWith('.gguf') || file.startsWith('.')) {
    throw bad(`vector file name ${JSON.stringify(file)} is not a plain .gguf file name inside the set`);
  }
}

function isLatent(x: unknown): x is number {
  return Number.isInteger(x) && (x as number) >= 0;
}

function readManifest(dir: string): VectorSetManifest {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ThinkwhenError(
      'NO_VECTOR_SET',
      `${dir} is not a directory of steering vectors`,
      'pass the directory `thinkwhen vectors train` (or `vectors import`) wrote',
    );
  }
  const path = join(dir, MANIFEST);
  if (!existsSync(path)) {
    throw new ThinkwhenError(
      'NO_VECTOR_SET',
      `${dir} has no ${MANIFEST}`,
      'pass the directory `thinkwhen vectors train` (or `vectors import`) wrote; single GGUF files go through `thinkwhen vectors import`',
    );
  }
  let m: VectorSetManifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw bad(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (m?.format !== VECTOR_SET_FORMAT) {
    throw bad(
      `${path} has format ${JSON.stringify(m?.format)}, expected ${VECTOR_SET_FORMAT}`,
      'write the set with this version of thinkwhen',
    );
  }
  const ref = m.model;
  if (!ref || !Number.isInteger(ref.nEmbd) || ref.nEmbd < 1 || !Number.isInteger(ref.nLayer) || ref.nLayer < 1) {
    throw bad(`${path}: model.nEmbd / model.nLayer missing or not positive integers`);
  }
  if (!isLatent(m.layer) || m.layer >= ref.nLayer) {
    throw bad(`${path}: layer ${JSON.stringify(m.layer)} is not a layer of a ${ref.nLayer}-layer model`);
  }
  for (const key of ['train_site', 'apply_site'] as const) {
    try {
      const p = parseHook(String(m[key]));
      if (p.layer >= ref.nLayer) throw new Error('out of range');
    } catch {
      throw bad(`${path}: ${key} ${JSON.stringify(m[key])} is not a hook of this model (blocks.L.hook_resid_post|pre)`);
    }
  }
  if (parseHook(m.apply_site).layer !== m.layer) {
    throw bad(`${path}: apply_site ${m.apply_site} does not match layer ${m.layer}`);
  }
  if (!Array.isArray(m.categories) || !Array.isArray(m.skipped ?? [])) {
    throw bad(`${path}: categories and skipped must be lists`);
  }
  if (m.complete === false) {
    throw new ThinkwhenError(
      'INCOMPLETE_VECTOR_SET',
      `${dir} is a vector set still being trained (${m.categories.length} vectors so far)`,
      'rerun the same `thinkwhen vectors train` command: it resumes where it stopped',
    );
  }
  return m;
}

/** Reads the one direction of a set's vector file and checks it against the manifest entry. */
function readEntry(dir: string, m: VectorSetManifest, entry: VectorEntry, what: string): Float32Array {
  checkFileName(entry.file);
  const path = join(dir, entry.file);
  if (!existsSync(path)) {
    throw bad(
      `${what}: the manifest names ${entry.file}, which is not in ${dir}`,
      'restore the file, or retrain / re-import the set',
    );
  }
  const cv = readControlVector(path); // refuses NaN/Inf and duplicate layers
  const slot = controlVectorLayer(m.apply_site);
  if (cv.directions.size !== 1 || !cv.directions.has(slot)) {
    throw bad(
      `${what}: ${entry.file} holds direction.${[...cv.directions.keys()].join(', direction.')} but the set applies at ${m.apply_site} (direction.${slot})`,
      'a set file holds exactly the one layer of the set',
    );
  }
  const v = cv.directions.get(slot)!;
  if (v.length !== m.model.nEmbd) {
    throw bad(`${what}: ${entry.file} has width ${v.length} but the set's model has n_embd ${m.model.nEmbd}`);
  }
  const n = vectorNorm(v);
  if (typeof entry.norm === 'number' && Math.abs(n - entry.norm) > 1e-4 * Math.max(1, entry.norm)) {
    throw bad(
      `${what}: ${entry.file} has norm ${n.toPrecision(6)} but the manifest says ${entry.norm}: the file changed after the manifest was written`,
      'retrain or re-import the set',
    );
  }
  return v;
}

/**
 * Loads and checks a vector set. With `model`, the set must fit it (architecture, width, depth:
 * errors); a different file hash with the same shape is a warning (a requantised copy of the same
 * weights is a legitimate use), or an error with `strictModel`.
 */
export async function loadVectorSet(dir: string, model?: Model, opts: LoadVectorSetOptions = {}): Promise<VectorSet> {
  const m = readManifest(dir);
  const warnings: string[] = [];
  if (model) {
    const { arch, nEmbd, nLayer, path } = model.info;
    if (nEmbd !== m.model.nEmbd || nLayer !== m.model.nLayer) {
      throw new ThinkwhenError(
        'VECTOR_WIDTH',
        `the vectors in ${dir} were made for a model with n_embd ${m.model.nEmbd} and ${m.model.nLayer} layers; ${path} has n_embd ${nEmbd} and ${nLayer} layers`,
        `use the model the vectors were trained on (${m.model.file}) or train vectors for this one`,
      );
    }
    if (m.model.arch && arch !== m.model.arch) {
      throw bad(`the vectors in ${dir} were made for a '${m.model.arch}' model; ${path} is '${arch}'`);
    }
    if (m.model.sha256 && (await fileSha256(path)) !== m.model.sha256) {
      const msg = `${path} is not the file the vectors in ${dir} were made with (${m.model.file}, sha256 ${m.model.sha256.slice(0, 12)}…); same shape, so they load, but their effect is untested on it`;
      if (opts.strictModel) throw bad(msg, 'pass the model the vectors were trained on, or retrain');
      warnings.push(msg);
    }
  }

  const used = new Map<string, string>();
  const claim = (file: string, what: string) => {
    const prev = used.get(file);
    if (prev) throw bad(`${dir}: ${file} is named by both ${prev} and ${what}`, 'give every vector its own file');
    used.set(file, what);
  };

  let bias: Float32Array | null = null;
  if (m.bias) {
    claim(m.bias.file, 'the bias');
    bias = readEntry(dir, m, m.bias, 'bias');
  }
  const vectors = new Map<number, Float32Array>();
  const titles = new Map<number, string>();
  for (const c of m.categories) {
    if (!isLatent(c?.latent)) throw bad(`${dir}: a category has latent ${JSON.stringify(c?.latent)} (not an id ≥ 0)`);
    if (vectors.has(c.latent)) {
      throw bad(
        `${dir}: latent ${c.latent} has two vectors in the manifest; which one steers is ambiguous`,
        'keep one entry per latent',
      );
    }
    claim(c.file, `latent ${c.latent}`);
    vectors.set(c.latent, readEntry(dir, m, c, `latent ${c.latent}`));
    titles.set(c.latent, String(c.title ?? `latent ${c.latent}`));
  }
  const skipped = new Map<number, string>();
  for (const s of m.skipped ?? []) {
    if (!isLatent(s?.latent)) throw bad(`${dir}: a skipped entry has latent ${JSON.stringify(s?.latent)}`);
    if (vectors.has(s.latent) || skipped.has(s.latent)) {
      throw bad(`${dir}: latent ${s.latent} is listed as skipped and also elsewhere in the manifest`);
    }
    skipped.set(s.latent, String(s.reason ?? 'no reason recorded'));
    if (!titles.has(s.latent)) titles.set(s.latent, String(s.title ?? `latent ${s.latent}`));
  }
  const stray = readdirSync(dir).filter((f) => f.endsWith('.gguf') && !used.has(f));
  if (stray.length) {
    throw bad(
      `${dir} holds vector files the manifest does not name (${stray.join(', ')}): which vector steers a latent would be ambiguous`,
      'remove them, or import them into a set of their own with `thinkwhen vectors import`',
    );
  }
  return { dir, manifest: m, layer: m.layer, applyHook: m.apply_site, bias, vectors, titles, skipped, warnings };
}

/**
 * What the hybrid adds for a latent at coefficient c: c·(bias + v), computed in float32 as
 * llama.cpp's loader sums `--control-vector-scaled bias.gguf c latent-k.gguf c` (c·bias, then
 * + c·v), so the hook and llama.cpp's control-vector path get the same bits. A latent without a
 * vector steers with c·bias alone; `biasOnly` says so, so that the caller can count and report it.
 */
export function steeringDelta(
  set: VectorSet,
  latent: number,
  coef: number,
): { vector: Float32Array; biasOnly: boolean } {
  const v = set.vectors.get(latent);
  const out = new Float32Array(set.manifest.model.nEmbd);
  const c = Math.fround(coef);
  if (set.bias) for (let i = 0; i < out.length; i++) out[i] = Math.fround(c * set.bias[i]);
  if (v) for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i] + Math.fround(c * v[i]));
  return { vector: out, biasOnly: !v };
}
