// Cost of the non-finite logits check (src/engine/non-finite.ts) next to the decode it guards:
// the full scan done on a context's first decode with logits, and the one-value-per-row check of
// every later decode. Tiny Qwen2-architecture model with the real 151,936-token vocabulary: its
// decode is mostly the output projection, so the ratios are upper bounds for real models.
//
//   nice -n 15 node --import tsx bench/non-finite.ts [--reps 40]
import { Model } from '../src/engine/index.ts';
import { checkLogitsFinite } from '../src/engine/non-finite.ts';
import { tinyQwen2Path } from './leak.ts';

const i = process.argv.indexOf('--reps');
const reps = i >= 0 ? Number(process.argv[i + 1]) : 40;
const model = await Model.load(tinyQwen2Path());
const ctx = model.createContext({ nCtx: 4096, nBatch: 8, nSeqMax: 1 });
const seq = ctx.sequence();
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const decode: number[] = [];
const full: number[] = [];
const perRow: number[] = [];
for (let r = 0; r < reps; r++) {
  let t0 = performance.now();
  const out = await ctx.decode([{ token: 100 + r, seq, logits: true }]);
  decode.push(performance.now() - t0);
  const logits = out.logits[0];
  t0 = performance.now();
  checkLogitsFinite(logits, model.info.nVocab, true, false);
  full.push(performance.now() - t0);
  t0 = performance.now();
  checkLogitsFinite(logits, model.info.nVocab, false, false);
  perRow.push(performance.now() - t0);
}
const d = median(decode);
console.log(`nVocab ${model.info.nVocab}, ${reps} decodes of one token, medians:`);
console.log(`  decode                ${d.toFixed(3)} ms`);
console.log(
  `  full scan (1st decode) ${median(full).toFixed(4)} ms = ${((median(full) / d) * 100).toFixed(2)} % of a decode`,
);
console.log(
  `  one value per row     ${median(perRow).toFixed(4)} ms = ${((median(perRow) / d) * 100).toFixed(3)} % of a decode`,
);
ctx.free();
model.free();
