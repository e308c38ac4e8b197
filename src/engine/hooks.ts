// Hook points in the TransformerLens convention, mapped to llama.cpp graph tensors.
//   blocks.L.hook_resid_post = output of decoder block L          = tensor `l_out-L`
//   blocks.L.hook_resid_pre  = input of decoder block L           = `l_out-(L-1)`, and for L = 0
//                              the token-embedding rows (the GET_ROWS of `token_embd.weight`,
//                              before any architecture-specific scaling such as Gemma's)
// Layers count from 0, as in TransformerLens and in llama.cpp's tensor names.
import { ThinkwhenError } from '../errors.ts';

export type HookSite = 'resid_pre' | 'resid_post';

export interface HookPoint {
  layer: number;
  site: HookSite;
}

const HOOK_RE = /^blocks\.(\d+)\.hook_(resid_pre|resid_post)$/;

export function parseHook(hook: string | HookPoint): HookPoint {
  if (typeof hook !== 'string') return hook;
  const m = HOOK_RE.exec(hook);
  if (!m) {
    throw new ThinkwhenError(
      'BAD_HOOK',
      `unknown hook '${hook}'`,
      "use 'blocks.L.hook_resid_post' or 'blocks.L.hook_resid_pre' with L a layer index",
    );
  }
  return { layer: Number(m[1]), site: m[2] as HookSite };
}

export function hookName(p: HookPoint): string {
  return `blocks.${p.layer}.hook_${p.site}`;
}

/** The llama.cpp tensor behind a hook point; checks the layer against the model. */
export function hookTensor(hook: string | HookPoint, nLayer: number): string {
  const p = parseHook(hook);
  if (!Number.isInteger(p.layer) || p.layer < 0 || p.layer >= nLayer) {
    throw new ThinkwhenError(
      'LAYER_OUT_OF_RANGE',
      `layer ${p.layer} is out of range: this model has ${nLayer} layers (0..${nLayer - 1})`,
      `pick a layer between 0 and ${nLayer - 1}`,
    );
  }
  if (p.site === 'resid_post') return `l_out-${p.layer}`;
  return p.layer === 0 ? 'token_embd_rows' : `l_out-${p.layer - 1}`;
}

/** Rejects vectors of the wrong width or with NaN/Inf, naming the first bad entry. */
export function checkVector(v: Float32Array, nEmbd: number, what: string): void {
  if (!(v instanceof Float32Array)) {
    throw new ThinkwhenError('BAD_VECTOR', `${what} must be a Float32Array`);
  }
  if (v.length !== nEmbd) {
    throw new ThinkwhenError(
      'VECTOR_WIDTH',
      `${what} has ${v.length} values but the model's residual stream has ${nEmbd}`,
      'use a vector made for this model (same n_embd)',
    );
  }
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) {
      throw new ThinkwhenError(
        'VECTOR_NOT_FINITE',
        `${what} has ${v[i]} at index ${i}`,
        'recompute or clip the vector',
      );
    }
  }
}
