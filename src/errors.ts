export type ErrorCode = 'X';
/** An error a user can act on: what went wrong and how to fix it. The CLI prints both. */
export class ThinkwhenError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly fix?: string,
  ) {
    super(fix ? `${message} (fix: ${fix})` : message);
    this.name = 'ThinkwhenError';
  }
}
