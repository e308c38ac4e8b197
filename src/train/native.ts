// Types of the training part of the native addon (native/train.h and native/train-*.cpp).
import { native } from '../engine/native.ts';

export interface NativeTrainerOptions {
  mode: 'vectors' | 'weights';
  device?: string;
  nThreads?: number;
  /** type of the transposed weight copies used for dx = W^T dy; 'none' uses ggml's own out_prod */
  gradWeightType?: 'auto' | 'f32' | 'f16' | 'q8_0' | 'none';
  /** bytes; 0 = no limit */
  memoryLimit?: number;
}

export interface NativeTrainerInfo {
  arch: string;
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nFf: number;
  nVocab: number;
  ropeMode: 'neox' | 'norm';
  freqBase: number;
  eps: number;
  tiedOutput: boolean;
  backend: string;
  mode: 'vectors' | 'weights';
  gradWeightType: string;
  persistentBytes: number;
  nTrainable: number;
  steps: number;
  tensors: string[];
}

export interface NativeRunBatch {
  nSeq: number;
  seqLen: number;
  /** nSeq * seqLen, row-major (sequence b, position t at b * seqLen + t) */
  tokens: Int32Array;
  /** real length of each sequence (the rest is right padding) */
  lengths: Int32Array;
  /** nSeq * seqLen: the token to predict at each position, -1 where the position is not scored */
  targets: Int32Array;
  /**
   * nSeq * seqLen: the loss weight of each scored position (any finite sign; default 1). With
   * weights the loss is sum_r w_r · CE_r · lossScale and `loss` reports sum_r w_r · CE_r / nTargets.
   */
  weights?: Float32Array;
  /** coefficient of the vectors at each position: nSeq * seqLen shared, or that many per vector */
  steer?: Float32Array;
  logitScale?: number;
  /** multiplies the summed cross-entropy before backprop (1 / total targets for a mean) */
  lossScale?: number;
  backward?: boolean;
  logits?: boolean;
}

export interface NativeRunResult {
  /** mean cross-entropy (natural log, of the scaled logits) over the scored rows */
  loss: number;
  nTargets: number;
  logits?: Float32Array;
  nVocab?: number;
}

export interface NativeVectorSpec {
  /** residual position: p = input of block p; p = nLayer is after the last block */
  pos: number;
  trainable: boolean;
  data: Float32Array;
}

export interface NativeTrainer {
  info(): NativeTrainerInfo;
  setVectors(v: NativeVectorSpec[]): void;
  getVector(i: number): Float32Array;
  getGrad(which: number | string): Float32Array;
  getParam(name: string): Float32Array;
  setParam(name: string, data: Float32Array): void;
  run(batch: NativeRunBatch): Promise<NativeRunResult>;
  estimate(batch: NativeRunBatch): { computeBytes: number; persistentBytes: number };
  step(o: { lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number }): Promise<void>;
  zeroGrad(): void;
  save(path: string): Promise<void>;
  setThreads(n: number): void;
  getMoments(which: number | string): { m: Float32Array; v: Float32Array };
  setMoments(which: number | string, m: Float32Array, v: Float32Array): void;
  getSteps(): number;
  setSteps(n: number): void;
  free(): void;
}

export interface ReferenceForwardOptions {
  tokens: Int32Array;
  seq: Int32Array;
  pos: Int32Array;
  nThreads?: number;
  kvType?: 'f32' | 'f16';
  hook?: { tensor: string; rows: Int32Array; add: Float32Array };
}

interface TrainAddon {
  Trainer: new (path: string, opts: NativeTrainerOptions) => NativeTrainer;
  referenceForward(model: unknown, o: ReferenceForwardOptions): Promise<Float32Array>;
}

export function trainAddon(): TrainAddon {
  return native() as unknown as TrainAddon;
}
