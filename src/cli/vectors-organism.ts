// The vector stages composed on the model organism: its taxonomy workspace (traces of the thinking
// model on train-split problems, activations, SAEs — `taxonomy score --organism` — and the SAE the
// organism's hybrid uses, chosen by its readout at the pair's disagreements), the
// annotation of those traces, the organism's prompt, its parser as ground truth, and the
// organism-specific defaults (docs/vectors.md says why each differs from the paper's).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { selectByReadout } from '../organism/artifacts.ts';
import { organismModelPaths, parseSentence } from '../organism/index.ts';
import { runOrganismChain } from '../organism/taxonomy.ts';
import type { ExampleSource } from '../steer/examples.ts';
import { latentsOf, readSelectionFile, readSources, type TaxonomySelection } from '../steer/sources.ts';
import { writeFileAtomic } from '../steer/vector-set.ts';
import { annotateTraces } from '../taxonomy/annotate.ts';
import { readGrid } from '../taxonomy/evaluate.ts';
import { readSelection } from '../taxonomy/selection.ts';
import { readTraces } from '../traces/generate.ts';

/** The organism's ground truth: the type its parser gives a sentence (null: not a sentence of its language). */
export const organismLabel = (sentence: string): string | null => parseSentence(sentence.trim()).type;

// The organism's training defaults and coefficients are organism policy: src/organism/artifacts.ts.
export { ORGANISM_COEFS, organismSettings } from '../organism/artifacts.ts';

export interface OrganismInputs {
  base: string;
  thinking: string;
  sources: ExampleSource[];
  selection: TaxonomySelection;
  latents: Array<{ latent: number; title: string }>;
  sae: Record<string, unknown>;
}

/**
 * The organism's taxonomy workspace (built by the taxonomy chain when missing, reused otherwise)
 * and the annotation of its traces with the selected SAE (cached per layer and K).
 */
export async function organismInputs(o: {
  dir: string;
  models?: string;
  problems?: number;
  threads?: number;
  onProgress?: (line: string) => void;
}): Promise<OrganismInputs> {
  // Only base + thinking: the vectors do not need base-latent.gguf (absent from v1 organisms).
  const { base, thinking } = organismModelPaths(o.models);
  for (const f of [base, thinking]) {
    if (!existsSync(f)) {
      throw new ThinkwhenError(
        'ORGANISM_MISSING',
        `organism model not found: ${f}`,
        o.models ? 'pass a --models folder holding base.gguf and thinking.gguf' : 'run `thinkwhen organism build`',
      );
    }
  }
  const taxDir = join(o.dir, 'taxonomy');
  if (!existsSync(join(taxDir, 'selection.json'))) {
    o.onProgress?.(`vectors: no taxonomy in ${o.dir} yet; running the organism's taxonomy chain`);
    await runOrganismChain({
      dir: o.dir,
      model: thinking,
      // train-split problems: the hybrid and the organism's evaluation use the test split
      split: 'train',
      problems: o.problems,
      threads: o.threads,
      onProgress: o.onProgress,
    });
  }
  const tracesPath = join(o.dir, 'traces.jsonl');
  // the SAE the organism's hybrid would use (docs/demo.md): the best readout, not the paper's score
  if (readSelectionFile(taxDir).metric !== 'readout') {
    const grid = await readGrid(taxDir);
    await selectByReadout({ base, thinking }, tracesPath, taxDir, grid, o.threads, o.onProgress ?? (() => {}));
  }
  const selection = readSelectionFile(taxDir);
  const annotatedPath = join(o.dir, `annotated-layer${selection.layer}-k${selection.k}.jsonl`);
  if (!existsSync(annotatedPath)) {
    o.onProgress?.(
      `vectors: annotating ${tracesPath} with the selected SAE (layer ${selection.layer}, K=${selection.k})`,
    );
    const model = await Model.load(thinking);
    try {
      const traces = (await readTraces(tracesPath)).records;
      const annotated = await annotateTraces(model, traces, await readSelection(taxDir), {
        thinking: 'generated',
        threads: o.threads,
      });
      writeFileAtomic(annotatedPath, annotated.map((a) => `${JSON.stringify(a)}\n`).join(''));
    } finally {
      model.free();
    }
  }
  const sources = await readSources(tracesPath, annotatedPath, 'generated');
  if (sources.length === 0) {
    throw new ThinkwhenError('NO_EXAMPLES', `${annotatedPath} holds no annotated trace`, `delete ${o.dir} and rerun`);
  }
  return {
    base,
    thinking,
    sources,
    selection,
    latents: latentsOf(selection),
    sae: {
      taxonomy: taxDir,
      sae: selection.sae,
      layer: selection.layer,
      k: selection.k,
      metric: selection.metric,
      traces: tracesPath,
      annotated: annotatedPath,
      thinking_model: thinking,
    },
  };
}
