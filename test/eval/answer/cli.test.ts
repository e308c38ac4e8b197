import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { grade } from './grade-child.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'thinkwhen-grade-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('--gold/--pred prints true or false and exits 0 either way', () => {
  assert.deepEqual(grade(['--gold', '\\frac{1}{2}', '--pred', '0.5']), { code: 0, stdout: 'true\n', stderr: '' });
  const no = grade(['--gold', '(3,4]', '--pred', '(3,4)']);
  assert.equal(no.code, 0);
  assert.equal(no.stdout, 'false\n');
  assert.equal(grade(['--gold', '5', '--pred', '']).stdout, 'false\n');
  assert.equal(grade(['--gold', '18', '--pred', 'So she makes $18.00 a day.', '--extract', 'gsm8k']).stdout, 'true\n');
});

test('--jsonl: one output line per input line, in order; bad lines reported with their number; exit 1', () => {
  const file = path.join(tmp, 'pairs.jsonl');
  const lines = [
    JSON.stringify({ gold: '2,125', pred: '2125' }),
    '{"gold": "1", "pred": ', // malformed JSON
    JSON.stringify({ gold: '1,-2', pred: '-2, 1' }),
    JSON.stringify({ gold: '7' }), // missing pred
    JSON.stringify({ gold: '7', pred: '' }), // empty prediction: graded, false
    '[1, 2]', // not an object
    JSON.stringify({ gold: 18, pred: '18.00' }), // numeric gold accepted
    JSON.stringify({ gold: '(3,4]', pred: '(3,4)' }),
  ];
  writeFileSync(file, `${lines.join('\n')}\n`);
  const r = grade(['--jsonl', file]);
  assert.equal(r.code, 1);
  const out = r.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(out.length, lines.length);
  assert.deepEqual(out[0], { equivalent: true, gold_parsed: '2125', pred_parsed: '2125' });
  assert.equal(out[1].equivalent, false);
  assert.match(out[1].error, /malformed JSON/);
  assert.deepEqual(out[2], { equivalent: true, gold_parsed: '{1, -2}', pred_parsed: '{-2, 1}' });
  assert.deepEqual(out[3], { equivalent: false, error: 'missing field "pred"' });
  assert.deepEqual(out[4], { equivalent: false, gold_parsed: '7', pred_parsed: null });
  assert.match(out[5].error, /JSON object/);
  assert.deepEqual(out[6], { equivalent: true, gold_parsed: '18', pred_parsed: '18' });
  assert.deepEqual(out[7], { equivalent: false, gold_parsed: '(3, 4]', pred_parsed: '(3, 4)' });
  assert.match(r.stderr, /line 2: malformed JSON/);
  assert.match(r.stderr, /line 4: missing field "pred"/);
  assert.match(r.stderr, /line 6: expected a JSON object/);
  assert.doesNotMatch(r.stderr, /line (1|3|5|7|8):/);
});

test('--jsonl - reads stdin; all good lines exit 0; a 1 MB prediction line is graded quickly', () => {
  const huge = JSON.stringify({ gold: '5', pred: `${'\\boxed{'.repeat(100_000)}5` });
  const input = [
    JSON.stringify({ gold: 'x=5', pred: '5' }),
    huge,
    JSON.stringify({ gold: '\\text{(C)}', pred: 'C' }),
  ].join('\n');
  const start = Date.now();
  const r = grade(['--jsonl', '-', '--extract', 'math'], input);
  assert.ok(Date.now() - start < 20_000);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    out.map((o) => o.equivalent),
    [false, false, false],
  );
  // With --extract the pred is a response: a bare "5" has no box or anchor, so nothing is extracted.
  assert.equal(out[0].extracted, null);
  const plain = grade(['--jsonl', '-'], input);
  assert.deepEqual(
    plain.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l).equivalent),
    [true, false, true],
  );
});

test('usage errors: exit 2 with a message that says how to fix it; --help teaches with examples', () => {
  const missing = grade(['--gold', '1']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /need --gold and --pred, or --jsonl FILE/);
  const nofile = grade(['--jsonl', path.join(tmp, 'absent.jsonl')]);
  assert.equal(nofile.code, 2);
  assert.match(nofile.stderr, /no such file/);
  const mode = grade(['--gold', '1', '--pred', '1', '--extract', 'magic']);
  assert.equal(mode.code, 2);
  assert.match(mode.stderr, /--extract must be one of boxed, .*got 'magic'/);
  const help = grade(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Examples:/);
  assert.match(help.stdout, /--jsonl FILE/);
});
