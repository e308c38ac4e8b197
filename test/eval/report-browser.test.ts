// Renders a sample report in headless Chromium (test/helpers/browser.ts: never downloaded) and
// checks that it draws its plots and tables without console errors or network requests.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { buildReport, writeReport } from '../../src/eval/report/index.ts';
import { openBrowser } from '../helpers/browser.ts';
import { buildFakeRun, gsm8kProblems } from './fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-browser-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

it('a sample report renders in headless Chromium without console errors', { timeout: 60_000 }, async () => {
  const { problems, info } = await gsm8kProblems(30);
  const paths = [
    await buildFakeRun(
      join(tmp, 'b.sqlite'),
      { name: 'base <b>', role: 'base', accuracy: 0.4, problems, seed: 1 },
      info,
    ),
    await buildFakeRun(
      join(tmp, 't.sqlite'),
      { name: 'thinking', role: 'thinking', accuracy: 0.8, problems, seed: 2 },
      info,
    ),
    await buildFakeRun(
      join(tmp, 'h.sqlite'),
      { name: 'hybrid', role: 'hybrid', accuracy: 0.6, problems, seed: 3 },
      info,
    ),
    await buildFakeRun(
      join(tmp, 's.sqlite'),
      { name: 'sampled', role: 'x', accuracy: 0.5, problems, samplesPerProblem: 4, seed: 4 },
      info,
    ),
  ];
  const files = writeReport(buildReport(paths, { bootstrap: 50 }), join(tmp, 'out'));

  const browser = await openBrowser();
  try {
    const page = await browser.newPage();
    const url = pathToFileURL(files.html).href;
    await page.goto(url, { waitUntil: 'load' });

    assert.equal(await page.title(), 'thinkwhen evaluation');
    assert.equal(await page.locator('svg.plot').count(), 3);
    assert.equal(await page.locator('svg.accuracy circle').count(), 4);
    assert.equal(await page.locator('svg.passk polyline').count(), 4);
    assert.equal(await page.locator('#runs tbody tr').count(), 4);
    assert.equal(await page.locator('#gaps tbody tr').count(), 1);
    assert.equal(await page.locator('#pairs tbody tr').count(), 6);
    // Names are escaped, not interpreted as markup.
    assert.equal(await page.locator('#runs tbody tr').first().locator('td').first().textContent(), 'base <b>');
    // Every plot has a real size once laid out.
    for (const box of await page
      .locator('svg.plot')
      .evaluateAll((els) => els.map((e) => e.getBoundingClientRect().height))) {
      assert.ok(box > 50);
    }
    assert.deepEqual(browser.errors, []);
    assert.deepEqual(browser.requests, [url]);
  } finally {
    await browser.close();
  }
});
