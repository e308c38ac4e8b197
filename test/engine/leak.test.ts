// A hook decode used to leave memory behind in every context (the eval callback allocated
// strings on the decode thread, fragmenting its malloc arena): ~35 MiB per 200 cycles of
// create → hook decode → free on this model. bench/leak.ts runs the full 8,000 cycles.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { measureLeak } from '../../bench/leak.ts';
import { Model } from '../../src/engine/index.ts';
import { tinyQwen2 } from '../helpers/models.ts';

setFlagsFromString('--expose-gc');
globalThis.gc ??= runInNewContext('gc');

test('200 contexts with a capture + add hook decode leave RSS flat', async () => {
  const model = await Model.load(tinyQwen2());
  const r = await measureLeak(model, 200, true);
  model.free();
  const grown = r.rssAfterMiB - r.rssBeforeMiB;
  assert.ok(grown < 12, `RSS ${r.rssBeforeMiB} → ${r.rssAfterMiB} MiB over ${r.cycles} hook-decode cycles`);
});
