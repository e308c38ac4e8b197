// Chat templates are code from the model file: a looping or exploding one is stopped by a time
// and memory budget (it used to run Node out of heap), and bad ones are typed errors.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Model, renderChatTemplate } from '../../src/engine/index.ts';
import { ThinkwhenError } from '../../src/errors.ts';
import { encodeGgufParts, readGgufParts } from '../../src/gguf/hostile.ts';
import { CHATML_TEMPLATE } from '../../src/gguf/tiny-model.ts';
import { str } from '../../src/gguf/types.ts';
import { tinyLlama } from '../helpers/models.ts';

const hi = [{ role: 'user', content: 'hi' }];
const LOOP = '{% for i in range(1000000000) %}x{% endfor %}';

function isError(code: string, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ThinkwhenError, `expected ThinkwhenError, got ${e}`);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    assert.ok(e.fix, 'names a fix');
    return true;
  };
}

test('a template renders; its output is the same on every call', () => {
  const want = '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n';
  assert.equal(renderChatTemplate(CHATML_TEMPLATE, hi), want);
  assert.equal(renderChatTemplate(CHATML_TEMPLATE, hi, { addGenerationPrompt: false }), want.slice(0, -22));
});

test('a looping template stops at the time budget; the next render works', () => {
  const t0 = Date.now();
  assert.throws(() => renderChatTemplate(LOOP, hi, { timeoutMs: 1500 }), isError('CHAT_TEMPLATE_BUDGET', /1500 ms/));
  assert.ok(Date.now() - t0 < 60_000);
  assert.match(renderChatTemplate(CHATML_TEMPLATE, hi), /^<\|im_start\|>user/);
});

test('output over the size budget; a template that does not parse; one that raises', () => {
  const long = [{ role: 'user', content: 'x'.repeat(1000) }];
  assert.throws(
    () => renderChatTemplate(CHATML_TEMPLATE, long, { maxOutputChars: 500 }),
    isError('CHAT_TEMPLATE_BUDGET', /\d+ characters, more than the 500 allowed/),
  );
  assert.throws(() => renderChatTemplate('{{ messages[0', hi), isError('CHAT_TEMPLATE_INVALID', /does not parse/));
  assert.throws(
    () => renderChatTemplate("{{ raise_exception('no system role') }}", hi),
    isError('CHAT_TEMPLATE_FAILED', /no system role/),
  );
});

test('a model file whose tokenizer.chat_template loops: applyChatTemplate fails, the model still works', async () => {
  const parts = readGgufParts(tinyLlama());
  parts.metadata.set('tokenizer.chat_template', str(LOOP));
  const path = join(mkdtempSync(join(tmpdir(), 'tw-tmpl-')), 'looping-template.gguf');
  writeFileSync(path, encodeGgufParts(parts));
  const model = await Model.load(path);
  assert.throws(() => model.applyChatTemplate(hi, { timeoutMs: 1500 }), isError('CHAT_TEMPLATE_BUDGET', /loops/));
  assert.ok(model.tokenize('hi').length > 0);
  model.free();
});
