// Hostile command lines (issue #14): each one crashed with a stack trace, ran on nonsense, lost data or
// exited 0 while dropping results. Each must now exit 2 with a message that names the problem and the fix,
// and leave every file it was pointed at as it was.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { backendInfo } from '../../src/engine/index.ts';
import { buildFakeRun, gsm8kProblems, repoRoot } from '../eval/fixtures.ts';
import { cli } from '../helpers/cli.ts';
import { tinyLlama } from '../helpers/models.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-hostile-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const digest = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Exit 2, one line naming the problem with a fix, and no stack trace. */
function refused(r: { code: number; err: string }, message: RegExp): void {
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, message);
  assert.match(r.err, /\(fix: /);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
}

describe('doctor --layer', () => {
  it('refuses what is not a layer of the model as a usage error, before any check runs', async () => {
    for (const bad of ['NaN', '2.5', '0', '-3', '1e9', 'x']) {
      const r = await cli(['doctor', '--model', tinyLlama(), `--layer=${bad}`]);
      refused(r, /--layer expects an integer from 1 to 4095/);
      assert.equal(r.out, '', 'no check ran');
    }
    const r = await cli(['doctor', '--model', tinyLlama(), '--layer', '99']);
    refused(r, /--layer 99 is out of range: this model has \d+ layers/);
    assert.equal(r.out, '');
  });
});

describe('gradcheck --device gpu', () => {
  it('says there is no GPU instead of a stack trace', async (t) => {
    if (backendInfo().devices.some((d) => d.type === 'gpu')) return t.skip('this build has a GPU backend');
    refused(await cli(['gradcheck', '--device', 'gpu']), /no GPU backend is loaded .*THINKWHEN_BACKEND=cuda/);
  });
});

describe('report and merge', () => {
  let a: string;
  let b: string;
  before(async () => {
    const { problems, info } = await gsm8kProblems(8);
    const run = { name: 'r', role: 'base', accuracy: 0.5, problems };
    a = await buildFakeRun(join(tmp, 'a.sqlite'), { ...run, seed: 1, shard: { index: 1, count: 2 } }, info);
    b = await buildFakeRun(join(tmp, 'b.sqlite'), { ...run, seed: 2, shard: { index: 2, count: 2 } }, info);
  });

  it('report --grader of a grader the run lacks, and a pass@k no run can give, are errors', async () => {
    refused(await cli(['report', a, '--grader', 'nope', '--out', join(tmp, 'r1')]), /has no grades by 'nope'/);
    refused(await cli(['report', a, '--k', '1e12']), /--k expects integers from 1 to 65536/);
    refused(
      await cli(['report', a, '--k', '1,4', '--out', join(tmp, 'r2')]),
      /pass@4 needs 4 graded samples per problem; the runs have at most 1 \(fix: use k values from 1 to 1\)/,
    );
    refused(await cli(['report', a, '--bootstrap', '1e9']), /--bootstrap expects an integer from 0 to 100000/);
    refused(await cli(['report', a, '--price', '1']), /--price takes 2 numbers/);
    assert.deepEqual(
      readdirSync(tmp).filter((f) => f.startsWith('r')),
      [],
      'no report was written',
    );
  });

  it('report --out on a file, or under one, names the path', async () => {
    const file = join(tmp, 'plain.txt');
    writeFileSync(file, 'keep me');
    refused(await cli(['report', a, '--out', file]), /--out .*plain\.txt is a file, not a folder/);
    refused(await cli(['report', a, '--out', join(file, 'sub')]), /not a directory, mkdir .*plain\.txt\/sub/);
    assert.equal(readFileSync(file, 'utf8'), 'keep me');
  });

  it('merge into one of its inputs through a symlink is refused and the input is unchanged', async () => {
    const link = join(tmp, 'link.sqlite');
    symlinkSync(a, link);
    const before = digest(a);
    refused(
      await cli(['merge', link, a, b]),
      /the output .*link\.sqlite is also an input \(.*a\.sqlite: the same file/,
    );
    assert.equal(digest(a), before);
  });

  it('merge OUT that is a folder, a text file, another database or under a file: refused, untouched', async () => {
    const dir = join(tmp, 'folder');
    mkdirSync(dir);
    refused(await cli(['merge', dir, a]), /folder is a folder, not a run store/);
    const text = join(tmp, 'notes.txt');
    writeFileSync(text, 'not a database');
    refused(await cli(['merge', text, a]), /notes\.txt is not a SQLite database/);
    assert.equal(readFileSync(text, 'utf8'), 'not a database');
    const other = join(tmp, 'other.db');
    const db = new Database(other);
    db.exec('CREATE TABLE mine (x)');
    db.close();
    const before = digest(other);
    refused(await cli(['merge', other, a]), /other\.db is a SQLite database but not a thinkwhen run store/);
    assert.equal(digest(other), before);
    refused(
      await cli(['merge', join(text, 'x.sqlite'), a]),
      /mkdir .*notes\.txt.* \(fix: a file of that name is in the way/,
    );
    refused(await cli(['merge', join(tmp, 'm.sqlite')]), /need an output and at least one input/);
  });
});

describe('taxonomy annotate --out', () => {
  it('never overwrites a file that is not an earlier annotation', async () => {
    const traces = join(tmp, 'traces.jsonl');
    const text = '{"id":"q1","fullResponse":"..."}\n';
    writeFileSync(traces, text);
    const args = ['taxonomy', 'annotate', '--dir', join(tmp, 'no-tax'), '--model', 'm.gguf', '--traces', traces];
    refused(await cli([...args, '--out', traces]), /is not an annotation written by thinkwhen taxonomy annotate/);
    assert.equal(readFileSync(traces, 'utf8'), text);
  });
});

describe('organism sample --json | head', () => {
  it('stops quietly when the reader closes the pipe', async () => {
    const child = spawn(process.execPath, ['bin/thinkwhen.js', 'organism', 'sample', '--json', '--count', '5000'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    // Like `head -1`: read the first chunk, then close our end.
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((ok) => child.on('close', ok));
    assert.equal(err, '');
    assert.equal(code, 0);
  });
});

describe('structure', () => {
  it('src/ never imports from scripts/', () => {
    const files = readdirSync(join(repoRoot, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) =>
      /\.(ts|mjs)$/.test(f),
    );
    assert.ok(files.length > 50);
    for (const f of files) {
      const text = readFileSync(join(repoRoot, 'src', f), 'utf8');
      assert.doesNotMatch(text, /from ['"][./]*scripts\//, f);
    }
  });
});
