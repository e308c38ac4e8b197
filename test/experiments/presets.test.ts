import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  checkModelFile,
  checkPairTokenizers,
  getPreset,
  PAPER_GRID,
  PAPER_GRID_32B,
  PRESETS,
  presetModelPath,
  readModelHeader,
  withShapes,
} from '../../src/experiments/presets.ts';
import { str } from '../../src/gguf/types.ts';
import { organismModelPaths } from '../../src/organism/index.ts';
import { cli, codeOf } from '../helpers/cli.ts';
import { tinyLlama } from '../helpers/models.ts';
import { scaledQwen, withMetadata } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-presets-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The 1.5B pair at the scaled width of the test models (everything else as the paper's). */
const scaled = () => withShapes(getPreset('qwen2.5-math-1.5b'), { base: { nEmbd: 64 }, thinking: { nEmbd: 64 } });
/** The scaled Qwen2 model as an R1-Distill-Qwen conversion names its pre-tokenizer. */
const r1Qwen = () =>
  withMetadata(scaledQwen(), 'r1', (m) => {
    m.set('tokenizer.ggml.pre', str('deepseek-r1-qwen'));
  });

function errorOf(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (err) {
    return { code: (err as { code: string }).code, message: (err as Error).message };
  }
  return { code: 'no error', message: '' };
}

describe('pair presets', () => {
  it("hold the paper's per-pair settings (docs/method.md §4, §2.7)", () => {
    const row = (n: string) => {
      const p = getPreset(n);
      return [p.base.nLayer, p.base.nEmbd, p.saeLayer, p.k, p.steerLayer, p.batchBias, p.batchCategory, p.grid];
    };
    assert.deepEqual(row('qwen2.5-math-1.5b'), [28, 1536, 4, 15, 10, 3, 3, PAPER_GRID]);
    assert.deepEqual(row('llama-3.1-8b'), [32, 4096, 6, 15, 12, 4, 4, PAPER_GRID]);
    assert.deepEqual(row('qwen2.5-14b'), [48, 5120, 38, 5, 18, 2, 4, PAPER_GRID]);
    assert.deepEqual(row('qwen2.5-32b'), [64, 5120, 27, 15, 24, 2, 1, PAPER_GRID_32B]);
    assert.deepEqual(row('qwen2.5-32b-qwq'), [64, 5120, 27, 10, 24, 1, 1, PAPER_GRID_32B]);
    assert.equal(PAPER_GRID.coefficients.length * PAPER_GRID.windows.length, 50);
    assert.equal(PAPER_GRID_32B.coefficients.length * PAPER_GRID_32B.windows.length, 6);
    for (const p of PRESETS.filter((x) => x.modelsDir === null)) {
      assert.equal(p.maxTokens, 2000, p.name);
      assert.deepEqual([p.basePrompt, p.thinkingPrompt], ['paper', 'chat'], p.name);
      // the paper's steering layers sit at 0.357–0.375 of the depth (docs/method.md §4)
      const f = p.steerLayer / p.base.nLayer;
      assert.ok(f >= 0.357 && f <= 0.375, `${p.name}: ${f}`);
    }
  });

  it('match the shipped organism models, base-latent included', () => {
    const p = getPreset('organism');
    const paths = organismModelPaths();
    assert.equal(presetModelPath(p, 'base'), paths.base);
    assert.equal(checkModelFile(p, 'base', paths.base).nLayer, p.base.nLayer);
    assert.equal(checkModelFile(p, 'thinking', paths.thinking).nEmbd, p.thinking.nEmbd);
    checkPairTokenizers(readModelHeader(paths.base), readModelHeader(paths.thinking));
    // the base-latent pair (demo --pair latent): the same thinking model, the organism's second base
    const latent = getPreset('organism-latent');
    assert.equal(presetModelPath(latent, 'base'), paths.baseLatent);
    assert.equal(checkModelFile(latent, 'base', paths.baseLatent).nLayer, latent.base.nLayer);
    checkPairTokenizers(readModelHeader(paths.baseLatent), readModelHeader(paths.thinking));
  });

  it('accept models of the real architecture, depth and Qwen2 tokenizer (scaled width)', () => {
    const h = checkModelFile(scaled(), 'base', scaledQwen());
    assert.deepEqual([h.arch, h.nLayer, h.nVocab, h.tokenizer, h.pre], ['qwen2', 28, 151936, 'gpt2', 'qwen2']);
    assert.equal(checkModelFile(scaled(), 'thinking', r1Qwen()).pre, 'deepseek-r1-qwen');
    // a conversion made before llama.cpp knew the R1 tokenizer says qwen2: accepted for the thinking model
    checkModelFile(scaled(), 'thinking', scaledQwen());
    checkPairTokenizers(readModelHeader(scaledQwen()), readModelHeader(r1Qwen()));
  });

  it('refuse a file of another shape, naming each difference', () => {
    const real = getPreset('qwen2.5-math-1.5b');
    const e = errorOf(() => checkModelFile(real, 'base', scaledQwen()));
    assert.equal(e.code, 'MODEL_PRESET_MISMATCH');
    assert.match(e.message, /width 64 \(expected 1536\)/);
    assert.doesNotMatch(e.message, /layers|architecture|tokenizer/);
    const deep = withShapes(real, { base: { nEmbd: 64, nLayer: 24 } });
    assert.match(errorOf(() => checkModelFile(deep, 'base', scaledQwen())).message, /28 layers \(expected 24\)/);
    const llama = errorOf(() => checkModelFile(scaled(), 'base', tinyLlama()));
    assert.match(llama.message, /architecture 'llama' \(expected 'qwen2'\)/);
    assert.match(llama.message, /tokenizer model 'llama' \(expected 'gpt2'\)/);
    // the 14B pair's vocabulary is padded to 152,064 tokens
    const big = withShapes(getPreset('qwen2.5-14b'), { base: { nEmbd: 64, nLayer: 28 } });
    assert.match(
      errorOf(() => checkModelFile(big, 'base', scaledQwen())).message,
      /151936 vocabulary tokens \(expected 152064\)/,
    );
  });

  it('say when base and thinking were swapped', () => {
    const e = errorOf(() => checkModelFile(scaled(), 'base', r1Qwen()));
    assert.match(e.message, /pre-tokenizer 'deepseek-r1-qwen' \(expected 'qwen2'\)/);
    assert.match(e.message, /swap --base and --thinking/);
  });

  it('refuse a pair whose tokenizers spell tokens differently', () => {
    const renamed = withMetadata(scaledQwen(), 'renamed', (m) => {
      const t = m.get('tokenizer.ggml.tokens')!;
      const tokens = [...(t.value as string[])];
      tokens[1000] = 'thinkwhen';
      m.set('tokenizer.ggml.tokens', { ...t, value: tokens } as typeof t);
    });
    const e = errorOf(() => checkPairTokenizers(readModelHeader(scaledQwen()), readModelHeader(renamed)));
    assert.equal(e.code, 'PAIR_TOKENIZER_MISMATCH');
    assert.match(e.message, /1 ordinary tokens, first at id 1000/);
    const other = errorOf(() => checkPairTokenizers(readModelHeader(scaledQwen()), readModelHeader(tinyLlama())));
    assert.match(other.message, /'gpt2' and the thinking model's 'llama'/);
  });

  it('name the file to download when it is missing', () => {
    const e = errorOf(() => presetModelPath(getPreset('qwen2.5-math-1.5b'), 'thinking', undefined, tmp));
    assert.equal(e.code, 'MODEL_NOT_FOUND');
    assert.match(e.message, /DeepSeek-R1-Distill-Qwen-1\.5B\.gguf/);
    assert.match(e.message, /convert deepseek-ai\/DeepSeek-R1-Distill-Qwen-1\.5B to GGUF/);
    assert.equal(errorOf(() => getPreset('qwen3')).message.includes('qwen2.5-math-1.5b'), true, 'lists the presets');
  });

  it('thinkwhen run checks the files before generating anything', async () => {
    const q = join(tmp, 'q.jsonl');
    writeFileSync(q, '{"question": "1+1?", "answer": "2"}\n');
    const out = join(tmp, 'never.sqlite');
    const r = await cli([
      'run',
      '--system',
      'base',
      '--preset',
      'qwen2.5-math-1.5b',
      '--base',
      scaledQwen(),
      '--dataset',
      q,
      '--out',
      out,
    ]);
    assert.equal(r.code, 2);
    assert.match(
      r.err,
      /is not the base model of preset 'qwen2\.5-math-1\.5b' \(Qwen\/Qwen2\.5-Math-1\.5B\): it has width 64/,
    );
    assert.equal(await codeOf(import('node:fs/promises').then((fs) => fs.stat(out))), 'ENOENT');
  });
});
