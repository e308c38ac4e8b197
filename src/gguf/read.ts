// GGUF reader: metadata and tensor infos from the header, tensor data on demand.
// Validates what llama.cpp would otherwise reject with a less helpful message (or abort on).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ThinkwhenError } from '../errors.ts';
import { decodeTensor } from './quant.ts';
import { GgmlType, type GgufTensorInfo, type GgufValue, GgufValueType, typeSize } from './types.ts';

const MAGIC = 0x46554747; // "GGUF" little-endian
const MAX_STRING = 1 << 30;

export interface GgufFile {
  path: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  dataOffset: number;
  fileSize: number;
}

/** Reads a file's bytes in growing chunks as the parser asks for them. */
class Cursor {
  private buf = Buffer.alloc(0);
  private start = 0; // file offset of buf[0]
  pos = 0;
  constructor(
    private fd: number,
    readonly fileSize: number,
    private path: string,
  ) {}

  private need(n: number): void {
    const end = this.pos + n;
    if (end > this.fileSize) {
      throw new ThinkwhenError(
        'TRUNCATED_GGUF',
        `${this.path} is truncated: its header needs byte ${end} but the file has ${this.fileSize}`,
        'download or write the file again',
      );
    }
    if (end <= this.start + this.buf.length) return;
    const want = Math.min(this.fileSize - this.pos, Math.max(n, 1 << 20));
    this.buf = Buffer.alloc(want);
    readSync(this.fd, this.buf, 0, want, this.pos);
    this.start = this.pos;
  }
  private take(n: number): Buffer {
    this.need(n);
    const off = this.pos - this.start;
    this.pos += n;
    return this.buf.subarray(off, off + n);
  }
  u8 = () => this.take(1).readUInt8(0);
  i8 = () => this.take(1).readInt8(0);
  u16 = () => this.take(2).readUInt16LE(0);
  i16 = () => this.take(2).readInt16LE(0);
  u32 = () => this.take(4).readUInt32LE(0);
  i32 = () => this.take(4).readInt32LE(0);
  f32 = () => this.take(4).readFloatLE(0);
  f64 = () => this.take(8).readDoubleLE(0);
  u64 = () => this.take(8).readBigUInt64LE(0);
  i64 = () => this.take(8).readBigInt64LE(0);
  count(what: string): number {
    const n = this.u64();
    if (n > BigInt(this.fileSize)) throw new ThinkwhenError('BAD_GGUF', `${this.path}: implausible ${what} ${n}`);
    return Number(n);
  }
  string(): string {
    const n = this.count('string length');
    if (n > MAX_STRING) throw new ThinkwhenError('BAD_GGUF', `${this.path}: string of ${n} bytes`);
    return this.take(n).toString('utf8');
  }
}

function readValue(c: Cursor, type: GgufValueType): unknown {
  switch (type) {
    case GgufValueType.UINT8:
      return c.u8();
    case GgufValueType.INT8:
      return c.i8();
    case GgufValueType.UINT16:
      return c.u16();
    case GgufValueType.INT16:
      return c.i16();
    case GgufValueType.UINT32:
      return c.u32();
    case GgufValueType.INT32:
      return c.i32();
    case GgufValueType.FLOAT32:
      return c.f32();
    case GgufValueType.FLOAT64:
      return c.f64();
    case GgufValueType.BOOL:
      return c.u8() !== 0;
    case GgufValueType.STRING:
      return c.string();
    case GgufValueType.UINT64:
      return c.u64();
    case GgufValueType.INT64:
      return c.i64();
    default:
      throw new ThinkwhenError('BAD_GGUF', `unknown GGUF value type ${type}`);
  }
}

function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Byte size of a tensor, or -1 for types this reader cannot size (not validated then). */
function tensorBytes(type: number, n: number): number {
  return type in GgmlType ? typeSize(type as GgmlType, n) : -1;
}

/** Parses the header of a GGUF file. Throws ThinkwhenError for missing, foreign or truncated files. */
export function readGguf(path: string): GgufFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ThinkwhenError('MODEL_NOT_FOUND', `no file at ${path}`, 'check the path');
    if (code === 'EISDIR')
      throw new ThinkwhenError('NOT_GGUF', `${path} is a directory, not a GGUF file`, 'pass the .gguf file inside it');
    throw err;
  }
  try {
    const fileSize = fstatSync(fd).size;
    const c = new Cursor(fd, fileSize, path);
    if (fileSize < 8 || c.u32() !== MAGIC) {
      throw new ThinkwhenError(
        'NOT_GGUF',
        `${path} is not a GGUF file (no 'GGUF' magic)`,
        'pass a llama.cpp model file (.gguf); convert other formats with llama.cpp convert_hf_to_gguf.py',
      );
    }
    const version = c.u32();
    if (version < 2 || version > 3)
      throw new ThinkwhenError('BAD_GGUF', `${path}: unsupported GGUF version ${version}`);
    const nTensors = c.count('tensor count');
    const nKv = c.count('metadata count');
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < nKv; i++) {
      const key = c.string();
      const type = c.u32() as GgufValueType;
      if (type === GgufValueType.ARRAY) {
        const itemType = c.u32() as GgufValueType;
        const n = c.count('array length');
        const value = new Array(n);
        for (let j = 0; j < n; j++) value[j] = readValue(c, itemType);
        metadata.set(key, { type, itemType, value });
      } else {
        metadata.set(key, { type, value: readValue(c, type) } as GgufValue);
      }
    }
    const tensors: GgufTensorInfo[] = [];
    for (let i = 0; i < nTensors; i++) {
      const name = c.string();
      const nDims = c.u32();
      if (nDims > 4) throw new ThinkwhenError('BAD_GGUF', `${path}: tensor ${name} has ${nDims} dimensions`);
      const shape: number[] = [];
      for (let d = 0; d < nDims; d++) shape.push(c.count('dimension'));
      const type = c.u32();
      const offset = Number(c.u64());
      tensors.push({ name, shape, type, offset, byteLength: tensorBytes(type, elementCount(shape)) });
    }
    const alignment = readAlignment(metadata, path);
    const dataOffset = Math.ceil(c.pos / alignment) * alignment;
    for (const t of tensors) {
      const end = dataOffset + t.offset + Math.max(t.byteLength, 0);
      if (end > fileSize) {
        throw new ThinkwhenError(
          'TRUNCATED_GGUF',
          `${path} is truncated: tensor ${t.name} ends at byte ${end} but the file has ${fileSize}`,
          'download or write the file again',
        );
      }
    }
    return { path, version, metadata, tensors, alignment, dataOffset, fileSize };
  } finally {
    closeSync(fd);
  }
}

/** `general.alignment`: llama.cpp's reader takes a u32 power of two, 32 when absent. */
function readAlignment(metadata: Map<string, GgufValue>, path: string): number {
  const v = metadata.get('general.alignment');
  if (!v) return 32;
  const n = v.type === GgufValueType.UINT32 ? v.value : Number.NaN;
  if (!(n > 0 && (n & (n - 1)) === 0)) {
    throw new ThinkwhenError(
      'BAD_GGUF',
      `${path}: general.alignment is ${String(v.value)}${v.type === GgufValueType.UINT32 ? '' : ' (not a u32)'}, but it must be a u32 power of two`,
      'rewrite the file with general.alignment 32 (the default), e.g. with gguf-py',
    );
  }
  return n;
}

/** Plain JS value of a metadata key (bigint for 64-bit integers), or undefined. */
export function metaValue(file: GgufFile, key: string): unknown {
  return file.metadata.get(key)?.value;
}

/** Reads one tensor's data as F32 (F32, F16, BF16 and Q8_0 are supported). */
export function readTensor(file: GgufFile, name: string): Float32Array {
  const info = file.tensors.find((t) => t.name === name);
  if (!info) throw new ThinkwhenError('NO_TENSOR', `${file.path} has no tensor named ${name}`);
  if (info.byteLength < 0)
    throw new ThinkwhenError('UNSUPPORTED_TYPE', `tensor ${name}: type ${info.type} cannot be read here`);
  const fd = openSync(file.path, 'r');
  try {
    const bytes = new Uint8Array(info.byteLength);
    readSync(fd, bytes, 0, info.byteLength, file.dataOffset + info.offset);
    return decodeTensor(bytes, info.type, elementCount(info.shape));
  } finally {
    closeSync(fd);
  }
}
