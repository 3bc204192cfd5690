import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { vobizSurface } from '../../../src/admin/compat/vobiz.ts';
import { startCompatServer, testCredential, type CompatServer } from '../../support/compat-server.ts';

const OWNER = 'owner-token-vobiz-1234';
const ADMIN = 'admin-token-vobiz-1234';
const READER = 'reader-token-vobiz-1234';
const ACCOUNT = 'account-token-MA_ALPHA';
const OTHER = 'account-token-MA_BETA';
/** Each test gets its own account, so the lists do not mix. */
let seq = 0;
let auth = '';
let clock = new Date('2026-05-12T05:11:51.123Z');

describe('Vobiz-compatible IP ACL API', () => {
  let api: CompatServer;

  beforeAll(async () => {
    api = await startCompatServer(vobizSurface, {
      credentials: [
        testCredential('owner', 'owner', OWNER),
        testCredential('ops', 'admin', ADMIN),
        testCredential('auditor', 'read-only', READER),
        // The account credential of every test's account: its name is the account id.
        ...Array.from({ length: 40 }, (_, i) => testCredential(`MA_T${i + 1}`, 'account', `${ACCOUNT}-${i + 1}`, `MA_T${i + 1}`)),
        testCredential('MA_BETA', 'account', OTHER, 'MA_BETA'),
      ],
      now: () => clock,
    });
  });

  afterAll(async () => {
    await api.close();
  });

  beforeEach(() => {
    seq += 1;
    auth = `MA_T${seq}`;
    clock = new Date('2026-05-12T05:11:51.123Z');
  });

  /** A call as the account's own credential unless `token`/`authId` say otherwise. */
  const call = (method: string, path: string, body?: unknown, options: { token?: string; authId?: string; headers?: Record<string, string> } = {}) => fetch(`${api.base}${path}`, {
    method,
    headers: {
      'x-auth-id': options.authId ?? auth,
      'x-auth-token': options.token ?? `${ACCOUNT}-${seq}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...options.headers,
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const acl = (suffix = '') => `/api/v1/Account/${auth}/ip-acl${suffix}`;
  const json = async (res: Response) => (await res.json()) as Record<string, any>;
  const create = async (ip: string, name = `entry ${ip}`) => {
    const res = await call('POST', acl(), { name, ip_address: ip });
    expect(res.status, `${ip}: ${await res.clone().text()}`).toBe(201);
    return json(res);
  };

  describe('create', () => {
    it('refuses the documented curl example: 198.51.100.42 is documentation space (RFC 5737)', async () => {
      const res = await call('POST', acl(), { name: 'Office static IP', ip_address: '198.51.100.42' });
      expect(res.status).toBe(400);
      const body = await json(res);
      expect(body).toMatchObject({ code: 400, reason: 'reserved_range', error: expect.stringContaining('198.51.100.0/24') });
      expect(await api.store.read(auth)).toBeNull();
    });

    it('creates the documented PBX example with exactly the documented keys', async () => {
      const res = await call('POST', acl(), { name: 'FreePBX server in data center', ip_address: '10.20.30.0/24' });
      expect(res.status).toBe(201);
      const body = await json(res);
      expect(Object.keys(body).sort()).toEqual(['account_id', 'created_at', 'description', 'enabled', 'id', 'ip_address', 'updated_at']);
      expect(body).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        account_id: auth,
        ip_address: '10.20.30.0/24',
        description: 'FreePBX server in data center',
        enabled: true,
        created_at: '2026-05-12T05:11:51Z',
        updated_at: '2026-05-12T05:11:51Z',
      });
      expect(res.headers.get('location')).toBe(`${acl()}/${body.id}`);
      // An ordinary allow entry of the account: the native API and the proxy see it.
      const record = await api.store.read(auth);
      expect(record?.entries).toEqual([expect.objectContaining({ id: body.id, ipAddress: '10.20.30.0/24', cidrs: ['10.20.30.0/24'], action: 'allow', enabled: true, description: 'FreePBX server in data center' })]);
    });

    it('accepts a single address and a public network', async () => {
      expect(await create('92.255.220.7')).toMatchObject({ ip_address: '92.255.220.7' });
      expect(await create('8.8.8.0/24')).toMatchObject({ ip_address: '8.8.8.0/24' });
    });

    it('answers the documented 400 for an invalid address, with the detail alongside', async () => {
      for (const ip of ['not-an-ip', '300.1.2.3', '10.0.0.1/8', '10.0.0.0/33', '010.0.0.1', '10.0.0.10-20', '10.0.0.1 - 10.0.0.9', '10.0.0.0/255.255.255.0', '', '10.0.0']) {
        const res = await call('POST', acl(), { name: 'x', ip_address: ip });
        expect(res.status, ip).toBe(400);
        const body = await json(res);
        expect(body, ip).toMatchObject({ error: 'Invalid IP address format', code: 400, reason: 'invalid_format' });
        expect(typeof body.detail, ip).toBe('string');
      }
      const res = await call('POST', acl(), { name: 'x', ip_address: 42 });
      expect(await json(res)).toMatchObject({ error: 'Invalid IP address format', code: 400 });
    });

    it('refuses IPv6, including IPv4-mapped spellings, whatever the gateway allows', async () => {
      for (const ip of ['2a00:1450::/32', '2a00:1450:4001::1', '::ffff:10.20.30.1']) {
        const res = await call('POST', acl(), { name: 'v6', ip_address: ip });
        expect(res.status, ip).toBe(400);
        expect(await json(res), ip).toMatchObject({ code: 400, reason: 'ipv6_not_allowed' });
      }
      expect(await api.store.read(auth)).toBeNull();
    });

    it('requires name and ip_address, and refuses unknown fields and non-JSON bodies', async () => {
      for (const [body, field] of [[{ ip_address: '10.1.1.0/24' }, 'name'], [{ name: '  ', ip_address: '10.1.1.0/24' }, 'name'], [{ name: 'Office IP' }, 'ip_address']] as const) {
        const res = await call('POST', acl(), body);
        expect(res.status).toBe(400);
        expect(await json(res)).toMatchObject({ code: 400, reason: 'missing_field', error: expect.stringContaining(field) });
      }
      expect(await json(await call('POST', acl(), { name: 'x', ip_address: '10.1.1.0/24', action: 'deny' }))).toMatchObject({ code: 400, reason: 'unknown_field' });
      expect(await json(await call('POST', acl(), { name: 'x'.repeat(256), ip_address: '10.1.1.0/24' }))).toMatchObject({ code: 400, reason: 'invalid_field' });
      expect(await json(await call('POST', acl(), '{"name": "x",'))).toMatchObject({ code: 400, reason: 'invalid_json' });
      const text = await call('POST', acl(), undefined, { headers: { 'content-type': 'text/plain' } });
      expect(text.status).toBe(415);
      expect(await json(text)).toMatchObject({ code: 415 });
      expect(await api.store.read(auth)).toBeNull();
    });

    it('accepts description for name, and a disabled entry', async () => {
      const res = await call('POST', acl(), { description: 'PBX', ip_address: '10.1.1.0/24', enabled: false });
      expect(await json(res)).toMatchObject({ description: 'PBX', enabled: false });
    });
  });

  describe('validation rules of the core', () => {
    it('refuses a duplicate and an address inside a listed /24 with 409', async () => {
      await create('10.20.30.0/24');
      const duplicate = await call('POST', acl(), { name: 'again', ip_address: '10.20.30.0/24' });
      expect(duplicate.status).toBe(409);
      expect(await json(duplicate)).toMatchObject({ code: 409, reason: 'duplicate' });
      const subset = await call('POST', acl(), { name: 'host', ip_address: '10.20.30.7' });
      expect(subset.status).toBe(409);
      expect(await json(subset)).toMatchObject({ code: 409, reason: 'subset_exists', error: expect.stringContaining('10.20.30.0/24') });
      const superset = await call('POST', acl(), { name: 'wider', ip_address: '10.20.0.0/16' });
      expect(await json(superset)).toMatchObject({ code: 409, reason: 'superset_conflict' });
    });

    it('refuses the 51st entry with 409 limit_reached', async () => {
      for (let i = 0; i < 50; i++) await create(`10.0.${i}.0/24`);
      const res = await call('POST', acl(), { name: 'one too many', ip_address: '10.0.50.0/24' });
      expect(res.status).toBe(409);
      expect(await json(res)).toMatchObject({ code: 409, reason: 'limit_reached' });
      expect((await api.store.read(auth))?.entries).toHaveLength(50);
    });

    it('refuses a subaccount, whose list is its parent\'s', async () => {
      await api.store.update(auth, () => ({ ok: true, draft: { account: auth, settings: { parent: 'MA_BETA' }, entries: [] } }));
      const res = await call('POST', acl(), { name: 'x', ip_address: '10.1.1.0/24' });
      expect(res.status).toBe(409);
      expect(await json(res)).toMatchObject({ code: 409, reason: 'inherited_list' });
    });
  });

  describe('authentication and scope', () => {
    it('answers 401 in the provider shape when a credential header is missing or wrong', async () => {
      for (const headers of [{}, { 'x-auth-id': auth }, { 'x-auth-token': `${ACCOUNT}-${seq}` }]) {
        const res = await fetch(`${api.base}${acl()}`, { headers });
        expect(res.status).toBe(401);
        expect(await json(res)).toMatchObject({ code: 401, reason: 'missing_credentials', error: expect.stringContaining('X-Auth-') });
      }
      const wrong = await call('GET', acl(), undefined, { token: 'nope' });
      expect(wrong.status).toBe(401);
      expect(await json(wrong)).toMatchObject({ code: 401, error: expect.any(String) });
    });

    it('keeps an account credential to its own account', async () => {
      const res = await call('POST', '/api/v1/Account/MA_BETA/ip-acl', { name: 'x', ip_address: '10.1.1.0/24' });
      expect(res.status).toBe(403);
      expect(await json(res)).toMatchObject({ code: 403, reason: 'forbidden' });
      expect((await call('GET', '/api/v1/Account/MA_BETA/ip-acl')).status).toBe(403);
      expect((await call('GET', '/api/v1/Account/MA_BETA/ip-acl', undefined, { authId: 'MA_BETA' })).status).toBe(403);
      expect(await api.store.read('MA_BETA')).toBeNull();
    });

    it('requires X-Auth-ID to be the path\'s Auth ID for an account credential', async () => {
      const res = await call('GET', acl(), undefined, { authId: 'MA_BETA' });
      expect(res.status).toBe(403);
      expect(await json(res)).toMatchObject({ code: 403, reason: 'auth_id_mismatch' });
    });

    it('lets a read-only credential read but not write, and owner and admin do both', async () => {
      const denied = await call('POST', acl(), { name: 'x', ip_address: '10.1.1.0/24' }, { token: READER, authId: 'auditor' });
      expect(denied.status).toBe(403);
      expect(await json(denied)).toMatchObject({ code: 403, reason: 'forbidden', error: expect.stringContaining('read-only') });
      const made = await call('POST', acl(), { name: 'x', ip_address: '10.1.1.0/24' }, { token: ADMIN, authId: 'ops' });
      expect(made.status).toBe(201);
      const id = (await json(made)).id as string;
      expect((await call('GET', acl(), undefined, { token: READER, authId: 'auditor' })).status).toBe(200);
      expect((await call('DELETE', acl(`/${id}`), undefined, { token: READER, authId: 'auditor' })).status).toBe(403);
      expect((await call('DELETE', acl(`/${id}`), undefined, { token: OWNER, authId: 'owner' })).status).toBe(204);
    });

    it('refuses an invalid Auth ID in the path', async () => {
      const res = await call('GET', '/api/v1/Account/%2Fetc/ip-acl', undefined, { token: OWNER });
      expect(res.status).toBe(400);
      expect(await json(res)).toMatchObject({ code: 400, reason: 'invalid_account' });
    });
  });

  describe('read, update, delete', () => {
    it('gets one entry, and 404s an unknown one in the provider shape', async () => {
      const made = await create('10.20.30.0/24', 'PBX');
      const res = await call('GET', acl(`/${made.id}`));
      expect(res.status).toBe(200);
      expect(await json(res)).toEqual(made);
      const missing = await call('GET', acl('/no-such-id'));
      expect(missing.status).toBe(404);
      expect(await json(missing)).toMatchObject({ error: 'IP ACL not found', code: 404 });
    });

    it('updates with POST, PUT and PATCH: name as description, enabled, ip_address', async () => {
      const made = await create('10.20.30.0/24', 'PBX');
      clock = new Date('2026-05-13T08:00:00.999Z');
      const renamed = await call('POST', acl(`/${made.id}`), { name: 'Main PBX' });
      expect(renamed.status).toBe(200);
      expect(await json(renamed)).toEqual({ ...made, description: 'Main PBX', updated_at: '2026-05-13T08:00:00Z' });
      const disabled = await call('PUT', acl(`/${made.id}`), { enabled: false, description: 'spare PBX' });
      expect(await json(disabled)).toMatchObject({ id: made.id, enabled: false, description: 'spare PBX', created_at: '2026-05-12T05:11:51Z' });
      const moved = await call('PATCH', acl(`/${made.id}`), { ip_address: '10.20.31.0/24', enabled: true });
      expect(await json(moved)).toMatchObject({ id: made.id, ip_address: '10.20.31.0/24', enabled: true });
      expect((await api.store.read(auth))?.entries[0]).toMatchObject({ cidrs: ['10.20.31.0/24'], enabled: true, description: 'spare PBX' });
    });

    it('validates updates like creations', async () => {
      const made = await create('10.20.30.0/24');
      await create('10.20.40.0/24');
      expect(await json(await call('PATCH', acl(`/${made.id}`), { ip_address: '10.20.30.0-10.20.30.9' }))).toMatchObject({ error: 'Invalid IP address format', code: 400 });
      expect(await json(await call('PATCH', acl(`/${made.id}`), { ip_address: '203.0.113.0/24' }))).toMatchObject({ code: 400, reason: 'reserved_range' });
      expect(await json(await call('PATCH', acl(`/${made.id}`), { ip_address: '10.20.40.0/24' }))).toMatchObject({ code: 409, reason: 'duplicate' });
      expect(await json(await call('PATCH', acl(`/${made.id}`), { enabled: 'no' }))).toMatchObject({ code: 400, reason: 'invalid_field' });
      expect(await json(await call('PATCH', acl(`/${made.id}`), {}))).toMatchObject({ code: 400, reason: 'missing_field' });
      const missing = await call('PATCH', acl('/no-such-id'), { enabled: false });
      expect(missing.status).toBe(404);
      expect(await json(missing)).toMatchObject({ error: 'IP ACL not found', code: 404 });
    });

    it('deletes with 204 and no body, then 404s', async () => {
      const made = await create('10.20.30.0/24');
      const res = await call('DELETE', acl(`/${made.id}`));
      expect(res.status).toBe(204);
      expect(await res.text()).toBe('');
      expect((await api.store.read(auth))?.entries).toEqual([]);
      const again = await call('DELETE', acl(`/${made.id}`));
      expect(again.status).toBe(404);
      expect(await json(again)).toMatchObject({ error: 'IP ACL not found', code: 404 });
      expect((await call('GET', acl(`/${made.id}`))).status).toBe(404);
    });

    it('leaves deny entries (which the provider has no word for) alone', async () => {
      await api.store.update(auth, () => ({ ok: true, draft: { account: auth, settings: {}, entries: [{ id: 'deny-1', ipAddress: '10.9.9.9', cidrs: ['10.9.9.9/32'], action: 'deny', description: 'blocked', enabled: true, createdAt: clock.toISOString(), updatedAt: clock.toISOString() }] } }));
      await create('10.20.30.0/24');
      const list = await json(await call('GET', acl()));
      expect(list.meta.total_count).toBe(1);
      expect(list.objects.map((e: { ip_address: string }) => e.ip_address)).toEqual(['10.20.30.0/24']);
      expect((await call('GET', acl('/deny-1'))).status).toBe(404);
      expect((await call('PATCH', acl('/deny-1'), { enabled: false })).status).toBe(404);
      expect((await call('DELETE', acl('/deny-1'))).status).toBe(404);
      expect((await api.store.read(auth))?.entries.find((e) => e.id === 'deny-1')).toMatchObject({ enabled: true, action: 'deny' });
    });

    it('accepts the trailing slash the provider family uses', async () => {
      const made = await create('10.20.30.0/24');
      expect((await call('GET', acl('/'))).status).toBe(200);
      expect((await call('GET', acl(`/${made.id}/`))).status).toBe(200);
      const wrongMethod = await call('DELETE', acl());
      expect(wrongMethod.status).toBe(405);
      expect(await json(wrongMethod)).toMatchObject({ code: 405 });
    });
  });

  describe('list', () => {
    it('pages with limit and offset in the {api_id, meta, objects} envelope', async () => {
      for (let i = 0; i < 25; i++) await create(`10.1.${i}.0/24`);
      const first = await call('GET', acl(), undefined, { headers: { 'x-request-id': 'req-vobiz-1' } });
      expect(first.status).toBe(200);
      const page1 = await json(first);
      expect(Object.keys(page1).sort()).toEqual(['api_id', 'meta', 'objects']);
      expect(page1.api_id).toBe('req-vobiz-1');
      expect(page1.meta).toEqual({ limit: 20, offset: 0, total_count: 25, list_state: 'active', next: `${acl()}?limit=20&offset=20`, previous: null });
      expect(page1.objects).toHaveLength(20);
      expect(Object.keys(page1.objects[0]).sort()).toEqual(['account_id', 'created_at', 'description', 'enabled', 'id', 'ip_address', 'updated_at']);
      expect(page1.objects[0]).toMatchObject({ ip_address: '10.1.0.0/24', account_id: auth });

      const page2 = await json(await call('GET', page1.meta.next));
      expect(page2.meta).toEqual({ limit: 20, offset: 20, total_count: 25, list_state: 'active', next: null, previous: `${acl()}?limit=20&offset=0` });
      expect(page2.objects.map((e: { ip_address: string }) => e.ip_address)).toEqual(['10.1.20.0/24', '10.1.21.0/24', '10.1.22.0/24', '10.1.23.0/24', '10.1.24.0/24']);

      const small = await json(await call('GET', acl('?limit=10&offset=10')));
      expect(small.meta).toMatchObject({ limit: 10, offset: 10, next: `${acl()}?limit=10&offset=20`, previous: `${acl()}?limit=10&offset=0` });
      expect(small.objects).toHaveLength(10);
      expect((await json(await call('GET', acl('?offset=100')))).objects).toEqual([]);
    });

    it('caps limit at 100 and refuses bad paging parameters', async () => {
      expect((await json(await call('GET', acl('?limit=100')))).meta).toMatchObject({ limit: 100, total_count: 0, next: null });
      for (const query of ['?limit=101', '?limit=0', '?limit=ten', '?offset=-1']) {
        const res = await call('GET', acl(query));
        expect(res.status, query).toBe(400);
        expect(await json(res), query).toMatchObject({ code: 400, reason: 'invalid_field' });
      }
    });
  });
});
