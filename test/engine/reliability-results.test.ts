// The stored fuzz and leak measurements (bench/results/, docs/reliability.md) meet the targets, and
// the page quotes them as stored. Rerun the benches to refresh the files (commands in the page).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../eval/fixtures.ts';

const read = (name: string) => JSON.parse(readFileSync(join(repoRoot, 'bench', 'results', name), 'utf8'));
/** The one-line JSON the bench printed, as the page quotes it. */
const printed = (name: string) => JSON.stringify(read(name));
const page = readFileSync(join(repoRoot, 'docs', 'reliability.md'), 'utf8');

for (const name of ['fuzz-gguf.json', 'fuzz-gguf-full.json']) {
  test(`${name}: no aborts, no hangs, every file loaded or refused with a typed error`, () => {
    const r = read(name);
    assert.ok(r.files >= (name === 'fuzz-gguf.json' ? 2000 : 10000), `files ${r.files}`);
    assert.deepEqual(
      { aborts: r.aborts, hangs: r.hangs, untyped: r.untyped_errors },
      { aborts: 0, hangs: 0, untyped: 0 },
    );
    assert.equal(r.typed_errors + r.loaded, r.files);
    assert.ok(page.includes(printed(name)), `docs/reliability.md quotes ${name} as stored`);
  });
}

test('leak.json: 8,000 hook-decode context cycles grow RSS by at most 10 %', () => {
  const r = read('leak.json');
  assert.ok(r.withHooks.hooks && r.withHooks.cycles >= 8000, JSON.stringify(r.withHooks));
  assert.ok(r.withHooks.growth <= 0.1, `growth ${r.withHooks.growth}`);
  assert.ok(page.includes(printed('leak.json')), 'docs/reliability.md quotes leak.json as stored');
});
