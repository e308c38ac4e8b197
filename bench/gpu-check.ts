// GPU check (run by hand on a CUDA machine): backend, the steering self-test with every layer on
// the GPU, CPU/GPU logits parity, gradcheck on CUDA, and generation speed with and without a hook.
// Run: npm run build:cuda -- --arch 90 ; THINKWHEN_EXTRA_BACKENDS=<printed .so> node --import tsx bench/gpu-check.ts
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendInfo, generate, Model } from '../src/engine/index.ts';
import { QWEN25_05B_SHAPE, TINY_LLAMA, TINY_QWEN2, writeTinyModel } from '../src/gguf/tiny-model.ts';
import { runSelfTest } from '../src/steer/selftest.ts';
import { gradcheck, writeGradcheckModel } from '../src/train/gradcheck.ts';

const t0 = performance.now();
const out: Record<string, unknown> = {};
const log = (k: string, v: unknown) => {
  out[k] = v;
  console.log(k, JSON.stringify(v));
};
const dir = mkdtempSync(join(tmpdir(), 'gpu-'));
try {
  log('backend', backendInfo());
} catch (e) {
  log('extra-backend-error', String(e));
  delete process.env.THINKWHEN_EXTRA_BACKENDS;
  log('backend', backendInfo());
}
for (const [name, spec] of [
  ['qwen2', TINY_QWEN2],
  ['llama', TINY_LLAMA],
] as const) {
  const p = join(dir, `${name}.gguf`);
  writeTinyModel(p, spec);
  try {
    const gpu = await Model.load(p, { gpuLayers: 999 });
    log(`selftest-${name}`, await runSelfTest(gpu));
    const cpu = await Model.load(p, { gpuLayers: 0 });
    const toks = Array.from(gpu.tokenize('The quick brown fox jumps over the lazy dog again and again.'));
    const run = async (m: Model) => {
      const c = m.createContext({ nCtx: 128, nBatch: 64, nSeqMax: 1 });
      const seq = c.sequence();
      const r = await c.decode(
        toks.map((token) => ({ token, seq, logits: true })),
        [{ hook: 'blocks.1.hook_resid_post', rows: 'all', capture: true }],
      );
      c.free();
      return r;
    };
    const a = await run(gpu);
    const b = await run(cpu);
    let dl = 0;
    let dh = 0;
    a.logits.forEach((l, i) => {
      for (let j = 0; j < l.length; j++) dl = Math.max(dl, Math.abs(l[j] - b.logits[i][j]));
    });
    a.captures[0]!.forEach((h, i) => {
      for (let j = 0; j < h.length; j++) dh = Math.max(dh, Math.abs(h[j] - b.captures[0]![i][j]));
    });
    log(`parity-${name}`, { maxLogitDiff: dl, maxCapturedDiff: dh });
    gpu.free();
    cpu.free();
  } catch (e) {
    log(`error-${name}`, String(e));
  }
}
for (const arch of ['qwen2', 'llama'] as const) {
  try {
    const p = writeGradcheckModel(join(dir, `gc-${arch}.gguf`), arch);
    const r = await gradcheck(p, { device: 'gpu' });
    log(`gradcheck-gpu-${arch}`, { backend: r.backend, worstForward: r.worstForward, worstGradient: r.worstGradient });
  } catch (e) {
    log(`gradcheck-gpu-${arch}-error`, String(e));
  }
}
if (backendInfo().backend !== 'cpu' && performance.now() - t0 < 120_000) {
  try {
    const p = join(dir, 'q05.gguf');
    writeTinyModel(p, QWEN25_05B_SHAPE);
    const m = await Model.load(p, { gpuLayers: 999 });
    const ctx = m.createContext({ nCtx: 8192, nBatch: 512, nSeqMax: 32 });
    const v = new Float32Array(m.info.nEmbd).fill(0.01);
    const speed = async (n: number, hook: boolean) => {
      let first = 0;
      let count = 0;
      await generate(
        ctx,
        Array.from({ length: n }, (_, i) => ({ prompt: [100 + i, 200, 300, 400], maxTokens: 64, stopAtEog: false })),
        {
          hooks: hook
            ? [{ hook: 'blocks.12.hook_resid_post', add: () => v, capture: (r) => r.phase === 'generated' }]
            : [],
          onCapture: () => {},
          onToken: () => {
            if (count++ === n - 1) first = performance.now();
          },
        },
      );
      return ((count - n) / (performance.now() - first)) * 1000;
    };
    await speed(1, false);
    const res: Record<string, number> = {};
    for (const n of [1, 8, 32]) {
      const a = [];
      const b = [];
      for (let r = 0; r < 3; r++) {
        a.push(await speed(n, false));
        b.push(await speed(n, true));
      }
      const med = (x: number[]) => x.sort((p, q) => p - q)[1];
      res[`gen${n}`] = med(a);
      res[`gen${n}_hook`] = med(b);
    }
    log('speed-0.5B-f16-tok/s', res);
  } catch (e) {
    log('speed-error', String(e));
  }
}
log('elapsed_s', (performance.now() - t0) / 1000);
