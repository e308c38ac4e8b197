// Runs independent jobs a few at a time ("lanes"): each lane takes the next job of the list when its
// last one ends. The organism's models are too small for a second ggml thread to speed up one
// decode, but two decodes on two cores run side by side (the addon decodes on libuv's worker pool).

export interface LaneOptions<R> {
  /** stops the running jobs (they get the lanes' signal) and the taking of new ones */
  signal?: AbortSignal;
  /** true: take no further job after this result (an interrupted run) */
  stopAfter?: (result: R) => boolean;
}

/**
 * Runs `run(job, signal)` for the jobs in list order on at most `lanes` at once and returns the
 * results by job index (a job never started leaves a hole). When a job throws, the lanes' signal
 * aborts so the running jobs stop at their next step; once every lane has stopped, the first error
 * is rethrown.
 */
export async function runInLanes<J, R>(
  jobs: readonly J[],
  lanes: number,
  run: (job: J, signal: AbortSignal) => Promise<R>,
  o: LaneOptions<R> = {},
): Promise<(R | undefined)[]> {
  const stop = new AbortController();
  const forward = () => stop.abort(o.signal?.reason);
  if (o.signal?.aborted) forward();
  o.signal?.addEventListener('abort', forward, { once: true });
  const results: (R | undefined)[] = new Array(jobs.length).fill(undefined);
  let next = 0;
  let stopped = false;
  let failure: { error: unknown } | null = null;
  const lane = async () => {
    while (!stopped && !stop.signal.aborted && next < jobs.length) {
      const index = next++;
      try {
        const result = await run(jobs[index], stop.signal);
        results[index] = result;
        if (o.stopAfter?.(result)) stopped = true;
      } catch (error) {
        failure ??= { error };
        stop.abort(error);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(lanes, jobs.length)) }, lane));
  } finally {
    o.signal?.removeEventListener('abort', forward);
  }
  if (failure) throw (failure as { error: unknown }).error;
  return results;
}
