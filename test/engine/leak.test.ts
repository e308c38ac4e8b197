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

test('hook-decode contexts leave RSS flat: no steady growth over 4 blocks of 100 cycles', async () => {
  const model = await Model.load(tinyQwen2());
  // The leak grew steadily, ~17 MiB per 100 cycles on this model. Arenas and heaps of a fresh process
  // (and of a loaded machine) grow in occasional steps instead, so one block without growth is what
  // tells the two apart.
  await measureLeak(model, 100, true);
  const blocks = [];
  for (let i = 0; i < 4; i++) blocks.push(await measureLeak(model, 100, true));
  model.free();
  const grown = blocks.map((r) => r.rssAfterMiB - r.rssBeforeMiB);
  assert.ok(Math.min(...grown) < 6, `RSS grew in every block of 100 hook-decode cycles: ${grown.join(', ')} MiB`);
});
