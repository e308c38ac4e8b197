// Builds the native addon. Headers come from node-llama-cpp's git bundle of the exact llama.cpp
// source its prebuilt libraries were built from; they are cached outside the repo, never committed.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { headersCacheDir, NODE_LLAMA_CPP_VERSION } from './llama-paths.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Files taken from the bundle: the C API headers and two tokenizer-only GGUFs used by tests.
const BUNDLE_PATHS = ['include', 'ggml/include', 'models/ggml-vocab-qwen2.gguf', 'models/ggml-vocab-llama-spm.gguf'];

function run(cmd, args, opts = {}) {
  execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
}

function ensureHeaders() {
  const dest = headersCacheDir();
  if (existsSync(join(dest, 'include', 'llama.h')) && existsSync(join(dest, 'models', 'ggml-vocab-qwen2.gguf')))
    return dest;
  console.log(`thinkwhen: fetching llama.cpp headers from node-llama-cpp@${NODE_LLAMA_CPP_VERSION} into ${dest}`);
  const work = mkdtempSync(join(tmpdir(), 'thinkwhen-headers-'));
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
    const tar = execFileSync('git', ['-C', join(work, 'repo'), 'archive', 'HEAD', ...BUNDLE_PATHS], {
      maxBuffer: 1 << 30,
    });
    execFileSync('tar', ['-x', '-C', staging], { input: tar });
    mkdirSync(dirname(dest), { recursive: true });
    rmSync(dest, { recursive: true, force: true });
    renameSync(staging, dest); // atomic: a half-fetched cache is never seen
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return dest;
}

/** Node headers: the running Node's own (distro or version manager) when present, so nothing is downloaded. */
function nodeDir() {
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

const force = process.argv.includes('--force');
const addon = join(root, 'build', 'Release', 'thinkwhen.node');
ensureHeaders();
if (force || !existsSync(addon) || process.env.THINKWHEN_REBUILD) {
  const gyp = join(dirname(fileURLToPath(import.meta.resolve('node-gyp/package.json'))), 'bin', 'node-gyp.js');
  const args = [gyp, 'rebuild', '--release', '-j', 'max'];
  const nd = nodeDir();
  if (nd) args.push(`--nodedir=${nd}`);
  run(process.execPath, args, { cwd: root });
}
