// Extracts files from node-llama-cpp's git bundle: the exact llama.cpp source its prebuilt
// libraries were built from. Nothing of it is committed; it lands in a cache folder.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { NODE_LLAMA_CPP_VERSION } from '../src/llama-paths.mjs';

function run(cmd, args, opts = {}) {
  execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
}

/** Extracts `paths` of the bundle into `dest` (atomically: a half-done folder is never seen). */
export function extractFromBundle(paths, dest) {
  console.log(`thinkwhen: fetching ${paths.join(', ')} from node-llama-cpp@${NODE_LLAMA_CPP_VERSION} into ${dest}`);
  const work = mkdtempSync(join(tmpdir(), 'thinkwhen-bundle-'));
  try {
    // npm verifies the tarball's integrity against the registry.
    run('npm', ['pack', `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`, '--silent', '--pack-destination', work], {
      cwd: work,
    });
    const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error('npm pack produced no tarball');
    run('tar', ['-xzf', join(work, tgz), '-C', work, 'package/llama/gitRelease.bundle']);
    run('git', [
      'clone',
      '--quiet',
      '--no-checkout',
      join(work, 'package/llama/gitRelease.bundle'),
      join(work, 'repo'),
    ]);
    const staging = join(work, 'out');
    mkdirSync(staging);
    const tar = execFileSync('git', ['-C', join(work, 'repo'), 'archive', 'HEAD', ...paths], { maxBuffer: 1 << 30 });
    execFileSync('tar', ['-x', '-C', staging], { input: tar });
    mkdirSync(dirname(dest), { recursive: true });
    rmSync(dest, { recursive: true, force: true });
    renameSync(staging, dest);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
