// Combines run stores (typically the shards of one run) into one. Refuses inputs whose config or
// dataset differ: their numbers would not be one run's numbers.
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ThinkwhenError } from '../errors.ts';
import { canonicalJson, datasetIdentity, RunStore } from './store.ts';

export interface MergeResult {
  out: string;
  inputs: { path: string; shard: string; generations: number; added: number }[];
  /** Generations present in more than one input (kept once). */
  duplicates: number;
  /** Duplicates whose text differs between inputs; the first input's copy is kept. */
  conflicts: number;
  generations: number;
  problems: number;
  /** Shards of the run no input holds (`3/4`), when every input is a shard of the same count. */
  missingShards: string[];
}

function describeDiff(a: unknown, b: unknown): string {
  const ao = (a ?? {}) as Record<string, unknown>;
  const bo = (b ?? {}) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(ao), ...Object.keys(bo)])].sort();
  return keys
    .filter((k) => canonicalJson(ao[k]) !== canonicalJson(bo[k]))
    .map((k) => `${k}: ${canonicalJson(ao[k]) ?? 'absent'} vs ${canonicalJson(bo[k]) ?? 'absent'}`)
    .join('; ');
}

/** Same file on disk: a symlink, a hard link or another spelling of the path all count. */
function sameFile(a: string, b: string): boolean {
  if (!existsSync(a) || !existsSync(b)) return false;
  const x = statSync(a);
  const y = statSync(b);
  return x.dev === y.dev && x.ino === y.ino;
}

export function mergeStores(
  outPath: string,
  inputPaths: string[],
  opts: { onProgress?: (msg: string) => void } = {},
): MergeResult {
  if (inputPaths.length === 0)
    throw new ThinkwhenError('MERGE_NO_INPUTS', 'nothing to merge', 'name at least one input run store');
  const out = resolve(outPath);
  const self = inputPaths.find((p) => resolve(p) === out || sameFile(p, out));
  if (self !== undefined) {
    throw new ThinkwhenError(
      'MERGE_SELF',
      `the output ${outPath} is also an input${resolve(self) === out ? '' : ` (${self}: the same file under another path)`}`,
      'write the merge to a new file',
    );
  }
  // Validate every input before writing anything.
  const inputs = inputPaths.map((p) => {
    const s = RunStore.openReadonly(p);
    const info = {
      path: s.path,
      config: s.config,
      dataset: s.dataset,
      shard: s.shard,
      generations: s.counts().generations,
    };
    s.close();
    return info;
  });
  const first = inputs[0];
  for (const x of inputs.slice(1)) {
    if (canonicalJson(x.config) !== canonicalJson(first.config)) {
      throw new ThinkwhenError(
        'MERGE_CONFIG_MISMATCH',
        `refusing to merge: ${x.path} and ${first.path} have different run configs (${describeDiff(first.config, x.config)})`,
        'merge only shards of one run, started with identical settings',
      );
    }
    const da = first.dataset ? datasetIdentity(first.dataset) : null;
    const db = x.dataset ? datasetIdentity(x.dataset) : null;
    if (canonicalJson(da) !== canonicalJson(db)) {
      throw new ThinkwhenError(
        'MERGE_DATASET_MISMATCH',
        `refusing to merge: ${x.path} and ${first.path} were run on different data (${describeDiff(da, db)})`,
        'the dataset file (sha256) and slice must be the same in every input',
      );
    }
  }

  const store = RunStore.open(
    out,
    first.dataset ? { config: first.config, dataset: first.dataset } : { config: first.config },
  );
  const result: MergeResult = {
    out,
    inputs: [],
    duplicates: 0,
    conflicts: 0,
    generations: 0,
    problems: 0,
    missingShards: [],
  };
  try {
    const db = store.db;
    for (const [i, x] of inputs.entries()) {
      opts.onProgress?.(`merging ${i + 1}/${inputs.length}: ${x.path}`);
      db.prepare('ATTACH DATABASE ? AS src').run(x.path);
      try {
        db.transaction(() => {
          const dup = db
            .prepare(
              `SELECT count(*) AS n, coalesce(sum(s.text != m.text), 0) AS conflicts FROM src.generations s
               JOIN main.generations m ON m.problem_id = s.problem_id AND m.sample_index = s.sample_index`,
            )
            .get() as { n: number; conflicts: number };
          result.duplicates += dup.n;
          result.conflicts += dup.conflicts;
          db.exec('INSERT OR IGNORE INTO main.problems SELECT * FROM src.problems');
          // Grades travel with the generation they grade: a conflicting duplicate keeps the first input's grades.
          db.exec(`INSERT OR IGNORE INTO main.grades SELECT g.* FROM src.grades g
                   WHERE NOT EXISTS (SELECT 1 FROM main.generations m WHERE m.problem_id = g.problem_id
                                     AND m.sample_index = g.sample_index)`);
          const added = db
            .prepare(
              `INSERT OR IGNORE INTO main.generations (problem_id, sample_index, text, prompt_tokens, completion_tokens, tokens,
                 annotations, steered_tokens, finish_reason, started_at, finished_at, duration_ms, session_id)
               SELECT problem_id, sample_index, text, prompt_tokens, completion_tokens, tokens, annotations, steered_tokens,
                 finish_reason, started_at, finished_at, duration_ms, NULL FROM src.generations`,
            )
            .run().changes;
          result.inputs.push({
            path: x.path,
            shard: x.shard ? `${x.shard.index}/${x.shard.count}` : 'all',
            generations: x.generations,
            added,
          });
        })();
      } finally {
        db.exec('DETACH DATABASE src');
      }
    }
    // The merged store covers several shards; record where it came from.
    store.setMeta('shard', 'null');
    const prev = JSON.parse(store.meta('merged_from') ?? '[]') as { shard?: string }[];
    const merged = [...prev, ...result.inputs.map((x) => ({ path: x.path, shard: x.shard }))];
    store.setMeta('merged_from', JSON.stringify(merged));
    result.missingShards = missingShards(merged.map((x) => x.shard));
    const c = store.counts();
    result.generations = c.generations;
    result.problems = c.problems;
  } finally {
    store.close();
  }
  return result;
}

/**
 * The shards `i/n` that no store merged so far held, when all were shards of one n (`merged_from`'s
 * `shard` fields: `i/n`, or `all` for an unsharded store); else none can be named.
 */
function missingShards(shards: (string | undefined)[]): string[] {
  const parsed = shards.map((s) => /^(\d+)\/(\d+)$/.exec(s ?? ''));
  const count = parsed[0]?.[2];
  if (!count || parsed.some((m) => m?.[2] !== count)) return [];
  const have = new Set(parsed.map((m) => Number(m![1])));
  return Array.from({ length: Number(count) }, (_, i) => i + 1)
    .filter((i) => !have.has(i))
    .map((i) => `${i}/${count}`);
}
