import { ThinkwhenError } from '../errors.ts';
import type { Command } from './command.ts';

// Commands load lazily so that `thinkwhen grade` does not pay for the native engine.
const registry: Record<string, () => Promise<Command>> = {
  doctor: async () => (await import('./doctor.ts')).command,
  gradcheck: async () => (await import('./gradcheck.ts')).command,
  grade: async () => (await import('./grade.ts')).command,
  merge: async () => (await import('./merge.ts')).command,
  organism: async () => (await import('./organism.ts')).command,
  report: async () => (await import('./report.ts')).command,
  run: async () => (await import('./run.ts')).command,
  traces: async () => (await import('./traces.ts')).command,
  activations: async () => (await import('./activations.ts')).command,
  taxonomy: async () => (await import('./taxonomy.ts')).command,
};

async function printOverview(): Promise<void> {
  const lines = ['thinkwhen: hybrid reasoning models over llama.cpp', '', 'usage: thinkwhen <command> [options]', ''];
  for (const load of Object.values(registry)) {
    const c = await load();
    lines.push(`  ${c.name.padEnd(18)} ${c.summary}`);
  }
  lines.push('', 'Run `thinkwhen <command> --help` for the options of one command.');
  console.log(lines.join('\n'));
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    if (name === 'help' && rest[0] && registry[rest[0]]) {
      console.log((await registry[rest[0]]()).help);
      return 0;
    }
    await printOverview();
    return 0;
  }
  const load = registry[name];
  if (!load) {
    console.error(`thinkwhen: unknown command '${name}'. Run \`thinkwhen --help\` for the list.`);
    return 2;
  }
  const command = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.help);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof ThinkwhenError) {
      console.error(`thinkwhen ${name}: ${err.message}`);
      return 2;
    }
    const code = (err as { code?: string }).code ?? '';
    if (err instanceof TypeError && code.startsWith('ERR_PARSE_ARGS_')) {
      console.error(`thinkwhen ${name}: ${err.message.replace(/\.$/, '')}. Run \`thinkwhen ${name} --help\`.`);
      return 2;
    }
    throw err;
  }
}
