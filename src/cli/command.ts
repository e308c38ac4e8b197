/** One CLI command. Build it from an option table with `defineCommand` / `defineGroup` (options.ts). */
export interface Command {
  name: string;
  summary: string;
  /** The `--help` text; for a command with subcommands, `path[0]` picks one (else the overview). */
  help(path?: string[]): string;
  /** The subcommand words, for a command made of subcommands. */
  subcommands?: string[];
  /** Returns the process exit code: 0 done, 1 a check failed. Errors are thrown (exit 2). */
  run(argv: string[]): Promise<number>;
}
