import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildJudgePrompt, judgeResponse } from '../../../src/eval/answer/index.ts';

test("the judge prompt matches the paper's evaluate_answer text exactly", () => {
  const prompt = buildJudgePrompt('What is 1+1?', '2', 'It is 2.');
  assert.equal(
    prompt,
    'Please evaluate whether the following answer to a math problem is correct.\n\n' +
      'Question: What is 1+1?\n\n' +
      'Correct answer: 2\n\n' +
      "Model's answer: It is 2.\n\n" +
      "First, extract the final numerical answer from both the correct answer and model's answer. \n" +
      "Then determine if the model's final numerical answer is equivalent to the correct final numerical answer.\n" +
      "Just answer YES if the model's answer is correct, or NO if it's incorrect. Nothing else.\n",
  );
});

test('the response is whitespace-collapsed and the verdict is "yes" anywhere, case-insensitive', async () => {
  const prompts: string[] = [];
  const complete = async (p: string): Promise<string> => {
    prompts.push(p);
    return prompts.length === 1 ? 'YES' : 'No.';
  };
  const input = { question: 'Q?', gold: 'A\n#### 18', response: '  Step 1:\n\n  add.\tSo 18.  ' };
  const yes = await judgeResponse(input, { complete });
  assert.equal(yes.correct, true);
  assert.equal(yes.source, 'judge');
  assert.match(prompts[0], /Model's answer: Step 1: add\. So 18\.\n/);
  assert.match(prompts[0], /Correct answer: A\n#### 18\n/);
  const no = await judgeResponse(input, { complete });
  assert.equal(no.correct, false);
  assert.equal(no.reply, 'No.');
});

test('when the judge call fails, the rule-based grader decides (or the error propagates)', async () => {
  const failing = async (): Promise<string> => {
    throw new Error('HTTP 503');
  };
  const r = await judgeResponse(
    { question: 'Q', gold: 'work\n#### 1,450', response: 'So it costs 1450 dollars.' },
    { complete: failing },
  );
  assert.deepEqual([r.correct, r.source, r.reply], [true, 'fallback', null]);
  assert.match(r.error ?? '', /HTTP 503/);
  const wrong = await judgeResponse({ question: 'Q', gold: '#### 7', response: 'It is 8.' }, { complete: failing });
  assert.equal(wrong.correct, false);
  await assert.rejects(
    judgeResponse({ question: 'Q', gold: '7', response: '7' }, { complete: failing, fallbackMode: null }),
    /HTTP 503/,
  );
});
