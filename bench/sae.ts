// SAE training benchmark: N sentences × D dims of synthetic clustered activations (centred, L2-normalised
// like the real features), K latents, trained to early stop. Prints wall time, epochs, time per epoch.
// Usage: node --import tsx bench/sae.ts [--n 50000] [--dim 1536] [--k 15] [--clusters 30] [--noise 1.0]
//   [--threads 2] [--max-epochs 300]
import { parseArgs } from 'node:util';
import { Rng } from '../src/rng.ts';
import { adjustedRandIndex } from '../src/taxonomy/metrics.ts';
import { centerAndNormalize } from '../src/taxonomy/preprocess.ts';
import { trainTopKSae } from '../src/taxonomy/sae.ts';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '50000' },
    dim: { type: 'string', default: '1536' },
    k: { type: 'string', default: '15' },
    clusters: { type: 'string', default: '30' },
    noise: { type: 'string', default: '1.0' },
    threads: { type: 'string', default: '2' },
    'max-epochs': { type: 'string', default: '300' },
    seed: { type: 'string', default: '1' },
  },
});
const n = Number(values.n);
const dim = Number(values.dim);
const latents = Number(values.k);
const clusters = Number(values.clusters);
const rng = new Rng(Number(values.seed));
const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());

// Planted structure: each sentence = its cluster's direction × a random scale + isotropic noise.
const centres = Float32Array.from({ length: clusters * dim }, gauss);
const truth = new Int32Array(n);
const x = new Float32Array(n * dim);
const noise = Number(values.noise);
for (let i = 0; i < n; i++) {
  const c = rng.int(clusters);
  truth[i] = c;
  const s = 0.5 + rng.next();
  for (let d = 0; d < dim; d++) x[i * dim + d] = s * centres[c * dim + d] + noise * gauss() * 1.0;
}
const mean = new Float64Array(dim);
for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) mean[d] += x[i * dim + d] / n;
centerAndNormalize(x, dim, mean);

const t0 = performance.now();
let lastEpochAt = t0;
const sae = await trainTopKSae(x, dim, {
  latents,
  threads: Number(values.threads),
  maxEpochs: Number(values['max-epochs']),
  seed: 7,
  onEpoch: (epoch, loss) => {
    const now = performance.now();
    if (epoch % 10 === 0 || epoch === 1) {
      console.log(`epoch ${epoch} loss ${loss.toFixed(5)} (${((now - lastEpochAt) / 1000).toFixed(2)} s/epoch)`);
    }
    lastEpochAt = now;
  },
});
const wall = (performance.now() - t0) / 1000;
const ari = adjustedRandIndex(truth, sae.assign(x));
console.log(
  `n=${n} dim=${dim} K=${latents} threads=${values.threads}: wall ${wall.toFixed(1)} s, epochs ${sae.config.epochs}` +
    ` (early stop: ${sae.config.stoppedEarly}), ${(wall / sae.config.epochs).toFixed(2)} s/epoch,` +
    ` best FVU ${sae.config.bestLoss.toFixed(4)}, ARI vs planted ${ari.toFixed(3)}`,
);
