// A vector set as `thinkwhen vectors` writes one (manifest + control-vector GGUFs), with random vectors
// for the organism's base model: for tests that need a set on disk without training one.
import { mkdirSync } from 'node:fs';
import { randomVectors } from '../../src/hybrid/synthetic.ts';
import {
  defaultSites,
  latentFile,
  modelRef,
  VECTOR_SET_FORMAT,
  type VectorSetManifest,
  vectorNorm,
  writeManifest,
  writeVectorFile,
} from '../../src/steer/vector-set.ts';

/** Writes the set into `out`: a bias and one vector per latent of a 6-latent SAE at layer 2, minus `skip`. */
export async function writeRandomVectorSet(
  out: string,
  o: { baseModel: string; thinkingModel: string; saePath: string; skip?: number[] },
): Promise<string> {
  const skip = o.skip ?? [];
  mkdirSync(out, { recursive: true });
  const v = randomVectors(128, 2, 6, { biasNorm: 2, norm: 8, skip });
  const manifest: VectorSetManifest = {
    format: VECTOR_SET_FORMAT,
    method: 'diffmean',
    model: await modelRef(o.baseModel),
    layer: 2,
    ...defaultSites(2),
    bias: null,
    categories: [],
    skipped: skip.map((latent) => ({ latent, title: `latent ${latent}`, reason: 'too few examples' })),
    sae: { sae: o.saePath, layer: 2, k: 6, thinking: o.thinkingModel },
  };
  manifest.bias = {
    file: writeVectorFile(out, 'bias.gguf', manifest, v.bias!),
    norm: vectorNorm(v.bias!),
    n_train: 0,
    loss_curve: [],
  };
  for (const [latent, vec] of v.vectors) {
    manifest.categories.push({
      latent,
      title: `category ${latent}`,
      file: writeVectorFile(out, latentFile(latent), manifest, vec),
      norm: vectorNorm(vec),
      n_train: 0,
      n_heldout: 0,
      loss_curve: [],
    });
  }
  writeManifest(out, manifest);
  return out;
}
