// The whole taxonomy chain on the shipped model organism (a missing model file fails it):
// traces of its thinking model on held-out problems -> activations -> SAE grid -> offline selection,
// scored against the true sentence types.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultOrganismModel } from '../../src/organism/taxonomy.ts';
import { cli } from '../helpers/cli.ts';

test('score --organism names the missing model and how to get it', async () => {
  const r = await cli(['taxonomy', 'score', '--organism', '--organism-model', '/nonexistent/thinking.gguf', '--json']);
  assert.equal(r.code, 2);
  assert.match(r.err, /thinking model is not at \/nonexistent\/thinking\.gguf .*fix: build it/);
});

test('score --organism --json: the chain on the organism, against ground truth', async () => {
  const model = defaultOrganismModel();
  assert.ok(existsSync(model), `the shipped organism model ${model} is missing: run \`thinkwhen organism build\``);
  const dir = mkdtempSync(join(tmpdir(), 'tw-organism-tax-'));
  const args = ['taxonomy', 'score', '--organism', '--dir', dir, '--problems', '60', '--k', '5,10', '--threads', '1'];
  const r = await cli([...args, '--json']);
  assert.equal(r.code, 0, r.err);
  const out = JSON.parse(r.out);
  assert.deepEqual(Object.keys(out), ['layer', 'k', 'ari', 'nmi', 'purity', 'problems', 'thinking', 'command']);
  assert.equal(out.problems, 60);
  assert.match(out.thinking.sha256, /^[0-9a-f]{64}$/);
  assert.ok([5, 10].includes(out.k));
  assert.ok(out.ari > 0.2, `ARI ${out.ari}`);
  assert.ok(out.purity > 0.6, `purity ${out.purity}`);
  // A rerun resumes every stage and selects the same taxonomy.
  const again = await cli([...args, '--json']);
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(JSON.parse(again.out), out);
});
