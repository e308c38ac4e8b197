// Control vectors in the llama.cpp layout, shared by llama.cpp's cvector-generator, repeng and
// EasySteer: `general.architecture = "controlvector"`, `controlvector.model_hint`,
// `controlvector.layer_count`, and one F32 tensor `direction.{layer}` per layer.
// llama.cpp adds `direction.L` to the output of block L, i.e. blocks.L.hook_resid_post
// (it has no slot for layer 0).
import { ThinkwhenError } from '../errors.ts';
import { metaValue, readGguf, readTensor } from './read.ts';
import { GgmlType, type GgufValue, str, u32 } from './types.ts';
import { writeGguf } from './write.ts';

export interface ControlVector {
  modelHint: string;
  nEmbd: number;
  /** layer index -> direction (added at blocks.L.hook_resid_post) */
  directions: Map<number, Float32Array>;
}

export function readControlVector(path: string): ControlVector {
  const file = readGguf(path);
  const arch = metaValue(file, 'general.architecture');
  if (arch !== 'controlvector') {
    throw new ThinkwhenError(
      'NOT_CONTROL_VECTOR',
      `${path} is a GGUF of architecture '${String(arch)}', not a control vector`,
      'pass a file written by thinkwhen, llama.cpp cvector-generator, repeng or EasySteer',
    );
  }
  const directions = new Map<number, Float32Array>();
  let nEmbd = 0;
  for (const t of file.tensors) {
    const m = /^direction\.(\d+)$/.exec(t.name);
    if (!m) continue;
    if (t.shape.length !== 1)
      throw new ThinkwhenError('BAD_CONTROL_VECTOR', `${t.name} in ${path} is not 1-dimensional`);
    if (nEmbd && t.shape[0] !== nEmbd)
      throw new ThinkwhenError('BAD_CONTROL_VECTOR', `${path}: directions of different widths`);
    nEmbd = t.shape[0];
    directions.set(Number(m[1]), readTensor(file, t.name));
  }
  if (directions.size === 0) throw new ThinkwhenError('BAD_CONTROL_VECTOR', `${path} has no direction.N tensors`);
  return { modelHint: String(metaValue(file, 'controlvector.model_hint') ?? ''), nEmbd, directions };
}

export function writeControlVector(path: string, cv: ControlVector): void {
  for (const [layer, v] of cv.directions) {
    if (v.length !== cv.nEmbd)
      throw new ThinkwhenError('BAD_CONTROL_VECTOR', `direction.${layer} has ${v.length} values, expected ${cv.nEmbd}`);
    if (layer < 1)
      throw new ThinkwhenError(
        'BAD_CONTROL_VECTOR',
        'llama.cpp control vectors start at layer 1 (layer 0 has no slot)',
      );
  }
  const layers = [...cv.directions.keys()].sort((a, b) => a - b);
  const meta = new Map<string, GgufValue>([
    ['general.architecture', str('controlvector')],
    ['controlvector.model_hint', str(cv.modelHint)],
    ['controlvector.layer_count', u32(layers.length)],
  ]);
  writeGguf(
    path,
    meta,
    layers.map((l) => ({ name: `direction.${l}`, shape: [cv.nEmbd], type: GgmlType.F32, data: cv.directions.get(l)! })),
  );
}
