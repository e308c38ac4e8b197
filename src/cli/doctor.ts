import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { backendInfo, Model } from '../engine/index.ts';
import { TINY_QWEN2, writeTinyModel } from '../gguf/tiny-model.ts';
import { runSelfTest } from '../steer/selftest.ts';
import type { Command } from './command.ts';

const help = `thinkwhen doctor [--model FILE] [--layer L] [--json]

Checks that thinkwhen can load a model and that steering is really applied:
  zero-vector parity      adding a zero vector leaves logits bit-identical
  isolation               steering one sequence of a batch leaves the others bit-identical
  hook = control vector   per-token hook and llama.cpp's control vector give identical logits
  captured = h + v        the residual read after steering is the unsteered one plus v
  known-direction shift   moving B's final residual to A's makes B predict what A predicts

Options:
  --model FILE   GGUF model to check (default: a tiny random qwen2 model made in a temp folder)
  --layer L      layer to steer (default: the middle one)
  --json         print {"backend", "checks": [{"name", "pass", "detail"}]}

Exit status 1 when any check fails.

Examples:
  npx thinkwhen doctor
  npx thinkwhen doctor --model ~/models/qwen2.5-0.5b-instruct-q8_0.gguf --json`;

export const command: Command = {
  name: 'doctor',
  summary: 'report the backend and self-test steering on a model',
  help,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { model: { type: 'string' }, layer: { type: 'string' }, json: { type: 'boolean', default: false } },
    });
    let dir: string | undefined;
    let path = values.model;
    if (!path) {
      dir = mkdtempSync(join(tmpdir(), 'thinkwhen-doctor-'));
      path = join(dir, 'tiny-qwen2.gguf');
      writeTinyModel(path, TINY_QWEN2);
    }
    try {
      const model = await Model.load(path);
      const report = await runSelfTest(model, { layer: values.layer === undefined ? undefined : Number(values.layer) });
      model.free();
      const ok = report.checks.every((c) => c.pass);
      if (values.json) {
        console.log(
          JSON.stringify({
            backend: report.backend,
            model: values.model ?? 'tiny random qwen2 (generated)',
            checks: report.checks,
          }),
        );
      } else {
        const info = backendInfo();
        console.log(
          `backend: ${report.backend} (${info.devices.map((d) => `${d.backend}: ${d.description}`).join(', ')})`,
        );
        console.log(
          `model:   ${values.model ?? 'tiny random qwen2 (generated)'} — ${model.info.arch}, ${model.info.nLayer} layers, n_embd ${model.info.nEmbd}`,
        );
        for (const c of report.checks) console.log(`${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`);
        console.log(ok ? 'all checks passed' : 'some checks FAILED');
      }
      return ok ? 0 : 1;
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  },
};
