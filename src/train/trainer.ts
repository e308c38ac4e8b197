// A training graph over one GGUF model (native/train-graph.cpp): the model's forward pass rebuilt with
// ggml and differentiated by ggml, with either steering vectors or all weights trainable.
import { existsSync, readFileSync } from 'node:fs';
import { backendInfo } from '../engine/native.ts';
import { defaultThreads } from '../engine/threads.ts';
import { type ErrorCode, ThinkwhenError } from '../errors.ts';
import {
  type NativeRunBatch,
  type NativeRunResult,
  type NativeTrainer,
  type NativeTrainerInfo,
  type NativeTrainerOptions,
  trainAddon,
} from './native.ts';

export type HookSite = 'resid_pre' | 'resid_post';

export interface TrainerOptions {
  /** 'vectors': frozen weights (any type) + F32 vectors; 'weights': every weight in F32 is trained */
  mode?: 'vectors' | 'weights';
  /** 'cpu' (default), 'gpu' (the first GPU backend loaded), or a ggml device name */
  device?: string;
  /** CPU threads (default: env THINKWHEN_THREADS, else all cores) */
  threads?: number;
  /**
   * Transposed copies of frozen matrices for the backward pass (vectors mode): 'auto' keeps F32 for
   * F32 models and F16 otherwise; 'q8_0' halves that memory; 'none' uses ggml's out_prod (exact, slow on CPU).
   */
  gradWeightType?: NativeTrainerOptions['gradWeightType'];
  /** refuse graphs above this many bytes (default: 90 % of available RAM, or of the GPU's memory) */
  memoryLimit?: number;
}

export interface VectorSpec {
  layer: number;
  site?: HookSite;
  /** initial value (default zeros) */
  data?: Float32Array;
  /** default true; false = a frozen vector added alongside (e.g. the paper's bias vector) */
  trainable?: boolean;
}

/** Residual position of a hook: resid_pre L is the input of block L, resid_post L the input of L + 1. */
export function residPosition(layer: number, site: HookSite, nLayer: number): number {
  if (!Number.isInteger(layer) || layer < 0 || layer >= nLayer) {
    throw new ThinkwhenError(
      'LAYER_OUT_OF_RANGE',
      `layer ${layer} is out of range: this model has ${nLayer} layers (0..${nLayer - 1})`,
    );
  }
  return site === 'resid_pre' ? layer : layer + 1;
}

function defaultMemoryLimit(device: string): number {
  if (device === 'cpu') {
    try {
      const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
      if (m) return Number(m[1]) * 1024 * 0.9;
    } catch {
      // not Linux: no limit
    }
    return 0;
  }
  const gpu = backendInfo().devices.find((d) => d.type === 'gpu');
  return gpu ? gpu.memoryTotal * 0.9 : 0;
}

/** The codes the addon puts on its errors (native/train.h); anything else stays a plain Error. */
const NATIVE_CODES = new Set<ErrorCode>(['OUT_OF_MEMORY', 'UNSUPPORTED_MODEL']);

function wrap(err: unknown, prefix = ''): Error {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && NATIVE_CODES.has(code as ErrorCode)) {
    return new ThinkwhenError(code as ErrorCode, prefix + (err as Error).message);
  }
  return err as Error;
}

export class Trainer {
  readonly info: NativeTrainerInfo;
  private vectorCount = 0;

  private constructor(
    readonly nat: NativeTrainer,
    readonly path: string,
  ) {
    this.info = nat.info();
  }

  /** Loads the model's weights into a training graph (synchronous: reads the whole file). */
  static open(path: string, opts: TrainerOptions = {}): Trainer {
    if (!existsSync(path)) throw new ThinkwhenError('MODEL_NOT_FOUND', `model file not found: ${path}`);
    const device = opts.device ?? 'cpu';
    const o: NativeTrainerOptions = {
      mode: opts.mode ?? 'vectors',
      device,
      nThreads: opts.threads ?? defaultThreads(),
      gradWeightType: opts.gradWeightType ?? 'auto',
      memoryLimit: opts.memoryLimit ?? defaultMemoryLimit(device),
    };
    try {
      return new Trainer(new (trainAddon().Trainer)(path, o), path);
    } catch (err) {
      throw wrap(err, `${path}: `);
    }
  }

  get nLayer(): number {
    return this.info.nLayer;
  }
  get nEmbd(): number {
    return this.info.nEmbd;
  }
  get nVocab(): number {
    return this.info.nVocab;
  }

  /** Replaces the vectors (and resets the optimizer state). Returns nothing; vectors keep their order. */
  setVectors(specs: VectorSpec[]): void {
    this.nat.setVectors(
      specs.map((s) => {
        const data = s.data ?? new Float32Array(this.nEmbd);
        if (data.length !== this.nEmbd) {
          throw new ThinkwhenError(
            'VECTOR_WIDTH',
            `vector has ${data.length} values, the model's residual has ${this.nEmbd}`,
          );
        }
        return {
          pos: residPosition(s.layer, s.site ?? 'resid_pre', this.nLayer),
          trainable: s.trainable ?? true,
          data,
        };
      }),
    );
    this.vectorCount = specs.length;
  }

  get nVectors(): number {
    return this.vectorCount;
  }

  vector(i: number): Float32Array {
    return this.nat.getVector(i);
  }

  /** Accumulated gradient of a trainable vector (index) or weight (tensor name). */
  grad(which: number | string): Float32Array {
    return this.nat.getGrad(which);
  }

  /** Forward (and backward when batch.backward): gradients add up until step(). */
  async run(batch: NativeRunBatch): Promise<NativeRunResult> {
    try {
      return await this.nat.run(batch);
    } catch (err) {
      throw wrap(err);
    }
  }

  /** Bytes the graph for this batch would take, measured without allocating it. */
  estimate(batch: NativeRunBatch): { computeBytes: number; persistentBytes: number } {
    return this.nat.estimate(batch);
  }

  /** One Adam(W) step on the accumulated gradients; clears them. */
  step(o: { lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number }): Promise<void> {
    return this.nat.step(o);
  }

  zeroGrad(): void {
    this.nat.zeroGrad();
  }

  param(name: string): Float32Array {
    return this.nat.getParam(name);
  }

  setParam(name: string, data: Float32Array): void {
    this.nat.setParam(name, data);
  }

  /** Adam's first and second moments of a trainable vector (index) or weight (tensor name). */
  moments(which: number | string): { m: Float32Array; v: Float32Array } {
    return this.nat.getMoments(which);
  }

  setMoments(which: number | string, m: Float32Array, v: Float32Array): void {
    this.nat.setMoments(which, m, v);
  }

  /** Optimizer steps taken (Adam's bias correction counts them); settable to resume a run. */
  get optimizerSteps(): number {
    return this.nat.getSteps();
  }

  set optimizerSteps(n: number) {
    this.nat.setSteps(n);
  }

  /** Writes the current weights with the source file's metadata (weights mode: all F32). */
  save(path: string): Promise<void> {
    return this.nat.save(path);
  }

  free(): void {
    this.nat.free();
  }
}
