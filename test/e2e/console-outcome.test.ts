import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { ADMIN_TOKEN, startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { startRelay, type Relay } from '../support/tcp-relay.ts';

/**
 * The console when a change's outcome is unknown: the gateway reaches Redis through a relay that
 * cuts the connection in place of the commit's answer (the change was applied). The dialog says
 * it may or may not have been applied and the list behind it is reloaded, showing that it was.
 */

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path));
const SHOTS = join(process.cwd(), 'test-artifacts', 'console');

let redis: RedisServer;
let relay: Relay;
let upstream: EchoUpstream;
let gw: GatewayProcess;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (CHROMIUM === undefined) throw new Error('chromium is not installed: apt-get install -y chromium (the console tests drive Debian\'s browser)');
  mkdirSync(SHOTS, { recursive: true });
  redis = await startRedis();
  relay = await startRelay(redis.port);
  upstream = await startEchoUpstream();
  gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_STORE: relay.url } });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(5_000);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await upstream?.close();
  await relay?.close();
  await redis?.stop();
});

describe('console, a change whose outcome is unknown', () => {
  it('says it may or may not have been applied and shows the list as it is', async () => {
    expect((await gw.admin('POST', '/v1/accounts/AC7/ip-acl', { ip_address: '127.0.0.2/32', description: 'Office' })).status).toBe(201);
    await page.goto(`${gw.adminUrl}/console/`);
    await page.getByLabel('Token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Accounts' }).waitFor();
    await page.getByLabel('Open an account by id').fill('AC7');
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByRole('cell', { name: 'Office', exact: true }).waitFor();

    await page.getByRole('button', { name: 'Add entry' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add an entry' });
    await dialog.getByLabel('Name', { exact: true }).fill('Lab');
    await dialog.getByLabel('Address', { exact: true }).fill('127.0.0.3');
    const fired = relay.onCommand('EVALSHA', 'lose-reply', 'command');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await fired;
    await expect.poll(() => dialog.getByRole('alert').filter({ hasText: 'may or may not' }).textContent())
      .toMatch(/^The gateway sent this change but got no answer from the store: it may or may not have been applied\. The account is now at version 2\. The list has been reloaded: check it before trying again\.$/);
    // Behind the dialog, the list as Redis has it: the change was applied.
    await page.getByRole('cell', { name: 'Lab', exact: true }).waitFor();
    await page.screenshot({ path: join(SHOTS, '20-outcome-unknown.png'), fullPage: true });
    const listed = (await (await gw.admin('GET', '/v1/accounts/AC7/ip-acl')).json()) as { version: number; entries: { description: string }[] };
    expect(listed.version).toBe(2);
    expect(listed.entries.map((e) => e.description)).toEqual(['Office', 'Lab']);
  });
});
