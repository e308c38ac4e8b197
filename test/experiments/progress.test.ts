// The demo's progress board with two runs under way at once: on a terminal one status line naming
// both, cut to the width, and every finished run on a line of its own; in a log no redraws at all.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressBoard } from '../../src/experiments/progress.ts';

/** What a stream was sent, as text. */
function sink(isTTY: boolean, columns = 80) {
  const chunks: string[] = [];
  const out = { isTTY, columns, write: (s: string) => chunks.push(s) > 0 } as unknown as NodeJS.WriteStream;
  return { out, text: () => chunks.join('') };
}

describe('progressBoard', () => {
  it('on a terminal: one status line for both runs, finished runs above it, cleared at the end', () => {
    const s = sink(true, 60);
    const board = progressBoard('demo', { out: s.out });
    board.start('hybrid', 300, 0);
    assert.match(s.text(), /\r\x1b\[Kdemo hybrid \[-+\] 0\/300/);
    board.start('only_bias', 300, 40);
    board.advance('hybrid', 12, 500);
    board.finish('hybrid', 'hybrid: 300/300 graded');
    board.log('a note');
    board.close();
    const screens = s.text().split('\r\x1b[K');
    const both = screens.find((l) => l.includes('hybrid 0/300') && l.includes('only_bias 40/300'));
    assert.ok(both, `no status line with both runs: ${JSON.stringify(screens)}`);
    for (const l of screens) assert.ok(l.replace(/\n$/, '').length <= 59, `wider than the terminal: ${l}`);
    assert.ok(screens.includes('hybrid: 300/300 graded\n'), 'the finished run on a line of its own');
    assert.ok(screens.includes('a note\n'));
    // after the finish only only_bias is under way: its full bar; close leaves the line empty
    assert.match(s.text(), /demo only_bias \[#*-+\] 40\/300/);
    assert.ok(s.text().endsWith('\r\x1b[K'), 'close clears the status line');
  });

  it('in a log: no redraws, one line per finished run, the status at most every 15 s', () => {
    const s = sink(false);
    const board = progressBoard('demo', { out: s.out });
    board.start('hybrid', 3, 0);
    board.start('base', 3, 0);
    for (let i = 0; i < 3; i++) board.advance('hybrid', 1, 10);
    board.finish('base', 'base: 3/3 graded');
    board.finish('hybrid');
    board.close();
    assert.doesNotMatch(s.text(), /\r|\x1b/);
    const lines = s.text().trimEnd().split('\n');
    assert.equal(lines.length, 2, s.text());
    assert.equal(lines[0], 'base: 3/3 graded');
    assert.match(lines[1], /^demo hybrid \[#+\] 3\/3, .*done in/);
  });

  it('hands lines of their own to `print` (the CLI: console.error)', () => {
    const s = sink(false);
    const printed: string[] = [];
    const board = progressBoard('demo', { out: s.out, print: (l) => printed.push(l) });
    board.start('base', 1, 0);
    board.finish('base', 'base: done');
    board.log('note');
    assert.deepEqual(printed, ['base: done', 'note']);
    assert.equal(s.text(), '');
  });
});
