// The stored load tests (bench/results/serve*.json, made by bench/serve.ts) and the numbers
// docs/serve.md quotes from them: the files must be there, be the size, and meet its bars.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const docs = readFileSync('docs/serve.md', 'utf8');

interface Record {
  command: string;
  config: { clients: number; requests: number; distinct: number; block: number; models: string[] };
  errors: number;
  completed: number;
  identical: boolean;
  differing: number;
  tokens: { oneClient: number; concurrent: number };
  tokensPerSecond: { oneClient: number; concurrent: number; ratio: number };
  serverRssMiB: { blocks: { ended: number; mib: number }[]; growthFirstToLastBlock: number };
  badRequests: { [name: string]: { status: number; code: string; message: string } };
}

const read = (file: string): Record => JSON.parse(readFileSync(file, 'utf8'));
const pct = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(100 * x).toFixed(1)} %`;

/** The bars every stored run meets, RSS aside. */
function checkRun(r: Record): void {
  assert.match(r.command, /bench\/serve\.ts/, 'the command that made it');
  assert.ok(r.config.clients >= 64, `${r.config.clients} clients`);
  assert.ok(r.config.requests >= 1000, `${r.config.requests} requests`);
  assert.equal(r.errors, 0);
  assert.equal(r.completed, r.config.requests);
  assert.equal(r.differing, 0);
  assert.equal(r.identical, true);
  // every request generated as many tokens as its one-at-a-time twin
  assert.equal(r.config.requests % r.config.distinct, 0);
  assert.equal(r.tokens.concurrent, (r.tokens.oneClient * r.config.requests) / r.config.distinct);
  const bad = r.badRequests;
  assert.deepEqual(Object.keys(bad).sort(), [
    'a vector of the wrong width',
    'malformed JSON',
    'negative max_tokens',
    'unknown model',
  ]);
  for (const [name, b] of Object.entries(bad)) {
    assert.ok(b.status >= 400 && b.status < 500 && b.message, `${name}: ${b.status} ${b.message}`);
  }
  const blocks = r.serverRssMiB.blocks;
  assert.equal(blocks.length, Math.ceil(r.config.requests / r.config.block), 'RSS after every block');
  assert.equal(blocks[blocks.length - 1].ended, r.config.requests);
  const growth = (blocks[blocks.length - 1].mib - blocks[0].mib) / blocks[0].mib;
  assert.ok(Math.abs(growth - r.serverRssMiB.growthFirstToLastBlock) < 1e-3);
  const t = r.tokensPerSecond;
  const row = `${Math.round(t.concurrent)} / ${Math.round(t.oneClient)} (×${t.ratio.toFixed(2)})`;
  assert.ok(docs.includes(row), `docs/serve.md quotes ${row}`);
  const rss = `${blocks[0].mib} → ${blocks[blocks.length - 1].mib} MiB (${pct(growth)})`;
  assert.ok(docs.includes(rss), `docs/serve.md quotes ${rss}`);
}

for (const file of ['bench/results/serve.json', 'bench/results/serve-in-process.json']) {
  test(`${file}: 64 clients, 1,000 requests, zero errors, identical texts, bad requests 4xx, RSS flat (±10 %)`, () => {
    const r = read(file);
    checkRun(r);
    assert.ok(
      Math.abs(r.serverRssMiB.growthFirstToLastBlock) <= 0.1,
      `RSS ${pct(r.serverRssMiB.growthFirstToLastBlock)} from the first block to the last`,
    );
  });
}

// The hybrid in the mix: the same bars but RSS. With glibc's default malloc settings the hybrid's
// per-request contexts make RSS grow (docs/serve.md says why and quotes it); with the mmap threshold
// pinned it must never rise more than 10 % above the first block.
test('bench/results/serve-hybrid.json: 1,000 requests with the hybrid, zero errors, identical texts', () => {
  const r = read('bench/results/serve-hybrid.json');
  assert.deepEqual(r.config.models, ['base', 'thinking', 'hybrid']);
  checkRun(r);
});

test('bench/results/serve-hybrid-mmap.json: the same with MALLOC_MMAP_THRESHOLD_ pinned, RSS never 10 % above the first block', () => {
  const r = read('bench/results/serve-hybrid-mmap.json');
  assert.deepEqual(r.config.models, ['base', 'thinking', 'hybrid']);
  assert.match(r.command, /MALLOC_MMAP_THRESHOLD_=65536/);
  checkRun(r);
  const blocks = r.serverRssMiB.blocks;
  const high = Math.max(...blocks.map((b) => b.mib));
  assert.ok(high <= 1.1 * blocks[0].mib, `highest block ${high} MiB, first ${blocks[0].mib} MiB`);
});
