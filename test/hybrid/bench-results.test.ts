// The measured numbers docs/hybrid.md states come from bench/results/hybrid.json (one run of
// `bench/hybrid.ts --json`) and bench/results/hybrid-organism.json (one run of
// `bench/hybrid-organism.ts --json`): the files must be there, and the docs must say what they say.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');
const x = (v: number | null) => (v === null ? 'not run' : `${v.toFixed(1)}×`);

test('docs/hybrid.md states the numbers of bench/results/hybrid.json', () => {
  const r = JSON.parse(read('../../bench/results/hybrid.json'));
  const docs = read('../../docs/hybrid.md');
  assert.equal(r.equal, true);
  assert.equal(r.margin_exceptions, 0);
  assert.match(docs, new RegExp(`\`${r.equal}\`, ${r.margin_exceptions}`));
  assert.ok(docs.includes(`${x(r.speedup['250'])} / ${x(r.speedup['500'])} / ${x(r.speedup['1000'])}`));
  const rows = r.details.speedup.token_row_ratio;
  assert.ok(docs.includes(`${x(rows['250'])} / ${x(rows['500'])} / ${x(rows['1000'])}`));
  assert.ok(docs.includes(`**${r.unsteered_step_ratio.toFixed(2)}×**`));
  assert.ok(
    docs.includes(`**${r.speculative_token_ratio.toFixed(2)}× — not met**`) === r.speculative_token_ratio > 0.7,
  );
  assert.ok(docs.includes(`**${(100 * r.details.speedup.disagreement_rate).toFixed(1)} %**`));
  assert.ok(docs.includes(`${(100 * r.details.qwen.disagreement_rate).toFixed(1)} %`));
  const curve = r.details.qwen.decode_cost_by_rows;
  for (const k of ['2', '4', '8']) assert.ok(docs.includes(`${curve[k].per_row_vs_one_row.toFixed(2)}`), `k = ${k}`);
});

test('docs/hybrid.md states the organism throughput of bench/results/hybrid-organism.json', () => {
  const r = JSON.parse(read('../../bench/results/hybrid-organism.json'));
  const docs = read('../../docs/hybrid.md');
  assert.ok(r.rows.length >= 2);
  for (const row of r.rows) {
    const line = `| ${row.batch} | ${row.hybrid_ms_per_token.cpu.toFixed(2)} |`;
    assert.ok(docs.includes(line), line);
  }
});
