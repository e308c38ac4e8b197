// The server through the official `openai` client: the models, chat and text completions streamed and
// not, stop strings, and outputs equal to the engine's and the hybrid library's own for the same input.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { generate } from '../../src/engine/index.ts';
import { promptIds } from '../../src/experiments/prompts.ts';
import { collectResults, hybridGenerate } from '../../src/hybrid/index.ts';
import type { RunningServer } from '../../src/serve/server.ts';
import { HYBRID_DEFAULTS, hybridPair, organism, questions, serve } from './fixtures.ts';

let server: RunningServer;
let client: OpenAI;
const [q1, q2] = questions(2);

before(async () => {
  server = await serve();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(() => server.close());

/** What the engine itself generates greedily for one prompt (the reference the server must match). */
async function engineGreedy(prompt: Int32Array, maxTokens: number, add?: Float32Array, layer = 2): Promise<string> {
  const { base } = await organism();
  const ctx = base.createContext({ nCtx: 1024, nSeqMax: 1 });
  try {
    const hooks = add ? [{ hook: `blocks.${layer}.hook_resid_post`, add: () => add }] : [];
    const [r] = await generate(ctx, [{ prompt, maxTokens, sampler: { temperature: 0 } }], { hooks });
    return r.text;
  } finally {
    ctx.free();
  }
}

async function chatPrompt(question: string): Promise<Int32Array> {
  const { base } = await organism();
  const text = base.applyChatTemplate([{ role: 'user', content: question }], { addGenerationPrompt: true });
  return base.tokenize(text, { addSpecial: false, parseSpecial: true });
}

test('/v1/models lists base, thinking and hybrid', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['base', 'thinking', 'hybrid']);
  const one = await client.models.retrieve('hybrid');
  assert.equal(one.id, 'hybrid');
});

test('chat: greedy text equals the engine, streamed deltas add up to it, usage counts the tokens', async () => {
  const messages = [{ role: 'user' as const, content: q1 }];
  const r = await client.chat.completions.create({ model: 'base', messages, temperature: 0, max_tokens: 240 });
  const want = await engineGreedy(await chatPrompt(q1), 240);
  assert.equal(r.choices[0].message.content, want);
  assert.match(want, /\\boxed\{\d+\}/); // the organism answers
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage?.prompt_tokens, (await chatPrompt(q1)).length);

  const stream = await client.chat.completions.create({
    model: 'base',
    messages,
    temperature: 0,
    max_tokens: 240,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let chunks = 0;
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined | null;
  for await (const c of stream) {
    if (c.usage) usage = c.usage;
    const choice = c.choices[0];
    if (!choice) continue;
    text += choice.delta.content ?? '';
    chunks++;
    finish = choice.finish_reason ?? finish;
  }
  assert.equal(text, want);
  assert.ok(chunks > 10, `${chunks} chunks: the text arrives token by token`);
  assert.equal(finish, 'stop');
  assert.equal(usage?.completion_tokens, r.usage?.completion_tokens);
});

test('completions: max_tokens ends with length; a stop string cuts the text before it', async () => {
  const prompt = 'Question: Eva has 57 books. She gives away 29. How many books does Eva have now?\nAnswer:';
  const r = await client.completions.create({ model: 'thinking', prompt, temperature: 0, max_tokens: 8 });
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage?.completion_tokens, 8);
  const full = await client.completions.create({ model: 'base', prompt: q2, temperature: 0, max_tokens: 60 });
  const text = full.choices[0].text;
  const cut = text.indexOf('\n', 5);
  assert.ok(cut > 0, 'the text has a second line');
  const stopped = await client.completions.create({
    model: 'base',
    prompt: q2,
    temperature: 0,
    max_tokens: 60,
    stop: ['\n'],
    stream: true,
  });
  let s = '';
  let finish: string | null = null;
  for await (const c of stopped) {
    s += c.choices[0].text;
    finish = c.choices[0].finish_reason ?? finish;
  }
  assert.equal(s, text.slice(0, text.indexOf('\n')));
  assert.equal(finish, 'stop');
});

test('sampling: the same seed gives the same text, and a different seed another', async () => {
  const ask = (seed: number) =>
    client.completions.create({ model: 'base', prompt: q1, temperature: 2, seed, max_tokens: 150 });
  const [a, b, c] = await Promise.all([ask(1), ask(1), ask(2)]);
  assert.equal(a.choices[0].text, b.choices[0].text);
  assert.notEqual(a.choices[0].text, c.choices[0].text);
});

test('concurrent requests share one batch and give the texts they give alone', async () => {
  const qs = questions(6, 11);
  const alone = [];
  for (const q of qs.slice(0, 2)) {
    const r = await client.completions.create({ model: 'base', prompt: q, temperature: 0, max_tokens: 40 });
    alone.push(r.choices[0].text);
  }
  const together = await Promise.all(
    qs.map((q) => client.completions.create({ model: 'base', prompt: q, temperature: 0, max_tokens: 40 })),
  );
  assert.deepEqual(
    together.slice(0, 2).map((r) => r.choices[0].text),
    alone,
  );
});

test('hybrid: the text the hybrid library generates, with its steered tokens; streamed the same', async () => {
  const pair = await hybridPair();
  const [want] = await collectResults(
    hybridGenerate(
      pair,
      [{ id: 'q', prompt: { base: promptIds(pair.base, 'chat', q1), thinking: promptIds(pair.thinking, 'chat', q1) } }],
      {
        ...HYBRID_DEFAULTS,
        maxTokens: 80,
      },
    ),
  );
  const messages = [{ role: 'user' as const, content: q1 }];
  const r = await client.chat.completions.create({ model: 'hybrid', messages, max_tokens: 80 });
  assert.equal(r.choices[0].message.content, want.text);
  const extra = (r as unknown as { thinkwhen: { steered_tokens: number; steered: { title: string }[] } }).thinkwhen;
  const steered = want.records.filter((x) => x.steered).length;
  assert.ok(steered > 0, 'the random vectors steer some tokens');
  assert.equal(extra.steered_tokens, steered);
  assert.equal(extra.steered.length, steered);

  const stream = await client.chat.completions.create({ model: 'hybrid', messages, max_tokens: 80, stream: true });
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
  assert.equal(text, want.text);
});

test('hybrid: the request picks the policy (only_bias) and the grid', async () => {
  const pair = await hybridPair();
  const options = { policy: 'only_bias' as const, grid: { coefficients: [1], windows: [0] } };
  const [want] = await collectResults(
    hybridGenerate(
      pair,
      [
        {
          id: 'q',
          prompt: {
            base: promptIds(pair.base, '{question}', q2),
            thinking: promptIds(pair.thinking, '{question}', q2),
          },
        },
      ],
      {
        ...HYBRID_DEFAULTS,
        ...options,
        maxTokens: 60,
      },
    ),
  );
  const body = {
    model: 'hybrid',
    prompt: q2,
    max_tokens: 60,
    hybrid: { policy: 'only_bias', coefficients: [1], windows: [0] },
  };
  const r = await client.completions.create(body as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(r.choices[0].text, want.text);
  const extra = (r as unknown as { thinkwhen: { steered: { coefficient: number; window: number }[] } }).thinkwhen;
  assert.ok(extra.steered.length > 0);
  for (const s of extra.steered) assert.deepEqual([s.coefficient, s.window], [1, 0]);
});

test("hybrid sampling: the library's draws for the same seed; the same seed twice alike; temperature 0 is greedy", async () => {
  const pair = await hybridPair();
  const prompt = { base: promptIds(pair.base, '{question}', q1), thinking: promptIds(pair.thinking, '{question}', q1) };
  const library = async (o: object) =>
    (
      await collectResults(
        hybridGenerate(pair, [{ id: 'request', prompt }], { ...HYBRID_DEFAULTS, maxTokens: 50, ...o }),
      )
    )[0].text;
  const ask = async (extra: object) => {
    const body = { model: 'hybrid', prompt: q1, max_tokens: 50, ...extra };
    return (await client.completions.create(body as OpenAI.CompletionCreateParamsNonStreaming)).choices[0].text;
  };
  const greedy = await library({});
  assert.equal(await ask({ temperature: 0 }), greedy);
  assert.equal(await ask({ temperature: 0, seed: 9 }), greedy);
  const drawn = await ask({ temperature: 1.5, seed: 7 });
  assert.equal(await ask({ temperature: 1.5, seed: 7 }), drawn);
  assert.equal(await ask({ temperature: 1.5, hybrid: { seed: 7 } }), drawn, 'hybrid.seed is the same seed');
  assert.equal(drawn, await library({ temperature: 1.5, seed: 7 }));
  assert.notEqual(drawn, greedy, 'temperature 1.5 draws another text');
  const others = await Promise.all([1, 2, 3].map((seed) => ask({ temperature: 1.5, seed })));
  assert.ok(new Set([drawn, ...others]).size > 1, 'other seeds draw other texts');
});
