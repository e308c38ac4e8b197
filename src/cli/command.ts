/** One CLI subcommand. `help` is printed by `thinkwhen help NAME` and `thinkwhen NAME --help`. */
export interface Command {
  name: string;
  summary: string;
  help: string;
  /** Returns the process exit code. */
  run(argv: string[]): Promise<number>;
}
