// `thinkwhen grade --jsonl - --judge` end to end: a child process talking to a real local
// OpenAI-compatible server (test/llm/fake-openai.ts), with the on-disk cache and failure paths.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildJudgePrompt } from '../../../src/eval/answer/judge.ts';
import { type Reply, type SeenRequest, startFakeOpenAI } from '../../llm/fake-openai.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const tmp = mkdtempSync(path.join(tmpdir(), 'thinkwhen-judge-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  lines: Array<Record<string, unknown>>;
}

/** Async spawn: the fake server lives in this process, so the event loop must keep running. */
function grade(args: string[], input: string, env: Record<string, string> = {}): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!('OPENAI_BASE_URL' in env)) delete childEnv.OPENAI_BASE_URL;
  delete childEnv.OPENAI_API_KEY;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/thinkwhen.js', 'grade', ...args], { cwd: repoRoot, env: childEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const lines = stdout
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, stdout, stderr, lines });
    });
    child.stdin.end(input);
  });
}

const jsonl = (rows: unknown[]): string =>
  `${rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n')}\n`;

/** The judge says YES iff the model's answer mentions the number on the gold's `####` line. */
function yesIfGoldNumber(req: SeenRequest): Reply {
  const prompt = req.body.messages.at(-1)?.content ?? '';
  const gold = prompt.match(/#### (\S+)/)?.[1] ?? '\u0000';
  const answer = prompt.match(/Model's answer: (.*)\n\nFirst,/)?.[1] ?? '';
  return { content: answer.includes(gold) ? 'YES' : 'NO' };
}

const ROWS = [
  // judge and rule-based agree: correct
  { question: 'How much does she make?', gold: 'She makes 9*2 = 18.\n#### 18', pred: 'So she makes\n\n$18 a day.' },
  // the rule-based grader (last number: 2) says false; this judge sees "18" and says YES
  { question: 'How many eggs?', gold: '16-3-4-9 = 18\n#### 18', pred: 'She sells 18 eggs, at $2 each.' },
  // both say false
  { question: 'How many bolts?', gold: '2+1 = 3\n#### 3', pred: 'It takes 4 bolts.' },
  // no question: graded, not judged
  { gold: '#### 5', pred: 'The answer is 5.' },
  // bad line: reported, not judged
  '{"gold": 1, "pred": ',
];

test('--judge: per-line verdicts from the endpoint, the paper prompt and settings; a rerun is served from the cache', async (t) => {
  const server = await startFakeOpenAI(yesIfGoldNumber);
  t.after(() => server.close());
  const cache = path.join(tmp, 'cache-main');
  const args = ['--jsonl', '-', '--extract', 'gsm8k', '--judge', '--judge-url', server.baseUrl];
  const first = await grade([...args, '--judge-model', 'judge-m', '--judge-cache', cache], jsonl(ROWS));
  assert.equal(first.code, 1, first.stderr); // the bad line
  assert.equal(first.lines.length, ROWS.length);
  assert.deepEqual(
    first.lines.map((l) => [l.equivalent, l.judge, l.judge_source]),
    [
      [true, true, 'judge'],
      [false, true, 'judge'],
      [false, false, 'judge'],
      [true, null, 'skipped'],
      [false, null, 'skipped'],
    ],
  );
  assert.equal(first.lines[0].judge_reply, 'YES');
  assert.equal(first.lines[0].extracted, '18');
  assert.match(String(first.lines[4].error), /malformed JSON/);
  assert.match(first.stderr, /line 5: malformed JSON/);
  assert.match(first.stderr, /judge judge-m at .*: 3 verdicts \(3 requests, 0 from cache\), 0 fallback, 2 skipped/);
  assert.match(first.stderr, /disagree on 1\b/);

  // Three requests, one per judged line, each with the paper's prompt (whitespace-collapsed response).
  assert.equal(server.requests.length, 3);
  const prompts = server.requests.map((r) => r.body.messages.at(-1)?.content).sort();
  const expected = ROWS.slice(0, 3)
    .map((r) => {
      const row = r as { question: string; gold: string; pred: string };
      return buildJudgePrompt(row.question, row.gold, row.pred.replace(/\s+/g, ' ').trim());
    })
    .sort();
  assert.deepEqual(prompts, expected);
  for (const r of server.requests) {
    assert.equal(r.body.model, 'judge-m');
    assert.equal(r.body.temperature, 0);
    assert.equal(r.body.max_tokens, 100);
    assert.deepEqual(
      r.body.messages.map((m) => m.role),
      ['user'],
    );
  }

  // Same input, same cache: no new request, same verdicts, marked as cached.
  const second = await grade([...args, '--judge-model', 'judge-m', '--judge-cache', cache], jsonl(ROWS));
  assert.equal(server.requests.length, 3, 'the rerun must not reach the server');
  assert.deepEqual(
    second.lines.map((l) => [l.judge, l.judge_source]),
    [
      [true, 'cache'],
      [true, 'cache'],
      [false, 'cache'],
      [null, 'skipped'],
      [null, 'skipped'],
    ],
  );
  assert.match(second.stderr, /3 verdicts \(0 requests, 3 from cache\)/);

  // Another model is another cache key: it does reach the server.
  const other = await grade([...args, '--judge-model', 'judge-2', '--judge-cache', cache], jsonl(ROWS.slice(0, 1)));
  assert.equal(other.code, 0, other.stderr);
  assert.equal(server.requests.length, 4);
  assert.equal(other.lines[0].judge_source, 'judge');
});

test('--judge: the URL defaults to OPENAI_BASE_URL; output keeps input order when replies arrive out of order', async (t) => {
  // Earlier lines answer later: line i waits (6 - i) * 40 ms.
  const server = await startFakeOpenAI((req) => {
    const prompt = req.body.messages.at(-1)?.content ?? '';
    const i = Number(prompt.match(/Question: q(\d+)/)?.[1]);
    return { content: i % 2 === 0 ? 'Yes.' : 'no', delayMs: (6 - i) * 40 };
  });
  t.after(() => server.close());
  const rows = Array.from({ length: 6 }, (_, i) => ({ question: `q${i}`, gold: `${i}`, pred: `${i}` }));
  const r = await grade(
    ['--jsonl', '-', '--judge', '--judge-cache', path.join(tmp, 'cache-order'), '--judge-concurrency', '6'],
    jsonl(rows),
    { OPENAI_BASE_URL: server.baseUrl },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    r.lines.map((l) => [l.gold_parsed, l.judge]),
    rows.map((_, i) => [String(i), i % 2 === 0]),
  );
  assert.equal(server.requests.length, 6);
  assert.ok(server.peakConcurrency() > 1, 'calls should overlap');
  assert.equal(server.requests[0].body.model, 'gpt-4.1'); // the paper's judge model by default
});

/** A port nothing listens on: bind one, then close it. */
async function deadPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

test('--judge: an unreachable endpoint stops with an error naming the fix; --judge-fallback keeps the rule-based verdict', async () => {
  const url = `http://127.0.0.1:${await deadPort()}/v1`;
  const rows = ROWS.slice(0, 3);
  const common = ['--jsonl', '-', '--extract', 'gsm8k', '--judge', '--judge-url', url, '--judge-retries', '1'];
  const cache = path.join(tmp, 'cache-dead');
  const dead = await grade([...common, '--judge-cache', cache], jsonl(rows));
  assert.equal(dead.code, 2);
  assert.equal(dead.stdout, '');
  assert.match(
    dead.stderr,
    /thinkwhen grade: the judge endpoint is unreachable: cannot reach .*127\.0\.0\.1.*ECONNREFUSED/,
  );
  assert.match(dead.stderr, /fix: start the server, or point --judge-url .* add --judge-fallback/);
  assert.doesNotMatch(dead.stderr, /--llm-base-url|at .*\.ts:\d+/); // no other command's flag, no stack trace

  const start = Date.now();
  const soft = await grade([...common, '--judge-cache', cache, '--judge-fallback'], jsonl(rows));
  assert.equal(soft.code, 0, soft.stderr);
  assert.deepEqual(
    soft.lines.map((l) => [l.equivalent, l.judge, l.judge_source]),
    [
      [true, null, 'fallback'],
      [false, null, 'fallback'],
      [false, null, 'fallback'],
    ],
  );
  assert.match(String(soft.lines[0].judge_error), /unreachable/);
  assert.match(soft.stderr, /0 verdicts .* 3 fallback/);
  assert.ok(Date.now() - start < 30_000);
});

test('--judge: an unknown model stops the run at once (queued lines send nothing); bad options are clear errors', async (t) => {
  const server = await startFakeOpenAI(() => ({ status: 404, body: '{"error":{"message":"model not found"}}' }));
  t.after(() => server.close());
  const many = jsonl(Array.from({ length: 40 }, (_, i) => ({ question: `q${i}`, gold: '1', pred: '1' })));
  const cache = path.join(tmp, 'c404');
  const args = ['--jsonl', '-', '--judge', '--judge-url', server.baseUrl, '--judge-cache', cache];
  const r = await grade([...args, '--judge-model', 'nope', '--judge-concurrency', '2'], many);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /the judge endpoint .* does not serve model "nope" \(fix: pass --judge-model/);
  // Only the calls already in flight when the first failed reached the server.
  assert.ok(server.requests.length <= 2, `${server.requests.length} requests`);
  const sent = server.requests.length;

  const rows = jsonl(ROWS.slice(0, 1));
  const bad = await grade(['--jsonl', '-', '--judge', '--judge-retries', 'many'], rows);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--judge-retries expects an integer from 0 to 100, got 'many'/);
  const noJudge = await grade(['--jsonl', '-', '--judge-url', server.baseUrl], rows);
  assert.equal(noJudge.code, 2);
  assert.match(noJudge.stderr, /--judge-url needs --judge/);
  const single = await grade(['--gold', '1', '--pred', '1', '--judge'], '');
  assert.equal(single.code, 2);
  assert.match(single.stderr, /--judge needs --jsonl/);
  assert.equal(server.requests.length, sent);
});
