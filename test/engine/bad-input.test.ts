// Each bad input gives a typed error that names the problem and the fix, and the process lives on.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generate, Model } from '../../src/engine/index.ts';
import { ThinkwhenError } from '../../src/errors.ts';
import { writeTinyBert } from '../helpers/bert.ts';
import { tinyLlama } from '../helpers/models.ts';

const dir = mkdtempSync(join(tmpdir(), 'tw-bad-'));
const model = await Model.load(tinyLlama());

function isError(code: string, ...patterns: RegExp[]) {
  return (e: unknown) => {
    assert.ok(e instanceof ThinkwhenError, `expected ThinkwhenError, got ${e}`);
    assert.equal(e.code, code);
    for (const p of patterns) assert.match(e.message, p);
    assert.ok(e.fix || /fix:/.test(e.message) || code === 'TRUNCATED_GGUF', 'names a fix');
    return true;
  };
}

/** After every failure the engine must still work. */
async function stillWorks() {
  const ctx = model.createContext({ nCtx: 32, nBatch: 8, nSeqMax: 1 });
  const out = await ctx.decode([{ token: 10, seq: ctx.sequence(), logits: true }]);
  assert.equal(out.logits[0].length, model.info.nVocab);
  ctx.free();
}

test('a path that does not exist', async () => {
  await assert.rejects(Model.load(join(dir, 'nope.gguf')), isError('MODEL_NOT_FOUND', /not found/));
  await stillWorks();
});

test('a file that is not a GGUF', async () => {
  const p = join(dir, 'weights.safetensors');
  writeFileSync(p, '{"__metadata__": {}}');
  await assert.rejects(Model.load(p), isError('NOT_GGUF', /not a GGUF/, /convert/));
  await stillWorks();
});

test('a truncated GGUF', async () => {
  const p = join(dir, 'cut.gguf');
  const bytes = readFileSync(tinyLlama());
  writeFileSync(p, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await assert.rejects(Model.load(p), isError('TRUNCATED_GGUF', /truncated/, /ends at byte/));
  await stillWorks();
});

test('an architecture without l_out hooks', async () => {
  const p = join(dir, 'bert.gguf');
  writeTinyBert(p);
  const bert = await Model.load(p);
  const ctx = bert.createContext({ nCtx: 64, nBatch: 64, nSeqMax: 1 });
  const toks = Array.from(bert.tokenize('hello'));
  const seq = ctx.sequence();
  await assert.rejects(
    ctx.decode(
      toks.map((token) => ({ token, seq, logits: true })),
      [{ hook: 'blocks.0.hook_resid_post', rows: 'all', capture: true }],
    ),
    isError('HOOK_UNSUPPORTED', /bert/, /l_out-0/),
  );
  ctx.free();
  bert.free();
  await stillWorks();
});

test('a layer out of range, a malformed hook name', async () => {
  const ctx = model.createContext({ nCtx: 32, nBatch: 8, nSeqMax: 1 });
  const seq = ctx.sequence();
  const rows = [{ token: 10, seq }];
  await assert.rejects(
    ctx.decode(rows, [{ hook: 'blocks.4.hook_resid_post', rows: 'all', capture: true }]),
    isError('LAYER_OUT_OF_RANGE', /4 layers/, /0 and 3/),
  );
  await assert.rejects(
    ctx.decode(rows, [{ hook: 'blocks.-1.hook_resid_pre', rows: 'all', capture: true }]),
    isError('BAD_HOOK', /unknown hook/),
  );
  await assert.rejects(ctx.decode(rows, [{ hook: 'layers.2.mlp', rows: 'all', capture: true }]), isError('BAD_HOOK'));
  assert.throws(
    () => ctx.setControlVector(new Map([[0, new Float32Array(64)]])),
    isError('LAYER_OUT_OF_RANGE', /1\.\.3/),
  );
  await stillWorks();
  ctx.free();
});

test('vectors of the wrong width, with NaN or with Inf', async () => {
  const ctx = model.createContext({ nCtx: 32, nBatch: 8, nSeqMax: 1 });
  const seq = ctx.sequence();
  const rows = [{ token: 10, seq }];
  const hook = 'blocks.1.hook_resid_post';
  await assert.rejects(
    ctx.decode(rows, [{ hook, rows: 'all', add: new Float32Array(63) }]),
    isError('VECTOR_WIDTH', /63 values/, /64/),
  );
  const nan = new Float32Array(64);
  nan[17] = Number.NaN;
  await assert.rejects(
    ctx.decode(rows, [{ hook, rows: 'all', add: nan }]),
    isError('VECTOR_NOT_FINITE', /NaN at index 17/),
  );
  const inf = new Float32Array(64);
  inf[3] = Number.POSITIVE_INFINITY;
  assert.throws(() => ctx.setControlVector(new Map([[2, inf]])), isError('VECTOR_NOT_FINITE', /Infinity at index 3/));
  assert.equal(seq.length, 0, 'a refused decode changes nothing');
  // A finite vector with a scale that is not finite, or whose product overflows F32, would steer
  // every token with NaN/Inf: refused like a non-finite vector.
  const ones = new Float32Array(64).fill(1);
  for (const scale of [Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => ctx.setControlVector(new Map([[2, ones]]), scale), isError('BAD_ARGUMENT', /scale/));
  }
  assert.throws(
    () => ctx.setControlVector(new Map([[2, ones.map(() => 1e30)]]), 1e10),
    isError('VECTOR_NOT_FINITE', /direction\.2 × scale 10000000000 has Infinity/),
  );
  await stillWorks();
  ctx.free();
});

test('token ids that are not ids of the model: BAD_TOKEN, not a truncated id or a blamed file', () => {
  for (const bad of [2.5, -1, model.info.nVocab, Number.NaN]) {
    assert.throws(() => model.tokenBytes(bad), isError('BAD_TOKEN', /outside the vocabulary/), String(bad));
  }
  assert.throws(() => model.detokenize([10, 1e9]), isError('BAD_TOKEN', /1000000000/));
  assert.equal(model.detokenize([10]), Buffer.from(model.tokenBytes(10)).toString('utf8'));
});

test('context overflow', async () => {
  const ctx = model.createContext({ nCtx: 16, nBatch: 16, nSeqMax: 1 });
  const seq = ctx.sequence();
  const long = Array.from({ length: 12 }, () => ({ token: 10, seq }));
  await ctx.decode(long);
  await assert.rejects(ctx.decode(long.slice(0, 8)), isError('CONTEXT_OVERFLOW', /position 16/, /16 tokens/));
  seq.dispose();
  await assert.rejects(generate(ctx, [{ prompt: 'abcdefghij', maxTokens: 50 }]), isError('CONTEXT_OVERFLOW'));
  ctx.free();
  await stillWorks();
});

test('more sequences than the context holds; a disposed sequence', async () => {
  const ctx = model.createContext({ nCtx: 64, nBatch: 16, nSeqMax: 2 });
  const held = ctx.sequence();
  // generate() takes free sequences, so it runs beside the holder; a third claimant finds none.
  const first = generate(ctx, [{ prompt: 'ab', maxTokens: 3 }]);
  await assert.rejects(generate(ctx, [{ prompt: 'ab', maxTokens: 3 }]), isError('NO_FREE_SEQUENCE', /all 2 sequences/));
  assert.equal((await first)[0].tokens.length, 3);
  assert.equal(ctx.sequences, 1, 'generate() gave its sequence back');
  held.dispose();
  held.dispose(); // idempotent
  assert.throws(() => held.truncate(0), isError('SEQUENCE_DISPOSED', /not live/));
  await assert.rejects(ctx.decode([{ token: 10, seq: held }]), isError('SEQUENCE_DISPOSED'));
  const other = model.createContext({ nCtx: 16, nBatch: 8, nSeqMax: 1 });
  await assert.rejects(
    other.decode([{ token: 10, seq: ctx.sequence() }]),
    isError('SEQUENCE_DISPOSED', /another context/),
  );
  other.free();
  ctx.free();
});

test('bad positions and context options are typed errors', async () => {
  const ctx = model.createContext({ nCtx: 32, nBatch: 8, nSeqMax: 1 });
  const seq = ctx.sequence();
  await assert.rejects(ctx.decode([{ token: 10, seq, pos: 1.5 }]), isError('BAD_POSITION', /1\.5/));
  await assert.rejects(ctx.decode([{ token: 10, seq, pos: -1 }]), isError('BAD_POSITION'));
  assert.throws(() => seq.truncate(Number.NaN), isError('BAD_POSITION'));
  assert.equal(seq.length, 0);
  ctx.free();
  for (const bad of [{ nSeqMax: 0 }, { nSeqMax: 257 }, { nCtx: Number.NaN }, { nBatch: 2.5 }, { threads: 0 }]) {
    assert.throws(() => model.createContext(bad), isError('BAD_ARGUMENT', /integer in 1\.\./), JSON.stringify(bad));
  }
  await stillWorks();
});

test('Model.free() is refused while a context lives; free() is immediate', async () => {
  const m = await Model.load(tinyLlama());
  const ctx = m.createContext({ nCtx: 32, nBatch: 8, nSeqMax: 2 });
  assert.throws(() => m.free(), isError('MODEL_IN_USE', /1 live context/));
  const held = ctx.sequence();
  const out = await ctx.decode([{ token: 10, seq: held, logits: true }]);
  assert.equal(out.logits[0].length, m.info.nVocab, 'the context still works after the refused free');
  // A decode still queued when free() is called is refused, not run on freed memory.
  const queued = ctx.decode([{ token: 11, seq: ctx.sequence(), logits: true }]);
  ctx.free();
  await assert.rejects(queued, isError('CONTEXT_FREED'));
  assert.throws(() => ctx.sequence(), isError('CONTEXT_FREED'));
  await assert.rejects(ctx.decode([{ token: 10, seq: held }]), isError('CONTEXT_FREED'));
  m.free();
  assert.throws(() => m.tokenize('a'), isError('MODEL_FREED'));
});

test('contexts freed in a synchronous loop do not pile up', async () => {
  const before = process.memoryUsage().rss;
  for (let i = 0; i < 300; i++) model.createContext({ nCtx: 512, nBatch: 8, nSeqMax: 1 }).free();
  const grown = (process.memoryUsage().rss - before) / 2 ** 20;
  // Each live context holds a 512-cell KV cache plus compute buffers; 300 alive at once would be far more.
  assert.ok(grown < 100, `RSS grew ${grown.toFixed(0)} MiB over 300 create/free cycles`);
});
