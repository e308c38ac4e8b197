import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ThinkwhenError } from '../../src/errors.ts';
import { gsm8kGold, lastBoxed, loadDataset } from '../../src/eval/datasets.ts';
import { cachePath, hubUrl } from '../../src/eval/download.ts';
import { RunStore } from '../../src/eval/store.ts';
import { sharedData } from './fixtures.ts';
import { type HubServer, startHubServer } from './helpers/hub-server.ts';

// Checksums from shared/data/PROVENANCE.md.
const SHA = {
  gsm8kTest: '3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14',
  math500: '35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132',
};

const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-datasets-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('local datasets', () => {
  it('GSM8K: 1319 problems, gold after ####, commas kept, stable ids, checksum', async () => {
    const d = await loadDataset({ dataset: 'gsm8k', dataDir: sharedData });
    assert.equal(d.problems.length, 1319);
    assert.equal(d.info.sha256, SHA.gsm8kTest);
    assert.equal(d.info.rows, 1319);
    assert.equal(d.problems[0].id, 'gsm8k/test/0');
    assert.equal(d.problems[0].answer, '18');
    assert.match(d.problems[0].solution!, /#### 18$/);
    assert.match(d.problems[0].question, /^Janet’s ducks/);
    assert.equal(d.problems.filter((p) => p.answer.includes(',')).length, 14);
    assert.equal(d.problems.filter((p) => p.answer.startsWith('-')).length, 2);
  });

  it("slices: the paper's first 500, and start/limit keep the file's ids", async () => {
    const first500 = await loadDataset({ dataset: 'gsm8k', dataDir: sharedData, limit: 500 });
    assert.equal(first500.problems.length, 500);
    assert.equal(first500.problems[499].id, 'gsm8k/test/499');
    assert.equal(first500.info.limit, 500);
    const mid = await loadDataset({ dataset: 'gsm8k', dataDir: sharedData, start: 10, limit: 3 });
    assert.deepEqual(
      mid.problems.map((p) => p.id),
      ['gsm8k/test/10', 'gsm8k/test/11', 'gsm8k/test/12'],
    );
    assert.equal(mid.problems[0].question, first500.problems[10].question);
    assert.equal(mid.info.sha256, first500.info.sha256);
    await assert.rejects(loadDataset({ dataset: 'gsm8k', dataDir: sharedData, start: -1 }), ThinkwhenError);
  });

  it('MATH500: unique_id ids, answer field, subject/level in meta', async () => {
    const d = await loadDataset({ dataset: 'math500', dataDir: sharedData });
    assert.equal(d.problems.length, 500);
    assert.equal(d.info.sha256, SHA.math500);
    assert.equal(d.problems[0].id, 'test/precalculus/807.json');
    assert.equal(d.problems[0].answer, '\\left( 3, \\frac{\\pi}{2} \\right)');
    assert.equal(d.problems[0].meta.subject, 'Precalculus');
    assert.equal(d.problems[0].meta.level, 2);
    assert.equal(new Set(d.problems.map((p) => p.id)).size, 500);
  });

  it("MATH: gold = last \\boxed{} of the solution, equal to MATH500's answer on every shared problem", async () => {
    const math = await loadDataset({ dataset: 'math', dataDir: sharedData });
    const m500 = await loadDataset({ dataset: 'math500', dataDir: sharedData });
    assert.equal(math.problems.length, 5000);
    const byId = new Map(math.problems.map((p) => [p.id, p]));
    let shared = 0;
    for (const p of m500.problems) {
      const q = byId.get(p.id);
      assert.ok(q, p.id);
      assert.equal(q.answer, p.answer, p.id);
      shared++;
    }
    assert.equal(shared, 500);
    assert.equal(math.problems[0].meta.type, 'Algebra');
  });

  it('extracts golds', () => {
    assert.equal(gsm8kGold('a\n#### 1,450,000'), '1,450,000');
    assert.equal(gsm8kGold('no marker'), null);
    assert.equal(lastBoxed('x \\boxed{1} y \\boxed{\\frac{a}{b}}.'), '\\frac{a}{b}');
    assert.equal(lastBoxed('$\\boxed 5$'), '5');
    assert.equal(lastBoxed('\\fbox{7}'), '7');
    assert.equal(lastBoxed('\\boxed{unbalanced'), null);
  });

  it('custom JSONL with a field mapping', async () => {
    const f = join(tmp, 'custom.jsonl');
    writeFileSync(f, '{"q":"1+1?","a":2,"uid":"x1","topic":"t"}\n\n{"q":"2+2?","a":"4","uid":"x2"}\n');
    const d = await loadDataset({ path: f, fields: { question: 'q', answer: 'a', id: 'uid' } });
    assert.deepEqual(d.problems[0], { id: 'x1', question: '1+1?', answer: '2', meta: { index: 0, topic: 't' } });
    assert.equal(d.problems[1].id, 'x2');
    assert.equal(d.info.name, 'custom');
    assert.equal(
      d.info.sha256,
      createHash('sha256')
        .update('{"q":"1+1?","a":2,"uid":"x1","topic":"t"}\n\n{"q":"2+2?","a":"4","uid":"x2"}\n')
        .digest('hex'),
    );
    // Without an id field, rows are numbered.
    const n = await loadDataset({ path: f, fields: { question: 'q', answer: 'a' } });
    assert.deepEqual(
      n.problems.map((p) => p.id),
      ['custom/0', 'custom/1'],
    );
  });

  it('reports a malformed JSONL line with its line number', async () => {
    const f = join(tmp, 'bad.jsonl');
    writeFileSync(f, '{"question":"a","answer":"1"}\n{"question":"b","answer":"2"}\n{"question": "c", "answer": \n');
    await assert.rejects(loadDataset({ path: f }), (e: Error) => {
      assert.ok(e instanceof ThinkwhenError);
      assert.equal(e.code, 'DATASET_MALFORMED');
      assert.match(e.message, /bad\.jsonl:3: not valid JSON/);
      return true;
    });
    writeFileSync(f, '{"question":"a","answer":"1"}\n\n{"question":"b"}\n');
    await assert.rejects(loadDataset({ path: f }), /bad\.jsonl:3: missing field 'answer'/);
    writeFileSync(f, '{"question":"a","answer":"1","id":"k"}\n{"question":"b","answer":"2","id":"k"}\n');
    await assert.rejects(loadDataset({ path: f }), /bad\.jsonl:2: duplicate id 'k' \(first at .*bad\.jsonl:1\)/);
    writeFileSync(f, '[1,2]\n');
    await assert.rejects(loadDataset({ path: f }), /bad\.jsonl:1: expected a JSON object/);
  });

  it('refuses unknown datasets and splits with a fix', async () => {
    await assert.rejects(loadDataset({ dataset: 'gsm9k' }), /unknown dataset 'gsm9k'.*gsm8k, math500, math/);
    await assert.rejects(loadDataset({ dataset: 'math500', split: 'train', dataDir: sharedData }), /no split 'train'/);
  });
});

describe('download from a hub-layout server', () => {
  let hub: HubServer;
  before(async () => {
    hub = await startHubServer(sharedData);
  });
  after(() => hub.close());

  it('MATH-500: downloads once, then the cache answers; checksum recorded in the run store', async () => {
    const cacheDir = join(tmp, 'cache-math500');
    const path = '/datasets/HuggingFaceH4/MATH-500/resolve/main/test.jsonl';
    const d1 = await loadDataset({ dataset: 'math500', endpoint: hub.url, cacheDir });
    assert.equal(hub.requests.get(path), 1);
    assert.equal(d1.problems.length, 500);
    assert.equal(d1.info.sha256, SHA.math500);
    assert.equal(d1.info.source, `${hub.url}${path}`);
    assert.equal(
      d1.info.file,
      cachePath({ repo: 'HuggingFaceH4/MATH-500', file: 'test.jsonl' }, { endpoint: hub.url, cacheDir }),
    );
    const d2 = await loadDataset({ dataset: 'math500', endpoint: hub.url, cacheDir, limit: 10 });
    assert.equal(hub.requests.get(path), 1, 'second load must be a cache hit');
    assert.equal(d2.info.sha256, SHA.math500);
    assert.deepEqual(d2.problems, d1.problems.slice(0, 10));

    const store = RunStore.open(join(tmp, 'run.sqlite'), {
      config: { name: 't', samplesPerProblem: 1 },
      dataset: d2.info,
    });
    store.close();
    const ro = RunStore.openReadonly(join(tmp, 'run.sqlite'));
    assert.equal(ro.dataset?.sha256, SHA.math500);
    assert.equal(ro.dataset?.limit, 10);
    ro.close();
  });

  it('GSM8K: reads the hub parquet and yields exactly the JSONL problems', async () => {
    const cacheDir = join(tmp, 'cache-gsm8k');
    const path = '/datasets/openai/gsm8k/resolve/main/main/test-00000-of-00001.parquet';
    process.env.THINKWHEN_HF_ENDPOINT = hub.url; // the environment variable route
    try {
      const remote = await loadDataset({ dataset: 'gsm8k', cacheDir, limit: 500 });
      assert.equal(hub.requests.get(path), 1);
      assert.equal(remote.info.format, 'parquet');
      assert.equal(remote.info.rows, 1319);
      assert.equal(remote.info.sha256, createHash('sha256').update(hub.files.get(path)!).digest('hex'));
      const local = await loadDataset({ dataset: 'gsm8k', dataDir: sharedData, limit: 500 });
      assert.deepEqual(remote.problems, local.problems);
      await loadDataset({ dataset: 'gsm8k', cacheDir });
      assert.equal(hub.requests.get(path), 1);
    } finally {
      delete process.env.THINKWHEN_HF_ENDPOINT;
    }
  });

  it('fails clearly on 404 and when offline without a cached copy', async () => {
    const cacheDir = join(tmp, 'cache-empty');
    await assert.rejects(
      loadDataset({ dataset: 'gsm8k', split: 'train', endpoint: hub.url, cacheDir }),
      (e: Error) => e instanceof ThinkwhenError && e.code === 'DOWNLOAD_FAILED' && /404/.test(e.message),
    );
    await assert.rejects(
      loadDataset({ dataset: 'math500', endpoint: hub.url, cacheDir, offline: true }),
      (e: Error) => e instanceof ThinkwhenError && e.code === 'DATASET_NOT_CACHED',
    );
  });

  it('builds hub URLs', () => {
    assert.equal(
      hubUrl({ repo: 'openai/gsm8k', file: 'main/test-00000-of-00001.parquet' }, { endpoint: 'https://h.example/' }),
      'https://h.example/datasets/openai/gsm8k/resolve/main/main/test-00000-of-00001.parquet',
    );
  });
});
