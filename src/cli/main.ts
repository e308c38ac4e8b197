import { ThinkwhenError } from '../errors.ts';
import type { Command } from './command.ts';

// Commands load lazily so that `thinkwhen grade` does not pay for the native engine.
const registry: Record<string, () => Promise<Command>> = {
  doctor: async () => (await import('./doctor.ts')).command,
  gradcheck: async () => (await import('./gradcheck.ts')).command,
  grade: async () => (await import('./grade.ts')).command,
  hybrid: async () => (await import('./hybrid.ts')).command,
  merge: async () => (await import('./merge.ts')).command,
  organism: async () => (await import('./organism.ts')).command,
  report: async () => (await import('./report.ts')).command,
  run: async () => (await import('./run.ts')).command,
  serve: async () => (await import('./serve.ts')).command,
  view: async () => (await import('./view.ts')).command,
  traces: async () => (await import('./traces.ts')).command,
  activations: async () => (await import('./activations.ts')).command,
  taxonomy: async () => (await import('./taxonomy.ts')).command,
  vectors: async () => (await import('./vectors.ts')).command,
};

async function printOverview(): Promise<void> {
  const lines = ['thinkwhen: hybrid reasoning models over llama.cpp', '', 'usage: thinkwhen <command> [options]', ''];
  for (const load of Object.values(registry)) {
    const c = await load();
    lines.push(`  ${c.name.padEnd(18)} ${c.summary}`);
  }
  lines.push(
    '',
    'Run `thinkwhen <command> --help` (or `thinkwhen help <command>`) for the options of one command.',
    'Exit status: 0 done, 1 a check failed (doctor, gradcheck, organism eval, grade --jsonl), 2 an error.',
  );
  console.log(lines.join('\n'));
}

/** What the operating system says, and what to do about it, for the file errors a user can cause. */
const SYSTEM_FIXES: Record<string, string> = {
  ENOENT: 'check the path',
  EACCES: 'check the permissions of the path',
  EPERM: 'check the permissions of the path',
  EISDIR: 'this path is a folder: give a file path',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EEXIST: 'a file of that name is in the way: move it or choose another path',
  ENOSPC: 'free some disk space',
  EROFS: 'write to a writable file system',
  ENAMETOOLONG: 'use a shorter path',
};

/** The message for an error, or null when it is a bug (then the stack trace is what helps). */
function describe(err: unknown, name: string): string | null {
  if (err instanceof ThinkwhenError) return err.message;
  const e = err as { code?: unknown; message?: string; path?: string; dest?: string };
  const code = typeof e.code === 'string' ? e.code : '';
  if (err instanceof TypeError && code.startsWith('ERR_PARSE_ARGS_')) {
    return `${err.message.replace(/\.$/, '')} (fix: see thinkwhen ${name} --help)`;
  }
  if (code in SYSTEM_FIXES && e.message) {
    // Node: "EISDIR: illegal operation on a directory, open '/x'"; keep the reason and the path.
    const reason = e.message.replace(/^[A-Z]+: /, '');
    return `${reason} (fix: ${SYSTEM_FIXES[code]})`;
  }
  if (code.startsWith('SQLITE_') && e.message) return `SQLite: ${e.message} (${code})`;
  return null;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || (name === 'help' && !rest[0])) {
    await printOverview();
    return 0;
  }
  const wanted = name === 'help' ? rest[0] : name;
  const load = registry[wanted];
  if (!load) {
    console.error(`thinkwhen: unknown command '${wanted}' (fix: run \`thinkwhen --help\` for the list)`);
    return 2;
  }
  const command = await load();
  if (name === 'help') {
    console.log(command.help(rest.slice(1)));
    return 0;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.help(rest.filter((a) => !a.startsWith('-'))));
    return 0;
  }
  const label = command.subcommands?.includes(rest[0]) ? `${name} ${rest[0]}` : name;
  try {
    return await command.run(rest);
  } catch (err) {
    const message = describe(err, label);
    if (message !== null) {
      console.error(`thinkwhen ${label}: ${message}`);
      return 2;
    }
    console.error(
      `thinkwhen ${label}: unexpected error (a bug in thinkwhen: please report it with the command line)\n`,
      err,
    );
    return 2;
  }
}
