// Cost of residual hooks at the decode level: 4 sequences, one token each, on the random
// Qwen2.5-0.5B-shaped model written by bench/engine.ts; no hook, capture, add, and both at one
// layer, interleaved, medians. Run: node --import tsx bench/hooks.ts [--steps 40]
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type HookRequest, Model } from '../src/engine/index.ts';

const { values } = parseArgs({
  options: { steps: { type: 'string', default: '40' }, threads: { type: 'string', default: '2' } },
});
const model = await Model.load(join(homedir(), '.cache', 'thinkwhen', 'bench', 'qwen2.5-0.5b-shape-f16.gguf'), {
  gpuLayers: 0,
});
const ctx = model.createContext({ nCtx: 2048, nBatch: 512, nSeqMax: 4, threads: Number(values.threads) });
const seqs = [0, 1, 2, 3].map(() => ctx.sequence());
for (const seq of seqs) await ctx.decode(Array.from({ length: 32 }, (_, i) => ({ token: 100 + i, seq })));
const hook = 'blocks.12.hook_resid_post';
const v = new Float32Array(model.info.nEmbd).fill(0.01);
const variants: Record<string, HookRequest[]> = {
  none: [],
  capture: [{ hook, rows: 'all', capture: true }],
  add: [{ hook, rows: 'all', add: v }],
  both: [
    { hook, rows: 'all', add: v },
    { hook, rows: 'all', capture: true },
  ],
};
const times: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let it = 0; it < Number(values.steps); it++) {
  for (const [k, hooks] of Object.entries(variants)) {
    const pos = seqs[0].length;
    const t = performance.now();
    await ctx.decode(
      seqs.map((seq) => ({ token: 500 + it, seq, pos, logits: true })),
      hooks,
    );
    times[k].push(performance.now() - t);
    for (const seq of seqs) seq.truncate(pos);
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log('| hooks at blocks.12 (4 sequences) | ms per decode (median) | × no hook |\n|---|---|---|');
for (const k of Object.keys(times))
  console.log(`| ${k} | ${med(times[k]).toFixed(2)} | ${(med(times[k]) / med(times.none)).toFixed(3)} |`);
