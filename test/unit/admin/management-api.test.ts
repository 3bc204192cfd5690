import { afterEach, describe, expect, it } from 'vitest';
import { compileRanges, DEFAULT_RESERVED } from '../../../src/acl/reserved.ts';
import { AuthLimiter } from '../../../src/admin/auth-limiter.ts';
import { credential, startAdminApi, type AdminApi, type AdminApiOptions } from '../../support/admin-api.ts';

const POLICY = { maxEntries: 50, ipv4Only: false, refused: compileRanges(DEFAULT_RESERVED, 'reserved') };
const ADMIN = 'admin-token-abcdefgh';
const READER = 'reader-token-abcdefgh';
const AC1_KEY = 'ac1-token-abcdefghij';

const started: AdminApi[] = [];
afterEach(async () => {
  for (const api of started.splice(0)) await api.close();
});

async function api(options: AdminApiOptions = {}): Promise<AdminApi> {
  const a = await startAdminApi({
    policy: POLICY,
    credentials: [credential('ops', 'admin', ADMIN), credential('auditor', 'read-only', READER), credential('ac1-key', 'account', AC1_KEY, 'AC1')],
    ...options,
  });
  started.push(a);
  return a;
}

const json = async (res: Response) => (await res.json()) as Record<string, unknown>;

describe('validation through the API', () => {
  it('accepts the documented network, refuses documentation space, a subset, and the 51st entry', async () => {
    const a = await api();
    expect((await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '92.255.220.0/24', description: 'Office network range' })).status).toBe(201);
    expect(await json(await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '203.0.113.0/24' }))).toMatchObject({ code: 400, reason: 'reserved_range' });
    const subset = await json(await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '92.255.220.9/32' }));
    expect(subset).toMatchObject({ code: 409, reason: 'subset_exists' });
    expect(subset['error']).toContain('92.255.220.0/24');
    for (let i = 1; i < 50; i++) expect((await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `11.0.${i}.0/24` })).status).toBe(201);
    expect(await json(await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '11.1.0.0/24' }))).toMatchObject({ code: 409, reason: 'limit_reached' });
  });

  it('replaces narrower entries with replace=true in one change', async () => {
    const a = await api();
    await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '10.0.1.0/24' });
    await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '10.0.2.0/24' });
    expect(await json(await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '10.0.0.0/16' }))).toMatchObject({ reason: 'superset_conflict' });
    const replaced = await a.call('POST', '/v1/accounts/AC1/ip-acl?replace=true', { ip_address: '10.0.0.0/16' });
    expect(replaced.status).toBe(201);
    expect(replaced.headers.get('etag')).toBe('"3"');
    expect((await a.store.read('AC1'))?.entries.map((e) => e.ipAddress)).toEqual(['10.0.0.0/16']);
  });
});

describe('request checks', () => {
  it('routes literal paths before parameters and lists each allowed method once', async () => {
    const a = await api();
    const post = await a.call('POST', '/v1/accounts/AC1/ip-acl/export');
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
    expect((await a.call('DELETE', '/v1/accounts/AC1/ip-acl/import')).headers.get('allow')).toBe('POST');
  });

  it('refuses a zoneless expiry, a bad audit account and unknown keys in list bodies', async () => {
    const a = await api();
    expect(await json(await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '23.0.0.0/24', expires_at: '2099-01-01T00:00:00' }))).toMatchObject({ code: 400, reason: 'invalid_field', error: expect.stringContaining('with a zone') });
    expect((await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '23.0.0.0/24', expires_at: '2099-01-01T00:00:00+02:00' })).status).toBe(201);
    expect(await json(await a.call('GET', '/v1/audit?account=../x'))).toMatchObject({ code: 400, reason: 'invalid_account' });
    expect(await json(await a.call('PUT', '/v1/accounts/AC1/ip-acl', { entries: [], extra: 1 }))).toMatchObject({ code: 400, reason: 'unknown_field' });
  });
});

describe('concurrent edits', () => {
  it('validates inside the atomic change: racing adds never pass the limit or a duplicate check together', async () => {
    const a = await api();
    for (let i = 0; i < 48; i++) expect((await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `21.0.${i}.0/24` })).status).toBe(201);
    const racing = await Promise.all(Array.from({ length: 6 }, (_, i) => a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `21.1.${i}.0/24` })));
    expect(racing.map((r) => r.status).sort()).toEqual([201, 201, 409, 409, 409, 409]);
    expect((await a.store.read('AC1'))?.entries).toHaveLength(50);
    const same = await Promise.all(Array.from({ length: 4 }, () => a.call('POST', '/v1/accounts/AC2/ip-acl', { ip_address: '22.0.0.0/24' })));
    expect(same.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);
  });
});

describe('roles', () => {
  it('scopes account credentials to their account, keeps read-only read-only, and admin everywhere', async () => {
    const a = await api();
    expect((await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '10.1.0.0/24' }, {}, AC1_KEY)).status).toBe(201);
    const other = await a.call('POST', '/v1/accounts/AC2/ip-acl', { ip_address: '10.1.0.0/24' }, {}, AC1_KEY);
    expect(other.status).toBe(403);
    expect(await json(other)).toMatchObject({ reason: 'forbidden' });
    expect((await a.call('GET', '/v1/accounts/AC2/ip-acl', undefined, {}, AC1_KEY)).status).toBe(403);
    expect((await a.call('POST', '/v1/global/ip-acl', { ip_address: '10.9.0.0/24' }, {}, AC1_KEY)).status).toBe(403);
    expect((await a.call('PUT', '/v1/accounts/AC1', { mode: 'off' }, {}, AC1_KEY)).status).toBe(403);
    expect((await a.call('GET', '/v1/accounts/AC1/ip-acl', undefined, {}, READER)).status).toBe(200);
    expect((await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '10.2.0.0/24' }, {}, READER)).status).toBe(403);
    expect((await a.call('POST', '/v1/accounts/AC2/ip-acl', { ip_address: '10.2.0.0/24' }, {}, ADMIN)).status).toBe(201);
    expect(await json(await a.call('GET', '/v1/accounts', undefined, {}, AC1_KEY))).toMatchObject({ accounts: ['AC1'] });
    expect(await json(await a.call('GET', '/v1/accounts', undefined, {}, READER))).toMatchObject({ accounts: ['AC1', 'AC2'] });
  });

  it('rate-limits failed authentications from one address, never a valid credential', async () => {
    let clock = 0;
    const a = await api({ limiter: new AuthLimiter({ maxFailures: 3, windowMs: 60_000, now: () => clock }) });
    for (let i = 0; i < 3; i++) expect((await a.call('GET', '/v1/accounts', undefined, {}, `wrong-${i}`)).status).toBe(401);
    const blocked = await a.call('GET', '/v1/accounts', undefined, {}, 'wrong-3');
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get('retry-after')).toBe('60');
    expect(await json(blocked)).toMatchObject({ reason: 'too_many_attempts' });
    expect((await a.call('GET', '/v1/accounts')).status).toBe(200);
    clock = 60_001;
    expect((await a.call('GET', '/v1/accounts', undefined, {}, 'wrong-4')).status).toBe(401);
  });
});

describe('lists', () => {
  it('pages and filters entries', async () => {
    const a = await api();
    for (let i = 0; i < 5; i++) await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `12.0.${i}.0/24`, description: i % 2 === 0 ? 'even' : 'odd', enabled: i !== 4 });
    const first = await json(await a.call('GET', '/v1/accounts/AC1/ip-acl?limit=2'));
    expect(first).toMatchObject({ total: 5, entries: [{ ip_address: '12.0.0.0/24' }, { ip_address: '12.0.1.0/24' }] });
    const second = await json(await a.call('GET', `/v1/accounts/AC1/ip-acl?limit=2&cursor=${String(first['next'])}`));
    expect(second['entries']).toMatchObject([{ ip_address: '12.0.2.0/24' }, { ip_address: '12.0.3.0/24' }]);
    const last = await json(await a.call('GET', `/v1/accounts/AC1/ip-acl?limit=2&cursor=${String(second['next'])}`));
    expect(last).toMatchObject({ entries: [{ ip_address: '12.0.4.0/24' }], next: null });
    expect((await json(await a.call('GET', '/v1/accounts/AC1/ip-acl?q=odd')))['total']).toBe(2);
    expect((await json(await a.call('GET', '/v1/accounts/AC1/ip-acl?enabled=false')))['entries']).toMatchObject([{ ip_address: '12.0.4.0/24' }]);
    expect(await json(await a.call('GET', '/v1/accounts/AC1/ip-acl?limit=0'))).toMatchObject({ reason: 'invalid_field' });
    expect(await json(await a.call('GET', '/v1/accounts/AC1/ip-acl?cursor=!!'))).toMatchObject({ reason: 'invalid_field' });
  });

  it('replaces the whole list atomically, refusing it whole when one item fails', async () => {
    const a = await api();
    await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '13.0.0.0/24' });
    const bad = await a.call('PUT', '/v1/accounts/AC1/ip-acl', { entries: [{ ip_address: '14.0.0.0/24' }, { ip_address: '198.51.100.0/24' }] });
    expect(await json(bad)).toMatchObject({ code: 400, reason: 'reserved_range', error: expect.stringMatching(/^item 2/) });
    expect((await a.store.read('AC1'))?.entries.map((e) => e.ipAddress)).toEqual(['13.0.0.0/24']);
    const ok = await a.call('PUT', '/v1/accounts/AC1/ip-acl', { entries: [{ ip_address: '14.0.0.0/24', description: 'a' }, { ip_address: '14.0.1.0/24', action: 'deny' }] }, { 'if-match': '"1"' });
    expect(ok.status).toBe(200);
    expect(await json(ok)).toMatchObject({ version: 2, entries: [{ ip_address: '14.0.0.0/24', description: 'a' }, { ip_address: '14.0.1.0/24', action: 'deny' }] });
  });

  it('exports and re-imports JSON and CSV, merging or replacing', async () => {
    const a = await api();
    await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '15.0.0.0/24', description: 'office, "main"' });
    await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '15.0.1.0/24', action: 'deny', enabled: false, expires_at: '2099-01-01T00:00:00Z' });
    const csv = await (await a.call('GET', '/v1/accounts/AC1/ip-acl/export?format=csv')).text();
    expect(csv).toBe('ip_address,action,description,enabled,expires_at\r\n15.0.0.0/24,allow,"office, ""main""",true,\r\n15.0.1.0/24,deny,,false,2099-01-01T00:00:00.000Z\r\n');
    const exported = await json(await a.call('GET', '/v1/accounts/AC1/ip-acl/export'));
    expect(exported['entries']).toHaveLength(2);

    const csvImport = await a.call('POST', '/v1/accounts/AC2/ip-acl/import?mode=replace', csv, { 'content-type': 'text/csv' });
    expect(csvImport.status).toBe(200);
    const copied = (await a.store.read('AC2'))?.entries.map((e) => [e.ipAddress, e.action, e.description, e.enabled, e.expiresAt]);
    expect(copied).toEqual([['15.0.0.0/24', 'allow', 'office, "main"', true, undefined], ['15.0.1.0/24', 'deny', '', false, '2099-01-01T00:00:00.000Z']]);
    // Merging the same entries again changes nothing but the version; a new one is added.
    const merged = await json(await a.call('POST', '/v1/accounts/AC2/ip-acl/import', { entries: [...(exported['entries'] as object[]).map((e) => ({ ip_address: (e as { ip_address: string }).ip_address })), { ip_address: '16.0.0.0/24' }] }));
    expect((merged['entries'] as unknown[]).length).toBe(3);
    expect(await json(await a.call('POST', '/v1/accounts/AC2/ip-acl/import', 'ip_address,colour\n1.2.3.4,red\n', { 'content-type': 'text/csv' }))).toMatchObject({ reason: 'invalid_csv' });
    expect(await json(await a.call('POST', '/v1/accounts/AC2/ip-acl/import', 'ip_address\n"1.2.3.4\n', { 'content-type': 'text/csv' }))).toMatchObject({ reason: 'invalid_csv' });
  });
});

describe('audit trail and lockout guard', () => {
  it('records who changed what, before and after, newest first', async () => {
    const a = await api();
    const created = await json(await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '17.0.0.0/24' }, {}, AC1_KEY));
    await a.call('PATCH', `/v1/accounts/AC1/ip-acl/${String(created['id'])}`, { enabled: false }, {}, ADMIN);
    await a.call('POST', '/v1/accounts/AC2/ip-acl', { ip_address: '17.1.0.0/24' });
    const trail = await json(await a.call('GET', '/v1/audit?account=AC1', undefined, {}, READER));
    expect(trail['events']).toMatchObject([
      { actor: { name: 'ops', role: 'admin' }, account: 'AC1', action: 'entry.update', version: 2, before: { enabled: true }, after: { enabled: false }, via: 'native' },
      { actor: { name: 'ac1-key', role: 'account' }, account: 'AC1', action: 'entry.create', version: 1, before: null, after: { ip_address: '17.0.0.0/24' } },
    ]);
    expect((await a.call('GET', '/v1/audit', undefined, {}, AC1_KEY)).status).toBe(403);
    expect((await a.call('GET', '/v1/audit?account=AC1', undefined, {}, AC1_KEY)).status).toBe(200);
    expect((await json(await a.call('GET', '/v1/audit')))['events']).toHaveLength(3);
    expect(await json(await a.call('GET', '/v1/audit?cursor=not-a-cursor'))).toMatchObject({ code: 400, reason: 'invalid_field' });
  });

  it('warns about recent callers a change would block, and refuses it with guard=strict', async () => {
    const a = await api();
    const now = Date.now();
    await a.store.recordCallers(new Map([['AC1', new Map([['18.0.0.5', now - 1000], ['19.0.0.7', now - 2000]])]]));
    const first = await json(await a.call('POST', '/v1/accounts/AC1/ip-acl?guard=strict', { ip_address: '18.0.0.0/24' }));
    expect(first).toMatchObject({ code: 409, reason: 'would_lock_out', error: expect.stringContaining('19.0.0.7') });
    expect(await a.store.read('AC1')).toBeNull();
    const warned = await json(await a.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '18.0.0.0/24' }));
    expect(warned['warnings']).toEqual([{ reason: 'would_lock_out', ip: '19.0.0.7', last_seen: new Date(now - 2000).toISOString(), decision: 'deny' }]);
    const removed = await json(await a.call('DELETE', `/v1/accounts/AC1/ip-acl/${String(warned['id'])}`));
    // The list does not open by itself: with its last allow entry gone the account refuses everyone.
    expect(removed['warnings']).toEqual([{ reason: 'would_lock_out', ip: '18.0.0.5', last_seen: new Date(now - 1000).toISOString(), decision: 'deny' }]);
    const recent = await json(await a.call('GET', '/v1/accounts/AC1/recent-ips'));
    expect(recent['ips']).toMatchObject([{ ip: '18.0.0.5', decision: 'deny', reason: 'list_empty' }, { ip: '19.0.0.7', decision: 'deny', reason: 'list_empty' }]);
    // Opening it is an explicit settings change, reported (and refused under guard=strict) as would_open.
    const strictOpen = await json(await a.call('PUT', '/v1/accounts/AC1?guard=strict', { restricted: false }));
    expect(strictOpen).toMatchObject({ code: 409, reason: 'would_open' });
    const opened = await json(await a.call('PUT', '/v1/accounts/AC1', { restricted: false }));
    expect(opened).toMatchObject({ restricted: false, list_state: 'none', warnings: [{ reason: 'would_open', message: 'account AC1 would be open to every address: it would be opened (restricted: false) with no allow entry in force, and its default is open' }] });
    expect(((await json(await a.call('GET', '/v1/accounts/AC1/recent-ips')))['ips'] as { decision: string }[]).map((c) => c.decision)).toEqual(['allow', 'allow']);
  });
});
