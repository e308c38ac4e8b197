// A progress line for long runs: problems done of total, tokens per second and the time left.
// On a terminal it redraws one line (at most 5 times a second); elsewhere (logs, CI) it prints a
// line every 15 seconds, so a log shows progress without drowning in it.

export interface ProgressState {
  label: string;
  /** units done, counting those done by earlier sessions */
  done: number;
  total: number;
  /** units done in this session (the rate and the ETA use these) */
  doneNow: number;
  tokensNow: number;
  elapsedMs: number;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** `label [#####-----] 120/500 problems, 1,234 tok/s, ETA 3m05s`. */
export function formatProgress(p: ProgressState, width = 20): string {
  const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
  const filled = Math.round(frac * width);
  const secs = p.elapsedMs / 1000;
  const rate = secs > 0 ? p.tokensNow / secs : 0;
  const left = p.total - p.done;
  const eta = p.doneNow > 0 && left > 0 ? (p.elapsedMs / p.doneNow) * left : left === 0 ? 0 : Number.NaN;
  return (
    `${p.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${p.done}/${p.total}, ` +
    `${Math.round(rate).toLocaleString('en-US')} tok/s, ${left === 0 ? `done in ${formatDuration(p.elapsedMs)}` : `ETA ${formatDuration(eta)}`}`
  );
}

export interface ProgressBar {
  /** add finished units and generated tokens */
  advance(units: number, tokens: number): void;
  /** print the final state on its own line */
  finish(): void;
}

export function progressBar(
  label: string,
  total: number,
  doneBefore: number,
  out: NodeJS.WriteStream = process.stderr,
): ProgressBar {
  const t0 = Date.now();
  const tty = out.isTTY === true;
  const state: ProgressState = { label, done: doneBefore, total, doneNow: 0, tokensNow: 0, elapsedMs: 0 };
  let last = 0;
  const draw = (force: boolean) => {
    const now = Date.now();
    state.elapsedMs = now - t0;
    if (!force && now - last < (tty ? 200 : 15000)) return;
    last = now;
    out.write(tty ? `\r\x1b[K${formatProgress(state)}` : `${formatProgress(state)}\n`);
  };
  if (!tty) last = t0; // the first log line after 15 s, not at once
  return {
    advance(units, tokens) {
      state.done += units;
      state.doneNow += units;
      state.tokensNow += tokens;
      draw(false);
    },
    finish() {
      state.elapsedMs = Date.now() - t0;
      out.write(tty ? `\r\x1b[K${formatProgress(state)}\n` : `${formatProgress(state)}\n`);
    },
  };
}
