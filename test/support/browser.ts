import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path));

export interface BrowserPage {
  readonly browser: Browser;
  readonly page: Page;
  /** A full-page screenshot, test-artifacts/<dir>/<name>.png. */
  shot(name: string): Promise<void>;
}

/** Debian's chromium (driven by playwright-core), headless, one page of a desktop's size; screenshots under test-artifacts/`dir`. */
export async function openBrowser(dir: string): Promise<BrowserPage> {
  if (CHROMIUM === undefined) throw new Error('chromium is not installed: apt-get install -y chromium (the console tests drive Debian\'s browser)');
  const shots = join(process.cwd(), 'test-artifacts', dir);
  mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(5_000);
  return { browser, page, shot: async (name) => { await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true }); } };
}
