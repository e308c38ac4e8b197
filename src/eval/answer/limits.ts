/**
 * Bounds on one grading call. Exact arithmetic is capped per intermediate (every numerator and denominator,
 * not only single powers) and in total (the gcd work that reducing fractions costs), and the whole call has a
 * wall-clock budget. Past a bound the call ends as "not equivalent" with the reason recorded: never a guess,
 * never a hang.
 */
export type LimitReason = 'exact arithmetic too large' | 'time budget exceeded';

export class GradeLimitError extends RangeError {
  constructor(readonly reason: LimitReason) {
    super(reason);
    this.name = 'GradeLimitError';
  }
}

/** Largest numerator or denominator built exactly (`2^{20000}` fits; `10^{10^{10}}` does not). */
export const MAX_EXACT_BITS = 20_000;
/**
 * Total cost of reducing fractions in one call, in 64-bit words (numerator words × denominator words, summed
 * over every reduction). A gcd costs about that many word steps, so this keeps the worst call near a second
 * on a slow machine, while a real answer (`\frac{100!}{2^{50}}`) spends a few units.
 */
export const MAX_EXACT_WORK = 100_000;
/** Default wall-clock budget of one grading call. */
export const DEFAULT_TIME_LIMIT_MS = 5_000;

interface Budget {
  deadline: number;
  work: number;
}

let active: Budget | null = null;

/**
 * Runs `fn` as one grading call under a fresh budget. A call nested inside another one shares the outer budget
 * (a set comparison is one call, not one per element).
 */
export function withinLimits<T>(timeLimitMs: number, fn: () => T): T {
  if (active) return fn();
  active = { deadline: performance.now() + timeLimitMs, work: 0 };
  try {
    return fn();
  } finally {
    active = null;
  }
}

/** Throws once the current call has run past its time budget. */
export function checkTime(): void {
  if (active && performance.now() >= active.deadline) throw new GradeLimitError('time budget exceeded');
}

/** Charges exact-arithmetic work to the current call (and checks its clock). */
export function chargeExactWork(units: number): void {
  if (!active) return;
  active.work += units;
  if (active.work > MAX_EXACT_WORK) throw new GradeLimitError('exact arithmetic too large');
  checkTime();
}
