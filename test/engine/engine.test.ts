import assert from 'node:assert/strict';
import { test } from 'node:test';
import { argmax, createSampler, generate, Model } from '../../src/engine/index.ts';
import { readGguf, readTensor } from '../../src/gguf/index.ts';
import { tinyLlama, tinyQwen2 } from '../helpers/models.ts';

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const same = (a: Float32Array, b: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const qwen = await Model.load(tinyQwen2());
const llama = await Model.load(tinyLlama());

test('metadata of both architectures', () => {
  assert.equal(qwen.info.arch, 'qwen2');
  assert.equal(qwen.info.nLayer, 4);
  assert.equal(qwen.info.nEmbd, 64);
  assert.equal(qwen.info.nVocab, 151936);
  assert.equal(qwen.info.eos, 151643);
  assert.match(qwen.info.chatTemplate ?? '', /im_start/);
  assert.equal(llama.info.arch, 'llama');
  assert.equal(llama.info.nVocab, 379);
});

test('tokenizer: known Qwen2 ids, detokenize round trip, character offsets', () => {
  assert.deepEqual(Array.from(qwen.tokenize('Hello world')), [9707, 1879]);
  for (const m of [qwen, llama]) {
    for (const text of ['Hello world, 3.14!', 'Wait — é😀 ok.\nNext line', '  two  spaces', '<|im_start|>user\nhi']) {
      const { tokens, offsets } = m.tokenizeWithOffsets(text);
      assert.equal(m.detokenize(tokens), text);
      assert.equal(offsets.length, tokens.length);
      assert.equal(offsets[0][0], 0);
      assert.equal(offsets.at(-1)![1], text.length);
      for (let i = 1; i < offsets.length; i++)
        assert.ok(offsets[i][0] >= offsets[i - 1][0] && offsets[i][0] <= offsets[i - 1][1]);
      // Tokens that hold whole characters spell the text exactly.
      const whole = offsets.filter((o, i) => i === 0 || o[0] === offsets[i - 1][1]);
      assert.ok(whole.length >= tokens.length / 2);
    }
  }
  const { offsets } = qwen.tokenizeWithOffsets('<|im_start|>user');
  assert.deepEqual(offsets[0], [0, 12], 'a special token spans its text');
});

test('chat template renders the GGUF template', () => {
  const s = llama.applyChatTemplate([{ role: 'user', content: 'Hi' }]);
  assert.equal(s, '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
});

test('batched decode: sequences in one batch match separate decodes, logits deterministic', async () => {
  const ctx = qwen.createContext({ nCtx: 256, nBatch: 64, nSeqMax: 2 });
  const a = Array.from(qwen.tokenize('one two three four'));
  const b = Array.from(qwen.tokenize('five six seven'));
  const s0 = ctx.sequence();
  const solo = await ctx.decode(a.map((token) => ({ token, seq: s0, logits: true })));
  s0.clear();
  const s1 = ctx.sequence();
  const both = await ctx.decode([
    ...a.map((token) => ({ token, seq: s0, logits: true })),
    ...b.map((token) => ({ token, seq: s1, logits: true })),
  ]);
  assert.equal(both.logits.length, a.length + b.length);
  for (let i = 0; i < a.length; i++) assert.ok(maxDiff(solo.logits[i], both.logits[i]) < 1e-4);
  assert.deepEqual(both.logitRows.slice(0, 3), [0, 1, 2]);
  ctx.free();
});

test('positions: prefill then step-by-step equals one pass; generated tokens continue the sequence', async () => {
  const ctx = llama.createContext({ nCtx: 128, nBatch: 32, nSeqMax: 2 });
  const toks = Array.from(llama.tokenize('abcdefgh'));
  const seq = ctx.sequence();
  const full = await ctx.decode(
    toks.map((token) => ({ token, seq, logits: true })),
    [{ hook: 'blocks.1.hook_resid_post', rows: 'all', capture: true }],
  );
  seq.clear();
  assert.equal(seq.length, 0);
  await ctx.decode(toks.slice(0, 5).map((token) => ({ token, seq })));
  assert.equal(seq.length, 5);
  for (let p = 5; p < toks.length; p++) {
    const out = await ctx.decode(
      [{ token: toks[p], seq, logits: true }],
      [{ hook: 'blocks.1.hook_resid_post', rows: [0], capture: true }],
    );
    assert.ok(maxDiff(out.logits[0], full.logits[p]) < 1e-4, `position ${p}`);
    assert.ok(maxDiff(out.captures[0]![0], full.captures[0]![p]) < 1e-4, `captured state at position ${p}`);
  }
  assert.equal(seq.length, toks.length);
  ctx.free();
});

test('fork: a forked sequence continues exactly like its source; truncate and dispose', async () => {
  const ctx = llama.createContext({ nCtx: 128, nBatch: 32, nSeqMax: 3 });
  const toks = Array.from(llama.tokenize('the cat'));
  const src = ctx.sequence();
  await ctx.decode(toks.map((token) => ({ token, seq: src })));
  const fork = src.fork();
  assert.equal(fork.length, toks.length);
  const next = llama.tokenize('s')[0];
  const out = await ctx.decode([
    { token: next, seq: src, logits: true },
    { token: next, seq: fork, logits: true },
  ]);
  // Same cells, same token: equal up to the row position inside the matmul tiles.
  assert.ok(maxDiff(out.logits[0], out.logits[1]) < 1e-5);
  // Truncating the fork and re-decoding a token reproduces the source's logits at that position.
  fork.truncate(toks.length);
  assert.equal(fork.length, toks.length);
  assert.equal(src.length, toks.length + 1, 'the source is untouched');
  const again = await ctx.decode([{ token: next, seq: fork, logits: true }]);
  assert.ok(maxDiff(again.logits[0], out.logits[0]) < 1e-5);
  fork.truncate(2);
  assert.equal(fork.length, 2);
  fork.dispose();
  assert.ok(fork.disposed);
  assert.equal(ctx.sequences, 1);
  await assert.rejects(ctx.decode([{ token: next, seq: fork }]), /SEQUENCE_DISPOSED|not live/);
  const third = ctx.sequence();
  assert.equal(third.length, 0, 'a new sequence starts empty even on a reused id');
  ctx.free();
});

test('hooks: resid_pre of layer 0 is the token embedding; resid_pre L = resid_post L-1', async () => {
  const ctx = llama.createContext({ nCtx: 64, nBatch: 16, nSeqMax: 1 });
  const toks = Array.from(llama.tokenize('hi!'));
  const seq = ctx.sequence();
  const out = await ctx.decode(
    toks.map((token) => ({ token, seq })),
    [
      { hook: 'blocks.0.hook_resid_pre', rows: 'all', capture: true },
      { hook: 'blocks.2.hook_resid_pre', rows: 'all', capture: true },
      { hook: 'blocks.1.hook_resid_post', rows: 'all', capture: true },
      { hook: 'blocks.3.hook_resid_post', rows: [0], capture: true }, // last layer, row without logits
    ],
  );
  const embd = readTensor(readGguf(llama.info.path), 'token_embd.weight');
  toks.forEach((t, i) => {
    assert.deepEqual(out.captures[0]![i], embd.subarray(t * 64, (t + 1) * 64));
  });
  out.captures[1]!.forEach((row, i) => {
    assert.ok(same(row, out.captures[2]![i]));
  });
  assert.equal(out.captures[3]!.length, 1);
  assert.equal(out.logits.length, 0, 'rows forced to output for the last-layer hook return no logits');
  ctx.free();
});

test('steering one token of one sequence changes that sequence from that token on only', async () => {
  const ctx = llama.createContext({ nCtx: 64, nBatch: 32, nSeqMax: 2 });
  const toks = Array.from(llama.tokenize('abcdef'));
  const seqs = [ctx.sequence(), ctx.sequence()];
  const rows = (i: number) => toks.map((token) => ({ token, seq: seqs[i], logits: true }));
  const plain = await ctx.decode([...rows(0), ...rows(1)]);
  for (const s of seqs) s.clear();
  const v = Float32Array.from({ length: 64 }, (_, i) => Math.cos(i));
  const steered = await ctx.decode(
    [...rows(0), ...rows(1)],
    [{ hook: 'blocks.1.hook_resid_post', rows: [toks.length + 3], add: v }],
  );
  const n = toks.length;
  for (let i = 0; i < n; i++) assert.ok(same(plain.logits[i], steered.logits[i]), `sequence 0 row ${i}`);
  for (let i = 0; i < 3; i++)
    assert.ok(same(plain.logits[n + i], steered.logits[n + i]), `sequence 1 before the steered token, row ${i}`);
  for (let i = 3; i < n; i++)
    assert.ok(
      maxDiff(plain.logits[n + i], steered.logits[n + i]) > 1e-3,
      `sequence 1 from the steered token on, row ${i}`,
    );
  ctx.free();
});

test('control vector fast path equals the per-token hook at resid_post', async () => {
  const ctx = qwen.createContext({ nCtx: 64, nBatch: 16, nSeqMax: 1 });
  const toks = Array.from(qwen.tokenize('Let me check that again.'));
  const v = Float32Array.from({ length: 64 }, (_, i) => ((i % 7) - 3) / 4);
  const seq = ctx.sequence();
  const viaHook = await ctx.decode(
    toks.map((token) => ({ token, seq, logits: true })),
    [{ hook: 'blocks.2.hook_resid_post', rows: 'all', add: v }],
  );
  seq.clear();
  ctx.setControlVector(new Map([[2, v]]));
  const viaCvec = await ctx.decode(toks.map((token) => ({ token, seq, logits: true })));
  viaHook.logits.forEach((l, i) => {
    assert.ok(same(l, viaCvec.logits[i]));
  });
  ctx.setControlVector(null);
  seq.clear();
  const off = await ctx.decode(toks.map((token) => ({ token, seq, logits: true })));
  assert.ok(maxDiff(off.logits[0], viaCvec.logits[0]) > 1e-3, 'clearing the control vector restores the model');
  ctx.free();
});

test('sampling: greedy is argmax, seeded sampling is reproducible, top-k 1 is greedy', () => {
  const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i * 1.7) * 3);
  assert.equal(createSampler()(logits), argmax(logits));
  assert.equal(createSampler({ temperature: 1, topK: 1, seed: 3 })(logits), argmax(logits));
  const draw = (seed: number) => {
    const s = createSampler({ temperature: 1, topP: 0.9, minP: 0.01, seed });
    return Array.from({ length: 20 }, () => s(logits));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
  const s = createSampler({ temperature: 0.7, topK: 3, seed: 1 });
  const top3 = Array.from(logits.keys())
    .sort((a, b) => logits[b] - logits[a])
    .slice(0, 3);
  for (let i = 0; i < 50; i++) assert.ok(top3.includes(s(logits)));
});

test('generate: batched greedy equals one-at-a-time, stop strings, max tokens, streaming, captures by position', async () => {
  const ctx = llama.createContext({ nCtx: 256, nBatch: 64, nSeqMax: 3 });
  const prompts = ['abc', 'hello there', 'x'];
  const alone: Awaited<ReturnType<typeof generate>> = [];
  for (const p of prompts) alone.push((await generate(ctx, [{ prompt: p, maxTokens: 6, stopAtEog: false }]))[0]);
  const streamed: string[] = ['', '', ''];
  const captured: Array<[number, number, string]> = [];
  const together = await generate(
    ctx,
    prompts.map((p) => ({ prompt: p, maxTokens: 6, stopAtEog: false })),
    {
      onToken: (e) => {
        streamed[e.request] += e.text;
      },
      hooks: [{ hook: 'blocks.1.hook_resid_post', capture: (r) => r.phase === 'generated' }],
      onCapture: (r) => captured.push([r.request, r.position, r.phase]),
    },
  );
  together.forEach((r, i) => {
    assert.deepEqual(r.tokens, alone[i].tokens);
    assert.equal(r.tokens.length, 6);
    assert.equal(r.finishReason, 'length');
    assert.equal(streamed[i], r.text);
  });
  // Generated token k of request i sits at position promptTokens + k; the last sampled token is never fed.
  const req1 = captured.filter((c) => c[0] === 1).map((c) => c[1]);
  const p1 = together[1].promptTokens;
  assert.deepEqual(req1, [p1, p1 + 1, p1 + 2, p1 + 3, p1 + 4]);
  const text = together[0].text;
  const stopAt = text.slice(2, 4);
  const stopped = await generate(ctx, [{ prompt: 'abc', maxTokens: 6, stopAtEog: false, stop: [stopAt] }]);
  assert.equal(stopped[0].finishReason, 'stop');
  assert.equal(stopped[0].text, text.slice(0, text.indexOf(stopAt)));
  ctx.free();
});
