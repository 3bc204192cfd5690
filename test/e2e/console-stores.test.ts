import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { openBrowser, previewImport, renameEntry } from '../support/browser.ts';
import { ADMIN_TOKEN, type GatewayProcess } from '../support/gateway-process.ts';
import { useFleet } from '../support/store-fleet.ts';

/**
 * The console shows and writes what the server stores on the stores console.test.ts does not
 * run on: memory, and Redis with the page on one replica while another admin writes through the
 * other. The import preview is the server's dry run, and a stale page's writes are refused (412)
 * without undoing the other admin's changes, then the page reloads and says what changed.
 */

interface ApiEntry {
  id: string;
  ip_address: string;
  cidrs: string[];
  description: string;
  action: string;
}

describe.each(['memory', 'redis'] as const)('the console on the %s store', (kind) => {
  const running = useFleet(kind);
  const account = `CS${kind}`;
  let browser: Browser;
  let page: Page;
  /** The replica the page talks to, and the one the other admin writes through (the same one on memory). */
  let mine: GatewayProcess;
  let theirs: GatewayProcess;

  const entries = async (): Promise<ApiEntry[]> => ((await (await theirs.admin('GET', `/v1/accounts/${account}/ip-acl`)).json()) as { entries: ApiEntry[] }).entries;
  const settings = async (): Promise<Record<string, unknown>> => (await mine.admin('GET', `/v1/accounts/${account}`)).json() as Promise<Record<string, unknown>>;

  beforeAll(async () => {
    [mine, theirs] = [running().at(0), running().at(1)];
    expect((await mine.admin('POST', `/v1/accounts/${account}/ip-acl`, { ip_address: '127.0.3.0/24', description: 'Partner' })).status).toBe(201);
    ({ browser, page } = await openBrowser('console'));
    await page.goto(`${mine.adminUrl}/console/`);
    await page.getByLabel('Token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Signed in once the accounts page is drawn (typing before that could be drawn over).
    await page.getByRole('heading', { name: 'Accounts' }).waitFor({ timeout: 15_000 });
    await page.getByLabel('Open an account by id').fill(account);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByRole('heading', { name: `Account ${account}` }).waitFor({ timeout: 15_000 });
    await page.getByRole('cell', { name: 'Partner', exact: true }).waitFor({ timeout: 15_000 });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('previews an import by the header row, as the server stores it', async () => {
    const { dialog, cells } = await previewImport(page, 'ip_address,description,action\n127.0.4.0/24,deny,allow', 1);
    expect(cells).toEqual([['2', '127.0.4.0/24', '127.0.4.0/24', 'allow', 'deny', 'added']]);
    await dialog.getByRole('button', { name: 'Import', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    const stored = (await entries()).find((e) => e.ip_address === '127.0.4.0/24');
    expect({ action: stored?.action, description: stored?.description }).toEqual({ action: 'allow', description: 'deny' });
  });

  it('refuses a stale page\'s rename and settings save, keeps the other admin\'s changes, and says what changed', async () => {
    await page.getByRole('cell', { name: 'deny', exact: true }).waitFor(); // the import above, shown
    const partner = (await entries()).find((e) => e.description === 'Partner')!;
    expect((await theirs.admin('PUT', `/v1/accounts/${account}`, { default: 'closed' })).status).toBe(200);
    expect((await theirs.admin('PATCH', `/v1/accounts/${account}/ip-acl/${partner.id}`, { action: 'deny' })).status).toBe(200);

    await renameEntry(page, 'Partner', 'Partner renamed');
    const notice = page.locator('.conflict');
    await expect.poll(() => notice.textContent()).toMatch(new RegExp(`Not saved: account ${account} changed since this page loaded it`));
    expect(await notice.textContent()).toContain('default: none → closed');
    expect(await notice.textContent()).toContain('entry 127.0.3.0/24 (Partner): action allow → deny');
    const after = (await entries()).find((e) => e.id === partner.id);
    expect({ action: after?.action, description: after?.description }).toEqual({ action: 'deny', description: 'Partner' });
    await expect.poll(() => page.locator(`tr[data-entry="${partner.id}"] .badge`).textContent()).toBe('deny');

    expect((await theirs.admin('PUT', `/v1/accounts/${account}`, { mode: 'report-only' })).status).toBe(200);
    await page.getByLabel('Entry limit').fill('40');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => notice.textContent()).toContain('mode: none → report-only');
    expect(await settings()).toMatchObject({ mode: 'report-only', default: 'closed', max_entries: null });
    expect(await page.getByLabel('Mode').inputValue()).toBe('report-only');
    await page.getByLabel('Entry limit').fill('40');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(settings).toMatchObject({ mode: 'report-only', default: 'closed', max_entries: 40 });
  });
});
