import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CheckResult } from '../../../src/admin/types.ts';
import { formatIp, type IpAddress } from '../../../src/ip/address.ts';
import type { MemoryStore } from '../../../src/store/memory-store.ts';
import { OWNER_TOKEN as TOKEN, startAdminApi, type AdminApi } from '../../support/admin-api.ts';

const NOW = new Date('2026-06-01T12:00:00Z');

describe('admin API', () => {
  let api: AdminApi;
  let base: string;
  let store: MemoryStore;
  let ready = true;
  const checks: [string, string][] = [];

  beforeAll(async () => {
    api = await startAdminApi({
      // The policy layer answers this in the real gateway; here it records what it was asked.
      check: async (account: string, ip: IpAddress): Promise<CheckResult> => {
        checks.push([account, formatIp(ip)]);
        return { decision: 'deny', reason: 'ip_not_allowed', matched: null, listState: 'active' };
      },
      ready: () => ready,
      now: () => NOW,
    });
    store = api.store;
    base = api.base;
  });

  afterAll(async () => {
    await api?.close();
  });

  beforeEach(() => {
    ready = true;
  });

  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => api.call(method, path, body, headers);
  const json = async (res: Response) => (await res.json()) as Record<string, unknown>;

  it('serves health without a token, readiness as it is', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    ready = false;
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await json(res)).toMatchObject({ status: 'unavailable' });
  });

  it('requires the admin token', async () => {
    const missing = await fetch(`${base}/v1/accounts`);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect(await json(missing)).toMatchObject({ code: 401, reason: 'missing_token' });
    const wrong = await fetch(`${base}/v1/accounts`, { headers: { authorization: `Bearer ${TOKEN}x` } });
    expect(await json(wrong)).toMatchObject({ reason: 'invalid_token' });
    const basic = await fetch(`${base}/v1/accounts`, { headers: { authorization: `Basic ${TOKEN}` } });
    expect(basic.status).toBe(401);
  });

  it('creates, reads, updates and deletes an entry with ETags', async () => {
    const created = await call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '192.168.10.10-20', name: 'office' });
    expect(created.status).toBe(201);
    expect(created.headers.get('etag')).toBe('"1"');
    const entry = await json(created);
    expect(entry).toMatchObject({
      ip_address: '192.168.10.10-20', cidrs: ['192.168.10.10/31', '192.168.10.12/30', '192.168.10.16/30', '192.168.10.20/32'],
      action: 'allow', description: 'office', enabled: true, created_at: NOW.toISOString(), updated_at: NOW.toISOString(), expires_at: null,
    });
    expect(entry['id']).toMatch(/^ipacl_[0-9a-f]{20}$/);
    expect(created.headers.get('location')).toBe(`/v1/accounts/AC1/ip-acl/${entry['id']}`);

    const list = await call('GET', '/v1/accounts/AC1/ip-acl');
    expect(await json(list)).toMatchObject({ account: 'AC1', version: 1, entries: [{ id: entry['id'] }] });

    const patched = await call('PATCH', `/v1/accounts/AC1/ip-acl/${entry['id']}`, { enabled: false, description: 'old office', expires_at: '2027-01-01T00:00:00Z' }, { 'if-match': '"1"' });
    expect(patched.status).toBe(200);
    expect(await json(patched)).toMatchObject({ enabled: false, description: 'old office', expires_at: '2027-01-01T00:00:00.000Z', ip_address: '192.168.10.10-20' });

    const stale = await call('PATCH', `/v1/accounts/AC1/ip-acl/${entry['id']}`, { enabled: true }, { 'if-match': '"1"' });
    expect(stale.status).toBe(412);
    expect(await json(stale)).toMatchObject({ reason: 'version_conflict' });

    const cleared = await call('PATCH', `/v1/accounts/AC1/ip-acl/${entry['id']}`, { expires_at: null });
    expect(await json(cleared)).toMatchObject({ expires_at: null });

    const deleted = await call('DELETE', `/v1/accounts/AC1/ip-acl/${entry['id']}`);
    expect(deleted.status).toBe(200);
    expect(await json(deleted)).toEqual({ deleted: entry['id'], warnings: [] });
    const gone = await call('GET', `/v1/accounts/AC1/ip-acl/${entry['id']}`);
    expect(gone.status).toBe(404);
    expect(await json(gone)).toMatchObject({ reason: 'entry_not_found' });
    expect((await store.read('AC1'))?.entries).toEqual([]);
  });

  it('refuses bad input with a reason and changes nothing', async () => {
    const cases: [unknown, number, string][] = [
      [{ ip_address: '10.0.0.1/8' }, 400, 'invalid_format'],
      [{ ip_address: '127.1' }, 400, 'invalid_format'],
      [{}, 400, 'invalid_format'],
      [{ ip_address: 7 }, 400, 'invalid_field'],
      [{ ip_address: '192.0.2.1', action: 'maybe' }, 400, 'invalid_field'],
      [{ ip_address: '192.0.2.1', enabled: 'yes' }, 400, 'invalid_field'],
      [{ ip_address: '192.0.2.1', expires_at: '2020-01-01T00:00:00Z' }, 400, 'invalid_field'],
      [{ ip_address: '192.0.2.1', expires_at: 'tomorrow' }, 400, 'invalid_field'],
      [{ ip_address: '192.0.2.1', name: 'a', description: 'b' }, 400, 'invalid_field'],
      [{ ip_address: '192.0.2.1', colour: 'red' }, 400, 'unknown_field'],
      [[1, 2], 400, 'invalid_field'],
      ['{"ip_address":', 400, 'invalid_json'],
    ];
    for (const [body, status, reason] of cases) {
      const res = await call('POST', '/v1/accounts/AC2/ip-acl', body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      const error = await json(res);
      expect(error['reason'], JSON.stringify(body)).toBe(reason);
      expect(error['code']).toBe(status);
      expect(typeof error['error']).toBe('string');
    }
    expect(await store.read('AC2')).toBeNull();
    const host = await json(await call('POST', '/v1/accounts/AC2/ip-acl', { ip_address: '10.0.0.1/8' }));
    expect(host['error']).toContain('10.0.0.0/8');
  });

  it('refuses a duplicate network, a wrong content type and an oversized body', async () => {
    const first = await json(await call('POST', '/v1/accounts/AC3/ip-acl', { ip_address: '203.0.113.0/24' }));
    const dup = await call('POST', '/v1/accounts/AC3/ip-acl', { ip_address: '203.0.113.0/255.255.255.0' });
    expect(dup.status).toBe(409);
    expect((await json(dup))['error']).toContain(String(first['id']));
    // The same network as a deny entry would contradict the allow entry: also a duplicate.
    const deny = await call('POST', '/v1/accounts/AC3/ip-acl', { ip_address: '203.0.113.0/24', action: 'deny' });
    expect(deny.status).toBe(409);
    expect((await call('POST', '/v1/accounts/AC3/ip-acl', { ip_address: '203.0.113.128/25', action: 'deny' })).status).toBe(201);
    const text = await call('POST', '/v1/accounts/AC3/ip-acl', 'ip_address=1.2.3.4', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    const big = await call('POST', '/v1/accounts/AC3/ip-acl', { ip_address: '198.51.100.1', description: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
    expect((await store.read('AC3'))?.entries).toHaveLength(2);
  });

  it('validates account ids in paths and routes unknown paths and methods', async () => {
    expect(await json(await call('GET', '/v1/accounts/bad%20id/ip-acl'))).toMatchObject({ code: 400, reason: 'invalid_account' });
    expect((await call('GET', '/v1/accounts/AC%31/ip-acl')).status).toBe(200);
    expect(await json(await call('GET', '/v1/nothing'))).toMatchObject({ code: 404, reason: 'not_found' });
    const wrong = await call('DELETE', '/v1/accounts/AC1/ip-acl');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, POST, PUT');
  });

  it('manages settings, refusing parent cycles', async () => {
    expect(await json(await call('PUT', '/v1/accounts/SUB', { parent: 'PARENT' }))).toMatchObject({ code: 409, reason: 'parent_not_found' });
    expect((await call('PUT', '/v1/accounts/PARENT', { mode: 'enforce' })).status).toBe(200);
    const put = await call('PUT', '/v1/accounts/SUB', { parent: 'PARENT', mode: 'report-only' });
    expect(put.status).toBe(200);
    expect(await json(put)).toMatchObject({ account: 'SUB', parent: 'PARENT', mode: 'report-only', default: null, max_entries: null, ipv4_only: null, guard: null, entry_count: 0, version: 1 });
    expect(await json(await call('PUT', '/v1/accounts/PARENT', { parent: 'SUB' }))).toMatchObject({ code: 400, reason: 'invalid_parent' });
    expect(await json(await call('PUT', '/v1/accounts/SUB', { parent: 'SUB' }))).toMatchObject({ reason: 'invalid_parent' });
    expect(await json(await call('PUT', '/v1/accounts/SUB', { mode: 'sometimes' }))).toMatchObject({ reason: 'invalid_field' });
    const cleared = await json(await call('PUT', '/v1/accounts/SUB', { mode: null, default: 'closed' }));
    expect(cleared).toMatchObject({ parent: 'PARENT', mode: null, default: 'closed', version: 2 });
    expect(await json(await call('GET', '/v1/accounts/NEW'))).toMatchObject({ account: 'NEW', version: 0, parent: null });
    const accounts = await json(await call('GET', '/v1/accounts'));
    expect(accounts['accounts']).toEqual(expect.arrayContaining(['SUB']));
  });

  it('manages the global list at its own path', async () => {
    const created = await call('POST', '/v1/global/ip-acl', { ip_address: '192.0.2.66', action: 'deny' });
    expect(created.status).toBe(201);
    const entry = await json(created);
    expect(created.headers.get('location')).toBe(`/v1/global/ip-acl/${entry['id']}`);
    expect(await json(await call('GET', '/v1/global/ip-acl'))).toMatchObject({ account: '_global', entries: [{ action: 'deny' }] });
    expect((await json(await call('GET', '/v1/accounts')))['accounts']).not.toContain('_global');
  });

  it('answers a check through the policy layer', async () => {
    const res = await call('GET', '/v1/accounts/AC1/check?ip=::ffff:198.51.100.7');
    expect(await json(res)).toEqual({ account: 'AC1', ip: '198.51.100.7', decision: 'deny', reason: 'ip_not_allowed', matched: null, list_state: 'active' });
    expect(checks).toContainEqual(['AC1', '198.51.100.7']);
    expect(await json(await call('GET', '/v1/accounts/AC1/check?ip=0x7f.0.0.1'))).toMatchObject({ reason: 'invalid_format' });
  });
});
