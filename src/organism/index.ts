// Library API of the model organism: problems, traces with sentence labels, the parser, the
// shipped model files, building and evaluating.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ThinkwhenError } from '../errors.ts';
import { Rng } from '../rng.ts';
import { BASE_VERIFY_P } from './corpus.ts';
import { makeTrace, type Trace, type VerifyPolicy } from './language.ts';
import { DEFAULT_DIFFICULTY, type Difficulty, generateProblems, type Split } from './task.ts';

export * from './build.ts';
export { BASE_VERIFY_P, buildCorpus, type Corpus, type CorpusOptions, type Example } from './corpus.ts';
export * from './eval.ts';
export * from './language.ts';
export * from './model-file.ts';
export * from './parser.ts';
export * from './task.ts';
export {
  CHAT_TEMPLATE,
  decodeIds,
  encodeAnswer,
  encodePrompt,
  encodeText,
  organismVocab,
  promptText,
  segment,
} from './vocab.ts';

/** Paths of the shipped models (src/organism/models/). */
/**
 * The organism's model files in `dir` (default: the shipped ones). `baseLatent` is the second base
 * model of the planned v2 organism (docs/organism.md); this organism does not ship it.
 */
export interface OrganismModelPaths {
  base: string;
  baseLatent: string;
  thinking: string;
}

export function organismModelPaths(dir?: string): OrganismModelPaths {
  const at = (f: string) => (dir ? join(dir, f) : fileURLToPath(new URL(`./models/${f}`, import.meta.url)));
  return { base: at('base.gguf'), baseLatent: at('base-latent.gguf'), thinking: at('thinking.gguf') };
}

/** The shipped model paths, or a ThinkwhenError saying how to build them. */
export function requireOrganismModels(dir?: string): OrganismModelPaths {
  const p = organismModelPaths(dir);
  for (const f of [p.base, p.thinking]) {
    if (!existsSync(f))
      throw new ThinkwhenError('ORGANISM_MISSING', `organism model not found: ${f}`, 'run `thinkwhen organism build`');
  }
  return p;
}

export interface OrganismTraceOptions {
  split?: Split;
  count: number;
  seed?: number;
  /** 'thinking': verify every quick computation; 'base': verify at random (as the base corpus); or any policy */
  policy?: 'thinking' | 'base' | VerifyPolicy;
  difficulty?: Difficulty;
}

/**
 * Problems with ground-truth traces, each sentence labelled with its type
 * (setup, plan, compute, verify, backtrack, conclude).
 */
export function organismTraces(o: OrganismTraceOptions): Trace[] {
  const policy: VerifyPolicy =
    o.policy === 'base'
      ? { kind: 'random', p: BASE_VERIFY_P }
      : o.policy === 'thinking' || !o.policy
        ? { kind: 'always' }
        : o.policy;
  const seed = o.seed ?? 1;
  const rng = new Rng(seed * 31 + 7);
  return generateProblems(o.split ?? 'test', o.count, seed, o.difficulty ?? DEFAULT_DIFFICULTY).map((p) =>
    makeTrace(p, policy, rng),
  );
}
