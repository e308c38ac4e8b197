// `thinkwhen vectors` on its option tables: import → show → export round trip on a tiny model, a
// --help per subcommand, and hostile command lines, each refused with exit 2, a message naming the
// problem with a fix, no stack trace, and nothing written or overwritten.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readControlVector, writeControlVector } from '../../src/gguf/control-vector.ts';
import { str, u32 } from '../../src/gguf/types.ts';
import { writeGguf } from '../../src/gguf/write.ts';
import { loadVectorSet, steeringDelta } from '../../src/steer/vector-set.ts';
import { cli } from '../helpers/cli.ts';
import { tinyLlama } from '../helpers/models.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-vectors-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function refused(r: { code: number; out: string; err: string }, message: RegExp): void {
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, message);
  assert.match(r.err, /\(fix: /, r.err);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  assert.equal(r.out, '', 'nothing printed on stdout');
}

const N_EMBD = 64; // TINY_LLAMA
const vec = (seed: number) => Float32Array.from({ length: N_EMBD }, (_, i) => Math.sin(seed * 7 + i) / 4);
function cvFile(name: string, directions: Map<number, Float32Array>): string {
  const path = join(tmp, name);
  writeControlVector(path, { modelHint: 'llama', nEmbd: N_EMBD, directions });
  return path;
}

describe('vectors import, show, export', () => {
  let set: string;
  let bias: string;
  let verify: string;
  before(() => {
    bias = cvFile('bias.gguf', new Map([[2, vec(1)]]));
    verify = cvFile('verify.gguf', new Map([[2, vec(2)]]));
    set = join(tmp, 'imported');
  });

  it('imports with repeated --title, shows and exports c·(bias + v) as the hook would add it', async () => {
    const wait = cvFile('wait.gguf', new Map([[2, vec(3)]]));
    const r = await cli([
      'vectors',
      'import',
      '--model',
      tinyLlama(),
      '--out',
      set,
      '--bias',
      bias,
      '--title',
      '3=Verifying',
      '--title',
      '5=Backtracking, again',
      '3=' + verify,
      '5=' + wait,
      '--json',
    ]);
    assert.equal(r.code, 0, r.err);
    const manifest = JSON.parse(r.out);
    assert.equal(manifest.apply_site, 'blocks.2.hook_resid_post');
    assert.deepEqual(
      manifest.categories.map((c: { latent: number; title: string }) => [c.latent, c.title]),
      [
        [3, 'Verifying'],
        [5, 'Backtracking, again'],
      ],
    );

    const shown = await cli(['vectors', 'show', set]);
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, /latent 3 .*Verifying/);
    assert.match(shown.out, /bias +\|v\| /);

    const out = join(tmp, 'steer-3.gguf');
    const e = await cli(['vectors', 'export', set, '--latent', '3', '--coef', '0.5', '--out', out]);
    assert.equal(e.code, 0, e.err);
    const written = readControlVector(out).directions.get(2);
    const expected = steeringDelta(await loadVectorSet(set), 3, 0.5).vector;
    assert.deepEqual(written, expected);
    assert.notDeepEqual(
      expected,
      vec(2).map((x) => x * 0.5),
      'the bias is included',
    );
  });

  it('refuses bad export arguments and never overwrites', async () => {
    refused(
      await cli(['vectors', 'export', set, '--latent', 'x', '--out', join(tmp, 'x.gguf')]),
      /--latent expects a latent id/,
    );
    refused(
      await cli(['vectors', 'export', set, '--latent', '4', '--out', join(tmp, 'x.gguf')]),
      /has no vector for latent 4 \(fix: use one of 3, 5\)/,
    );
    refused(
      await cli(['vectors', 'export', set, '--latent', '3', '--coef', '1e9', '--out', join(tmp, 'x.gguf')]),
      /--coef expects a number from -1000 to 1000/,
    );
    refused(await cli(['vectors', 'export', set, '--latent', '3']), /--out is required/);
    assert.equal(existsSync(join(tmp, 'x.gguf')), false);
    const keep = join(tmp, 'keep.gguf');
    writeFileSync(keep, 'not ours');
    refused(
      await cli(['vectors', 'export', set, '--latent', 'bias', '--out', keep]),
      /keep\.gguf exists; it is not overwritten/,
    );
    assert.equal(readFileSync(keep, 'utf8'), 'not ours');
  });

  it('refuses bad imports and leaves a non-empty --out as it was', async () => {
    const busy = join(tmp, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'notes.txt'), 'mine');
    refused(
      await cli(['vectors', 'import', '--model', tinyLlama(), '--out', busy, `3=${verify}`]),
      /busy exists and is not empty; nothing is overwritten/,
    );
    assert.deepEqual(readdirSync(busy), ['notes.txt']);
    const fresh = join(tmp, 'fresh');
    const imp = (...a: string[]) => cli(['vectors', 'import', '--model', tinyLlama(), '--out', fresh, ...a]);
    refused(await imp('verify.gguf'), /'verify\.gguf' is not LATENT=FILE \(fix: e\.g\. 3=verify\.gguf\)/);
    refused(await imp(), /nothing to import/);
    refused(await imp(`3=${verify}`, `3=${bias}`), /latent 3 is given twice/);
    refused(await imp('--title', 'Verifying', `3=${verify}`), /--title 'Verifying' is not LATENT=TEXT/);
    refused(await imp('--title', '', `3=${verify}`), /--title must not be empty/);
    refused(await imp('--layer', '0', `3=${verify}`), /--layer expects an integer from 1 to 4095/);
    const two = cvFile(
      'two.gguf',
      new Map([
        [1, vec(4)],
        [2, vec(5)],
      ]),
    );
    refused(await imp(`3=${two}`), /holds layers 1, 2 \(fix: pick one with --layer L\)/);
    refused(await imp(`3=${two}`, '--layer', '3'), /has no direction\.3/);
    const wide = join(tmp, 'wide.gguf');
    writeControlVector(wide, {
      modelHint: 'llama',
      nEmbd: 32,
      directions: new Map([[2, new Float32Array(32).fill(1)]]),
    });
    refused(await imp(`3=${wide}`), /has width 32; .* has n_embd 64/);
    refused(await imp(`3=${join(tmp, 'missing.gguf')}`), /missing\.gguf/);
    assert.equal(existsSync(fresh), false, 'a refused import creates nothing');
  });
});

describe('vectors: options that cannot apply are refused, not ignored', () => {
  /** training inputs that do not exist: the checks under test stop before reading them */
  const trainArgs = [
    '--traces',
    't.jsonl',
    '--annotated',
    'a.jsonl',
    '--taxonomy',
    join(tmp, 'tax'),
    '--out',
    join(tmp, 'v'),
  ];
  it('bounds, choices and unknown words', async () => {
    refused(await cli(['vectors']), /no vectors subcommand given \(fix: use train, eval, show, import, export/);
    refused(await cli(['vectors', 'trian']), /unknown vectors subcommand 'trian'/);
    refused(
      await cli(['vectors', 'train', '--organism', '--lr', '0']),
      /--lr expects a number from 1e-9 to 10, got '0'/,
    );
    refused(
      await cli(['vectors', 'train', '--organism', '--n-train', '1e12']),
      /--n-train expects an integer from 1 to 10000000/,
    );
    refused(
      await cli(['vectors', 'train', '--organism', '--method', 'pca']),
      /--method must be one of optimised, diffmean/,
    );
    refused(await cli(['vectors', 'train', '--organism', '--latents', '1,x']), /--latents expects integers/);
    refused(await cli(['vectors', 'train', '--organism', '--threads', '0']), /--threads expects an integer from 1/);
    refused(await cli(['vectors', 'train', '--organism', '--bogus']), /Unknown option '--bogus'/);
    refused(
      await cli(['vectors', 'eval', '--organism', '--coefs', '1,nan']),
      /--coefs expects numbers from -1000 to 1000/,
    );
    refused(await cli(['vectors', 'eval', '--organism', '--window', 'some']), /--window must be one of decision, all/);
    refused(
      await cli(['vectors', 'eval', '--organism', '--max-tokens', '1']),
      /--max-tokens expects an integer from 2 to 4096/,
    );
  });

  it('modes: --organism brings its own inputs; eval trains nothing without it', async () => {
    refused(
      await cli(['vectors', 'train', '--organism', '--model', 'base.gguf', '--preset', 'llama-3.1-8b']),
      /--model, --preset do nothing with --organism/,
    );
    refused(await cli(['vectors', 'eval', '--organism', '--label', 'sae']), /--label does nothing with --organism/);
    refused(
      await cli(['vectors', 'train', '--dir', tmp, '--model', tinyLlama()]),
      /--dir does nothing without --organism/,
    );
    refused(
      await cli(['vectors', 'eval', '--vectors', tmp, '--model', tinyLlama(), '--epochs', '3', '--same-site']),
      /--same-site, --epochs do nothing without --organism \(eval trains nothing\) \(fix: pass them to vectors train\)/,
    );
    refused(
      await cli(['vectors', 'eval', '--vectors', tmp, '--model', tinyLlama()]),
      /real models have no ground truth: pass --label sae/,
    );
    refused(await cli(['vectors', 'train', '--model', tinyLlama()]), /--taxonomy is required/);
    refused(await cli(['vectors', 'show']), /a vector-set directory is required/);
    refused(await cli(['vectors', 'show', tmp, 'extra']), /unexpected argument 'extra'/);
    refused(await cli(['vectors', 'show', join(tmp, 'nope')]), /nope/);
  });

  it('--preset must be a pair preset whose base model the file is', async () => {
    refused(
      await cli(['vectors', 'train', '--model', tinyLlama(), '--preset', 'qwen-9', ...trainArgs]),
      /--preset must be one of qwen2\.5-math-1\.5b/,
    );
    refused(
      await cli(['vectors', 'train', '--model', tinyLlama(), '--preset', 'llama-3.1-8b', ...trainArgs]),
      /is not the base model of preset 'llama-3\.1-8b' .*4 layers \(expected 32\)/,
    );
    assert.equal(existsSync(join(tmp, 'v')), false);
  });

  it('detects the pair of a base model from its name and shape (the experiments presets)', async () => {
    // A header-only GGUF: detection reads the header; training stops at the missing taxonomy.
    const header = (name: string, layers: number, width: number) => {
      const path = join(tmp, `${name.replace(/\W/g, '-')}-${layers}.gguf`);
      const meta = new Map([
        ['general.architecture', str('qwen2')],
        ['general.name', str(name)],
        ['qwen2.block_count', u32(layers)],
        ['qwen2.embedding_length', u32(width)],
      ]);
      writeGguf(path, meta, []);
      return path;
    };
    const math = await cli(['vectors', 'train', '--model', header('Qwen2.5 Math 1.5B', 28, 1536), ...trainArgs]);
    assert.equal(math.code, 2);
    assert.match(math.err, /preset qwen2\.5-math-1\.5b \(layer 10, minibatch 3\/3\)/);
    const qwen32 = await cli(['vectors', 'train', '--model', header('Qwen2.5-32B', 64, 5120), ...trainArgs]);
    assert.match(qwen32.err, /preset qwen2\.5-32b \(layer 24, minibatch 2\/1\)/);
    // the name of another model of the same shape, or the right name at another depth: no preset
    for (const path of [header('Qwen2.5 1.5B Instruct', 28, 1536), header('Qwen2.5 Math 1.5B', 24, 1536)]) {
      const r = await cli(['vectors', 'train', '--model', path, ...trainArgs]);
      assert.equal(r.code, 2);
      assert.doesNotMatch(r.err, /preset/);
    }
    assert.equal(existsSync(join(tmp, 'v')), false);
  });

  it('each subcommand has a --help that teaches', async () => {
    for (const sub of ['train', 'eval', 'show', 'import', 'export']) {
      const r = await cli(['vectors', sub, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.out, new RegExp(`^thinkwhen vectors ${sub} `));
      assert.match(r.out, /\nOptions:\n/);
      assert.match(r.out, /\nExamples:\n {2}thinkwhen vectors /);
    }
    const train = (await cli(['vectors', 'train', '--help'])).out;
    assert.match(train, /--lr X +Adam learning rate \(paper 0\.01; organism 0\.1\) \[1e-9\.\.10\]/);
    assert.match(train, /--preset NAME .*\[.*\]/s);
  });
});
