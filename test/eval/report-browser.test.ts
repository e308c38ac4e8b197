// Renders a sample report in headless Chromium (system binary, never downloaded) and checks
// that it draws its plots and tables without console errors or network requests.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { buildReport, writeReport } from '../../src/eval/report/index.ts';
import { buildFakeRun, gsm8kProblems } from './fixtures.ts';

const CHROMIUM = '/usr/bin/chromium';
const tmp = mkdtempSync(join(tmpdir(), 'thinkwhen-browser-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

it('a sample report renders in headless Chromium without console errors', { timeout: 60_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);
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

  const context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const page = await context.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
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
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, [url]);
  } finally {
    await context.close();
  }
});
