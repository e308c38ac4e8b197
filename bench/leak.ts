// Memory across context lifetimes: RSS before and after N cycles of create context → decode
// (with a capture + add hook, and without) → free, on a tiny model. A leak per cycle shows as
// growth proportional to N; the allocator's working set does not.
//
//   nice -n 15 node --import tsx bench/leak.ts [--cycles 8000] [--json]
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Model } from '../src/engine/index.ts';
import { TINY_QWEN2, writeTinyModel } from '../src/gguf/tiny-model.ts';

export interface LeakResult {
  cycles: number;
  hooks: boolean;
  /** RSS in MiB after a warm-up of cycles/10, and after all cycles */
  rssBeforeMiB: number;
  rssAfterMiB: number;
  /** (after − before) / before */
  growth: number;
}

async function cycle(model: Model, hooks: boolean, layer: number): Promise<void> {
  const ctx = model.createContext({ nCtx: 64, nBatch: 8, nSeqMax: 1, threads: 1 });
  try {
    const seq = ctx.sequence();
    const rows = [10, 11, 12, 13].map((token, i) => ({ token, seq, logits: i === 3 }));
    const v = new Float32Array(model.info.nEmbd).fill(0.01);
    await ctx.decode(
      rows,
      hooks ? [{ hook: `blocks.${layer}.hook_resid_post`, rows: 'all', add: v, capture: true }] : [],
    );
  } finally {
    ctx.free();
  }
}

function rssMiB(): number {
  globalThis.gc?.();
  return process.memoryUsage().rss / 2 ** 20;
}

/** Runs `cycles` create/decode/free cycles after a warm-up and measures RSS around them. */
export async function measureLeak(model: Model, cycles: number, hooks: boolean): Promise<LeakResult> {
  const layer = Math.floor(model.info.nLayer / 2);
  for (let i = 0; i < Math.max(20, cycles / 10); i++) await cycle(model, hooks, layer);
  const before = rssMiB();
  for (let i = 0; i < cycles; i++) await cycle(model, hooks, layer);
  const after = rssMiB();
  return {
    cycles,
    hooks,
    rssBeforeMiB: Math.round(before),
    rssAfterMiB: Math.round(after),
    growth: Number(((after - before) / before).toFixed(4)),
  };
}

/**
 * The tiny Qwen2-architecture test model with the real 151,936-token vocabulary (written once).
 * The leak needs the large vocabulary to show: with 379 tokens the old code stayed flat.
 */
export function tinyQwen2Path(): string {
  const dir = join(tmpdir(), 'thinkwhen-bench');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'tiny-qwen2.gguf');
  if (!existsSync(path)) writeTinyModel(path, TINY_QWEN2);
  return path;
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--cycles');
  const cycles = i >= 0 ? Number(process.argv[i + 1]) : 8000;
  if (!Number.isInteger(cycles) || cycles < 1) throw new Error(`--cycles: a positive integer was expected`);
  const model = await Model.load(tinyQwen2Path());
  const withHooks = await measureLeak(model, cycles, true);
  const without = await measureLeak(model, cycles, false);
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ withHooks, without }));
  } else {
    for (const r of [withHooks, without]) {
      console.log(
        `${r.hooks ? 'hook decode   ' : 'plain decode  '} ${r.cycles} cycles: RSS ${r.rssBeforeMiB} → ${r.rssAfterMiB} MiB (${(r.growth * 100).toFixed(1)} %)`,
      );
    }
  }
  model.free();
  process.exitCode = withHooks.growth <= 0.1 ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
