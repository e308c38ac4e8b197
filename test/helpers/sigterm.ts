// Stops a child process the way a job scheduler does: SIGTERM, then SIGKILL if it has not exited
// within a minute (a hung child fails its test instead of hanging the suite).
import type { ChildProcess } from 'node:child_process';

export async function sigtermAndWait(child: ChildProcess, exited: Promise<number | null>): Promise<number | null> {
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}
