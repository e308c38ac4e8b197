// Hostile GGUF files are loaded in a worker child process (bench/fuzz-gguf.ts): before the
// preflight checks each named case below killed the process with SIGABRT (or, for the last two,
// loaded and produced NaN logits); now each is a typed error naming the key.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { type FileResult, fuzzGguf } from '../../bench/fuzz-gguf.ts';
import { type BaseName, basePaths, type FuzzJob } from '../../bench/fuzz-variants.ts';
import { NAMED_CASES } from '../../src/gguf/hostile.ts';

/** case → [base file, expected code, what the message must name] */
const EXPECTED: Record<string, [BaseName, string, RegExp]> = {
  'block_count 0': ['llama', 'BAD_METADATA', /llama\.block_count is 0/],
  'block_count 513': ['qwen2', 'BAD_METADATA', /qwen2\.block_count is 513.*≤ 512/],
  'block_count 2^31': ['llama', 'BAD_METADATA', /llama\.block_count is 2147483648/],
  'general.alignment 1': ['qwen2', 'BAD_GGUF', /general\.alignment .*not a multiple of 32/],
  'general.alignment 48': ['llama', 'BAD_GGUF', /general\.alignment is 48.*power of two/],
  'duplicate token strings': ['llama', 'BAD_VOCAB', /tokenizer\.ggml\.tokens holds the token string .* twice/],
  'all-empty token strings': ['qwen2', 'BAD_VOCAB', /tokenizer\.ggml\.tokens holds 379 empty token strings/],
  'tokenizer.ggml.model bert': ['llama', 'BAD_VOCAB', /token_type marks token \d+ as a byte token.*WordPiece/],
  'tokenizer.ggml.model none': ['vocab-spm', 'NO_TOKENIZER', /tokenizer\.ggml\.model is 'none'/],
  'tokenizer.ggml.model no_vocab': ['vocab-bpe', 'NO_TOKENIZER', /tokenizer\.ggml\.model is 'no_vocab'/],
  'rms_eps -1': ['llama', 'BAD_METADATA', /llama\.attention\.layer_norm_rms_epsilon is -1/],
  'rms_eps NaN': ['qwen2', 'BAD_METADATA', /qwen2\.attention\.layer_norm_rms_epsilon is NaN/],
  'token cut at a NUL byte duplicates another': ['vocab-bpe', 'BAD_VOCAB', /twice \(ids \d+ and 3000\)/],
  'rope.dimension_count below the head size': [
    'qwen2',
    'BAD_METADATA',
    /qwen2\.rope\.dimension_count .*RoPE dimensions 2/,
  ],
  'expert_used_count without experts': [
    'llama',
    'BAD_METADATA',
    /llama\.expert_used_count is 2, more than expert_count 0/,
  ],
  'nextn_predict_layers above block_count': ['qwen2', 'BAD_METADATA', /qwen2\.nextn_predict_layers is 9/],
  'an unknown rope.scaling.type': ['llama', 'BAD_METADATA', /llama\.rope\.scaling\.type is "sideways"/],
  'a one-token vocabulary that adds BOS': ['vocab-spm', 'BAD_VOCAB', /bos_token_id is missing or outside/],
  'rope freq_base 0': ['llama', 'BAD_METADATA', /llama\.rope\.freq_base is 0.*NaN/],
  'rope freq_base -1': ['qwen2', 'BAD_METADATA', /qwen2\.rope\.freq_base is -1/],
  'rope freq_base NaN': ['llama', 'BAD_METADATA', /llama\.rope\.freq_base is NaN/],
  'NaN weights': ['qwen2', 'NON_FINITE_LOGITS', /non-finite logit \(NaN .*NaN\/Inf weights/],
};

const results = new Map<string, FileResult>();

before(async () => {
  const bases = basePaths();
  const jobs: FuzzJob[] = Object.entries(EXPECTED).map(([named, [base]], index) => ({
    index,
    seed: 0,
    base,
    basePath: bases[base],
    vocabOnly: base.startsWith('vocab'),
    kind: { named },
  }));
  const { results: all } = await fuzzGguf({ files: jobs.length, seed: 0, jobs, timeoutMs: 120_000 });
  for (const r of all) results.set((r.job.kind as { named: string }).named, r);
});

test('every named hostile case is tested', () => {
  assert.deepEqual(Object.keys(EXPECTED).sort(), Object.keys(NAMED_CASES).sort());
});

for (const [name, [base, code, pattern]] of Object.entries(EXPECTED)) {
  test(`${name} (${base}): ${code}, not an abort`, () => {
    const { outcome } = results.get(name)!;
    assert.equal(outcome.kind, 'typed_error', `outcome: ${JSON.stringify(outcome).slice(0, 500)}`);
    if (outcome.kind !== 'typed_error') return;
    assert.equal(outcome.code, code, outcome.message);
    assert.match(outcome.message, pattern);
    assert.match(outcome.message, /\(fix: .+\)/, 'names a fix');
  });
}

test('a seeded fuzz slice: no aborts, no hangs, only typed errors', async () => {
  const { summary } = await fuzzGguf({ files: 150, seed: 11, timeoutMs: 120_000 });
  assert.equal(summary.files, 150);
  assert.deepEqual(
    { aborts: summary.aborts, hangs: summary.hangs, untyped: summary.untyped_errors },
    { aborts: 0, hangs: 0, untyped: 0 },
  );
  // The slice exercises both sides: files that load (and decode) and files refused with a reason.
  assert.ok(summary.loaded >= 15, `loaded ${summary.loaded}`);
  assert.ok(summary.typed_errors >= 60, `typed errors ${summary.typed_errors}`);
  assert.equal(summary.loaded + summary.typed_errors, 150);
});
