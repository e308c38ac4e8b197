// Library API of the model organism: problems, traces with sentence labels, the parser, the
// shipped model files, building and evaluating.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ThinkwhenError } from '../errors.ts';
import { Rng } from '../rng.ts';
import { type CorpusKind, corpusPolicy } from './corpus.ts';
import { makeTrace, type Trace, type VerifyPolicy } from './language.ts';
import { DEFAULT_DIFFICULTY, type Difficulty, generateProblems, type Split } from './task.ts';

export * from './build.ts';
export {
  BASE_VERIFY_P,
  buildCorpus,
  type Corpus,
  type CorpusKind,
  type CorpusOptions,
  corpusPolicy,
  type Example,
} from './corpus.ts';
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

/** Paths of the organism's models: base, base-latent and thinking. */
export interface OrganismModelPaths {
  base: string;
  /** the base model that never saw a verification inside a trace (docs/organism.md) */
  baseLatent: string;
  thinking: string;
}

/** The organism's model files in `dir` (default: the shipped models, src/organism/models/). */
export function organismModelPaths(dir?: string): OrganismModelPaths {
  const at = (f: string) => (dir ? join(dir, f) : fileURLToPath(new URL(`./models/${f}`, import.meta.url)));
  return { base: at('base.gguf'), baseLatent: at('base-latent.gguf'), thinking: at('thinking.gguf') };
}

/** The model paths, or a ThinkwhenError naming the missing file and how to build it. */
export function requireOrganismModels(dir?: string): OrganismModelPaths {
  const p = organismModelPaths(dir);
  for (const f of [p.base, p.baseLatent, p.thinking]) {
    if (!existsSync(f))
      throw new ThinkwhenError('ORGANISM_MISSING', `organism model not found: ${f}`, 'run `thinkwhen organism build`');
  }
  return p;
}

export interface OrganismTraceOptions {
  split?: Split;
  count: number;
  seed?: number;
  /**
   * 'thinking': verify exactly when a carry or borrow is needed; 'base': verify at random (as the
   * base and base-latent corpora); 'pretrain': never (as the pre-training traces); or any policy
   */
  policy?: CorpusKind | VerifyPolicy;
  difficulty?: Difficulty;
}

/**
 * Problems with ground-truth traces, each sentence labelled with its type
 * (setup, plan, compute, verify, backtrack, conclude).
 */
export function organismTraces(o: OrganismTraceOptions): Trace[] {
  const policy: VerifyPolicy = typeof o.policy === 'object' ? o.policy : corpusPolicy(o.policy ?? 'thinking');
  const seed = o.seed ?? 1;
  const rng = new Rng(seed * 31 + 7);
  return generateProblems(o.split ?? 'test', o.count, seed, o.difficulty ?? DEFAULT_DIFFICULTY).map((p) =>
    makeTrace(p, policy, rng),
  );
}
