// `thinkwhen view`: the local trace viewer (src/web) over run stores.
import { existsSync } from 'node:fs';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { RunStore } from '../eval/store.ts';
import { organismModelPaths } from '../organism/index.ts';
import { fileSha256 } from '../steer/vector-set.ts';
import type { Decode } from '../web/data.ts';
import { startViewer } from '../web/server.ts';
import { defineCommand, int, text } from './options.ts';

export const command = defineCommand({
  name: 'view',
  summary: 'a local web page over run stores: traces side by side, steered tokens, the systems table',
  usage: 'RUN.sqlite... [--port N] [--host ADDR] [--tokenizer FILE]',
  description: `Opens a viewer over one or more run stores (docs/viewer.md) on
http://127.0.0.1:8081. Per problem, each run's first sample side by side, with
its verdict; in hybrid runs the steered tokens are highlighted and coloured by
category: hover or focus one (Tab) to see its category title, coefficient,
window, what the base model would have said, and every candidate with the
thinking model's log-prob. Filters: verdict of a chosen run, category, which
systems to show; ↑/↓ (or j/k) move through the problem list. Above them: the
systems table, accuracy with 95 % intervals, steered tokens per category, a
histogram of steered fractions and pass@k curves of sampled runs.

The page loads nothing from the internet and works offline. The stores are read
once at start; rerun the command to see new results.`,
  options: {
    host: text({ arg: 'ADDR', help: 'address to listen on', default: '127.0.0.1' }),
    port: int({ help: 'TCP port (0: any free port)', min: 0, max: 65535, default: 8081 }),
    title: text({ help: 'page title (default: the run names)' }),
    tokenizer: text({
      arg: 'FILE',
      help: "a GGUF whose vocabulary decodes the candidates' token ids (default: the shipped organism base model when a run was made with it; otherwise ids show as #id)",
    }),
  },
  positionals: { min: 1, missing: 'no run stores given', fix: 'thinkwhen view RUN.sqlite... (see --help)' },
  examples: [
    'thinkwhen view runs/base.sqlite runs/thinking.sqlite runs/hybrid.sqlite',
    'thinkwhen view runs/hybrid-gsm8k.sqlite --tokenizer Qwen2.5-Math-1.5B.gguf --port 9001',
  ],
  async run({ values, positionals }) {
    for (const p of positionals) {
      if (!existsSync(p)) throw new ThinkwhenError('RUN_NOT_FOUND', `run store not found: ${p}`, 'check the path');
    }
    const tokenizers: (Model | null)[] = [];
    try {
      for (const p of positionals) tokenizers.push(await tokenizerFor(p, values.tokenizer));
      const viewer = await startViewer(positionals, {
        host: values.host,
        port: values.port,
        title: values.title,
        decode: (k) => decoder(tokenizers[k]),
      });
      console.log(
        `thinkwhen view: ${viewer.url}/ (${viewer.data.problems.length} problems, ${viewer.data.runs.length} runs; Ctrl-C stops)`,
      );
      await new Promise<void>((done) => {
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
      });
      await viewer.close();
      return 0;
    } finally {
      for (const t of new Set(tokenizers)) t?.free();
    }
  },
});

const loaded = new Map<string, Promise<Model>>();

/** The tokenizer for a run: --tokenizer, or the organism's base model when the run names it by hash. */
async function tokenizerFor(path: string, given: string | undefined): Promise<Model | null> {
  let file = given;
  if (!file) {
    const store = RunStore.openReadonly(path);
    const base = store.config.base as { sha256?: unknown } | undefined;
    store.close();
    const organism = organismModelPaths().base;
    if (typeof base?.sha256 === 'string' && existsSync(organism) && (await fileSha256(organism)) === base.sha256) {
      file = organism;
    }
  }
  if (!file) return null;
  if (!loaded.has(file)) loaded.set(file, Model.load(file, { vocabOnly: true }));
  return loaded.get(file)!;
}

function decoder(model: Model | null): Decode | null {
  return model ? (id) => (id >= 0 && id < model.info.nVocab ? model.detokenize([id]) : `#${id}`) : null;
}
