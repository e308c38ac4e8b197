// The stored load-test results (bench/results/serve*.json, made by bench/serve.ts) and the numbers
// docs/serve.md quotes from them: the files must be there, say what the docs say, and pass.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const docs = readFileSync('docs/serve.md', 'utf8');

for (const file of ['bench/results/serve.json', 'bench/results/serve-in-process.json']) {
  test(`${file}: zero errors, identical texts, bad requests 4xx, RSS flat (±10 %) after the first round; docs/serve.md quotes it`, () => {
    const r = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(r.errors, 0);
    assert.equal(r.differing, 0);
    assert.equal(r.identical, true);
    assert.equal(r.tokens.concurrent, r.tokens.oneClient * r.config.rounds, 'every round generated every token');
    assert.ok(r.config.clients >= 16);
    for (const [name, b] of Object.entries(r.badRequests) as [string, { status: number; message: string }][]) {
      assert.ok(b.status >= 400 && b.status < 500 && b.message, `${name}: ${b.status}`);
    }
    assert.ok(Math.abs(r.serverRssMiB.growthOverRounds) <= 0.1, `RSS growth ${r.serverRssMiB.growthOverRounds}`);
    const t = r.tokensPerSecond;
    const row = `${Math.round(t.concurrent)} / ${Math.round(t.oneClient)} (×${t.ratio.toFixed(2)})`;
    assert.ok(docs.includes(row), `docs/serve.md quotes ${row}`);
  });
}
