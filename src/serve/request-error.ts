// A refused request: the HTTP status, a thinkwhen error code, what is wrong and how to fix it. The
// server answers it as OpenAI's error object plus `fix`:
//   {"error": {"message", "type", "param", "code", "fix"}}
import type { ErrorCode } from '../errors.ts';

/** OpenAI's error `type` for a status (clients branch on it). */
function typeFor(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 503) return 'server_closing';
  if (status === 504) return 'timeout_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export class RequestError extends Error {
  readonly type: string;

  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly fix: string,
    /** the request field at fault, as OpenAI names it (`messages[0].content`, `steering[1].layer`) */
    readonly param: string | null = null,
  ) {
    super(message);
    this.type = typeFor(status);
  }

  body(): { error: { message: string; type: string; param: string | null; code: string; fix: string } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code, fix: this.fix } };
  }
}

/** A 400 for one field of the body. */
export const badField = (param: string | null, message: string, fix: string) =>
  new RequestError(400, 'BAD_REQUEST', message, fix, param);

/** A ThinkwhenError raised while handling a request (a bad option, a bad vector) as a 400 with its code and fix. */
export function requestErrorFrom(
  err: { code: ErrorCode; message: string; fix?: string },
  param: string | null,
  fallbackFix: string,
) {
  const message = err.fix ? err.message.slice(0, err.message.length - ` (fix: ${err.fix})`.length) : err.message;
  return new RequestError(400, err.code, message, err.fix ?? fallbackFix, param);
}
