// GGUF writer (version 3). Tensor data is either given or generated in chunks from a seeded
// normal distribution, so multi-GB random test models never sit in memory whole.
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { Rng } from '../rng.ts';
import { encodeTensor } from './quant.ts';
import { GgmlType, type GgufValue, GgufValueType, typeSize } from './types.ts';

export interface RandomFill {
  seed: number;
  std: number;
  mean?: number;
}

export interface TensorToWrite {
  name: string;
  /** ggml order: shape[0] is the row length. */
  shape: number[];
  type: GgmlType;
  data: Float32Array | RandomFill;
}

const ALIGNMENT = 32;

/** Little-endian writer into one growing buffer (headers of large vocabularies hold ~10^6 values). */
class ByteSink {
  private buf = Buffer.alloc(1 << 16);
  length = 0;
  /** Reserves n bytes; returns the buffer that holds them (it may have grown) and their offset. */
  private room(n: number): [Buffer, number] {
    if (this.length + n > this.buf.length) {
      const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(bigger, 0, 0, this.length);
      this.buf = bigger;
    }
    const at = this.length;
    this.length += n;
    return [this.buf, at];
  }
  u32(v: number) {
    const [b, at] = this.room(4);
    b.writeUInt32LE(v, at);
  }
  u64(v: number | bigint) {
    const [b, at] = this.room(8);
    b.writeBigUInt64LE(BigInt(v), at);
  }
  string(s: string) {
    const n = Buffer.byteLength(s, 'utf8');
    this.u64(n);
    const [b, at] = this.room(n);
    b.write(s, at, 'utf8');
  }
  value(type: GgufValueType, v: unknown) {
    switch (type) {
      case GgufValueType.UINT8:
      case GgufValueType.BOOL: {
        const [b, at] = this.room(1);
        b.writeUInt8(type === GgufValueType.BOOL ? (v ? 1 : 0) : (v as number), at);
        return;
      }
      case GgufValueType.INT8: {
        const [b, at] = this.room(1);
        b.writeInt8(v as number, at);
        return;
      }
      case GgufValueType.UINT16: {
        const [b, at] = this.room(2);
        b.writeUInt16LE(v as number, at);
        return;
      }
      case GgufValueType.INT16: {
        const [b, at] = this.room(2);
        b.writeInt16LE(v as number, at);
        return;
      }
      case GgufValueType.UINT32:
        return this.u32(v as number);
      case GgufValueType.INT32: {
        const [b, at] = this.room(4);
        b.writeInt32LE(v as number, at);
        return;
      }
      case GgufValueType.FLOAT32: {
        const [b, at] = this.room(4);
        b.writeFloatLE(v as number, at);
        return;
      }
      case GgufValueType.FLOAT64: {
        const [b, at] = this.room(8);
        b.writeDoubleLE(v as number, at);
        return;
      }
      case GgufValueType.STRING:
        return this.string(v as string);
      case GgufValueType.UINT64:
        return this.u64(v as bigint);
      case GgufValueType.INT64: {
        const [b, at] = this.room(8);
        b.writeBigInt64LE(BigInt(v as bigint), at);
        return;
      }
      default:
        throw new Error(`cannot write GGUF value type ${type}`);
    }
  }
  concat(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function count(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A tensor's entry in the GGUF header: its data lies at `offset` bytes into the data section. */
export interface TensorEntry {
  name: string;
  shape: number[];
  type: number;
  offset: number;
}

/** The GGUF (version 3) header: magic, counts, metadata and tensor infos, unpadded. */
export function encodeGgufHeader(metadata: Map<string, GgufValue>, tensors: TensorEntry[]): Buffer {
  const head = new ByteSink();
  head.u32(0x46554747);
  head.u32(3);
  head.u64(tensors.length);
  head.u64(metadata.size);
  for (const [key, v] of metadata) {
    head.string(key);
    head.u32(v.type);
    if (v.type === GgufValueType.ARRAY) {
      head.u32(v.itemType);
      head.u64(v.value.length);
      for (const item of v.value) head.value(v.itemType, item);
    } else {
      head.value(v.type, v.value);
    }
  }
  for (const t of tensors) {
    head.string(t.name);
    head.u32(t.shape.length);
    for (const d of t.shape) head.u64(d);
    head.u32(t.type);
    head.u64(t.offset);
  }
  return head.concat();
}

/** Writes a GGUF file atomically (temp file + rename: a crash never leaves a half file at `path`). */
export function writeGguf(path: string, metadata: Map<string, GgufValue>, tensors: TensorToWrite[]): void {
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(offset);
    offset += Math.ceil(typeSize(t.type, count(t.shape)) / ALIGNMENT) * ALIGNMENT;
  }
  const header = encodeGgufHeader(
    metadata,
    tensors.map((t, i) => ({ name: t.name, shape: t.shape, type: t.type, offset: offsets[i] })),
  );
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, header);
    let pos = header.length;
    const pad = (to: number) => {
      if (to > pos) writeSync(fd, Buffer.alloc(to - pos));
      pos = to;
    };
    const dataStart = Math.ceil(pos / ALIGNMENT) * ALIGNMENT;
    pad(dataStart);
    tensors.forEach((t, i) => {
      pad(dataStart + offsets[i]);
      const n = count(t.shape);
      const rowLength = t.shape[0];
      if (t.data instanceof Float32Array) {
        if (t.data.length !== n) throw new Error(`tensor ${t.name}: ${t.data.length} values for shape ${t.shape}`);
        const bytes = encodeTensor(t.data, t.type, rowLength);
        writeSync(fd, bytes);
        pos += bytes.length;
      } else {
        const rng = new Rng(t.data.seed);
        const { std, mean = 0 } = t.data;
        const rowsPerChunk = Math.max(1, Math.floor((1 << 20) / rowLength));
        const nRows = n / rowLength;
        for (let r = 0; r < nRows; r += rowsPerChunk) {
          const chunk = new Float32Array(Math.min(rowsPerChunk, nRows - r) * rowLength);
          for (let j = 0; j < chunk.length; j++) chunk[j] = mean + std * rng.normal();
          const bytes = encodeTensor(chunk, t.type, rowLength);
          writeSync(fd, bytes);
          pos += bytes.length;
        }
      }
    });
    pad(Math.ceil(pos / ALIGNMENT) * ALIGNMENT);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export { GgmlType };
