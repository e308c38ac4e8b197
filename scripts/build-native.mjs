// Builds the native addon. Headers come from node-llama-cpp's git bundle of the exact llama.cpp
// source its prebuilt libraries were built from; they are cached outside the repo, never committed.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { headersCacheDir } from '../src/llama-paths.mjs';
import { extractFromBundle } from './llama-bundle.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Files taken from the bundle: the C API headers and two tokenizer-only GGUFs used by tests.
const BUNDLE_PATHS = ['include', 'ggml/include', 'models/ggml-vocab-qwen2.gguf', 'models/ggml-vocab-llama-spm.gguf'];

function run(cmd, args, opts = {}) {
  execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
}

function ensureHeaders() {
  const dest = headersCacheDir();
  if (!existsSync(join(dest, 'include', 'llama.h')) || !existsSync(join(dest, 'models', 'ggml-vocab-qwen2.gguf'))) {
    extractFromBundle(BUNDLE_PATHS, dest);
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
