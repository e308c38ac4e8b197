#!/usr/bin/env node
// Runs the TypeScript CLI directly through tsx: no separate build step to forget.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
