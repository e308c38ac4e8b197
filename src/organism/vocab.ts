// The organism's tokenizer: a word-level SentencePiece ("llama") vocabulary stored in GGUF, so
// stock llama.cpp tokenizes and detokenizes the trace language. One token per word (with its
// leading space as `▁`), per number below 100, per operator and per punctuation mark. Numbers are
// whole tokens because the models copy operands from the question: with one token per digit they
// copied the tens digit right and took the ones digit from another number (27-43 % of problems with
// a miscopied operand in the first v2 build); every prefix of a word
// is in the vocabulary too, so llama.cpp's SPM merges always reach the whole word; 256 byte-fallback
// tokens make any other text tokenizable. A TypeScript encoder with the same segmentation turns the
// corpus into ids without loading llama.cpp (tests check that both agree).
import { ThinkwhenError } from '../errors.ts';
import { arr, bool, type GgufValue, GgufValueType, str, u32 } from '../gguf/types.ts';
import {
  AGREE_SENTENCE,
  asideSentence,
  backtrackSentence,
  COLUMN_NAMES,
  computeSentence,
  conclusionSentences,
  exerciseQuestion,
  planSentence,
  resultSentence,
} from './language.ts';
import { ITEMS, NAMES, ORDINALS, questionText, VERBS } from './task.ts';

export const SPECIALS = ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>'] as const;
export const UNK = 0;
export const BOS = 1;
export const IM_START = 3;
export const IM_END = 4;

export const CHAT_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const SEGMENT = /▁?\\boxed\{|▁?[A-Za-z]+|▁?[0-9]{1,2}|▁?[^A-Za-z0-9▁]|▁/gu;

/** The pieces a text splits into (spaces written as `▁`, as SentencePiece does). */
export function segment(text: string): string[] {
  return text.replaceAll(' ', '▁').match(SEGMENT) ?? [];
}

/** Texts that contain every word of the language (questions, traces, exercises, chat roles). */
function coverageTexts(): string[] {
  const texts: string[] = ['user\n', 'assistant\n', 'system\n'];
  for (const who of NAMES) {
    for (const item of ITEMS) {
      const ops = [
        ...VERBS.add.map((_, verb) => ({ kind: 'add' as const, n: 12, verb })),
        ...VERBS.sub.map((_, verb) => ({ kind: 'sub' as const, n: 12, verb })),
      ];
      for (let k = 0; k < ops.length; k += ORDINALS.length)
        texts.push(
          questionText({
            name: who.name,
            pronoun: who.pronoun,
            item,
            start: 34,
            ops: ops.slice(k, k + ORDINALS.length),
          }),
        );
      // every verb after every anchor, in a question and in a plan
      for (const op of ops) {
        for (let k = 0; k < ORDINALS.length; k++) {
          const steps = Array(k + 1).fill(op);
          texts.push(questionText({ name: who.name, pronoun: who.pronoun, item, start: 34, ops: steps }));
          texts.push(planSentence(2, { ...op, n: 1 }, k, who.pronoun));
        }
      }
      texts.push(`${who.name} starts with 34 ${item}.`, ...conclusionSentences({ name: who.name, item }, 5));
    }
  }
  texts.push(computeSentence(47, { kind: 'add', n: 38 }, 75), computeSentence(473, { kind: 'sub', n: 1918 }, -1));
  for (const col of COLUMN_NAMES)
    texts.push(`Check ${col}: 1 + 2 + 0 = 3, carry 0.`, `Check ${col}: 1 - 2 - 0 = 3, borrow 0.`);
  texts.push(resultSentence(3), AGREE_SENTENCE, backtrackSentence(3, 4), asideSentence(['Ann']));
  texts.push(
    exerciseQuestion([
      { v: 1, kind: 'add', n: 2 },
      { v: 3, kind: 'sub', n: 2 },
      { v: 4, kind: 'add', n: 5 },
    ]),
  );
  // every number below 100, after a space and bare (as in \boxed{42})
  for (let n = 0; n < 100; n++) texts.push(` ${n}`, `\\boxed{${n}}`);
  return texts;
}

export interface Vocab {
  pieces: string[];
  /** llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte */
  types: number[];
  scores: number[];
  ids: Map<string, number>;
  /** ids of whole words (the pieces the language uses; the other normal pieces are word prefixes) */
  used: Set<number>;
}

let cached: Vocab | null = null;

/** The vocabulary: specials, 256 bytes, then the language's pieces and their prefixes, sorted. */
export function organismVocab(): Vocab {
  if (cached) return cached;
  const words = new Set<string>();
  for (const t of coverageTexts()) for (const p of segment(t)) words.add(p);
  const normal = new Set<string>();
  for (const w of words) {
    const chars = [...w];
    for (let k = 1; k <= chars.length; k++) normal.add(chars.slice(0, k).join(''));
  }
  const pieces: string[] = [...SPECIALS];
  const types: number[] = [2, 3, 3, 3, 3];
  for (let b = 0; b < 256; b++) {
    pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  for (const p of [...normal].sort()) {
    pieces.push(p);
    types.push(1);
  }
  const scores = pieces.map((p, i) => (types[i] === 1 ? [...p].length : 0));
  const ids = new Map(pieces.map((p, i) => [p, i]));
  const used = new Set([...words].map((w) => ids.get(w)!));
  cached = { pieces, types, scores, ids, used };
  return cached;
}

/** Token ids of plain text (no special tokens) in the organism's vocabulary. */
export function encodeText(text: string): number[] {
  const { ids } = organismVocab();
  return segment(text).map((p) => {
    const id = ids.get(p);
    if (id === undefined)
      throw new ThinkwhenError('ORGANISM_VOCAB', `the piece '${p}' is not in the organism vocabulary`);
    return id;
  });
}

export function decodeIds(tokens: ArrayLike<number>): string {
  const { pieces, types } = organismVocab();
  let out = '';
  for (let i = 0; i < tokens.length; i++) {
    if (types[tokens[i]] === 1) out += pieces[tokens[i]].replaceAll('▁', ' ');
  }
  return out;
}

/** The chat prompt for a question (the template with add_generation_prompt), as ids. */
export function encodePrompt(question: string): number[] {
  return [
    IM_START,
    ...encodeText(`user\n${question}`),
    IM_END,
    ...encodeText('\n'),
    IM_START,
    ...encodeText('assistant\n'),
  ];
}

/** The assistant's answer followed by the end-of-turn token. */
export function encodeAnswer(answer: string): number[] {
  return [...encodeText(answer), IM_END];
}

export function promptText(question: string): string {
  return `<|im_start|>user\n${question}<|im_end|>\n<|im_start|>assistant\n`;
}

/** The `tokenizer.*` keys of the organism's GGUF files. */
export function tokenizerMetadata(): Map<string, GgufValue> {
  const v = organismVocab();
  return new Map<string, GgufValue>([
    ['tokenizer.ggml.model', str('llama')],
    ['tokenizer.ggml.tokens', arr(GgufValueType.STRING, v.pieces)],
    ['tokenizer.ggml.scores', arr(GgufValueType.FLOAT32, v.scores)],
    ['tokenizer.ggml.token_type', arr(GgufValueType.INT32, v.types)],
    ['tokenizer.ggml.unknown_token_id', u32(UNK)],
    ['tokenizer.ggml.bos_token_id', u32(BOS)],
    ['tokenizer.ggml.eos_token_id', u32(IM_END)],
    ['tokenizer.ggml.eot_token_id', u32(IM_END)],
    ['tokenizer.ggml.padding_token_id', u32(UNK)],
    ['tokenizer.ggml.add_bos_token', bool(false)],
    ['tokenizer.ggml.add_eos_token', bool(false)],
    ['tokenizer.ggml.add_space_prefix', bool(false)],
    ['tokenizer.chat_template', str(CHAT_TEMPLATE)],
  ]);
}
