// Control vectors in the llama.cpp layout, shared by llama.cpp's cvector-generator, repeng and
// EasySteer: `general.architecture = "controlvector"` (EasySteer's vLLM loader also writes
// "steervector"), `controlvector.model_hint`, `controlvector.layer_count`, and one tensor
// `direction.{layer}` per layer. All three add `direction.L` to the output of decoder block L,
// i.e. blocks.L.hook_resid_post. llama.cpp's loader (common_control_vector_load) only takes F32
// 1-D tensors with L ≥ 1, so files written here obey that; files read here may also hold F16/BF16
// tensors or a direction.0 (EasySteer), which the hook path can apply and llama.cpp cannot.
import { ThinkwhenError } from '../errors.ts';
import { metaValue, readGguf, readTensor } from './read.ts';
import { GgmlType, type GgufValue, str, u32 } from './types.ts';
import { writeGguf } from './write.ts';

export interface ControlVector {
  modelHint: string;
  nEmbd: number;
  /** layer index -> direction (added at blocks.L.hook_resid_post) */
  directions: Map<number, Float32Array>;
  /** `controlvector.method` when the writer recorded one (EasySteer: 'diffmean', 'pca', ...) */
  method?: string;
}

const ARCHITECTURES = ['controlvector', 'steervector'];

export function readControlVector(path: string): ControlVector {
  const file = readGguf(path);
  const arch = metaValue(file, 'general.architecture');
  if (!ARCHITECTURES.includes(String(arch))) {
    throw new ThinkwhenError(
      'NOT_CONTROL_VECTOR',
      `${path} is a GGUF of architecture '${String(arch)}', not a control vector`,
      'pass a file written by thinkwhen, llama.cpp cvector-generator, repeng or EasySteer',
    );
  }
  const directions = new Map<number, Float32Array>();
  let nEmbd = 0;
  for (const t of file.tensors) {
    if (!t.name.startsWith('direction.')) continue;
    const m = /^direction\.(\d+)$/.exec(t.name);
    if (!m) throw new ThinkwhenError('BAD_CONTROL_VECTOR', `${path}: tensor name ${t.name} is not direction.<layer>`);
    const layer = Number(m[1]);
    if (directions.has(layer))
      throw new ThinkwhenError('BAD_CONTROL_VECTOR', `${path} holds ${t.name} twice: which one is meant is ambiguous`);
    if (t.shape.length !== 1)
      throw new ThinkwhenError('BAD_CONTROL_VECTOR', `${t.name} in ${path} is not 1-dimensional`);
    if (nEmbd && t.shape[0] !== nEmbd)
      throw new ThinkwhenError('BAD_CONTROL_VECTOR', `${path}: directions of different widths`);
    nEmbd = t.shape[0];
    const data = readTensor(file, t.name);
    const bad = data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) {
      throw new ThinkwhenError(
        'BAD_CONTROL_VECTOR',
        `${path}: ${t.name}[${bad}] is ${data[bad]} (not a finite number)`,
        'retrain or re-export the vector',
      );
    }
    directions.set(layer, data);
  }
  if (directions.size === 0) throw new ThinkwhenError('BAD_CONTROL_VECTOR', `${path} has no direction.N tensors`);
  const method = metaValue(file, 'controlvector.method');
  return {
    modelHint: String(metaValue(file, 'controlvector.model_hint') ?? ''),
    nEmbd,
    directions,
    ...(method === undefined ? {} : { method: String(method) }),
  };
}

/** Writes a file llama.cpp's `--control-vector` loads (F32, layers ≥ 1); atomic. */
export function writeControlVector(path: string, cv: ControlVector): void {
  for (const [layer, v] of cv.directions) {
    if (v.length !== cv.nEmbd)
      throw new ThinkwhenError('BAD_CONTROL_VECTOR', `direction.${layer} has ${v.length} values, expected ${cv.nEmbd}`);
    if (layer < 1)
      throw new ThinkwhenError(
        'BAD_CONTROL_VECTOR',
        'llama.cpp control vectors start at layer 1 (layer 0 has no slot)',
      );
    const bad = v.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0)
      throw new ThinkwhenError('BAD_CONTROL_VECTOR', `direction.${layer}[${bad}] is ${v[bad]} (not a finite number)`);
  }
  const layers = [...cv.directions.keys()].sort((a, b) => a - b);
  const meta = new Map<string, GgufValue>([
    ['general.architecture', str('controlvector')],
    ['controlvector.model_hint', str(cv.modelHint)],
    ['controlvector.layer_count', u32(layers.length)],
  ]);
  if (cv.method !== undefined) meta.set('controlvector.method', str(cv.method));
  writeGguf(
    path,
    meta,
    layers.map((l) => ({ name: `direction.${l}`, shape: [cv.nEmbd], type: GgmlType.F32, data: cv.directions.get(l)! })),
  );
}
