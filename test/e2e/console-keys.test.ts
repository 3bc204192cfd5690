import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { openBrowser, type BrowserPage } from '../support/browser.ts';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { ADMIN_TOKEN, startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * The console's API keys in a real browser (Debian's chromium) against the real gateway with the
 * api-key strategy: an account's keys with their last use, registering one, a key's own list
 * (added to, emptied, opened), and disabling a key; each step checked on the proxy and in the API.
 * Screenshots in test-artifacts/console-keys/.
 */

const OFFICE = '127.0.0.2';
const CI = '127.0.0.3';
const CI_KEY = 'sk_live_console_ci_Pq7Rs2Tu9Vw4';

interface ApiKey {
  id: string;
  name: string;
  fingerprint: string;
  enabled: boolean;
  list_state: string;
}

let upstream: EchoUpstream;
let gw: GatewayProcess;
let browser: BrowserPage;
let page: Page;
const dir = scratchDir();

async function keys(): Promise<ApiKey[]> {
  return ((await (await gw.admin('GET', '/v1/accounts/AK1/keys')).json()) as { keys: ApiKey[] }).keys;
}

async function viaProxy(from: string): Promise<[number, string | undefined]> {
  const reply = await send(`${gw.url}/v1/calls`, { localAddress: from, headers: { 'x-api-key': CI_KEY } });
  return [reply.status, reply.status === 200 ? undefined : reply.json<{ reason: string }>().reason];
}

/** Recent callers are written in batches every second: waits until the key's include `ip`. */
async function seen(keyId: string, ip: string): Promise<void> {
  await waitUntil(`${ip} seen as a recent caller of the key`, async () => {
    const body = (await (await gw.admin('GET', `/v1/accounts/AK1/keys/${keyId}/recent-ips`)).json()) as { ips: { ip: string }[] };
    return body.ips.some((c) => c.ip === ip);
  }, 15_000);
}

const shot = (name: string): Promise<void> => browser.shot(name);

beforeAll(async () => {
  upstream = await startEchoUpstream();
  const config = join(dir.path, 'allowgate.yaml');
  writeFileSync(config, 'identity:\n  strategies:\n    - type: header\n      header: X-Auth-ID\n    - type: api-key\n      header: X-API-Key\n');
  gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_CONFIG: config, ALLOWGATE_STORE: `file:${join(dir.path, 'store.json')}` } });
  for (const ip of [OFFICE, CI]) expect((await gw.admin('POST', '/v1/accounts/AK1/ip-acl', { ip_address: ip })).status).toBe(201);
  browser = await openBrowser('console-keys');
  page = browser.page;
  // Steps wait on the gateway's own batched writes (recent callers, last use): a loaded machine needs room.
  page.setDefaultTimeout(15_000);
}, 60_000);

afterAll(async () => {
  await browser?.browser.close();
  await gw?.stop();
  await upstream?.close();
  dir.remove();
});

describe('API keys in the admin console', () => {
  it('registers a key on the account\'s page, never showing it again', async () => {
    await page.goto(`${gw.adminUrl}/console/#/accounts/AK1`);
    await page.getByLabel('Token').fill(ADMIN_TOKEN);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Account AK1' }).waitFor();
    await page.getByText('No API key is registered for this account').waitFor();

    await page.getByRole('button', { name: 'Register key' }).click();
    const dialog = page.getByRole('dialog', { name: 'Register an API key for AK1' });
    await dialog.getByLabel('Name', { exact: true }).fill('CI runner');
    // Neither given: refused in the dialog, nothing sent.
    await dialog.getByRole('button', { name: 'Register' }).click();
    await expect.poll(() => dialog.getByRole('alert').first().textContent()).toMatch(/exactly one of them/);
    await dialog.getByLabel('Key, as clients send it').fill(CI_KEY);
    expect(await dialog.getByLabel('Key, as clients send it').getAttribute('type')).toBe('password');
    await shot('01-register');
    await dialog.getByRole('button', { name: 'Register' }).click();
    await dialog.waitFor({ state: 'detached' });
    const [key] = await keys();
    expect(key).toMatchObject({ name: 'CI runner', enabled: true, list_state: 'none' });
    await page.getByRole('cell', { name: key!.fingerprint }).waitFor();
    expect(await page.content()).not.toContain(CI_KEY);
    expect(await viaProxy(OFFICE)).toEqual([200, undefined]);
    await shot('02-keys');
  });

  it('restricts the key to the CI range on its own page, and shows its last use', async () => {
    const [key] = await keys();
    await seen(key!.id, OFFICE);
    await page.getByRole('button', { name: 'The list of key CI runner' }).click();
    await page.getByRole('heading', { name: 'Key CI runner of AK1' }).waitFor();
    await page.getByText('the account\'s list alone decides for this key').waitFor();
    await page.getByRole('button', { name: 'Add entry' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add an entry' });
    await dialog.getByLabel('Name', { exact: true }).fill('CI runners');
    await dialog.getByLabel('Address', { exact: true }).fill(CI);
    await dialog.getByRole('button', { name: 'Save' }).click();
    // The key was just used from the office: the key's own lockout guard says so before it is refused there.
    await expect.poll(() => dialog.locator('.lockout').textContent(), { timeout: 15_000 }).toMatch(new RegExp(OFFICE.replaceAll('.', '\\.')));
    await shot('03-key-lockout');
    await dialog.getByRole('button', { name: 'Save anyway' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('cell', { name: 'CI runners', exact: true }).waitFor();
    const list = (await (await gw.admin('GET', `/v1/accounts/AK1/keys/${key!.id}/ip-acl`)).json()) as { entries: { ip_address: string }[] };
    expect(list.entries.map((e) => e.ip_address)).toEqual([CI]);
    expect(await viaProxy(CI)).toEqual([200, undefined]);
    expect(await viaProxy(OFFICE)).toEqual([403, 'ip_not_allowed_for_key']);

    await page.getByLabel('IP address to check').fill(OFFICE);
    await page.getByRole('button', { name: 'Check', exact: true }).click();
    await expect.poll(() => page.locator('.check-result').textContent(), { timeout: 15_000 }).toMatch(/Refused \(ip_not_allowed_for_key\)/);
    // Last use is written behind the request path: wait for it, then the account's page shows it.
    // The last forwarded request with the key came from CI (the office one was refused); an earlier
    // use from the office may still be the recorded one until the next batch is written.
    await waitUntil('the key\'s last use from CI recorded', async () => (await keys())[0]!.list_state === 'active' && (await (await gw.admin('GET', `/v1/accounts/AK1/keys/${key!.id}`)).json() as { last_used_ip: string | null }).last_used_ip === CI, 15_000);
    await page.reload();
    await page.getByText(`from ${CI}`).waitFor();
    await shot('04-key-list');
    await page.getByRole('link', { name: 'AK1' }).click();
    await page.getByRole('heading', { name: 'Account AK1' }).waitFor();
    await page.getByRole('cell', { name: 'restricted by its own list too' }).waitFor();
    const lastIp = (await (await gw.admin('GET', `/v1/accounts/AK1/keys/${key!.id}`)).json() as { last_used_ip: string }).last_used_ip;
    await page.locator(`tr[data-key="${key!.id}"] td[data-label="From"]`).getByText(lastIp).waitFor();
  });

  it('shows an emptied key list refusing every request with the key, and opens it only when confirmed', async () => {
    await seen((await keys())[0]!.id, CI);
    await page.getByRole('button', { name: 'The list of key CI runner' }).click();
    await page.getByRole('heading', { name: 'Key CI runner of AK1' }).waitFor();
    await page.getByRole('button', { name: 'Delete CI runners' }).click();
    // The CI runner called with the key a moment ago: the guard asks first.
    const confirm = page.getByRole('dialog', { name: 'This would lock out callers' });
    await expect.poll(() => confirm.locator('.lockout').textContent(), { timeout: 15_000 }).toMatch(new RegExp(CI.replaceAll('.', '\\.')));
    await confirm.getByRole('button', { name: 'Delete anyway' }).click();
    await page.getByText('The key\'s list is empty:').waitFor();
    expect(await viaProxy(CI)).toEqual([403, 'list_empty_for_key']);
    expect(await viaProxy(OFFICE)).toEqual([403, 'list_empty_for_key']);
    await shot('05-key-list-empty');

    await page.getByRole('button', { name: 'Open the key\'s list' }).click();
    const dialog = page.getByRole('dialog', { name: 'This would open the key' });
    await expect.poll(() => dialog.locator('.lockout').textContent(), { timeout: 15_000 }).toMatch(/would no longer be restricted by a list of its own/);
    await dialog.getByRole('button', { name: 'Open anyway' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByText('the account\'s list alone decides for this key').waitFor();
    expect((await keys())[0]!.list_state).toBe('none');
    expect(await viaProxy(OFFICE)).toEqual([200, undefined]);
  });

  it('disables the key from the account\'s page', async () => {
    await page.getByRole('link', { name: 'AK1' }).click();
    await page.getByRole('button', { name: 'Disable key CI runner' }).click();
    await page.getByRole('button', { name: 'Enable key CI runner' }).waitFor();
    expect((await keys())[0]!.enabled).toBe(false);
    expect(await viaProxy(OFFICE)).toEqual([401, 'key_disabled']);
    await shot('06-disabled');
  });

  it('renames the key from the account\'s page; the key itself keeps working as before', async () => {
    const before = (await keys())[0]!;
    await page.getByRole('button', { name: 'Rename key CI runner' }).click();
    const dialog = page.getByRole('dialog', { name: 'Rename key CI runner' });
    expect(await dialog.getByLabel('Name', { exact: true }).inputValue()).toBe('CI runner');
    // A name the API refuses (over 255 characters) is shown in the dialog, and nothing changes.
    // (The field's maxlength stops typing past 255, so the attribute goes first, as a script could.)
    await dialog.getByLabel('Name', { exact: true }).evaluate((el) => el.removeAttribute('maxlength'));
    await dialog.getByLabel('Name', { exact: true }).fill('n'.repeat(256));
    await dialog.getByRole('button', { name: 'Rename' }).click();
    await expect.poll(() => dialog.getByRole('alert').first().textContent()).not.toBe('');
    expect((await keys())[0]!.name).toBe('CI runner');
    await dialog.getByLabel('Name', { exact: true }).fill('GitHub Actions');
    await dialog.getByRole('button', { name: 'Rename' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('link', { name: 'GitHub Actions' }).waitFor();
    const after = (await keys())[0]!;
    expect(after).toMatchObject({ id: before.id, name: 'GitHub Actions', fingerprint: before.fingerprint, enabled: before.enabled });
    // The audit trail on the page is drawn again: the disabling and the renaming, each a key.update.
    await expect.poll(() => page.locator('ol.audit strong', { hasText: 'key.update' }).count()).toBe(2);
    // Still the disabled key it was: renaming changes the label, not the credential.
    expect(await viaProxy(OFFICE)).toEqual([401, 'key_disabled']);
    await shot('07-renamed');
  });
});
