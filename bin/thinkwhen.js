#!/usr/bin/env node
// Runs the TypeScript CLI directly through tsx: no separate build step to forget.
import { register } from 'tsx/esm/api';

// A reader that stops early (`thinkwhen organism sample --json | head`) closes the pipe: that ends
// the output, it is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
