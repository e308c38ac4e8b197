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

/** Time left at this session's pace: 0 when done, NaN before this session finished a unit. */
export function etaMs(p: ProgressState): number {
  const left = p.total - p.done;
  if (left <= 0) return 0;
  return p.doneNow > 0 ? (p.elapsedMs / p.doneNow) * left : Number.NaN;
}

/** `label [#####-----] 120/500 problems, 1,234 tok/s, ETA 3m05s`. */
export function formatProgress(p: ProgressState, width = 20): string {
  const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
  const filled = Math.round(frac * width);
  const secs = p.elapsedMs / 1000;
  const rate = secs > 0 ? p.tokensNow / secs : 0;
  const left = p.total - p.done;
  return (
    `${p.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${p.done}/${p.total}, ` +
    `${Math.round(rate).toLocaleString('en-US')} tok/s, ${left === 0 ? `done in ${formatDuration(p.elapsedMs)}` : `ETA ${formatDuration(etaMs(p))}`}`
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

/** Progress of several runs under way at once, on one status line. */
export interface ProgressBoard {
  /** a run begins: `doneBefore` of `total` units were done by earlier sessions */
  start(name: string, total: number, doneBefore: number): void;
  advance(name: string, units: number, tokens: number): void;
  /** a run ended: `line` (default: its final progress) printed on a line of its own */
  finish(name: string, line?: string): void;
  /** a line of its own, above the status line */
  log(line: string): void;
  /** clears the status line (runs that never finished, an error on its way) */
  close(): void;
}

/**
 * On a terminal one status line, redrawn at most 5 times a second: the full bar while one run is
 * under way, `label a 12/300 ETA 3m05s · b 40/300 ETA 1m10s` while several are; cut to the
 * terminal's width so it never wraps. Elsewhere (logs, CI) that line every 15 seconds. A finished
 * run and a log line get a line of their own, so runs that end at once never share a line.
 */
export function progressBoard(
  label: string,
  o: { out?: NodeJS.WriteStream; print?: (line: string) => void } = {},
): ProgressBoard {
  const out = o.out ?? process.stderr;
  const print = o.print ?? ((line: string) => out.write(`${line}\n`));
  const tty = out.isTTY === true;
  const runs = new Map<string, { state: ProgressState; t0: number }>();
  let last = Date.now(); // the first log line after 15 s, not at once
  let shown = false; // a status line is on the terminal
  const now = (name: string) => {
    const run = runs.get(name);
    if (run) run.state.elapsedMs = Date.now() - run.t0;
    return run?.state;
  };
  const full = (s: ProgressState) => formatProgress({ ...s, label: `${label} ${s.label}` });
  const status = () => {
    const states = [...runs.keys()].map((name) => now(name) as ProgressState);
    if (states.length === 1) return full(states[0]);
    const each = states.map((s) => `${s.label} ${s.done}/${s.total} ETA ${formatDuration(etaMs(s))}`);
    return `${label} ${each.join(' · ')}`;
  };
  const clear = () => {
    if (tty && shown) out.write('\r\x1b[K');
    shown = false;
  };
  const draw = (force: boolean) => {
    const t = Date.now();
    if (runs.size === 0 || (!force && t - last < (tty ? 200 : 15000))) return;
    last = t;
    if (!tty) {
      out.write(`${status()}\n`);
      return;
    }
    const width = Math.max(20, (out.columns || 80) - 1);
    const line = status();
    out.write(`\r\x1b[K${line.length > width ? `${line.slice(0, width - 1)}…` : line}`);
    shown = true;
  };
  const own = (line: string) => {
    clear();
    print(line);
    if (tty) draw(true);
  };
  return {
    start(name, total, doneBefore) {
      const state = { label: name, done: doneBefore, total, doneNow: 0, tokensNow: 0, elapsedMs: 0 };
      runs.set(name, { state, t0: Date.now() });
      if (tty) draw(true);
    },
    advance(name, units, tokens) {
      const run = runs.get(name);
      if (!run) return;
      run.state.done += units;
      run.state.doneNow += units;
      run.state.tokensNow += tokens;
      draw(false);
    },
    finish(name, line) {
      const state = now(name);
      runs.delete(name);
      const text = line ?? (state ? full(state) : null);
      if (text !== null) own(text);
      else if (tty) draw(true);
    },
    log: own,
    close() {
      runs.clear();
      clear();
    },
  };
}
