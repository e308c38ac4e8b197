/**
 * safetensors read/write (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
 * length, a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__: {k: string}}`
 * padded with spaces to a multiple of 8, then the raw little-endian tensor bytes.
 * Supported dtypes: F32, F16, I32, I64. F16 is held as raw IEEE half bits (Uint16Array); `toFloat32`
 * converts. Writing an F16 tensor from a Float32Array converts with round-to-nearest-even.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { ThinkwhenError } from '../errors.ts';

export type DType = 'F32' | 'F16' | 'I32' | 'I64';

export type TensorData = Float32Array | Uint16Array | Int32Array | BigInt64Array;

export interface Tensor {
  dtype: DType;
  shape: number[];
  data: TensorData;
}

export type TensorInput = Tensor | { dtype: 'F16'; shape: number[]; data: Float32Array };

export interface SafetensorsFile {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<DType, number> = { F32: 4, F16: 2, I32: 4, I64: 8 };

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Float32 → IEEE half bits, round to nearest even (overflow → ±Inf, NaN kept). */
export function float32ToFloat16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < src.length; i++) {
    f[0] = src[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
    } else if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      const m = mant | 0x800000;
      const shift = 14 - e;
      let half = m >>> shift;
      const rem = m & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rem > mid || (rem === mid && half & 1)) half++;
      out[i] = sign | half;
    } else {
      let half = (e << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
      out[i] = sign | half;
    }
  }
  return out;
}

/** IEEE half bits → Float32. */
export function float16ToFloat32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) out[i] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) out[i] = mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else out[i] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** Any supported tensor as Float32 (I64 values beyond 2^53 lose precision). */
export function toFloat32(t: Tensor): Float32Array {
  if (t.dtype === 'F32') return t.data as Float32Array;
  if (t.dtype === 'F16') return float16ToFloat32(t.data as Uint16Array);
  if (t.dtype === 'I32') return Float32Array.from(t.data as Int32Array);
  return Float32Array.from(t.data as BigInt64Array, (v) => Number(v));
}

function normalise(name: string, t: TensorInput): Tensor {
  if (t.dtype === 'F16' && t.data instanceof Float32Array) {
    return { dtype: 'F16', shape: t.shape, data: float32ToFloat16(t.data) };
  }
  const expected = { F32: Float32Array, F16: Uint16Array, I32: Int32Array, I64: BigInt64Array }[t.dtype];
  if (!(t.data instanceof expected)) {
    throw new ThinkwhenError(
      'SAFETENSORS_DTYPE',
      `tensor "${name}" is declared ${t.dtype} but holds a ${t.data.constructor.name}`,
      `pass a ${expected.name} for ${t.dtype}`,
    );
  }
  if (t.data.length !== numel(t.shape)) {
    throw new ThinkwhenError(
      'SAFETENSORS_SHAPE',
      `tensor "${name}" has ${t.data.length} values but shape [${t.shape.join(', ')}] needs ${numel(t.shape)}`,
      'make the shape match the data',
    );
  }
  return t as Tensor;
}

/** Serialise tensors (in name order) and string metadata to safetensors bytes. */
export function encodeSafetensors(tensors: Record<string, TensorInput>, metadata: Record<string, string> = {}): Buffer {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const parts: Tensor[] = [];
  let offset = 0;
  for (const name of names) {
    const t = normalise(name, tensors[name]);
    const size = t.data.length * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    parts.push(t);
    offset += size;
  }
  let json = JSON.stringify(header);
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const t of parts) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    bytes.copy(out, at);
    at += bytes.length;
  }
  return out;
}

/** Parse safetensors bytes. Tensor arrays are copies when the input is not aligned for their type. */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors data'): SafetensorsFile {
  const bad = (what: string) =>
    new ThinkwhenError(
      'SAFETENSORS_CORRUPT',
      `${source}: ${what}`,
      'regenerate the file; it is truncated or not safetensors',
    );
  if (bytes.length < 8) throw bad('shorter than the 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > bytes.length - 8) throw bad(`header length ${headerLen} exceeds the file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerLen).toString('utf8'));
  } catch {
    throw bad('header is not valid JSON');
  }
  const dataStart = 8 + headerLen;
  const tensors: Record<string, Tensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = entry as { dtype: DType; shape: number[]; data_offsets: [number, number] };
    if (!(dtype in BYTES)) {
      throw new ThinkwhenError(
        'SAFETENSORS_DTYPE',
        `${source}: tensor "${name}" has dtype ${dtype}, which thinkwhen does not read`,
        'convert it to F32, F16, I32 or I64',
      );
    }
    const [begin, end] = data_offsets;
    const count = numel(shape);
    if (end - begin !== count * BYTES[dtype] || dataStart + end > bytes.length) {
      throw bad(`tensor "${name}" offsets [${begin}, ${end}] do not fit shape [${shape.join(', ')}] ${dtype}`);
    }
    const abs = bytes.byteOffset + dataStart + begin;
    const aligned = abs % BYTES[dtype] === 0;
    const buf = aligned ? bytes.buffer : bytes.slice(dataStart + begin, dataStart + end).buffer;
    const at = aligned ? abs : 0;
    const data =
      dtype === 'F32'
        ? new Float32Array(buf, at, count)
        : dtype === 'F16'
          ? new Uint16Array(buf, at, count)
          : dtype === 'I32'
            ? new Int32Array(buf, at, count)
            : new BigInt64Array(buf, at, count);
    tensors[name] = { dtype, shape, data };
  }
  return { tensors, metadata };
}

/** Write a safetensors file atomically (temp file + rename). */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorInput>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, encodeSafetensors(tensors, metadata));
  await rename(tmp, path);
}

export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new ThinkwhenError(
      'SAFETENSORS_MISSING',
      `cannot read ${path}: ${(err as Error).message}`,
      'check the path, or run the stage that writes it first',
    );
  }
  return decodeSafetensors(bytes, path);
}
