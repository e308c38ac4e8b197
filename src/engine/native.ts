// Loads the C++ addon once and initialises llama.cpp's backends from the pinned prebuilt libraries.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ThinkwhenError } from '../errors.ts';
import { binsDir } from '../llama-paths.mjs';

export interface NativeDevice {
  name: string;
  description: string;
  backend: string;
  type: 'cpu' | 'gpu' | 'igpu' | 'other';
  memoryTotal: number;
}

export interface NativeDecodeResult {
  logits: Float32Array;
  hooks: (Float32Array | null)[];
}

export interface NativeHookOp {
  tensor: string;
  rows: Int32Array;
  add?: Float32Array;
  capture: boolean;
}

export interface NativeModel {
  meta(): Record<string, unknown> & { metadata: Record<string, string> };
  tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Int32Array;
  tokenPiece(token: number, special: boolean): Buffer;
  isEog(token: number): boolean;
  isControl(token: number): boolean;
  free(): void;
}

export interface NativeContext {
  decode(
    tokens: Int32Array,
    pos: Int32Array,
    seq: Int32Array,
    outputs: Uint8Array,
    hooks: NativeHookOp[],
  ): Promise<NativeDecodeResult>;
  info(): { nCtx: number; nCtxSeq: number; nBatch: number; nSeqMax: number };
  seqRm(seq: number, p0: number, p1: number): boolean;
  seqCp(src: number, dst: number, p0: number, p1: number): void;
  seqKeep(seq: number): void;
  seqPosMax(seq: number): number;
  clear(): void;
  setThreads(n: number, nBatch: number): void;
  setControlVector(data: Float32Array | null, ilStart: number, ilEnd: number): void;
  free(): void;
}

interface Addon {
  init(binsDir: string, extraBackends?: string[]): { devices: NativeDevice[]; systemInfo: string };
  takeLog(): string;
  loadModel(path: string, nGpuLayers: number, vocabOnly: boolean): Promise<NativeModel>;
  Context: new (
    model: NativeModel,
    opts: { nCtx: number; nBatch: number; nSeqMax: number; nThreads: number; nThreadsBatch: number },
  ) => NativeContext;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let addon: Addon | undefined;
let devices: NativeDevice[] = [];
let systemInfo = '';

export function native(): Addon {
  if (addon) return addon;
  const path = join(root, 'build', 'Release', 'thinkwhen.node');
  if (!existsSync(path)) {
    throw new ThinkwhenError('ADDON_MISSING', `the native addon is not built (${path})`, 'run `npm run build:native`');
  }
  const loaded = createRequire(import.meta.url)(path) as Addon;
  // THINKWHEN_EXTRA_BACKENDS: ':'-separated backend libraries to load first, such as a
  // libggml-cuda.so built by `npm run build:cuda` where the prebuilt CUDA package is unavailable.
  const extra = (process.env.THINKWHEN_EXTRA_BACKENDS ?? '').split(':').filter(Boolean);
  let info: ReturnType<Addon['init']>;
  try {
    info = loaded.init(binsDir(), extra);
  } catch (err) {
    throw new ThinkwhenError('BACKEND_LOAD_FAILED', (err as Error).message, 'check THINKWHEN_EXTRA_BACKENDS');
  }
  devices = info.devices;
  systemInfo = info.systemInfo;
  addon = loaded;
  return loaded;
}

export interface BackendInfo {
  /** 'cuda' when a CUDA device was loaded, else 'cpu'. */
  backend: string;
  devices: NativeDevice[];
  systemInfo: string;
}

/** The backend actually in use: what llama.cpp loaded, not what was asked for. */
export function backendInfo(): BackendInfo {
  native();
  const gpu = devices.find((d) => d.type === 'gpu');
  return { backend: gpu ? gpu.backend.toLowerCase() : 'cpu', devices, systemInfo };
}
