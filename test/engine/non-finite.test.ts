// Files that load but compute NaN, and steering that overflows the residual stream, fail with
// NON_FINITE_LOGITS naming the likely cause, instead of sampling from noise.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Model } from '../../src/engine/index.ts';
import { ThinkwhenError } from '../../src/errors.ts';
import { encodeGgufParts, readGgufParts } from '../../src/gguf/hostile.ts';
import { tinyLlama } from '../helpers/models.ts';

const dir = mkdtempSync(join(tmpdir(), 'tw-nan-'));

function isNonFinite(...patterns: RegExp[]) {
  return (e: unknown) => {
    assert.ok(e instanceof ThinkwhenError, `expected ThinkwhenError, got ${e}`);
    assert.equal(e.code, 'NON_FINITE_LOGITS');
    for (const p of patterns) assert.match(e.message, p);
    assert.ok(e.fix);
    return true;
  };
}

test('a NaN in one row of the output matrix is found on the first decode (full scan)', async () => {
  const parts = readGgufParts(tinyLlama());
  const out = parts.tensors.find((t) => t.name === 'output.weight')!;
  const nEmbd = out.shape[0];
  const data = Buffer.from(parts.data);
  data.writeFloatLE(Number.NaN, out.offset + 7 * nEmbd * 4 + 5 * 4); // token 7's row only
  parts.data = data;
  const path = join(dir, 'nan-output-row.gguf');
  writeFileSync(path, encodeGgufParts(parts));
  const model = await Model.load(path);
  const ctx = model.createContext({ nCtx: 32, nBatch: 8, nSeqMax: 1 });
  const seq = ctx.sequence();
  await assert.rejects(
    ctx.decode([{ token: 10, seq, logits: true }]),
    isNonFinite(/NaN for token 7 in output row 0/, /model file/),
  );
  ctx.free();
  model.free();
});

test('steering that overflows the residual stream names the hook vectors', async () => {
  const model = await Model.load(tinyLlama());
  const ctx = model.createContext({ nCtx: 32, nBatch: 8, nSeqMax: 1 });
  const seq = ctx.sequence();
  const huge = new Float32Array(model.info.nEmbd).fill(3e38); // finite, but two of them overflow float32
  const ok = await ctx.decode([{ token: 10, seq, logits: true }]);
  assert.ok(Number.isFinite(ok.logits[0][0]), 'a plain decode is finite');
  await assert.rejects(
    ctx.decode(
      [{ token: 11, seq, logits: true }],
      [
        { hook: 'blocks.1.hook_resid_post', rows: 'all', add: huge },
        { hook: 'blocks.2.hook_resid_post', rows: 'all', add: huge },
      ],
    ),
    isNonFinite(/hook vectors/),
  );
  ctx.free();
  model.free();
});
