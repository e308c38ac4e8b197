// Run stores for the viewer tests, made by the real stages on the shipped organism: base and thinking
// runs by greedy generation, a hybrid run by the hybrid loop (random SAE and vectors, so it steers),
// each graded by the real grader. Small: 4 problems of at most 60 tokens.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate, Model } from '../../src/engine/index.ts';
import { gradeResponse } from '../../src/eval/answer/index.ts';
import { RunStore } from '../../src/eval/store.ts';
import { collectResults, type HybridResult, hybridGenerate } from '../../src/hybrid/index.ts';
import { randomSae, randomVectors } from '../../src/hybrid/synthetic.ts';
import { generateProblems, organismModelPaths } from '../../src/organism/index.ts';
import { fileSha256 } from '../../src/steer/vector-set.ts';

export interface ViewerRuns {
  paths: string[];
  hybrid: HybridResult[];
  problems: { id: string; question: string; answer: string; meta: Record<string, unknown> }[];
  base: Model;
}

const MAX_TOKENS = 60;

export async function viewerRuns(): Promise<ViewerRuns> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-viewer-'));
  const paths = organismModelPaths();
  const base = await Model.load(paths.base);
  const thinking = await Model.load(paths.thinking);
  const problems = generateProblems('test', 4, 21).map((p) => ({
    id: p.id,
    question: p.question,
    answer: String(p.answer),
    meta: {},
  }));
  const baseRef = { file: 'base.gguf', sha256: await fileSha256(paths.base) };
  const store = (name: string, role: string, extra: Record<string, unknown> = {}) => {
    const s = RunStore.open(join(dir, `${name}.sqlite`), {
      config: { name, role, samplesPerProblem: 1, grader: 'math-verify', base: baseRef, ...extra },
    });
    s.addProblems(problems);
    return s;
  };
  const grades = (answer: string, text: string) => {
    const g = gradeResponse(answer, text);
    return [{ grader: 'math-verify', correct: g.correct, extracted: g.extracted }];
  };
  const out: string[] = [];
  for (const [name, model] of [
    ['base', base],
    ['thinking', thinking],
  ] as const) {
    const s = store(name, name);
    const ctx = model.createContext({ nCtx: 2048, nSeqMax: problems.length });
    const prompts = problems.map((p) =>
      model.tokenize(model.applyChatTemplate([{ role: 'user', content: p.question }], { addGenerationPrompt: true }), {
        addSpecial: false,
        parseSpecial: true,
      }),
    );
    const results = await generate(
      ctx,
      prompts.map((prompt) => ({ prompt, maxTokens: MAX_TOKENS, sampler: { temperature: 0 } })),
    );
    ctx.free();
    results.forEach((r, i) => {
      s.recordGeneration({
        problemId: problems[i].id,
        sampleIndex: 0,
        text: r.text,
        completionTokens: r.tokens.length,
        finishReason: r.finishReason,
        grades: grades(problems[i].answer, r.text),
      });
    });
    s.close();
    out.push(s.path);
  }
  const pair = {
    base,
    thinking,
    sae: randomSae(128, 6, 3),
    saeLayer: 2,
    vectors: randomVectors(128, 2, 6, { biasNorm: 2, norm: 8 }),
  };
  const hybrid = await collectResults(
    hybridGenerate(pair, problems, {
      grid: { coefficients: [0.5, 2], windows: [0, -1, -15] },
      basePrompt: 'chat',
      thinkingPrompt: 'chat',
      maxTokens: MAX_TOKENS,
    }),
  );
  const s = store('hybrid <paper>', 'hybrid');
  for (const r of hybrid) {
    s.recordGeneration({
      problemId: r.id,
      sampleIndex: 0,
      text: r.text,
      completionTokens: r.records.length,
      tokens: r.tokens,
      annotations: { format: 'thinkwhen-hybrid/1', promptTokens: r.promptTokens, records: r.records },
      steeredTokens: r.records.filter((x) => x.steered).length,
      finishReason: r.finishReason,
      grades: grades(problems[r.problem].answer, r.text),
    });
  }
  s.close();
  out.push(s.path);
  thinking.free();
  return { paths: out, hybrid, problems, base };
}
