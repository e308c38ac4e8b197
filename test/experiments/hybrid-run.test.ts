// `thinkwhen run --system hybrid`: the hybrid and its controls into a run store, on the shipped
// organism with its shipped SAE and vectors.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Model } from '../../src/engine/index.ts';
import { RunStore } from '../../src/eval/store.ts';
import { organismDataset } from '../../src/experiments/datasets.ts';
import { resolveSae } from '../../src/experiments/hybrid.ts';
import { getPreset } from '../../src/experiments/presets.ts';
import { promptIds } from '../../src/experiments/prompts.ts';
import { collectResults, hybridGenerate, type TokenRecord } from '../../src/hybrid/index.ts';
import { organismArtifactPaths } from '../../src/organism/artifacts.ts';
import { organismModelPaths } from '../../src/organism/index.ts';
import { loadVectorSet } from '../../src/steer/vector-set.ts';
import { cli } from '../helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-run-hybrid-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const shipped = organismArtifactPaths();
const common = ['--max-tokens', '120', '--limit', '3', '--threads', '1'];

function stored(path: string) {
  const s = RunStore.openReadonly(path);
  try {
    const gens = [...s.generations()].sort((a, b) => a.problemId.localeCompare(b.problemId));
    return { config: s.config, gens, correct: [...s.grades('rules-math')].filter((g) => g.correct).length };
  } finally {
    s.close();
  }
}

describe('thinkwhen run --system hybrid', () => {
  it('stores what hybridGenerate emits, with every per-token record, and resumes', async () => {
    const out = join(tmp, 'paper.sqlite');
    const r = await cli(['run', '--system', 'hybrid', '--vectors', shipped.vectors, ...common, '--out', out]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^hybrid-paper: 3\/3 graded, accuracy/);
    const { config, gens } = stored(out);
    assert.equal(config.role, 'hybrid');
    assert.equal(config.policy, 'paper');
    assert.deepEqual(config.grid, getPreset('organism').grid);

    // the same problems through the library, directly
    const paths = organismModelPaths();
    const base = await Model.load(paths.base);
    const thinking = await Model.load(paths.thinking);
    try {
      const sae = await resolveSae({ vectors: shipped.vectors });
      const vectors = await loadVectorSet(shipped.vectors, base);
      const preset = getPreset('organism');
      const results = await collectResults(
        hybridGenerate(
          { base, thinking, sae: sae.sae, saeLayer: sae.layer, vectors },
          organismDataset(3).problems.map((p) => ({
            id: p.id,
            prompt: { base: promptIds(base, 'chat', p.question), thinking: promptIds(thinking, 'chat', p.question) },
          })),
          { grid: preset.grid, maxTokens: 120, threads: 1, missingVector: 'bias' },
        ),
      );
      assert.equal(gens.length, 3);
      for (const [i, g] of gens.entries()) {
        const want = results.find((x) => x.id === g.problemId)!;
        assert.equal(g.text, want.text);
        const records = (g.annotations as { records: TokenRecord[] }).records;
        assert.equal(records.length, want.records.length);
        assert.equal(g.steeredTokens, want.records.filter((x) => x.steered).length, `problem ${i}`);
        for (const rec of records.filter((x) => x.steered)) {
          assert.equal(typeof rec.latent, 'number');
          assert.ok(rec.candidates && rec.candidates.length > 0);
          assert.ok(rec.vector?.includes('.gguf'), rec.vector);
        }
      }
    } finally {
      thinking.free();
      base.free();
    }
    // a rerun finds everything stored and generates nothing
    const again = await cli(['run', '--system', 'hybrid', '--vectors', shipped.vectors, ...common, '--out', out]);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /0 generated now \(0 tokens.*3 from before/);
  });

  it("runs the controls: the oracle emits the thinking model's tokens, selection-only needs no vectors", async () => {
    const oracle = join(tmp, 'oracle.sqlite');
    const o = await cli([
      'run',
      '--system',
      'hybrid',
      '--policy',
      'oracle',
      '--taxonomy',
      shipped.sae,
      ...common,
      '--out',
      oracle,
    ]);
    assert.equal(o.code, 0, o.err);
    const thinkingOut = join(tmp, 'thinking.sqlite');
    assert.equal((await cli(['run', '--system', 'thinking', ...common, '--out', thinkingOut])).code, 0);
    // with every disagreement resolved to the thinking token, the text is the thinking model's
    assert.deepEqual(
      stored(oracle).gens.map((g) => g.text),
      stored(thinkingOut).gens.map((g) => g.text),
    );
    const sel = await cli([
      'run',
      '--system',
      'hybrid',
      '--policy',
      'selection_only',
      '--taxonomy',
      shipped.sae,
      ...common,
      '--out',
      join(tmp, 'sel.sqlite'),
    ]);
    assert.equal(sel.code, 0, sel.err);
    assert.equal(stored(join(tmp, 'sel.sqlite')).config.vectors, null);
  });

  it('samples for pass@k: every (problem, sample) stored, reproducible, and not all alike', async () => {
    const args = ['run', '--system', 'hybrid', '--vectors', shipped.vectors, '--samples', '3', '--temperature', '2'];
    const opts = ['--max-tokens', '60', '--limit', '1', '--threads', '1', '--seed', '3'];
    const a = join(tmp, 'sampled-a.sqlite');
    const b = join(tmp, 'sampled-b.sqlite');
    for (const out of [a, b]) {
      const r = await cli([...args, ...opts, '--out', out]);
      assert.equal(r.code, 0, r.err);
    }
    const ga = stored(a).gens;
    assert.deepEqual(ga.map((g) => g.sampleIndex).sort(), [0, 1, 2]);
    assert.deepEqual(
      ga.map((g) => g.text),
      stored(b).gens.map((g) => g.text),
      'the same seed draws the same samples',
    );
    assert.ok(new Set(ga.map((g) => g.text)).size >= 2, 'three samples, one text: nothing was drawn');
  });

  it('refuses what cannot work, naming the fix', async () => {
    for (const [args, message] of [
      [['--system', 'hybrid'], /policy paper steers, so it needs --vectors DIR/],
      [['--system', 'hybrid', '--policy', 'oracle', '--vectors', tmp], /has no manifest\.json/],
      [['--system', 'base', '--vectors', shipped.vectors], /--vectors is a hybrid option/],
      [['--system', 'hybrid', '--policy', 'dance'], /--policy must be one of paper, only_bias/],
      [
        ['--system', 'hybrid', '--vectors', shipped.vectors, '--samples', '4', '--temperature', '0'],
        /--samples 4 with greedy decoding gives 4 identical answers/,
      ],
      [
        ['--system', 'hybrid', '--vectors', shipped.vectors, '--windows', '3'],
        /--windows expects integers from -1000000 to 0/,
      ],
    ] as const) {
      const r = await cli(['run', ...args, '--limit', '2', '--out', join(tmp, 'never.sqlite')]);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.err, message, args.join(' '));
    }
  });
});
