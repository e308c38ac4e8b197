// Transitional: option parsing for commands not yet on the option tables (options.ts).
import { ThinkwhenError } from '../errors.ts';

export function int(v: string | undefined, name: string, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new ThinkwhenError('BAD_ARGUMENT', `--${name} expects an integer ≥ ${min}, got '${v}'`);
  }
  return n;
}

export function oneOf<T extends string>(v: string | undefined, name: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) {
    throw new ThinkwhenError('BAD_ARGUMENT', `--${name} must be one of ${allowed.join(', ')}, got '${v}'`);
  }
  return v as T;
}
