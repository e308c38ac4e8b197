// Encoding and decoding of tensor data for the types we write (F32, F16, Q8_0) and read (also BF16).
import { bf16ToF32, f16ToF32, f32ToF16 } from './half.ts';
import { GgmlType, QK8_0, typeName, typeSize } from './types.ts';

export function encodeTensor(data: Float32Array, type: GgmlType, rowLength: number): Uint8Array {
  const out = new Uint8Array(typeSize(type, data.length));
  const view = new DataView(out.buffer);
  switch (type) {
    case GgmlType.F32:
      out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      return out;
    case GgmlType.F16:
      for (let i = 0; i < data.length; i++) view.setUint16(i * 2, f32ToF16(data[i]), true);
      return out;
    case GgmlType.Q8_0: {
      if (rowLength % QK8_0 !== 0) throw new Error(`Q8_0 needs rows that are a multiple of ${QK8_0}, got ${rowLength}`);
      // Same rule as ggml's reference quantiser: d = max|x| / 127, q = round(x / d).
      for (let b = 0; b < data.length / QK8_0; b++) {
        let amax = 0;
        for (let j = 0; j < QK8_0; j++) amax = Math.max(amax, Math.abs(data[b * QK8_0 + j]));
        const d = amax / 127;
        const id = d ? 1 / d : 0;
        view.setUint16(b * 34, f32ToF16(d), true);
        for (let j = 0; j < QK8_0; j++) view.setInt8(b * 34 + 2 + j, Math.round(data[b * QK8_0 + j] * id));
      }
      return out;
    }
    default:
      throw new Error(`writing ${typeName(type)} tensors is not supported`);
  }
}

export function decodeTensor(bytes: Uint8Array, type: number, n: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  switch (type) {
    case GgmlType.F32:
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    case GgmlType.F16:
      for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(i * 2, true));
      return out;
    case GgmlType.BF16:
      for (let i = 0; i < n; i++) out[i] = bf16ToF32(view.getUint16(i * 2, true));
      return out;
    case GgmlType.Q8_0:
      for (let b = 0; b < n / QK8_0; b++) {
        const d = f16ToF32(view.getUint16(b * 34, true));
        for (let j = 0; j < QK8_0; j++) out[b * QK8_0 + j] = d * view.getInt8(b * 34 + 2 + j);
      }
      return out;
    default:
      throw new Error(`reading ${typeName(type)} tensors is not supported`);
  }
}
