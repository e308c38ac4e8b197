// `thinkwhen grade ARGS` as a child process with a timeout (imports nothing from src/: a grader that
// hangs fails the test within a minute instead of hanging it).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function grade(args: string[], input?: string) {
  const r = spawnSync(process.execPath, ['bin/thinkwhen.js', 'grade', ...args], {
    cwd: repoRoot,
    input,
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 << 20,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
