// Where the pinned llama.cpp pieces live: headers (cached outside git) and prebuilt libraries (npm).
// Used by binding.gyp (as a command), by scripts/ at install time (plain node, hence .mjs) and by src/.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const NODE_LLAMA_CPP_VERSION = '3.21.1';

export function headersCacheDir() {
  const base =
    process.env.THINKWHEN_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'thinkwhen');
  return join(base, `llama.cpp-${NODE_LLAMA_CPP_VERSION}`);
}

/** Directory of the prebuilt llama.cpp libraries. CUDA only when asked for and installed. */
export function binsDir() {
  const require = createRequire(import.meta.url);
  const wantCuda = process.env.THINKWHEN_BACKEND === 'cuda';
  const pkgs = wantCuda
    ? ['@node-llama-cpp/linux-x64-cuda', '@node-llama-cpp/linux-x64']
    : ['@node-llama-cpp/linux-x64'];
  for (const pkg of pkgs) {
    // The package's exports hide package.json, so look along Node's own search path.
    for (const nodeModules of require.resolve.paths(pkg) ?? []) {
      const dir = join(nodeModules, pkg, 'bins', pkg.endsWith('cuda') ? 'linux-x64-cuda' : 'linux-x64');
      if (existsSync(join(dir, 'libllama.v0.4.0.so'))) return dir;
    }
  }
  throw new Error(
    `prebuilt llama.cpp libraries not found: install @node-llama-cpp/linux-x64@${NODE_LLAMA_CPP_VERSION} (npm ci)`,
  );
}

// Command-line use from binding.gyp (checked by file name, so bundlers that inline this module do not trigger it).
if (process.argv[1]?.endsWith('llama-paths.mjs')) {
  const what = process.argv[2];
  if (what === 'include')
    console.log([join(headersCacheDir(), 'include'), join(headersCacheDir(), 'ggml', 'include')].join(' '));
  else if (what === 'bins') console.log(binsDir());
  else {
    console.error('usage: llama-paths.mjs include|bins');
    process.exit(2);
  }
}
