import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { STORE_KINDS, UNLIMITED_WRITES, useFleet } from '../support/store-fleet.ts';

/*
 * What the admin listener shows, and to whom: a subaccount's credential checking an address
 * learns the decision, not the entries of lists it may not read (its parent's, the global one),
 * on the native and the compatible check; and the listener answers only to the Host names it is
 * configured for, loopback and its own addresses, so a page whose DNS name an attacker points at
 * the gateway (DNS rebinding) reaches nothing, not even the console or the probes.
 */

const CHILD_TOKEN = 'exposure-child-token-0123456789';
const CALLER = '127.0.0.2';

describe.each(STORE_KINDS)('admin exposure on the %s store', (kind) => {
  const digest = createHash('sha256').update(CHILD_TOKEN).digest('hex');
  const running = useFleet(kind, {
    config: ['admin:', `  ${UNLIMITED_WRITES}`, '  allowedHosts: [admin.example.test, "*.svc.example.test"]', '  credentials:', `    - {name: child-key, role: account, account: CHILD, tokenSha256: ${digest}}`, ''].join('\n'),
  });

  beforeAll(async () => {
    const gw = running().at(0);
    expect((await gw.admin('POST', '/v1/accounts/PARENT/ip-acl', { ip_address: `${CALLER}/32`, description: 'parent office' })).status).toBe(201);
    expect((await gw.admin('POST', '/v1/global/ip-acl', { ip_address: '127.0.0.77/32', action: 'deny', description: 'operator block' })).status).toBe(201);
    expect((await gw.admin('PUT', '/v1/accounts/CHILD', { parent: 'PARENT' })).status).toBe(200);
  });

  const asChild = (path: string): Promise<Record<string, unknown>> => fetch(`${running().at(0).adminUrl}${path}`, { headers: { authorization: `Bearer ${CHILD_TOKEN}` } }).then((r) => r.json() as Promise<Record<string, unknown>>);

  it('shows a subaccount credential the decision and the deciding list, not the parent\'s or the global entry', async () => {
    expect((await send(`${running().at(0).url}/x`, { headers: { 'x-auth-id': 'CHILD' }, localAddress: CALLER })).status).toBe(200);
    expect(await asChild(`/v1/accounts/CHILD/check?ip=${CALLER}`)).toEqual({ account: 'CHILD', ip: CALLER, decision: 'allow', reason: 'ip_allowed', matched: { action: 'allow', list: 'parent' }, list_state: 'active' });
    expect(await asChild('/v1/accounts/CHILD/check?ip=127.0.0.77')).toEqual({ account: 'CHILD', ip: '127.0.0.77', decision: 'deny', reason: 'ip_denied', matched: { action: 'deny', list: 'global' }, list_state: 'active' });
    // Reading the parent directly is refused, as it was.
    expect(await asChild('/v1/accounts/PARENT/ip-acl')).toMatchObject({ code: 403, reason: 'forbidden' });
    // The compatible check says whether, not which network.
    const vox = (await (await fetch(`${running().at(0).adminUrl}/platform_api/CheckAuthorizedAccountIP?authorized_ip=${CALLER}`, { headers: { authorization: `Bearer ${CHILD_TOKEN}` } })).json()) as Record<string, unknown>;
    expect(vox).toEqual({ result: { allowed: true, authorized_ip: null } });
    // A credential that may read those lists sees the entry.
    const owner = (await (await running().at(0).admin('GET', `/v1/accounts/CHILD/check?ip=${CALLER}`)).json()) as { matched: Record<string, unknown> };
    expect(owner.matched).toMatchObject({ cidr: `${CALLER}/32`, action: 'allow', list: 'parent', id: expect.stringMatching(/^ipacl_/) });
  });

  it('answers only to configured names, loopback and its own addresses: a rebound name gets 421 everywhere', async () => {
    const port = running().at(0).adminPort;
    const at = (host: string, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string) => send(`http://127.0.0.1:${port}${path}`, { method, headers: { host, ...headers }, ...(body === undefined ? {} : { body }) });
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `admin.example.test:${port}`, 'admin-api.svc.example.test']) {
      expect((await at(host, '/healthz')).status, host).toBe(200);
      expect((await at(host, '/v1/accounts', { authorization: `Bearer ${ADMIN_TOKEN}` })).status, host).toBe(200);
    }
    for (const host of [`evil.example:${port}`, 'admin.example.test.evil.example', `svc.example.test:${port}`, '192.0.2.1']) {
      for (const path of ['/healthz', '/readyz', '/v1/accounts', '/console/', '/v1/openapi.json']) {
        const reply = await at(host, path, { authorization: `Bearer ${ADMIN_TOKEN}` });
        expect(reply.status, `${host} ${path}`).toBe(421);
        expect(reply.json()).toMatchObject({ code: 421, reason: 'unknown_host', error: expect.stringContaining('admin.allowedHosts') });
      }
    }
    // A write under a rebound name changes nothing.
    const write = await at('evil.example', '/v1/accounts/PARENT/ip-acl', { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, 'POST', JSON.stringify({ ip_address: '127.0.0.99' }));
    expect(write.status).toBe(421);
    const list = (await (await running().at(0).admin('GET', '/v1/accounts/PARENT/ip-acl')).json()) as { entries: { ip_address: string }[] };
    expect(list.entries.map((e) => e.ip_address)).toEqual([`${CALLER}/32`]);
  });
});
