import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { expect } from 'vitest';

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

/** Opens the console's import dialog on `text` and waits for its preview of `rows` rows; returns the dialog and each row's cells. */
export async function previewImport(page: Page, text: string, rows: number): Promise<{ dialog: Locator; cells: string[][] }> {
  await page.getByRole('button', { name: 'Import' }).click();
  const dialog = page.getByRole('dialog', { name: 'Import entries' });
  await dialog.getByLabel('Paste CSV or JSON').fill(text);
  const shown = dialog.locator('.preview-table tbody tr');
  // The preview is the server's dry run: a round trip to the store, however loaded.
  await expect.poll(() => shown.count(), { timeout: 10_000 }).toBe(rows);
  const cells: string[][] = [];
  for (let i = 0; i < rows; i++) cells.push(await shown.nth(i).locator('td').allTextContents());
  return { dialog, cells };
}

/** Renames an entry through its Edit dialog and waits for the dialog to close (saved or refused). */
export async function renameEntry(page: Page, from: string, to: string): Promise<void> {
  await page.getByRole('button', { name: `Edit ${from}` }).click();
  const dialog = page.getByRole('dialog', { name: 'Edit entry' });
  await dialog.getByLabel('Name', { exact: true }).fill(to);
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'detached' });
}
