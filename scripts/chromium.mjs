// The Chromium the browser tests drive (through playwright-core). Nothing is downloaded at run time:
//  1. THINKWHEN_CHROMIUM=/path/to/chromium, when set;
//  2. the system's Debian chromium (/usr/bin/chromium), unless THINKWHEN_SYSTEM_CHROMIUM=0;
//  3. the Chromium shipped inside the pinned devDependency @sparticuz/chromium (installed by `npm ci`),
//     unpacked once from its brotli archives into $THINKWHEN_CACHE_DIR/chromium-<version>/ (default
//     ~/.cache/thinkwhen) with its own NSS/NSPR/expat libraries and fonts, so it needs nothing from
//     the system beyond glibc and tar.
// `node scripts/chromium.mjs` unpacks it if needed and prints which browser the tests will use.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';

const SYSTEM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
const PACKAGE = '@sparticuz/chromium';

/** Flags that keep a headless run offline, quiet and reproducible. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--font-render-hinting=none',
];

function cacheDir() {
  return process.env.THINKWHEN_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'thinkwhen');
}

function packageDir() {
  // The package's exports hide package.json: resolve its entry point and walk up to its root.
  let dir;
  try {
    dir = dirname(createRequire(import.meta.url).resolve(PACKAGE));
  } catch {
    return null;
  }
  while (!existsSync(join(dir, 'bin', 'chromium.br'))) {
    if (dirname(dir) === dir) return null;
    dir = dirname(dir);
  }
  return dir;
}

/** Unpacks the npm package's Chromium into the cache (once; concurrent callers each rename a complete copy). */
function unpackPackaged(pkgDir) {
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const dir = join(cacheDir(), `chromium-${version}`);
  const executablePath = join(dir, 'chromium');
  if (!existsSync(executablePath)) {
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const unbrotli = (name) => brotliDecompressSync(readFileSync(join(pkgDir, 'bin', name)));
    writeFileSync(join(tmp, 'chromium'), unbrotli('chromium.br'), { mode: 0o755 });
    for (const name of ['al2023', 'fonts']) {
      const out = join(tmp, name);
      mkdirSync(out);
      const r = spawnSync('tar', ['-x', '-C', out], { input: unbrotli(`${name}.tar.br`) });
      if (r.status !== 0) throw new Error(`tar could not unpack ${name}.tar.br: ${r.stderr || r.error}`);
    }
    writeFileSync(
      join(tmp, 'fonts.conf'),
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig><dir>${join(dir, 'fonts')}</dir>` +
        `<cachedir>${join(dir, 'fontconfig-cache')}</cachedir></fontconfig>\n`,
    );
    try {
      renameSync(tmp, dir);
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      if (!existsSync(executablePath)) throw err; // otherwise another process won the race
    }
  }
  return {
    executablePath,
    source: `${PACKAGE}@${version}`,
    env: { LD_LIBRARY_PATH: join(dir, 'al2023', 'lib'), FONTCONFIG_PATH: dir },
  };
}

/**
 * The browser to launch: `{executablePath, source, env}` (env: variables to add to the browser's
 * environment). Throws with the fix when there is none.
 */
export function findChromium() {
  const explicit = process.env.THINKWHEN_CHROMIUM;
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`THINKWHEN_CHROMIUM=${explicit} does not exist`);
    return { executablePath: explicit, source: 'THINKWHEN_CHROMIUM', env: {} };
  }
  if (process.env.THINKWHEN_SYSTEM_CHROMIUM !== '0') {
    const system = SYSTEM_PATHS.find((p) => existsSync(p));
    if (system) return { executablePath: system, source: 'system', env: {} };
  }
  const pkg = packageDir();
  if (!pkg) {
    throw new Error(
      `no Chromium: ${SYSTEM_PATHS[0]} is absent and ${PACKAGE} is not installed (run \`npm ci\`, which installs the devDependencies, or apt-get install chromium)`,
    );
  }
  return unpackPackaged(pkg);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const c = findChromium();
  const r = spawnSync(c.executablePath, ['--version'], { env: { ...process.env, ...c.env }, encoding: 'utf8' });
  console.log(`${c.executablePath} (${c.source}): ${(r.stdout || r.stderr || String(r.error)).trim()}`);
  process.exit(r.status === 0 ? 0 : 1);
}
