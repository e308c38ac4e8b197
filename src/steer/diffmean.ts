// Difference-of-means vectors (method.md §8, the predecessor paper's recipe), gradient-free:
// the base model reads the same examples the optimised vectors train on; for each example the
// residual at the apply site is averaged over the target's rows shifted by one ([start−1, end−1),
// as the predecessor's code does); mean[latent] = the mean of those example means; overall = the
// mean over the whole thinking spans of the bias examples (one mean per trace, then their mean);
// vector = mean[latent] − overall, rescaled to the norm of overall. No bias vector.
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import type { TextExample } from './examples.ts';
import { type PassSequence, rangeMeans } from './passes.ts';
import type { ExampleSets, TrainSetInput, TrainSetOptions } from './train.ts';
import { latentFile, type VectorSetManifest, vectorNorm, writeManifest, writeVectorFile } from './vector-set.ts';

function sequences(model: Model, examples: readonly TextExample[], addSpecial: boolean): PassSequence[] {
  return examples.map((e) => {
    const prompt = model.tokenize(e.prompt, { addSpecial });
    const target = model.tokenize(e.target, { addSpecial });
    const tokens = Int32Array.from([...prompt, ...target]);
    return { tokens, captureRows: { start: prompt.length - 1, end: tokens.length - 1 } };
  });
}

function meanOf(rows: Array<Float64Array | null>, n: number): Float64Array | null {
  const acc = new Float64Array(n);
  let k = 0;
  for (const r of rows) {
    if (!r) continue;
    for (let i = 0; i < n; i++) acc[i] += r[i];
    k++;
  }
  return k ? acc.map((x) => x / k) : null;
}

export async function diffMeanVectors(
  input: TrainSetInput,
  manifest: VectorSetManifest,
  ex: ExampleSets,
  o: TrainSetOptions,
): Promise<void> {
  const s = input.settings;
  const log = o.onProgress ?? (() => {});
  const model = await Model.load(input.modelPath);
  const n = model.info.nEmbd;
  const hook = manifest.apply_site;
  try {
    if (ex.bias.length === 0) {
      throw new ThinkwhenError(
        'NO_EXAMPLES',
        `difference of means needs whole thinking traces of ≥ ${s.bias_min_words} words for the overall mean; none qualified`,
        'lower --bias-min-words or pass longer traces',
      );
    }
    const t0 = performance.now();
    const overall = meanOf(
      await rangeMeans(model, sequences(model, ex.bias, s.add_special), { hook, threads: o.threads }),
      n,
    )!;
    const scale = vectorNorm(overall);
    manifest.overall_norm = scale;
    for (const latent of ex.latents) {
      if (manifest.categories.some((c) => c.latent === latent)) continue;
      const train = ex.split(latent, 'train');
      const mean = meanOf(
        await rangeMeans(model, sequences(model, train, s.add_special), { hook, threads: o.threads }),
        n,
      );
      if (!mean) continue;
      const d = Float32Array.from(mean, (x, i) => x - overall[i]);
      if (!(vectorNorm(d) > 0)) {
        manifest.skipped.push({
          latent,
          title: ex.titles.get(latent) ?? `latent ${latent}`,
          reason: 'its mean equals the overall mean',
        });
        continue;
      }
      const k = scale / vectorNorm(d);
      for (let i = 0; i < n; i++) d[i] *= k;
      const file = writeVectorFile(input.out, latentFile(latent), manifest, d);
      manifest.categories.push({
        latent,
        title: ex.titles.get(latent) ?? `latent ${latent}`,
        file,
        norm: vectorNorm(d),
        n_train: train.length,
        n_heldout: ex.split(latent, 'heldout').length,
        loss_curve: [],
      });
      manifest.categories.sort((a, b) => a.latent - b.latent);
      writeManifest(input.out, manifest);
      log(
        `vectors train: latent ${latent}: difference of means over ${train.length} examples, |v| ${scale.toFixed(3)}`,
      );
    }
    manifest.seconds = (performance.now() - t0) / 1000;
  } finally {
    model.free();
  }
}
