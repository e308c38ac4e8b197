// Rules of the repository's shape: generic stages never import the model organism (the organism or the
// CLI composes the stages), and nothing cites documents a user of the repository does not have.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const src = join(root, 'src');

/** The layers above the stages, which may compose them with the organism. */
const COMPOSERS = ['organism', 'experiments', 'cli', 'web', 'serve'].map((d) => join(src, d));

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Absolute paths of the relative modules a source file imports (static, re-exported or dynamic). */
function importsOf(file: string, code = readFileSync(file, 'utf8')): string[] {
  const re = /\b(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;
  return [...code.matchAll(re)].map((m) => resolve(dirname(file), m[1]));
}

const under = (path: string, dir: string) => !relative(dir, path).startsWith('..');

test('the import scanner sees static, type-only, re-exported and dynamic imports', () => {
  const file = join(src, 'taxonomy', 'x.ts');
  const code = [
    "import { a } from '../organism/a.ts';",
    "import type { B } from '../organism/b.ts';",
    "export * from '../organism/c.ts';",
    "const d = await import('../organism/d.ts');",
    "import './e.ts';",
  ].join('\n');
  assert.deepEqual(
    importsOf(file, code).map((p) => relative(src, p)),
    ['organism/a.ts', 'organism/b.ts', 'organism/c.ts', 'organism/d.ts', 'taxonomy/e.ts'],
  );
  assert.ok(
    importsOf(join(src, 'cli', 'taxonomy.ts')).includes(join(src, 'organism', 'taxonomy.ts')),
    'the CLI composes the organism chain',
  );
});

test('no generic stage (taxonomy, engine, gguf, train, traces, steer, hybrid, eval, …) imports src/organism', () => {
  const organism = join(src, 'organism');
  const offenders = tsFiles(src)
    .filter((f) => !COMPOSERS.some((d) => under(f, d)))
    .flatMap((f) =>
      importsOf(f)
        .filter((p) => under(p, organism))
        .map((p) => `${relative(root, f)} → ${relative(root, p)}`),
    );
  assert.deepEqual(offenders, [], 'compose the organism with the stages in src/organism/ or src/cli/ instead');
});

test('no file of the repository cites the shared docs outside it (cite docs/method.md §…)', () => {
  const pattern = ['shared', 'docs'].join('/');
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  })
    .split('\0')
    .filter((f) => f && !f.startsWith('.ci/'));
  assert.ok(files.includes('docs/method.md'), 'git lists the repository files');
  const offenders = files.filter((f) => {
    try {
      return readFileSync(join(root, f), 'utf8').includes(pattern);
    } catch {
      return false; // listed but deleted in the working tree
    }
  });
  assert.deepEqual(offenders, []);
});
