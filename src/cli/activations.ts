import { parseArgs } from 'node:util';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { organismLabeller } from '../organism/taxonomy.ts';
import { captureSentenceActivations } from '../taxonomy/capture.ts';
import { PAPER_PRESETS, resolveLayers } from '../taxonomy/layers.ts';
import { readTraces } from '../traces/generate.ts';
import { int, oneOf } from './args.ts';
import type { Command } from './command.ts';

const help = `thinkwhen activations --model THINKING.gguf --traces TRACES.jsonl --out DIR [options]

Stage 2 of the reasoning taxonomy (docs/method.md §2.2): split every trace's
thinking text with the paper's sentence splitter, map each sentence to its
tokens through the tokenizer's character offsets, and store the mean residual
stream (output of decoder block L) over the sentence's tokens shifted back by
one (rows ts-1 .. te-1), at every candidate layer. One pass of the model per
trace captures all layers. The running mean of the thinking spans (μ_L) is
stored too; SAE training centres and L2-normalises with it.

The result is a directory of safetensors shards (one F32 tensor layer.L per
layer) with index.jsonl (trace id, sentence, token span; one line per row),
means.safetensors and manifest.json. Capture is resumable: finished traces are
checkpointed under DIR/parts and skipped by a rerun of the same command.

Options:
  --model FILE       the thinking model that wrote the traces (GGUF)
  --traces FILE      trace JSONL from \`thinkwhen traces\`
  --out DIR          activation store (created or resumed)
  --layers SPEC      even (default: six evenly spaced layers) | even:N |
                     paper (the paper's list for this model) | preset:NAME |
                     a list such as 4,8,12. Presets: ${PAPER_PRESETS.map((p) => p.name).join(', ')}
  --context full|generated
                     text run through the model: prompt+output (default, the
                     reference's vLLM path) or the output alone (its nnsight path)
  --thinking marker|generated
                     thinking = text after <think> (default, the paper) or the
                     whole model output (templates without <think>)
  --bos paper|template
                     paper (default): prepend BOS when the tokenizer adds one, as
                     tokenizer.encode(full_response) does; template: never
  --locate find|span find (default): first occurrence of the sentence text, as the
                     paper; span: the sentence's own position
  --no-shift         average rows ts..te-1 instead of the paper's ts-1..te-1
  --min-words N      splitter's minimum words per sentence (default 3)
  --labels organism  attach ground-truth sentence types from the model organism's
                     trace-language parser (for ARI/NMI/purity later)
  --part-traces N    traces per checkpoint (default 64)
  --threads N        CPU threads (default: all cores)

Examples:
  thinkwhen activations --model r1-qwen-1.5b.gguf --traces runs/traces.jsonl --out runs/acts
  thinkwhen activations --model r1-qwen-1.5b.gguf --traces runs/traces.jsonl --out runs/acts --layers paper
  thinkwhen activations --model organism-thinking.gguf --traces t.jsonl --out acts \\
      --thinking generated --labels organism
`;

export const command: Command = {
  name: 'activations',
  summary: 'capture mean residual activations of every thinking sentence (taxonomy stage 2, resumable)',
  help,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        traces: { type: 'string' },
        out: { type: 'string' },
        layers: { type: 'string' },
        context: { type: 'string' },
        thinking: { type: 'string' },
        bos: { type: 'string' },
        locate: { type: 'string' },
        'no-shift': { type: 'boolean' },
        'min-words': { type: 'string' },
        labels: { type: 'string' },
        'part-traces': { type: 'string' },
        threads: { type: 'string' },
      },
    });
    if (!values.model) throw new ThinkwhenError('bad-argument', '--model is required', 'pass the thinking model GGUF');
    if (!values.traces) throw new ThinkwhenError('bad-argument', '--traces is required', 'pass the trace JSONL');
    if (!values.out) throw new ThinkwhenError('bad-argument', '--out is required', 'name the activation directory');
    const labels = oneOf(values.labels, 'labels', ['organism'] as const);
    const { records, tornAt } = await readTraces(values.traces);
    if (tornAt !== null) console.error(`activations: ignoring a torn last line in ${values.traces}`);
    const model = await Model.load(values.model);
    try {
      const layers = resolveLayers(values.layers, model.info);
      console.error(`activations: layers ${layers.join(', ')} of ${model.info.nLayer}`);
      const s = await captureSentenceActivations(model, records, values.out, {
        layers,
        context: oneOf(values.context, 'context', ['full', 'generated'] as const),
        thinking: oneOf(values.thinking, 'thinking', ['marker', 'generated'] as const),
        bos: oneOf(values.bos, 'bos', ['paper', 'template'] as const),
        locate: oneOf(values.locate, 'locate', ['find', 'span'] as const),
        shift: values['no-shift'] ? false : undefined,
        minWords: int(values['min-words'], 'min-words'),
        labeller: labels === 'organism' ? organismLabeller : undefined,
        partTraces: int(values['part-traces'], 'part-traces', 1),
        threads: int(values.threads, 'threads', 1),
        onProgress: (line) => console.error(line),
      });
      console.log(
        `${s.sentences} sentences from ${s.traces} traces at layers ${s.manifest.layers.join(', ')} in ${s.dir}` +
          ` (${s.capturedNow} traces captured now; ${s.unlocated} sentences not placeable in the tokens, ${s.tracesWithoutSentences} traces without sentences)`,
      );
    } finally {
      model.free();
    }
    return 0;
  },
};
