import { Model } from '../engine/index.ts';
import { organismLabeller } from '../organism/taxonomy.ts';
import { captureSentenceActivations, DEFAULT_CAPTURE_SETTINGS } from '../taxonomy/capture.ts';
import { PAPER_PRESETS, resolveLayers } from '../taxonomy/layers.ts';
import { readTraces } from '../traces/generate.ts';
import { choice, defineCommand, flag, int, text, threads } from './options.ts';

export const command = defineCommand({
  name: 'activations',
  summary: 'capture mean residual activations of every thinking sentence (taxonomy stage 2, resumable)',
  usage: '--model THINKING.gguf --traces TRACES.jsonl --out DIR [options]',
  description: `Stage 2 of the reasoning taxonomy (docs/method.md §2.2): split every trace's
thinking text with the paper's sentence splitter, map each sentence to its
tokens through the tokenizer's character offsets, and store the mean residual
stream (output of decoder block L) over the sentence's tokens shifted back by
one (rows ts-1 .. te-1), at every candidate layer. One pass of the model per
trace captures all layers. The running mean of the thinking spans (μ_L) is
stored too; SAE training centres and L2-normalises with it.

The result is a directory of safetensors shards (one F32 tensor layer.L per
layer) with index.jsonl (trace id, sentence, token span; one line per row),
means.safetensors and manifest.json. Capture is resumable: finished traces are
checkpointed under DIR/parts and skipped by a rerun of the same command.`,
  options: {
    model: text({ arg: 'FILE', help: 'the thinking model that wrote the traces (GGUF)', required: true }),
    traces: text({ arg: 'FILE', help: 'trace JSONL from `thinkwhen traces`', required: true }),
    out: text({ arg: 'DIR', help: 'activation store (created or resumed)', required: true }),
    layers: text({
      arg: 'SPEC',
      help: `even (default: six evenly spaced layers) | even:N | paper (the paper's list for this model) | preset:NAME | a list such as 4,8,12. Presets: ${PAPER_PRESETS.map((p) => p.name).join(', ')}`,
    }),
    context: choice({
      help: "text run through the model: prompt+output (full, the reference's vLLM path) or the output alone (its nnsight path)",
      choices: ['full', 'generated'],
      default: DEFAULT_CAPTURE_SETTINGS.context,
    }),
    thinking: choice({
      help: 'thinking = text after <think> (marker, the paper) or the whole model output (templates without <think>)',
      choices: ['marker', 'generated'],
      default: DEFAULT_CAPTURE_SETTINGS.thinking,
    }),
    bos: choice({
      help: 'paper: prepend BOS when the tokenizer adds one, as tokenizer.encode(full_response) does; template: never',
      choices: ['paper', 'template'],
      default: DEFAULT_CAPTURE_SETTINGS.bos,
    }),
    locate: choice({
      help: "find: first occurrence of the sentence text, as the paper; span: the sentence's own position",
      choices: ['find', 'span'],
      default: DEFAULT_CAPTURE_SETTINGS.locate,
    }),
    'no-shift': flag("average rows ts..te-1 instead of the paper's ts-1..te-1"),
    'min-words': int({
      help: "splitter's minimum words per sentence",
      min: 0,
      max: 1000,
      default: DEFAULT_CAPTURE_SETTINGS.minWords,
    }),
    labels: choice({
      help: "attach ground-truth sentence types from the model organism's trace-language parser (for ARI/NMI/purity later)",
      choices: ['organism'],
    }),
    'part-traces': int({ help: 'traces per checkpoint', min: 1, max: 1_000_000, default: 64 }),
    threads: threads(),
  },
  examples: [
    'thinkwhen activations --model r1-qwen-1.5b.gguf --traces runs/traces.jsonl --out runs/acts',
    'thinkwhen activations --model r1-qwen-1.5b.gguf --traces runs/traces.jsonl --out runs/acts --layers paper',
    'thinkwhen activations --model organism-thinking.gguf --traces t.jsonl --out acts \\',
    '    --thinking generated --labels organism',
  ],
  async run({ values }) {
    const { records, tornAt } = await readTraces(values.traces);
    if (tornAt !== null) console.error(`activations: ignoring a torn last line in ${values.traces}`);
    const model = await Model.load(values.model);
    try {
      const layers = resolveLayers(values.layers, model.info);
      console.error(`activations: layers ${layers.join(', ')} of ${model.info.nLayer}`);
      const s = await captureSentenceActivations(model, records, values.out, {
        layers,
        context: values.context,
        thinking: values.thinking,
        bos: values.bos,
        locate: values.locate,
        shift: values['no-shift'] ? false : undefined,
        minWords: values['min-words'],
        labeller: values.labels === 'organism' ? organismLabeller : undefined,
        partTraces: values['part-traces'],
        threads: values.threads,
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
});
