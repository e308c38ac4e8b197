// The measured numbers docs/hybrid.md states come from bench/results/hybrid.json (one run of
// `bench/hybrid.ts --json`): the file must be there, and the docs must say what it says.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

test('docs/hybrid.md states the numbers of bench/results/hybrid.json', () => {
  const r = JSON.parse(readFileSync(new URL('../../bench/results/hybrid.json', import.meta.url), 'utf8'));
  const docs = readFileSync(new URL('../../docs/hybrid.md', import.meta.url), 'utf8');
  assert.equal(r.equal, true);
  assert.equal(r.margin_exceptions, 0);
  assert.match(docs, new RegExp(`\`${r.equal}\`, ${r.margin_exceptions}`));
  const x = (v: number) => `${v.toFixed(1)}×`;
  assert.ok(docs.includes(`${x(r.speedup['250'])} / ${x(r.speedup['500'])} / **${x(r.speedup['1000'])}**`));
  const rows = r.details.speedup.token_row_ratio;
  assert.ok(docs.includes(`${x(rows['250'])} / ${x(rows['500'])} / ${x(rows['1000'])}`));
  assert.ok(docs.includes(`**${r.unsteered_step_ratio.toFixed(2)}×**`));
  assert.ok(
    docs.includes(`**${r.speculative_token_ratio.toFixed(2)}× — not met**`) === r.speculative_token_ratio > 0.7,
  );
  assert.ok(docs.includes(`**${(100 * r.details.speedup.disagreement_rate).toFixed(1)} %**`));
});
