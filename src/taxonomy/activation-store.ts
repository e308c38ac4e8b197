/**
 * On-disk store of sentence activations: a directory with
 *  - `shard-00000.safetensors` …: one F32 tensor `layer.{L}` of shape [rows, dim] per captured layer;
 *  - `index.jsonl`: one line per sentence row, in row order (trace id, sentence text, token span, …);
 *  - `means.safetensors`: `mean.{L}` = running mean of the thinking-span vectors (μ_L, docs/method.md §2.2);
 *  - `manifest.json`: dim, layers, shard list and row counts; written last, so a directory without it
 *    is an interrupted capture.
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ThinkwhenError } from '../errors.ts';
import { RunningMean } from './preprocess.ts';
import { readSafetensors, writeSafetensors } from './safetensors.ts';

export interface SentenceRecord {
  traceId: string;
  sentence: string;
  /** Token span `[tokenStart, tokenEnd)` in the traced text (see traces/spans.ts). */
  tokenStart: number;
  tokenEnd: number;
  charStart?: number;
  charEnd?: number;
}

export interface IndexedRecord extends SentenceRecord {
  row: number;
  shard: number;
}

export interface Manifest {
  format: 'thinkwhen-sentence-activations/1';
  dim: number;
  layers: number[];
  rows: number;
  shards: Array<{ file: string; rows: number }>;
  thinkingMeanCounts: Record<string, number>;
  metadata: Record<string, string>;
}

export interface WriterOptions {
  layers: number[];
  dim: number;
  /** Rows per shard file (memory held while capturing: shardRows × dim × layers × 4 bytes). */
  shardRows?: number;
  metadata?: Record<string, string>;
}

const widthError = (what: string, got: number, dim: number) =>
  new ThinkwhenError(
    'width-mismatch',
    `${what} has width ${got} but this activation store holds width ${dim}`,
    'capture every layer of one model into one store; start a new directory for another model',
  );

export class SentenceActivationWriter {
  private readonly shardRows: number;
  private readonly buffers = new Map<number, Float32Array>();
  private readonly means = new Map<number, RunningMean>();
  private inShard = 0;
  private rows = 0;
  private readonly shards: Manifest['shards'] = [];
  private pendingIndex: string[] = [];

  private constructor(
    readonly dir: string,
    private readonly options: WriterOptions,
  ) {
    this.shardRows = options.shardRows ?? 2048;
    for (const layer of options.layers) {
      this.buffers.set(layer, new Float32Array(this.shardRows * options.dim));
      this.means.set(layer, new RunningMean(options.dim));
    }
  }

  static async create(dir: string, options: WriterOptions): Promise<SentenceActivationWriter> {
    if (options.layers.length === 0 || options.dim <= 0) {
      throw new ThinkwhenError('bad-store', 'an activation store needs at least one layer and a positive width');
    }
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'index.jsonl'), '');
    return new SentenceActivationWriter(dir, options);
  }

  /** Append one sentence: its record and its mean activation at every layer of the store. */
  async add(record: SentenceRecord, vectors: ReadonlyMap<number, ArrayLike<number>>): Promise<void> {
    for (const layer of this.options.layers) {
      const v = vectors.get(layer);
      if (!v) {
        throw new ThinkwhenError('missing-layer', `no activation given for layer ${layer}`, 'pass every store layer');
      }
      if (v.length !== this.options.dim) throw widthError(`the layer-${layer} vector`, v.length, this.options.dim);
      this.buffers.get(layer)!.set(v, this.inShard * this.options.dim);
    }
    const indexed: IndexedRecord = { row: this.rows, shard: this.shards.length, ...record };
    this.pendingIndex.push(JSON.stringify(indexed));
    this.inShard++;
    this.rows++;
    if (this.inShard === this.shardRows) await this.flush();
  }

  /** Fold one response's thinking-span mean vector into μ_L. */
  addThinkingVector(layer: number, vector: ArrayLike<number>): void {
    const mean = this.means.get(layer);
    if (!mean) throw new ThinkwhenError('missing-layer', `layer ${layer} is not in this store`);
    if (vector.length !== this.options.dim)
      throw widthError('the thinking-span vector', vector.length, this.options.dim);
    mean.update(vector);
  }

  private async flush(): Promise<void> {
    if (this.inShard === 0) return;
    const file = `shard-${String(this.shards.length).padStart(5, '0')}.safetensors`;
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const layer of this.options.layers) {
      const data = this.buffers.get(layer)!.slice(0, this.inShard * this.options.dim);
      tensors[`layer.${layer}`] = { dtype: 'F32', shape: [this.inShard, this.options.dim], data };
    }
    await writeSafetensors(join(this.dir, file), tensors);
    await appendFile(join(this.dir, 'index.jsonl'), `${this.pendingIndex.join('\n')}\n`);
    this.pendingIndex = [];
    this.shards.push({ file, rows: this.inShard });
    this.inShard = 0;
  }

  async close(): Promise<Manifest> {
    await this.flush();
    const meanTensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    const counts: Record<string, number> = {};
    for (const [layer, mean] of this.means) {
      meanTensors[`mean.${layer}`] = { dtype: 'F32', shape: [this.options.dim], data: mean.toFloat32() };
      counts[String(layer)] = mean.count;
    }
    await writeSafetensors(join(this.dir, 'means.safetensors'), meanTensors);
    const manifest: Manifest = {
      format: 'thinkwhen-sentence-activations/1',
      dim: this.options.dim,
      layers: this.options.layers,
      rows: this.rows,
      shards: this.shards,
      thinkingMeanCounts: counts,
      metadata: this.options.metadata ?? {},
    };
    await writeFile(join(this.dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  }
}

export interface LoadedActivations {
  /** Row-major [rows, dim] raw sentence means (not centred). */
  x: Float32Array;
  rows: number;
  dim: number;
  records: IndexedRecord[];
  /** μ_L of the thinking spans, or null when the capture recorded none. */
  thinkingMean: Float32Array | null;
  manifest: Manifest;
}

export async function readManifest(dir: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(join(dir, 'manifest.json'), 'utf8');
  } catch {
    throw new ThinkwhenError(
      'no-activations',
      `${dir} has no manifest.json: no finished sentence-activation capture there`,
      'run the activation capture stage into this directory (an interrupted capture must be rerun)',
    );
  }
  return JSON.parse(text) as Manifest;
}

/** Load one layer of a store; `expectedDim` (the model's hidden size) is checked when given. */
export async function loadSentenceActivations(
  dir: string,
  layer: number,
  options: { expectedDim?: number } = {},
): Promise<LoadedActivations> {
  const manifest = await readManifest(dir);
  const { dim } = manifest;
  if (options.expectedDim !== undefined && options.expectedDim !== dim) {
    throw new ThinkwhenError(
      'width-mismatch',
      `stored activations in ${dir} have width ${dim}, but the model/SAE expects width ${options.expectedDim}`,
      'use activations captured from the same model as the SAE, or recapture them',
    );
  }
  if (!manifest.layers.includes(layer)) {
    throw new ThinkwhenError(
      'missing-layer',
      `layer ${layer} is not in ${dir} (layers: ${manifest.layers.join(', ')})`,
      'pick a captured layer or capture this one',
    );
  }
  const x = new Float32Array(manifest.rows * dim);
  let at = 0;
  for (const shard of manifest.shards) {
    const file = await readSafetensors(join(dir, shard.file));
    const t = file.tensors[`layer.${layer}`];
    if (!t || t.dtype !== 'F32' || t.shape.length !== 2 || t.shape[0] !== shard.rows) {
      throw new ThinkwhenError('safetensors-corrupt', `${shard.file} lacks a [${shard.rows}, ${dim}] layer.${layer}`);
    }
    if (t.shape[1] !== dim) throw widthError(`${shard.file} layer.${layer}`, t.shape[1], dim);
    x.set(t.data as Float32Array, at);
    at += t.data.length;
  }
  const lines = (await readFile(join(dir, 'index.jsonl'), 'utf8')).split('\n').filter((l) => l.length > 0);
  const records = lines.map((l) => JSON.parse(l) as IndexedRecord);
  if (records.length !== manifest.rows) {
    throw new ThinkwhenError(
      'safetensors-corrupt',
      `${dir}/index.jsonl has ${records.length} lines for ${manifest.rows} rows`,
      'recapture the activations',
    );
  }
  let thinkingMean: Float32Array | null = null;
  if ((manifest.thinkingMeanCounts[String(layer)] ?? 0) > 0) {
    const means = await readSafetensors(join(dir, 'means.safetensors'));
    const m = means.tensors[`mean.${layer}`];
    if (m.shape[0] !== dim) throw widthError('the stored thinking mean', m.shape[0], dim);
    thinkingMean = m.data as Float32Array;
  }
  return { x, rows: manifest.rows, dim, records, thinkingMean, manifest };
}
