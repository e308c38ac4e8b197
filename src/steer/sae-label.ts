// The label of a steered sentence for real models (no ground truth): the thinking model reads the
// trace's own prompt and thinking prefix followed by the sentence, and the taxonomy's SAE labels
// the sentence as the annotation stage does (method.md §2.5: the raw mean of the SAE layer's
// output over rows ts−1 … te−1, where ts / te are the tokens of its first / last character;
// z = W_enc(a − b_dec) + b_enc; label = argmax z). The label is 'idx{k}', the paper's key.
import type { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { loadSae } from '../taxonomy/sae.ts';
import type { TraceRecord } from '../traces/generate.ts';
import { extractThinking } from '../traces/sentences.ts';
import { activationRows, charToTokenMap, tokenSpanOfChars } from '../traces/spans.ts';
import { basePromptFrom } from './examples.ts';
import { type PassSequence, rangeMeans } from './passes.ts';
import type { StoredExample } from './train.ts';

export const latentLabel = (latent: number) => `idx${latent}`;

export interface SaeLabellerOptions {
  thinkingModel: Model;
  /** the SAE file (selection.json `sae`) and its layer */
  sae: string;
  layer: number;
  traces: readonly TraceRecord[];
  /** the set's base prompt template: the thinking prefix is what follows it in an example prompt */
  basePrompt: string;
  thinking: 'marker' | 'generated';
  threads?: number;
}

export async function saeLabeller(o: SaeLabellerOptions) {
  const sae = await loadSae(o.sae);
  const m = o.thinkingModel;
  if (sae.dim !== m.info.nEmbd) {
    throw new ThinkwhenError(
      'VECTOR_WIDTH',
      `the SAE ${o.sae} has width ${sae.dim} but ${m.info.path} has ${m.info.nEmbd}`,
      'label with the thinking model the taxonomy was built from',
    );
  }
  const traces = new Map(o.traces.map((t) => [t.id, t]));
  const prompt = basePromptFrom(o.basePrompt);
  const hook = `blocks.${o.layer}.hook_resid_post`;
  return async (items: Array<{ example: StoredExample; sentence: string }>): Promise<Array<string | null>> => {
    const seqs: Array<PassSequence | null> = items.map(({ example, sentence }) => {
      const t = traces.get(example.traceId);
      const head = t ? prompt(t.question) : '';
      if (!t || !sentence || !example.prompt.startsWith(head)) return null;
      const before =
        o.thinking === 'generated'
          ? t.fullResponse.slice(0, t.fullResponse.length - t.generated.length + extractThinking(t.generated).start)
          : t.fullResponse.slice(0, t.thinkingStart);
      const text = before + example.prompt.slice(head.length) + sentence;
      const { tokens, offsets } = m.tokenizeWithOffsets(text);
      const bos = m.info.addBos && m.info.bos >= 0;
      const all = bos ? Int32Array.from([m.info.bos, ...tokens]) : tokens;
      const c2t = charToTokenMap(bos ? [[0, 0], ...offsets] : offsets, text.length);
      const span = tokenSpanOfChars(c2t, text.length - sentence.length, text.length, 'last-char');
      const rows = span && activationRows(span, true);
      return rows ? { tokens: all, captureRows: rows } : null;
    });
    const live = seqs.flatMap((s, i) => (s ? [i] : []));
    const means = await rangeMeans(
      m,
      live.map((i) => seqs[i]!),
      { hook, threads: o.threads },
    );
    const out: Array<string | null> = items.map(() => null);
    live.forEach((i, j) => {
      const a = means[j];
      if (!a) return;
      const z = sae.encodeDense(Float32Array.from(a));
      let best = 0;
      for (let k = 1; k < z.length; k++) if (z[k] > z[best]) best = k;
      out[i] = latentLabel(best);
    });
    return out;
  };
}
