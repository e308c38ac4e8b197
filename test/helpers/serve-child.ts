// `thinkwhen serve --port 0 ARGS` as a child process, ready once its listening line is printed: the
// serve CLI test and the load test (bench/serve.ts) both start the server this way.
import { type ChildProcess, spawn } from 'node:child_process';

export interface ServeChild {
  child: ChildProcess;
  url: string;
  /** the model ids of the listening line, as printed (comma-separated) */
  models: string;
  stderr: () => string;
  /** SIGTERM, then the exit code */
  stop: () => Promise<number | null>;
}

/** Starts the server and waits up to `timeoutMs` for its listening line (stopping it on failure). */
export async function startServeChild(args: string[], timeoutMs: number): Promise<ServeChild> {
  const child = spawn(process.execPath, ['bin/thinkwhen.js', 'serve', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const stop = async () => {
    child.kill('SIGTERM');
    return exited;
  };
  try {
    const [url, models] = await new Promise<[string, string]>((res, rej) => {
      const timer = setTimeout(
        () => rej(new Error(`no listening line in ${timeoutMs / 1000} s: ${out} ${err}`)),
        timeoutMs,
      );
      child.stdout.on('data', () => {
        const m = /listening on (http:\/\/\S+)\/v1 \(models: ([^)]*)\)/.exec(out);
        if (m) {
          clearTimeout(timer);
          res([m[1], m[2]]);
        }
      });
      child.on('exit', () => rej(new Error(`thinkwhen serve exited early: ${err}`)));
    });
    return { child, url, models, stderr: () => err, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
