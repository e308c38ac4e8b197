import { rename, writeFile } from 'node:fs/promises';

/** Writes JSON through a temporary file, so a crash never leaves a half-written file behind. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFile(`${path}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
}
