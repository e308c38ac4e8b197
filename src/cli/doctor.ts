import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendInfo, Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { TINY_QWEN2, writeTinyModel } from '../gguf/tiny-model.ts';
import { runSelfTest } from '../steer/selftest.ts';
import { defineCommand, flag, int, text } from './options.ts';

export const command = defineCommand({
  name: 'doctor',
  summary: 'report the backend and self-test steering on a model',
  usage: '[--model FILE] [--layer L] [--json]',
  description: `Checks that thinkwhen can load a model and that steering is really applied:
  zero-vector parity      adding a zero vector leaves logits bit-identical
  isolation               steering one sequence of a batch leaves the others bit-identical
  hook = control vector   per-token hook and llama.cpp's control vector give identical logits
  captured = h + v        the residual read after steering is the unsteered one plus v
  known-direction shift   moving B's final residual to A's makes B predict what A predicts`,
  options: {
    model: text({
      arg: 'FILE',
      help: 'GGUF model to check (default: a tiny random qwen2 model made in a temp folder)',
    }),
    layer: int({
      arg: 'L',
      help: "layer to steer, 1..(the model's layers - 1): llama.cpp control vectors start at 1 (default: the middle one)",
      min: 1,
      max: 4095,
    }),
    json: flag('print {"backend", "model", "checks": [{"name", "pass", "detail"}]}'),
  },
  epilogue: 'Exit status 1 when any check fails, 2 when the model or an option is wrong.',
  examples: ['npx thinkwhen doctor', 'npx thinkwhen doctor --model ~/models/qwen2.5-0.5b-instruct-q8_0.gguf --json'],
  async run({ values }) {
    let dir: string | undefined;
    let path = values.model;
    if (!path) {
      dir = mkdtempSync(join(tmpdir(), 'thinkwhen-doctor-'));
      path = join(dir, 'tiny-qwen2.gguf');
      writeTinyModel(path, TINY_QWEN2);
    }
    try {
      const model = await Model.load(path);
      const info = model.info;
      let report: Awaited<ReturnType<typeof runSelfTest>>;
      try {
        if (values.layer !== undefined && values.layer >= info.nLayer) {
          throw new ThinkwhenError(
            'LAYER_OUT_OF_RANGE',
            `--layer ${values.layer} is out of range: this model has ${info.nLayer} layers (0..${info.nLayer - 1})`,
            `use --layer 1..${info.nLayer - 1}, or leave it out for the middle layer`,
          );
        }
        report = await runSelfTest(model, { layer: values.layer });
      } finally {
        model.free();
      }
      const ok = report.checks.every((c) => c.pass);
      const modelName = values.model ?? 'tiny random qwen2 (generated)';
      if (values.json) {
        console.log(JSON.stringify({ backend: report.backend, model: modelName, checks: report.checks }));
      } else {
        const devices = backendInfo().devices.map((d) => `${d.backend}: ${d.description}`);
        console.log(`backend: ${report.backend} (${devices.join(', ')})`);
        console.log(`model:   ${modelName} — ${info.arch}, ${info.nLayer} layers, n_embd ${info.nEmbd}`);
        for (const c of report.checks) console.log(`${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`);
        console.log(ok ? 'all checks passed' : 'some checks FAILED');
      }
      return ok ? 0 : 1;
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  },
});
