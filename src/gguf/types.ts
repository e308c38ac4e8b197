/** GGUF value and tensor types (the numbering is fixed by the format). */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** ggml tensor types this project reads or writes. */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q8_0 = 8,
  BF16 = 30,
}

export const QK8_0 = 32;

/** Bytes used by `n` elements of a type (n a multiple of the block size for quantised types). */
export function typeSize(type: GgmlType, n: number): number {
  switch (type) {
    case GgmlType.F32:
      return n * 4;
    case GgmlType.F16:
    case GgmlType.BF16:
      return n * 2;
    case GgmlType.Q8_0:
      return (n / QK8_0) * 34;
  }
}

export function typeName(type: number): string {
  return GgmlType[type] ?? `ggml type ${type}`;
}

/** A metadata value with its GGUF type, so a file can be rewritten exactly. */
export type GgufValue =
  | { type: GgufValueType.STRING; value: string }
  | { type: GgufValueType.BOOL; value: boolean }
  | { type: GgufValueType.UINT64 | GgufValueType.INT64; value: bigint }
  | {
      type:
        | GgufValueType.UINT8
        | GgufValueType.INT8
        | GgufValueType.UINT16
        | GgufValueType.INT16
        | GgufValueType.UINT32
        | GgufValueType.INT32
        | GgufValueType.FLOAT32
        | GgufValueType.FLOAT64;
      value: number;
    }
  | { type: GgufValueType.ARRAY; itemType: GgufValueType; value: unknown[] };

export interface GgufTensorInfo {
  name: string;
  /** ggml order: shape[0] is the innermost (contiguous) dimension. */
  shape: number[];
  type: number;
  /** Byte offset relative to the start of the data section. */
  offset: number;
  byteLength: number;
}

export const str = (value: string): GgufValue => ({ type: GgufValueType.STRING, value });
export const u32 = (value: number): GgufValue => ({ type: GgufValueType.UINT32, value });
export const i32 = (value: number): GgufValue => ({ type: GgufValueType.INT32, value });
export const f32 = (value: number): GgufValue => ({ type: GgufValueType.FLOAT32, value });
export const bool = (value: boolean): GgufValue => ({ type: GgufValueType.BOOL, value });
export const arr = (itemType: GgufValueType, value: unknown[]): GgufValue => ({
  type: GgufValueType.ARRAY,
  itemType,
  value,
});
