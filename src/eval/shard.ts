// `--shard i/n` and `--shard auto/n`: which part of a run this process does. With `auto`, the job
// engine that started the process says which: a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX
// (0 … completions-1), a Slurm job array SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN when set, so
// that --array=1-4 works as well as --array=0-3). Shards are 1-based, as `--shard i/n` writes them.
// docs/scale-out.md shows the Job manifest and the sbatch script.
import { ThinkwhenError } from '../errors.ts';
import { parseShard, type Shard } from './store.ts';

export interface ResolvedShard {
  shard: Shard;
  /** where the index came from, for the log line: `JOB_COMPLETION_INDEX=2`; null for an explicit i/n */
  source: string | null;
}

const FIX_AUTO =
  'run it as a Kubernetes Indexed Job or a Slurm job array (docs/scale-out.md), or give the shard as --shard i/n';

/** Parses a `--shard` value: `i/n` as written, `auto/n` from the environment (`env`, default process.env). */
export function resolveShard(spec: string, env: NodeJS.ProcessEnv = process.env): ResolvedShard {
  const auto = /^auto\/(.*)$/.exec(spec.trim());
  if (!auto) return { shard: parseShard(spec), source: null };
  const count = /^\d+$/.test(auto[1]) ? Number(auto[1]) : Number.NaN;
  if (!(count >= 1) || !Number.isSafeInteger(count)) {
    throw new ThinkwhenError(
      'BAD_SHARD',
      `bad shard '${spec}'`,
      'write auto/N with N ≥ 1 the number of shards, e.g. --shard auto/4',
    );
  }
  const found = [kubernetesIndex(env), slurmIndex(env, count)].filter((x) => x !== null);
  if (found.length === 0) {
    throw new ThinkwhenError(
      'BAD_SHARD',
      `--shard ${spec}: neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID (Slurm job array) is set`,
      FIX_AUTO,
    );
  }
  if (found.length === 2 && found[0].index !== found[1].index) {
    throw new ThinkwhenError(
      'BAD_SHARD',
      `--shard ${spec}: ${found[0].source} and ${found[1].source} give different shard indices (${found[0].index} and ${found[1].index})`,
      'unset the variable of the job engine that did not start this process, or give the shard as --shard i/n',
    );
  }
  const { index, source } = found[0];
  if (index >= count) {
    throw new ThinkwhenError(
      'BAD_SHARD',
      `--shard ${spec}: ${source} is shard index ${index}, but there are only ${count} shards (indices 0 to ${count - 1})`,
      `make N in --shard auto/N the job's number of tasks (Kubernetes: completions; Slurm: the size of --array)`,
    );
  }
  return { shard: { index: index + 1, count }, source };
}

/** A 0-based index from an environment variable, or a clear error when it is not a whole number. */
function envIndex(env: NodeJS.ProcessEnv, name: string): number | null {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return null;
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(Number(raw))) {
    throw new ThinkwhenError(
      'BAD_SHARD',
      `${name}='${raw}' is not a non-negative integer`,
      `--shard auto/N reads the task index from ${name}: check what sets it, or give the shard as --shard i/n`,
    );
  }
  return Number(raw);
}

function kubernetesIndex(env: NodeJS.ProcessEnv): { index: number; source: string } | null {
  const index = envIndex(env, 'JOB_COMPLETION_INDEX');
  return index === null ? null : { index, source: `JOB_COMPLETION_INDEX=${index}` };
}

function slurmIndex(env: NodeJS.ProcessEnv, count: number): { index: number; source: string } | null {
  const id = envIndex(env, 'SLURM_ARRAY_TASK_ID');
  if (id === null) return null;
  const min = envIndex(env, 'SLURM_ARRAY_TASK_MIN') ?? 0;
  const tasks = envIndex(env, 'SLURM_ARRAY_TASK_COUNT');
  // An array of another size (a rerun of a few failed tasks, say --array=3,5) would map its tasks to
  // the wrong shards after subtracting its minimum: refuse it rather than run the wrong problems.
  if (tasks !== null && tasks !== count) {
    throw new ThinkwhenError(
      'BAD_SHARD',
      `--shard auto/${count}: the Slurm array has ${tasks} tasks (SLURM_ARRAY_TASK_COUNT), not ${count}`,
      `submit the array with --array=0-${count - 1}, or rerun single shards with --shard i/${count} (a run store resumes where it stopped)`,
    );
  }
  // Task ids with gaps (--array=0-6:2, --array=0,2,3,5) would leave shards without a task.
  const max = envIndex(env, 'SLURM_ARRAY_TASK_MAX');
  if (tasks !== null && max !== null && max - min + 1 !== tasks) {
    throw new ThinkwhenError(
      'BAD_SHARD',
      `--shard auto/${count}: the Slurm array's task ids are not consecutive (${tasks} tasks from ${min} to ${max})`,
      `submit the array with --array=0-${count - 1} (a % throttle is fine), or give each task --shard i/${count}`,
    );
  }
  if (id < min) {
    throw new ThinkwhenError(
      'BAD_SHARD',
      `SLURM_ARRAY_TASK_ID=${id} is below SLURM_ARRAY_TASK_MIN=${min}`,
      'check the job environment, or give the shard as --shard i/n',
    );
  }
  const source = min ? `SLURM_ARRAY_TASK_ID=${id} - SLURM_ARRAY_TASK_MIN=${min}` : `SLURM_ARRAY_TASK_ID=${id}`;
  return { index: id - min, source };
}
