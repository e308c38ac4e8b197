// One way for tests to drive a headless Chromium (scripts/chromium.mjs finds it: the system's, or the
// one inside the pinned npm package; never a download). Each session gets a fresh profile and records
// console errors/warnings, uncaught page errors and every request the pages make.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, findChromium } from '../../scripts/chromium.mjs';

export interface BrowserSession {
  context: BrowserContext;
  /** `console.error`/`console.warn` messages and uncaught exceptions, from every page */
  errors: string[];
  /** every URL requested by every page */
  requests: string[];
  /** which Chromium runs (path and where it came from) */
  browser: string;
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

export async function openBrowser(viewport = { width: 1280, height: 800 }): Promise<BrowserSession> {
  const found = findChromium();
  const profile = mkdtempSync(join(tmpdir(), 'thinkwhen-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: found.executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
      env: { ...process.env, ...found.env } as Record<string, string>,
      viewport,
    });
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
  const errors: string[] = [];
  const requests: string[] = [];
  const watch = (page: Page) => {
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  return {
    context,
    errors,
    requests,
    browser: `${found.executablePath} (${found.source})`,
    newPage: () => context.newPage(),
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
