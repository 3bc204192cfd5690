import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitUntil } from '../support/wait.ts';

const ACCOUNT_TOKEN = 'ma-account-token-0123456789';
const ACCOUNT = 'MA_XXXXXXXX';
const OFFICE = '127.0.0.2';

describe('management through the real gateway', () => {
  let upstream: EchoUpstream;
  let gw: GatewayProcess;
  let dir: { path: string; remove: () => void };

  beforeAll(async () => {
    upstream = await startEchoUpstream();
    dir = scratchDir();
    const config = join(dir.path, 'allowgate.yaml');
    const digest = createHash('sha256').update(ACCOUNT_TOKEN).digest('hex');
    writeFileSync(config, [
      'admin:',
      '  credentials:',
      `    - {name: ma-key, role: account, account: ${ACCOUNT}, tokenSha256: ${digest}}`,
      '',
    ].join('\n'));
    gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_CONFIG: config, ALLOWGATE_STORE: `file:${join(dir.path, 'data', 'store.json')}`, ALLOWGATE_LOG_LEVEL: 'info' } });
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
    dir?.remove();
  });

  const vobiz = (method: string, path: string, body?: unknown) => fetch(`${gw.adminUrl}/api/v1/Account/${ACCOUNT}/ip-acl${path}`, {
    method,
    headers: { 'X-Auth-ID': ACCOUNT, 'X-Auth-Token': ACCOUNT_TOKEN, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

  it('serves the documented provider examples with an account credential from the config', async () => {
    const created = await vobiz('POST', '', { name: 'FreePBX server in data center', ip_address: '10.20.30.0/24' });
    expect(created.status).toBe(201);
    const entry = (await created.json()) as Record<string, unknown>;
    expect(Object.keys(entry).sort()).toEqual(['account_id', 'created_at', 'description', 'enabled', 'id', 'ip_address', 'updated_at']);
    expect(entry).toMatchObject({ account_id: ACCOUNT, ip_address: '10.20.30.0/24', description: 'FreePBX server in data center', enabled: true });
    expect(String(entry['created_at'])).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(await (await vobiz('POST', '', { name: 'bad', ip_address: '10.20.30.0/33' })).json()).toMatchObject({ error: 'Invalid IP address format', code: 400 });

    const add = await fetch(`${gw.adminUrl}/platform_api/AddAuthorizedAccountIP?authorized_ip=92.255.220.0%2F24&allowed=true&description=Office%20network%20range`, {
      method: 'POST', headers: { Authorization: `Bearer ${ACCOUNT_TOKEN}`, 'Content-Type': 'application/json' }, body: '{}',
    });
    expect(await add.json()).toEqual({ result: 1 });
    // Both surfaces wrote ordinary entries: the native API, the audit trail and the proxy see them.
    const native = (await (await gw.admin('GET', `/v1/accounts/${ACCOUNT}/ip-acl`)).json()) as { entries: { ip_address: string }[] };
    expect(native.entries.map((e) => e.ip_address)).toEqual(['10.20.30.0/24', '92.255.220.0/24']);
    const audit = (await (await gw.admin('GET', `/v1/audit?account=${ACCOUNT}`)).json()) as { events: { actor: { name: string }; via: string }[] };
    expect(audit.events.map((e) => [e.actor.name, e.via])).toEqual([['ma-key', 'voximplant'], ['ma-key', 'vobiz']]);
    expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': ACCOUNT }, localAddress: OFFICE })).status).toBe(403);
    // Out of scope for the account credential: another account.
    const other = await fetch(`${gw.adminUrl}/api/v1/Account/OTHER/ip-acl`, { headers: { 'X-Auth-ID': ACCOUNT, 'X-Auth-Token': ACCOUNT_TOKEN } });
    expect(other.status).toBe(403);
  });

  it('serves its OpenAPI description without credentials', async () => {
    const res = await fetch(`${gw.adminUrl}/v1/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toContain('/v1/accounts/{account}/ip-acl');
  });

  it('logs failed authentications with the source address and never the token', async () => {
    const guess = 'guessed-token-that-is-wrong-42';
    const res = await fetch(`${gw.adminUrl}/v1/accounts`, { headers: { authorization: `Bearer ${guess}` } });
    expect(res.status).toBe(401);
    await waitUntil('failure logged', () => gw.logs.some((l) => l['msg'] === 'admin authentication failed'), 5_000);
    expect(gw.logs.find((l) => l['msg'] === 'admin authentication failed')).toMatchObject({ source: '127.0.0.1', path: '/v1/accounts', failures: 1 });
    expect(JSON.stringify(gw.logs)).not.toContain(guess);
  });

  it('stops honouring a temporary entry at its expiry, with no write', async () => {
    const account = 'ACTEMP';
    await gw.admin('POST', `/v1/accounts/${account}/ip-acl`, { ip_address: '127.0.0.8/32' });
    const expiresAt = new Date(Date.now() + 1_500).toISOString();
    expect((await gw.admin('POST', `/v1/accounts/${account}/ip-acl`, { ip_address: `${OFFICE}/32`, expires_at: expiresAt })).status).toBe(201);
    expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': account }, localAddress: OFFICE })).status).toBe(200);
    const version = async () => ((await (await gw.admin('GET', `/v1/accounts/${account}`)).json()) as { version: number }).version;
    const before = await version();
    await waitUntil('entry expired', () => Date.now() > Date.parse(expiresAt) + 50, 5_000);
    expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': account }, localAddress: OFFICE })).status).toBe(403);
    // Nothing was written: the compiled list itself knew when to stop (the sweep runs once a minute).
    expect(await version()).toBe(before);
    const check = (await (await gw.admin('GET', `/v1/accounts/${account}/check?ip=${OFFICE}`)).json()) as { decision: string };
    expect(check.decision).toBe('deny');
  });
});
