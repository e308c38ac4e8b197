// The viewer in headless Chromium (test/helpers/browser.ts; never downloaded): real run stores of
// the organism, the page as a user sees it — values in the systems table, traces side by side, the
// steered tokens and their tooltip, filters, keyboard navigation — with no console error and no
// request beyond the viewer's own server. Saves a screenshot of one trace.
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { buildReport } from '../../src/eval/report/index.ts';
import { systemsTable } from '../../src/eval/report/systems.ts';
import { type RunningViewer, startViewer } from '../../src/web/server.ts';
import { type BrowserSession, openBrowser } from '../helpers/browser.ts';
import { type ViewerRuns, viewerRuns } from './fixtures.ts';

let runs: ViewerRuns;
let viewer: RunningViewer;
let browser: BrowserSession;
let page: Page;

before(async () => {
  runs = await viewerRuns();
  viewer = await startViewer(runs.paths, {
    port: 0,
    decode: () => (id) => runs.base.detokenize([id]),
  });
  browser = await openBrowser();
  page = await browser.newPage();
  await page.goto(`${viewer.url}/`, { waitUntil: 'load' });
  await page.locator('#problems li').first().waitFor();
  await page.locator('#trace h2').waitFor();
});

after(async () => {
  await browser?.close();
  await viewer?.close();
});

test('the systems table shows the report values; the summary has its plots', async () => {
  const report = buildReport(runs.paths, { bootstrap: 0 });
  const want = systemsTable(report.systems!).rows;
  const shown = await page
    .locator('#systems tbody tr')
    .evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent)));
  assert.deepEqual(
    shown.map((r) => r.slice(0, 4)),
    want.map((r) => r.slice(0, 4)),
  );
  assert.equal(shown[2][0], 'hybrid <paper>'); // escaped, not markup
  assert.equal(await page.locator('svg.accuracy circle').count(), 3);
  assert.equal((await page.locator('svg.histogram rect.bar').count()) > 0, true);
  assert.ok((await page.locator('#categories tbody tr').count()) > 0);
});

test('a trace: three systems side by side, the steered tokens highlighted, the hybrid text whole', async () => {
  const first = runs.hybrid.find((r) => r.problem === 0)!;
  assert.equal(await page.locator('#trace h2').textContent(), runs.problems[0].id);
  assert.equal(await page.locator('#trace section.system').count(), 3);
  const column = page.locator('#trace section.system[data-run="2"] .text');
  const steered = first.records.filter((r) => r.steered);
  assert.ok(steered.length > 0);
  assert.equal(await column.locator('.tok.steered').count(), steered.length);
  assert.equal(await column.textContent(), first.records.map((r) => r.text).join(''));
  // each category has its own colour
  const colours = await column
    .locator('.tok.steered')
    .evaluateAll((els) => [
      ...new Set(els.map((e) => `${(e as HTMLElement).dataset.category}=${getComputedStyle(e).backgroundColor}`)),
    ]);
  const categories = new Set(steered.map((r) => r.title));
  assert.equal(colours.length, categories.size);
});

test('keyboard focus on a steered token shows its category, cell and candidates', async () => {
  const first = runs.hybrid.find((r) => r.problem === 0)!;
  const rec = first.records.filter((r) => r.steered)[0];
  await page.locator('#trace section.system[data-run="2"] .tok.steered').first().focus();
  const tip = page.locator('#tip');
  await tip.waitFor({ state: 'visible' });
  assert.equal(await tip.locator('.tip-title').textContent(), rec.title);
  assert.match(
    (await tip.locator('.tip-cell').textContent())!,
    new RegExp(`coefficient ${rec.coefficient} · window ${rec.window}`),
  );
  assert.equal(await tip.locator('table.candidates tbody tr').count(), rec.candidates!.length);
  const chosen = await tip.locator('tr.chosen td').allTextContents();
  const c = rec.candidates![rec.chosen!];
  assert.deepEqual(chosen, [
    JSON.stringify(runs.base.detokenize([c.token])),
    c.coefficient.toFixed(2),
    String(c.window),
    c.logp.toFixed(3),
  ]);
  await page.keyboard.press('Escape');
  await tip.waitFor({ state: 'hidden' });
});

test('keyboard navigation and filters', async () => {
  await page.locator('#problems').focus();
  await page.keyboard.press('ArrowDown');
  await page.waitForFunction((id) => document.querySelector('#trace h2')?.textContent === id, runs.problems[1].id);
  assert.equal(await page.locator('#problems li[aria-selected=true]').getAttribute('data-id'), runs.problems[1].id);
  await page.keyboard.press('End');
  await page.waitForFunction((id) => document.querySelector('#trace h2')?.textContent === id, runs.problems[3].id);

  // verdict of the hybrid run (the default run of the filter)
  const incorrect = runs.hybrid.filter((r) => !viewer.data.problems[r.problem].systems[2]!.correct).length;
  await page.selectOption('#verdict', 'incorrect');
  assert.equal(await page.locator('#problems li').count(), incorrect);
  assert.equal(await page.locator('#count').textContent(), `${incorrect} of 4 problems`);
  await page.selectOption('#verdict', 'all');
  // a category keeps the problems that steered with it
  const category = viewer.data.problems[0].categories[0];
  await page.selectOption('#category', category);
  const having = viewer.data.problems.filter((p) => p.categories.includes(category)).length;
  assert.equal(await page.locator('#problems li').count(), having);
  await page.selectOption('#category', '');
  // hiding a system removes its column
  await page.locator('#show-systems input[value="1"]').uncheck();
  await page.waitForFunction(() => document.querySelectorAll('#trace section.system').length === 2);
  assert.deepEqual(
    await page.locator('#trace section.system').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.run)),
    ['0', '2'],
  );
  await page.locator('#show-systems input[value="1"]').check();
});

test('a screenshot of one trace; no console errors, no requests beyond the viewer', async () => {
  await page.locator('#problems li').first().click();
  await page.waitForFunction((id) => document.querySelector('#trace h2')?.textContent === id, runs.problems[0].id);
  const dir = process.env.THINKWHEN_SCREENSHOTS ?? join(tmpdir(), 'thinkwhen-screenshots');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'viewer-trace.png');
  await page.locator('#trace').screenshot({ path: file });
  assert.ok(statSync(file).size > 5000, 'a real image');
  console.log(`screenshot: ${file}`);
  assert.deepEqual(browser.errors, []);
  const foreign = browser.requests.filter((u) => !u.startsWith(`${viewer.url}/`));
  assert.deepEqual(foreign, []);
});
