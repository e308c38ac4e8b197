// Renders chat templates for chat-template.ts on a worker thread, so a template that loops or
// grows without bound is stopped by the thread's heap limit and the caller's time budget instead
// of taking the process down. Plain JavaScript: the thread starts without the TypeScript loader.
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import { Template } from '@huggingface/jinja';

const { flag, requests, replies } = workerData;
const cache = new Map();

function render({ source, context, maxOutputChars }) {
  let template = cache.get(source);
  if (!template) {
    try {
      template = new Template(source);
    } catch (err) {
      return { error: 'parse', message: String(err?.message ?? err) };
    }
    if (cache.size > 64) cache.clear();
    cache.set(source, template);
  }
  try {
    const text = template.render(context);
    if (text.length > maxOutputChars) return { error: 'output', chars: text.length };
    return { text };
  } catch (err) {
    return { error: 'render', message: String(err?.message ?? err) };
  }
}

// One request at a time: the caller blocks on `flag` until the reply is posted.
for (;;) {
  Atomics.wait(flag, 0, 0);
  const msg = receiveMessageOnPort(requests);
  Atomics.store(flag, 0, 0);
  if (msg) replies.postMessage(render(msg.message));
  Atomics.store(flag, 1, 1);
  Atomics.notify(flag, 1);
}
