import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendInfo } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import {
  FORWARD_BOUND,
  GRADIENT_BOUND,
  type GradcheckReport,
  gradcheck,
  writeGradcheckModel,
} from '../train/gradcheck.ts';
import { choice, defineCommand, flag, ints, text } from './options.ts';

function verdict(r: GradcheckReport): boolean | null {
  if (r.weightType !== 'F32') return null;
  return (r.worstForward === null || r.worstForward <= FORWARD_BOUND) && r.worstGradient <= GRADIENT_BOUND;
}

export const command = defineCommand({
  name: 'gradcheck',
  summary: 'check the training graph against llama.cpp and finite differences',
  usage: '[--model FILE] [--arch qwen2|llama|both] [--layers L,...] [--device cpu|gpu] [--json]',
  description: `Checks the training graph (src/train, native/train-graph.cpp) layer by layer:
  forward   max |logit difference| between the ggml training graph and llama.cpp's own decode
            (F32 KV cache), with a random vector added at blocks.L.hook_resid_pre in both
  gradient  relative error of the backprop gradient of that vector against central finite
            differences of the loss (logit scale 0.7), along the gradient direction and along
            its 3 largest coordinates

Without --model it generates tiny random F32 models (4 layers, n_embd 64, GQA 4/2 heads,
byte-level vocabulary) of both architectures. Pass criteria on F32 weights: forward <= ${FORWARD_BOUND},
gradient <= ${GRADIENT_BOUND}. Other weight types are reported without a verdict (their activations are
rounded, so finite differences are noisy).`,
  options: {
    model: text({ arg: 'FILE', help: 'a qwen2/llama GGUF to check instead of the generated ones' }),
    arch: choice({ help: 'generated architecture(s)', choices: ['qwen2', 'llama', 'both'], default: 'both' }),
    layers: ints({ arg: 'L,...', help: 'only these layers (default all)', min: 0, max: 4095 }),
    device: choice({ help: 'where the training graph runs', choices: ['cpu', 'gpu'], default: 'cpu' }),
    json: flag('print the reports as JSON'),
  },
  epilogue: 'Exit status 1 when an F32 check fails, 2 on an error.',
  examples: [
    'npx thinkwhen gradcheck',
    'npx thinkwhen gradcheck --json',
    'npx thinkwhen gradcheck --model tiny.gguf --layers 0,3',
  ],
  async run({ values }) {
    const { arch, layers } = values;
    if (values.device === 'gpu' && !backendInfo().devices.some((d) => d.type === 'gpu')) {
      throw new ThinkwhenError(
        'NO_GPU',
        'no GPU backend is loaded',
        'set THINKWHEN_BACKEND=cuda with a CUDA runtime (see README), or use --device cpu',
      );
    }
    let dir: string | undefined;
    const paths: string[] = [];
    if (values.model) {
      paths.push(values.model);
    } else {
      dir = mkdtempSync(join(tmpdir(), 'thinkwhen-gradcheck-'));
      for (const a of arch === 'both' ? (['qwen2', 'llama'] as const) : [arch]) {
        paths.push(writeGradcheckModel(join(dir, `${a}.gguf`), a));
      }
    }
    try {
      const reports: GradcheckReport[] = [];
      for (const p of paths) {
        const r = await gradcheck(p, { layers, device: values.device });
        if (layers) {
          const bad = layers.find((l) => l >= r.nLayer);
          if (bad !== undefined)
            throw new ThinkwhenError('LAYER_OUT_OF_RANGE', `layer ${bad}: the model has ${r.nLayer}`);
        }
        reports.push(r);
      }
      const verdicts = reports.map(verdict);
      const ok = verdicts.every((v) => v !== false);
      if (values.json) {
        console.log(
          JSON.stringify({
            pass: ok,
            bounds: { forward: FORWARD_BOUND, gradient: GRADIENT_BOUND },
            reports: reports.map((r, i) => ({ ...r, model: values.model ?? `generated ${r.arch}`, pass: verdicts[i] })),
          }),
        );
        return ok ? 0 : 1;
      }
      for (const [i, r] of reports.entries()) {
        const v = verdicts[i];
        console.log(
          `${values.model ?? `generated tiny ${r.arch}`}: ${r.arch}, ${r.nLayer} layers, ${r.weightType} weights, ${r.backend}`,
        );
        console.log('  layer  forward max|dlogit|   |grad|      directional rel.err  top-coord rel.err');
        for (const l of r.layers) {
          console.log(
            `  ${String(l.layer).padStart(5)}  ${(l.forwardMaxDiff?.toExponential(2) ?? 'n/a').padStart(19)}  ${l.gradNorm
              .toExponential(3)
              .padStart(
                10,
              )}  ${l.directionalRelErr.toExponential(2).padStart(19)}  ${l.coordRelErr.toExponential(2).padStart(17)}`,
          );
        }
        console.log(
          `  worst forward ${r.worstForward?.toExponential(2) ?? 'n/a'} (bound ${FORWARD_BOUND}), worst gradient ${r.worstGradient.toExponential(2)} (bound ${GRADIENT_BOUND}); llama.cpp default F16 KV cache: ${r.forwardMaxDiffKvF16?.toExponential(2) ?? 'n/a'}`,
        );
        console.log(`  ${v === null ? 'no verdict (not F32 weights)' : v ? 'PASS' : 'FAIL'}`);
      }
      return ok ? 0 : 1;
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  },
});
