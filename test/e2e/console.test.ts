import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { previewImport, renameEntry } from '../support/browser.ts';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { ADMIN_TOKEN, startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * The admin console in a real browser (Debian's chromium, driven by playwright-core) against the
 * real gateway: every flow asserts what the page shows and what the admin API then holds, and
 * each page is saved as a screenshot in test-artifacts/console/.
 */

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path));
const SHOTS = join(process.cwd(), 'test-artifacts', 'console');
const ACCOUNT_TOKEN = 'console-account-token-0123456789';
const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';

interface ApiEntry {
  id: string;
  ip_address: string;
  cidrs: string[];
  description: string;
  enabled: boolean;
}

let upstream: EchoUpstream;
let gw: GatewayProcess;
let browser: Browser;
let page: Page;
const dir = scratchDir();

async function entries(): Promise<ApiEntry[]> {
  return ((await (await gw.admin('GET', '/v1/accounts/AC1/ip-acl')).json()) as { entries: ApiEntry[] }).entries;
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

function viaProxy(from: string): Promise<number> {
  return send(`${gw.url}/v1/calls`, { localAddress: from, headers: { 'x-auth-id': 'AC1' } }).then((r) => r.status);
}

beforeAll(async () => {
  if (CHROMIUM === undefined) throw new Error('chromium is not installed: apt-get install -y chromium (the console tests drive Debian\'s browser)');
  mkdirSync(SHOTS, { recursive: true });
  upstream = await startEchoUpstream();
  const config = join(dir.path, 'allowgate.yaml');
  const digest = createHash('sha256').update(ACCOUNT_TOKEN).digest('hex');
  writeFileSync(config, ['admin:', '  credentials:', `    - {name: ac1-owner, role: account, account: AC1, tokenSha256: ${digest}}`, ''].join('\n'));
  gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_CONFIG: config, ALLOWGATE_STORE: `file:${join(dir.path, 'store.json')}` } });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(5_000);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await upstream?.close();
  dir.remove();
});

describe('console files', () => {
  it('are served without credentials as JavaScript stripped of types, under a strict content policy', async () => {
    const index = await fetch(`${gw.adminUrl}/console/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self'/);
    expect(await index.text()).toContain('/console/ui/main.ts');
    const api = await fetch(`${gw.adminUrl}/console/ui/api.ts`);
    expect(api.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const code = await api.text();
    expect(code).toContain('export class Api');
    expect(code).not.toMatch(/export interface|: Promise</);
    expect((await fetch(`${gw.adminUrl}/console/ip/rule.ts`)).status).toBe(200);
    const missing = await fetch(`${gw.adminUrl}/console/ui/..%2f..%2fapp.ts`);
    expect(missing.status).toBe(404);
    expect((await fetch(`${gw.adminUrl}/console/ip/trie.ts`)).status).toBe(404);
    expect((await fetch(`${gw.adminUrl}/console/`, { method: 'POST' })).status).toBe(405);
  });
});

describe('admin console in a browser', () => {
  it('refuses a wrong token, then signs in with the admin token and shows the empty accounts page', async () => {
    await page.goto(`${gw.adminUrl}/console`);
    await page.getByLabel('Token').fill('not-the-token-at-all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toMatch(/not valid/);
    await shot('01-sign-in-refused');
    // Someone else on the operator's address (everyone behind one port-forward is 127.0.0.1) keeps
    // guessing: their wrong tokens are held back, the operator's right one is not.
    const guesses = await Promise.all(Array.from({ length: 12 }, (_, i) => fetch(`${gw.adminUrl}/v1/accounts`, { headers: { authorization: `Bearer wrong-guess-${i}` } }).then((r) => r.status)));
    expect(guesses.filter((status) => status === 429).length).toBeGreaterThan(0);
    await page.getByLabel('Token').fill(ADMIN_TOKEN);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Accounts' }).waitFor();
    expect(await page.locator('#who').textContent()).toContain('owner');
    await page.getByText('No account has a list yet').waitFor();
    await shot('02-accounts-empty');
  });

  it('adds the office address and a range, previewing the networks, and the proxy enforces them at once', async () => {
    await page.getByLabel('Open an account by id').fill('AC1');
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByRole('heading', { name: 'Account AC1' }).waitFor();
    await page.getByText('No entries yet').waitFor();
    await shot('03-account-empty');

    await page.getByRole('button', { name: 'Add entry' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add an entry' });
    await dialog.getByLabel('Name', { exact: true }).fill('Office');
    await dialog.getByLabel('Address', { exact: true }).fill(`${OFFICE}/255.255.255.255`);
    await expect.poll(() => dialog.locator('.preview').textContent()).toBe(`Becomes ${OFFICE}/32`);
    await dialog.getByLabel('Address', { exact: true }).fill(OFFICE);
    await shot('04-add-ip');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('cell', { name: 'Office', exact: true }).waitFor();
    expect((await entries()).map((e) => [e.description, e.ip_address, e.cidrs])).toEqual([['Office', OFFICE, [`${OFFICE}/32`]]]);
    expect(await viaProxy(OFFICE)).toBe(200);
    expect(await viaProxy(STRANGER)).toBe(403);

    await page.getByRole('button', { name: 'Add entry' }).click();
    await dialog.getByText('Range').click();
    await dialog.getByLabel('Name', { exact: true }).fill('Lab');
    await dialog.getByLabel('First address').fill('127.0.1.0');
    await dialog.getByLabel('Last address').fill('127.0.1.255');
    await expect.poll(() => dialog.locator('.preview').textContent()).toBe('Becomes 127.0.1.0/24');
    await shot('05-add-range');
    await dialog.getByLabel('Last address').press('Enter');
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('cell', { name: 'Lab', exact: true }).waitFor();
    const lab = (await entries()).find((e) => e.description === 'Lab');
    expect(lab?.cidrs).toEqual(['127.0.1.0/24']);
    await shot('06-entries');
  });

  it('explains a refused duplicate next to the address, keeps the dialog open, and closes on Escape', async () => {
    await page.getByRole('button', { name: 'Add entry' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add an entry' });
    await dialog.getByLabel('Address', { exact: true }).fill(`${OFFICE}/32`);
    await dialog.getByRole('button', { name: 'Save' }).click();
    // The message sits in the address field's own error slot (its id is the field's, plus -error).
    const addressId = await dialog.getByLabel('Address', { exact: true }).getAttribute('id');
    const error = dialog.locator(`#${addressId}-error`);
    await expect.poll(() => error.textContent()).toMatch(/already in the list/);
    expect(await dialog.getByLabel('Address', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    await dialog.getByLabel('Address', { exact: true }).fill('10.0.0.1/8');
    await expect.poll(() => dialog.locator('.preview').textContent()).toMatch(/host bits set/);
    await shot('07-refused');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await entries()).toHaveLength(2);
  });

  it('edits an entry and disables and re-enables one', async () => {
    await page.getByRole('button', { name: 'Edit Office' }).click();
    const dialog = page.getByRole('dialog', { name: 'Edit entry' });
    expect(await dialog.getByLabel('Address', { exact: true }).inputValue()).toBe(OFFICE);
    await dialog.getByLabel('Name', { exact: true }).fill('Office Berlin');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('cell', { name: 'Office Berlin', exact: true }).waitFor();
    expect((await entries()).find((e) => e.ip_address === OFFICE)?.description).toBe('Office Berlin');

    await page.getByRole('button', { name: 'Disable Lab' }).click();
    await page.getByRole('button', { name: 'Enable Lab' }).waitFor();
    expect((await entries()).find((e) => e.description === 'Lab')?.enabled).toBe(false);
    await shot('08-disabled');
    await page.getByRole('button', { name: 'Enable Lab' }).click();
    await page.getByRole('button', { name: 'Disable Lab' }).waitFor();
    expect((await entries()).find((e) => e.description === 'Lab')?.enabled).toBe(true);
  });

  it('checks an IP and shows the deciding entry', async () => {
    await page.getByLabel('IP address to check').fill(OFFICE);
    await page.getByRole('button', { name: 'Check', exact: true }).click();
    await expect.poll(() => page.locator('.check-result').textContent()).toMatch(new RegExp(`Allowed.*${OFFICE.replaceAll('.', '\\.')}/32`));
    await page.getByLabel('IP address to check').fill(STRANGER);
    await page.getByLabel('IP address to check').press('Enter');
    await expect.poll(() => page.locator('.check-result').textContent()).toMatch(/Refused \(ip_not_allowed\)/);
    await shot('09-check');
  });

  it('warns before deleting the entry a live caller uses, then deletes it when told to', async () => {
    expect(await viaProxy(OFFICE)).toBe(200);
    // Recent callers are written in batches every second.
    await waitUntil('the office seen as a recent caller', async () => {
      const body = (await (await gw.admin('GET', '/v1/accounts/AC1/recent-ips')).json()) as { ips: { ip: string }[] };
      return body.ips.some((c) => c.ip === OFFICE);
    }, 5_000);
    await page.reload();
    await page.getByRole('heading', { name: 'Account AC1' }).waitFor();
    await page.getByRole('cell', { name: OFFICE, exact: true }).waitFor();
    await page.getByRole('button', { name: 'Delete Office Berlin' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this entry?' });
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => dialog.locator('.lockout').textContent()).toMatch(new RegExp(`would block 1 recently seen caller: ${OFFICE.replaceAll('.', '\\.')}`));
    await dialog.getByRole('button', { name: 'Delete anyway' }).waitFor();
    expect(await entries()).toHaveLength(2); // nothing changed yet
    await shot('10-lockout-warning');
    await dialog.getByRole('button', { name: 'Delete anyway' }).click();
    await dialog.waitFor({ state: 'detached' });
    await expect.poll(async () => (await entries()).map((e) => e.description)).toEqual(['Lab']);
    expect(await viaProxy(OFFICE)).toBe(403);
    await page.getByRole('heading', { name: 'Audit trail' }).scrollIntoViewIfNeeded();
    await expect.poll(() => page.locator('.audit li').count()).toBeGreaterThanOrEqual(5);
    expect(await page.locator('.audit').textContent()).toMatch(/entry\.delete by owner/);
    await shot('11-after-delete');
  });

  it('imports CSV after a per-row preview, and filters and sorts the table', async () => {
    await page.getByRole('button', { name: 'Import' }).click();
    const dialog = page.getByRole('dialog', { name: 'Import entries' });
    const text = dialog.getByLabel('Paste CSV or JSON');
    await text.fill('ip_address,action,description\n127.0.3.0/24,allow,Partner\n10.0.0.1/8,allow,Typo');
    await expect.poll(() => dialog.locator('.preview-table').textContent()).toMatch(/2 rows, 1 with a problem/);
    expect(await dialog.locator('tr.invalid').textContent()).toMatch(/host bits set/);
    await dialog.getByRole('button', { name: 'Import', exact: true }).click();
    await expect.poll(() => dialog.locator('.form-error').textContent()).toMatch(/Fix the rows/);
    await shot('12-import-preview');
    await text.fill('ip_address,action,description\n127.0.3.0/24,allow,Partner');
    await dialog.getByRole('button', { name: 'Import', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    await expect.poll(async () => (await entries()).map((e) => e.description).sort()).toEqual(['Lab', 'Partner']);

    await page.getByLabel('Filter entries').fill('partner');
    await expect.poll(() => page.locator('table.entries tbody tr').count()).toBe(1);
    await page.getByLabel('Filter entries').fill('');
    await page.locator('th button.sort', { hasText: 'Name' }).click();
    expect(await page.locator('th', { hasText: 'Name' }).getAttribute('aria-sort')).toBe('ascending');
    expect(await page.locator('table.entries tbody tr td:first-child').allTextContents()).toEqual(['Lab', 'Partner']);
    await page.locator('th button.sort', { hasText: 'Name' }).click();
    expect(await page.locator('table.entries tbody tr td:first-child').allTextContents()).toEqual(['Partner', 'Lab']);
  });

  it('exports the list as CSV and JSON, and saves the IPv6 and lockout-guard settings', async () => {
    const saved = async (name: string): Promise<{ file: string; text: string }> => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name }).click()]);
      return { file: download.suggestedFilename(), text: readFileSync((await download.path())!, 'utf8') };
    };
    const csv = await saved('Export CSV');
    expect(csv.file).toBe('AC1-ip-acl.csv');
    const rows = csv.text.trim().split(/\r?\n/);
    expect(rows[0]).toMatch(/^ip_address,action,description,enabled/);
    expect(rows.slice(1).map((r) => r.split(',').slice(0, 3).join(',')).sort()).toEqual(['127.0.1.0 - 127.0.1.255,allow,Lab', '127.0.3.0/24,allow,Partner']);
    const json = await saved('Export JSON');
    expect(json.file).toBe('AC1-ip-acl.json');
    const exported = JSON.parse(json.text) as { account: string; entries: ApiEntry[] };
    expect(exported.account).toBe('AC1');
    expect(exported.entries.map((e) => e.id).sort()).toEqual((await entries()).map((e) => e.id).sort());

    const settings = async (): Promise<{ ipv4_only: boolean | null; guard: string | null }> => (await gw.admin('GET', '/v1/accounts/AC1')).json() as Promise<{ ipv4_only: boolean | null; guard: string | null }>;
    await page.getByLabel('IPv6 entries').selectOption('true');
    await page.getByLabel('Lockout guard').selectOption('strict');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(settings).toMatchObject({ ipv4_only: true, guard: 'strict' });
    // The page has its answer (and the version it returned) before the next edit, as a user would.
    await expect.poll(() => page.locator('#toast').textContent()).toBe('Settings saved');
    await page.getByLabel('IPv6 entries').selectOption('');
    await page.getByLabel('Lockout guard').selectOption('');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(settings).toMatchObject({ ipv4_only: null, guard: null });
  });

  it('previews an import as the server reads it (CSV columns by the header) and stores exactly what it showed', async () => {
    // A crafted "blocklist": the header puts description before action.
    const { dialog, cells } = await previewImport(page, 'ip_address,description,action\n127.0.4.0/24,deny,allow\n127.0.1.0/24,again,deny', 2);
    expect(cells).toEqual([['2', '127.0.4.0/24', '127.0.4.0/24', 'allow', 'deny', 'added'], ['3', '127.0.1.0/24', '127.0.1.0/24', 'deny', 'again', 'already listed']]);
    await shot('14-import-server-preview');
    await dialog.getByRole('button', { name: 'Import', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    const stored = (await entries()).find((e) => e.ip_address === '127.0.4.0/24') as ApiEntry & { action: string };
    expect({ action: stored.action, description: stored.description }).toEqual({ action: 'allow', description: 'deny' });
    expect((await entries()).filter((e) => e.cidrs.includes('127.0.1.0/24')).map((e) => e.description)).toEqual(['Lab']);
  });

  it('exports a description a spreadsheet would run as a formula neutralized, and its import restores it exactly', async () => {
    const formula = '=HYPERLINK("http://evil.example","open")';
    const added = await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '127.0.9.0/24', description: formula });
    expect(added.status).toBe(201);
    await page.reload();
    await page.getByRole('cell', { name: formula, exact: true }).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    const lines = readFileSync((await download.path())!, 'utf8').split('\r\n');
    const row = lines.find((line) => line.startsWith('127.0.9.0/24,'));
    expect(row).toBe('127.0.9.0/24,allow,"\'=HYPERLINK(""http://evil.example"",""open"")",true,');
    expect((await gw.admin('DELETE', `/v1/accounts/AC1/ip-acl/${((await added.json()) as ApiEntry).id}`)).status).toBe(200);

    await page.getByRole('button', { name: 'Import' }).click();
    const dialog = page.getByRole('dialog', { name: 'Import entries' });
    await dialog.getByLabel('Paste CSV or JSON').fill(`${lines[0]}\r\n${row}\r\n`);
    const rows = dialog.locator('.preview-table tbody tr');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.nth(0).locator('td').allTextContents()).toEqual(['2', '127.0.9.0/24', '127.0.9.0/24', 'allow', formula, 'added']);
    await dialog.getByRole('button', { name: 'Import', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    const stored = (await entries()).filter((e) => e.ip_address === '127.0.9.0/24');
    expect(stored.map((e) => e.description)).toEqual([formula]);
    expect((await gw.admin('DELETE', `/v1/accounts/AC1/ip-acl/${stored[0]!.id}`)).status).toBe(200);
  });

  it('refreshes an import preview made stale by another admin instead of storing something else', async () => {
    await page.getByRole('button', { name: 'Import' }).click();
    const dialog = page.getByRole('dialog', { name: 'Import entries' });
    await dialog.getByLabel('Paste CSV or JSON').fill('ip_address,description\n127.0.5.0/24,five');
    await expect.poll(() => dialog.locator('.preview-table tbody tr').count()).toBe(1);
    // Meanwhile another admin adds the same network.
    expect((await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '127.0.5.0/24', description: 'theirs' })).status).toBe(201);
    await dialog.getByRole('button', { name: 'Import', exact: true }).click();
    await expect.poll(() => dialog.locator('.form-error').textContent()).toMatch(/changed since the preview/);
    await expect.poll(() => dialog.locator('.preview-table tbody tr td:last-child').textContent()).toBe('already listed');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect((await entries()).filter((e) => e.ip_address === '127.0.5.0/24').map((e) => e.description)).toEqual(['theirs']);
  });

  it('never undoes another admin\'s changes from a stale page: the write is refused, the page reloads and says what changed', async () => {
    await page.reload();
    await page.getByRole('heading', { name: 'Account AC1' }).waitFor();
    await page.getByRole('cell', { name: 'Partner', exact: true }).waitFor();
    // Another admin, while the page is open: default closed, and Partner turned into a deny entry.
    const partner = (await entries()).find((e) => e.description === 'Partner')!;
    expect((await gw.admin('PUT', '/v1/accounts/AC1', { default: 'closed' })).status).toBe(200);
    expect((await gw.admin('PATCH', `/v1/accounts/AC1/ip-acl/${partner.id}`, { action: 'deny' })).status).toBe(200);

    // The stale page renames Partner.
    await renameEntry(page, 'Partner', 'Partner renamed');
    const notice = page.locator('.conflict');
    await expect.poll(() => notice.textContent()).toMatch(/Not saved: account AC1 changed since this page loaded it/);
    expect(await notice.textContent()).toContain('default: none → closed');
    expect(await notice.textContent()).toContain('entry 127.0.3.0/24 (Partner): action allow → deny');
    await shot('15-stale-page-refused');
    const after = (await entries()).find((e) => e.id === partner.id) as ApiEntry & { action: string };
    expect({ action: after.action, description: after.description }).toEqual({ action: 'deny', description: 'Partner' });
    // The page shows the account as it is now: Partner is a deny entry.
    await expect.poll(() => page.locator(`tr[data-entry="${partner.id}"] .badge`).textContent()).toBe('deny');

    // The settings form, stale too: another admin sets report-only; saving the entry limit is refused.
    expect((await gw.admin('PUT', '/v1/accounts/AC1', { mode: 'report-only' })).status).toBe(200);
    await page.getByLabel('Entry limit').fill('40');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => notice.textContent()).toContain('mode: none → report-only');
    const settings = async (): Promise<Record<string, unknown>> => (await gw.admin('GET', '/v1/accounts/AC1')).json() as Promise<Record<string, unknown>>;
    expect(await settings()).toMatchObject({ mode: 'report-only', default: 'closed', max_entries: null });
    // Reloaded, the form is current: saving now keeps the other admin's settings.
    expect(await page.getByLabel('Mode').inputValue()).toBe('report-only');
    await page.getByLabel('Entry limit').fill('40');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(settings).toMatchObject({ mode: 'report-only', default: 'closed', max_entries: 40 });
    await gw.admin('PUT', '/v1/accounts/AC1', { mode: null, default: null, max_entries: null });
  });

  it('shows an emptied list as refusing everyone, and opens it only after saying so', async () => {
    const created = (await (await gw.admin('POST', '/v1/accounts/AC9/ip-acl', { ip_address: `${OFFICE}/32` })).json()) as ApiEntry;
    expect((await gw.admin('DELETE', `/v1/accounts/AC9/ip-acl/${created.id}`)).status).toBe(200);
    const via = (from: string): Promise<number> => send(`${gw.url}/v1/calls`, { localAddress: from, headers: { 'x-auth-id': 'AC9' } }).then((r) => r.status);
    expect(await via(OFFICE)).toBe(403);
    await page.goto(`${gw.adminUrl}/console/#/accounts/AC9`);
    await page.getByRole('heading', { name: 'Account AC9' }).waitFor();
    await expect.poll(() => page.locator('.list-state').textContent()).toMatch(/The list is empty: no allow entry is in force, so every caller is refused \(list_empty\)/);
    await expect.poll(() => page.locator('.list-state-note').textContent()).toMatch(/List: emptied/);
    await shot('12b-list-empty');
    await page.getByRole('button', { name: 'Open to every address' }).click();
    const dialog = page.getByRole('dialog', { name: 'This would open the account' });
    await expect.poll(() => dialog.locator('.lockout').textContent()).toMatch(/account AC9 would be open to every address/);
    expect(await via(STRANGER)).toBe(403); // nothing changed yet
    await dialog.getByRole('button', { name: 'Open anyway' }).click();
    await dialog.waitFor({ state: 'detached' });
    await expect.poll(async () => ((await (await gw.admin('GET', '/v1/accounts/AC9')).json()) as { list_state: string }).list_state).toBe('none');
    expect(await via(STRANGER)).toBe(200);
    await expect.poll(() => page.locator('.list-state').count()).toBe(0);
    await expect.poll(() => page.locator('.list-state-note').textContent()).toMatch(/List: never restricted/);
  });

  it('shows an account credential its own account only, and fits a phone screen', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Token').fill(ACCOUNT_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Account AC1' }).waitFor();
    expect(await page.getByRole('link', { name: 'Accounts' }).count()).toBe(0);
    await page.getByRole('heading', { name: 'Settings' }).waitFor();
    expect(await page.getByRole('button', { name: 'Save settings' }).count()).toBe(0);
    await page.setViewportSize({ width: 390, height: 844 });
    await shot('13-phone');
    // A string, so the test's own (Node) types need no DOM: it runs in the page.
    const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth') as number;
    expect(overflow).toBeLessThanOrEqual(0);
  });
});
