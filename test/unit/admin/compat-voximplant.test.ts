import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { voximplantSurface } from '../../../src/admin/compat/voximplant.ts';
import { startCompatServer, testCredential, type CompatServer } from '../../support/compat-server.ts';

const OWNER = 'owner-token-voximplant-1234';
const READER = 'reader-token-voximplant-1234';
const ACCOUNT = 'account-token-vox';
const CREATED = new Date('2026-05-12T05:11:51.123Z');
/** Each test gets its own account, so the lists do not mix. */
let seq = 0;
let account = '';

describe('Voximplant-compatible authorized IP API', () => {
  let api: CompatServer;

  beforeAll(async () => {
    api = await startCompatServer(voximplantSurface, {
      credentials: [
        testCredential('owner', 'owner', OWNER),
        testCredential('auditor', 'read-only', READER),
        ...Array.from({ length: 40 }, (_, i) => testCredential(`acct-${i + 1}`, 'account', `${ACCOUNT}-${i + 1}`, `1000${i + 1}`)),
      ],
      now: () => CREATED,
    });
  });

  afterAll(async () => {
    await api.close();
  });

  beforeEach(() => {
    seq += 1;
    account = `1000${seq}`;
  });

  /** A call with the params in the query and `{}` as a JSON body, like the documented curl. */
  const call = (name: string, query: Record<string, string> = {}, options: { token?: string | null; method?: string; body?: string; type?: string } = {}) => {
    const token = options.token === undefined ? `${ACCOUNT}-${seq}` : options.token;
    const method = options.method ?? 'POST';
    const search = new URLSearchParams(query).toString();
    return fetch(`${api.base}/platform_api/${name}${search === '' ? '' : `?${search}`}`, {
      method,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(method === 'GET' ? {} : { 'content-type': options.type ?? 'application/json' }),
      },
      ...(method === 'GET' ? {} : { body: options.body ?? '{}' }),
    });
  };
  const json = async (res: Response) => (await res.json()) as Record<string, any>;
  const add = async (authorized_ip: string, extra: Record<string, string> = {}) => {
    const res = await call('AddAuthorizedAccountIP', { authorized_ip, ...extra });
    expect(await res.clone().text(), authorized_ip).toBe('{"result":1}');
    expect(res.status).toBe(200);
  };
  const list = async (query: Record<string, string> = {}) => json(await call('GetAuthorizedAccountIPs', query));
  const check = async (ip: string) => (await json(await call('CheckAuthorizedAccountIP', { authorized_ip: ip }))).result as { allowed: boolean; authorized_ip: string | null };
  const errorOf = (status: number, reason: string) => ({ error: { code: status, msg: expect.any(String), reason } });

  describe('the documented example', () => {
    it('adds 92.255.220.0/24 to the white list, lists it, and checks an address inside it', async () => {
      const res = await fetch(`${api.base}/platform_api/AddAuthorizedAccountIP?authorized_ip=92.255.220.0%2F24&allowed=true&description=Office%20network%20range`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ACCOUNT}-${seq}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(res.status).toBe(200);
      expect(await json(res)).toEqual({ result: 1 });

      expect(await list()).toEqual({
        result: [{ authorized_ip: '92.255.220.0/24', allowed: true, description: 'Office network range', created: '2026-05-12 05:11:51' }],
        count: 1,
        total_count: 1,
        list_state: 'active',
      });
      expect(await check('92.255.220.7')).toEqual({ allowed: true, authorized_ip: '92.255.220.0/24' });
      // The list now restricts: an address outside it is refused.
      expect(await check('8.8.8.8')).toEqual({ allowed: false, authorized_ip: null });
      // An ordinary allow entry of the account: the native API and the proxy see it.
      expect((await api.store.read(account))?.entries).toEqual([expect.objectContaining({ ipAddress: '92.255.220.0/24', cidrs: ['92.255.220.0/24'], action: 'allow', enabled: true })]);
    });

    it('defaults allowed to true and description to empty', async () => {
      await add('92.255.221.5');
      expect((await list()).result).toEqual([{ authorized_ip: '92.255.221.5', allowed: true, description: '', created: '2026-05-12 05:11:51' }]);
    });
  });

  describe('parameters', () => {
    it('takes them from a form body', async () => {
      const res = await call('AddAuthorizedAccountIP', {}, { type: 'application/x-www-form-urlencoded', body: 'authorized_ip=92.255.220.0%2F24&allowed=false&description=blocked+range' });
      expect(await json(res)).toEqual({ result: 1 });
      expect((await list()).result).toEqual([expect.objectContaining({ authorized_ip: '92.255.220.0/24', allowed: false, description: 'blocked range' })]);
    });

    it('takes them from a JSON body, booleans and numbers included', async () => {
      expect(await json(await call('AddAuthorizedAccountIP', {}, { body: JSON.stringify({ authorized_ip: '92.255.220.0/24', allowed: false }) }))).toEqual({ result: 1 });
      await add('92.255.221.0/24');
      const res = await call('GetAuthorizedAccountIPs', {}, { body: JSON.stringify({ allowed: false, count: 5 }) });
      expect(await json(res)).toMatchObject({ result: [{ authorized_ip: '92.255.220.0/24', allowed: false }], count: 1, total_count: 1 });
    });

    it('accepts GET for Get and Check', async () => {
      await add('92.255.220.0/24');
      expect(await json(await call('GetAuthorizedAccountIPs', {}, { method: 'GET' }))).toMatchObject({ count: 1 });
      expect(await json(await call('CheckAuthorizedAccountIP', { authorized_ip: '92.255.220.1' }, { method: 'GET' }))).toEqual({ result: { allowed: true, authorized_ip: '92.255.220.0/24' } });
      const res = await call('AddAuthorizedAccountIP', { authorized_ip: '92.255.221.0/24' }, { method: 'GET' });
      expect(res.status).toBe(405);
      expect(await json(res)).toEqual(errorOf(405, 'method_not_allowed'));
    });

    it('refuses unknown, conflicting, malformed and missing parameters', async () => {
      const cases: [string, Record<string, string>, { body?: string; type?: string }, number, string][] = [
        ['AddAuthorizedAccountIP', { authorized_ip: '92.255.220.0/24', alowed: 'false' }, {}, 400, 'unknown_parameter'],
        ['AddAuthorizedAccountIP', { authorized_ip: '92.255.220.0/24' }, { body: '{"authorized_ip": "92.255.221.0/24"}' }, 400, 'conflicting_parameter'],
        ['AddAuthorizedAccountIP', { authorized_ip: '92.255.220.0/24', allowed: 'maybe' }, {}, 400, 'invalid_field'],
        ['AddAuthorizedAccountIP', {}, {}, 400, 'missing_parameter'],
        ['AddAuthorizedAccountIP', { authorized_ip: '92.255.220.0-92.255.220.9' }, {}, 400, 'invalid_format'],
        ['AddAuthorizedAccountIP', { authorized_ip: '92.255.220.1/24' }, {}, 400, 'invalid_format'],
        ['AddAuthorizedAccountIP', { authorized_ip: 'office' }, {}, 400, 'invalid_format'],
        ['AddAuthorizedAccountIP', { authorized_ip: '92.255.220.0/24', description: 'x'.repeat(256) }, {}, 400, 'invalid_field'],
        ['AddAuthorizedAccountIP', { authorized_ip: '92.255.220.0/24' }, { body: '{"allowed": {}}' }, 400, 'invalid_field'],
        ['AddAuthorizedAccountIP', { authorized_ip: '92.255.220.0/24' }, { body: '[1]' }, 400, 'invalid_field'],
        ['AddAuthorizedAccountIP', { authorized_ip: '92.255.220.0/24' }, { body: '{' }, 400, 'invalid_json'],
        ['AddAuthorizedAccountIP', { authorized_ip: '92.255.220.0/24' }, { body: 'x', type: 'text/plain' }, 415, 'unsupported_media_type'],
        ['CheckAuthorizedAccountIP', {}, {}, 400, 'missing_parameter'],
        ['CheckAuthorizedAccountIP', { authorized_ip: '92.255.220.0/24' }, {}, 400, 'invalid_field'],
        ['GetAuthorizedAccountIPs', { count: '0' }, {}, 400, 'invalid_field'],
        ['GetAuthorizedAccountIPs', { count: '1001' }, {}, 400, 'invalid_field'],
        ['GetAuthorizedAccountIPs', { offset: '-1' }, {}, 400, 'invalid_field'],
        ['GetAuthorizedAccountIPs', { account_id: '../x' }, {}, 400, 'invalid_account'],
      ];
      for (const [name, query, options, status, reason] of cases) {
        const res = await call(name, query, options);
        expect(res.status, `${name} ${JSON.stringify(query)} ${options.body ?? ''}`).toBe(status);
        expect(await json(res), `${name} ${JSON.stringify(query)}`).toEqual(errorOf(status, reason));
      }
      expect(await api.store.read(account)).toBeNull();
    });
  });

  describe('authentication and scope', () => {
    it('answers 401 in the provider shape without a valid Bearer token', async () => {
      const missing = await call('GetAuthorizedAccountIPs', {}, { token: null });
      expect(missing.status).toBe(401);
      expect(missing.headers.get('www-authenticate')).toBe('Bearer');
      expect(await json(missing)).toEqual(errorOf(401, 'missing_token'));
      const wrong = await call('GetAuthorizedAccountIPs', {}, { token: 'nope' });
      expect(wrong.status).toBe(401);
      expect(await json(wrong)).toEqual(errorOf(401, 'invalid_token'));
      const basic = await fetch(`${api.base}/platform_api/GetAuthorizedAccountIPs`, { method: 'POST', headers: { authorization: 'Basic abc' } });
      expect(await json(basic)).toEqual(errorOf(401, 'invalid_token'));
    });

    it('keeps an account token to its own account', async () => {
      const res = await call('AddAuthorizedAccountIP', { authorized_ip: '92.255.220.0/24', account_id: '1000999' });
      expect(res.status).toBe(403);
      expect(await json(res)).toEqual(errorOf(403, 'forbidden'));
      expect((await call('GetAuthorizedAccountIPs', { account_id: '1000999' })).status).toBe(403);
      expect(await api.store.read('1000999')).toBeNull();
      // Naming its own account is fine.
      await add('92.255.220.0/24', { account_id: account });
    });

    it('makes owner and read-only credentials name the account; read-only cannot write', async () => {
      const unnamed = await call('GetAuthorizedAccountIPs', {}, { token: OWNER });
      expect(unnamed.status).toBe(400);
      expect(await json(unnamed)).toEqual(errorOf(400, 'missing_account'));
      expect(await json(await call('AddAuthorizedAccountIP', { authorized_ip: '92.255.220.0/24', account_id: account }, { token: OWNER }))).toEqual({ result: 1 });
      const read = await json(await call('GetAuthorizedAccountIPs', { account_id: account }, { token: READER }));
      expect(read).toMatchObject({ count: 1, result: [{ authorized_ip: '92.255.220.0/24' }] });
      expect(await json(await call('CheckAuthorizedAccountIP', { account_id: account, authorized_ip: '92.255.220.9' }, { token: READER }))).toEqual({ result: { allowed: true, authorized_ip: '92.255.220.0/24' } });
      for (const name of ['AddAuthorizedAccountIP', 'DelAuthorizedAccountIP']) {
        const res = await call(name, { authorized_ip: '92.255.221.0/24', account_id: account }, { token: READER });
        expect(res.status, name).toBe(403);
        expect(await json(res)).toEqual(errorOf(403, 'forbidden'));
      }
      expect((await list()).count).toBe(1);
    });
  });

  describe('validation rules of the core', () => {
    it('refuses a duplicate, a subset of a listed /24, and reserved space', async () => {
      await add('92.255.220.0/24');
      for (const [ip, status, reason] of [['92.255.220.0/24', 409, 'duplicate'], ['92.255.220.0/255.255.255.0', 400, 'invalid_format'], ['92.255.220.7', 409, 'subset_exists'], ['92.255.0.0/16', 409, 'superset_conflict'], ['203.0.113.0/24', 400, 'reserved_range'], ['127.0.0.1', 400, 'reserved_range']] as const) {
        const res = await call('AddAuthorizedAccountIP', { authorized_ip: ip });
        expect(res.status, ip).toBe(status);
        expect(await json(res), ip).toEqual(errorOf(status, reason));
      }
      // A black-list entry for the same network is a duplicate too.
      expect(await json(await call('AddAuthorizedAccountIP', { authorized_ip: '92.255.220.0/24', allowed: 'false' }))).toEqual(errorOf(409, 'duplicate'));
      expect((await list()).total_count).toBe(1);
    });

    it('refuses the 51st entry with 409 limit_reached', async () => {
      for (let i = 0; i < 50; i++) await add(`92.${i}.0.0/16`);
      const res = await call('AddAuthorizedAccountIP', { authorized_ip: '93.0.0.0/16' });
      expect(res.status).toBe(409);
      expect(await json(res)).toEqual(errorOf(409, 'limit_reached'));
      expect((await list()).total_count).toBe(50);
    });
  });

  describe('black list', () => {
    it('adds deny entries with allowed=false, which carve holes in the white list', async () => {
      await add('92.255.220.0/24');
      await add('92.255.220.13', { allowed: 'false', description: 'abuser' });
      expect((await api.store.read(account))?.entries[1]).toMatchObject({ ipAddress: '92.255.220.13', action: 'deny', description: 'abuser' });
      expect(await check('92.255.220.13')).toEqual({ allowed: false, authorized_ip: '92.255.220.13/32' });
      expect(await check('92.255.220.14')).toEqual({ allowed: true, authorized_ip: '92.255.220.0/24' });
      expect((await list({ allowed: 'false' })).result).toEqual([{ authorized_ip: '92.255.220.13', allowed: false, description: 'abuser', created: '2026-05-12 05:11:51' }]);
      expect((await list({ allowed: 'true' })).result).toEqual([expect.objectContaining({ authorized_ip: '92.255.220.0/24', allowed: true })]);
      // Reserved space may be denied, just not allowed.
      await add('127.0.0.1', { allowed: 'false' });
    });
  });

  describe('delete', () => {
    it('removes one network, whatever list it is on, or only from the list named', async () => {
      await add('92.255.220.0/24');
      await add('92.255.221.0/24');
      await add('92.255.220.13', { allowed: 'false' });
      const wrongList = await call('DelAuthorizedAccountIP', { authorized_ip: '92.255.220.13', allowed: 'true' });
      expect(wrongList.status).toBe(404);
      expect(await json(wrongList)).toEqual(errorOf(404, 'entry_not_found'));
      expect(await json(await call('DelAuthorizedAccountIP', { authorized_ip: '92.255.220.13', allowed: 'false' }))).toEqual({ result: 1 });
      expect(await json(await call('DelAuthorizedAccountIP', { authorized_ip: '92.255.220.0/24' }))).toEqual({ result: 1 });
      expect((await list()).result.map((e: { authorized_ip: string }) => e.authorized_ip)).toEqual(['92.255.221.0/24']);
      const gone = await call('DelAuthorizedAccountIP', { authorized_ip: '92.255.220.0/24' });
      expect(gone.status).toBe(404);
      expect(await json(gone)).toEqual(errorOf(404, 'entry_not_found'));
      expect(await json(await call('DelAuthorizedAccountIP', {}))).toEqual(errorOf(400, 'missing_parameter'));
    });

    it('removes a whole list with authorized_ip=all, and succeeds on an empty one', async () => {
      expect(await json(await call('DelAuthorizedAccountIP', { authorized_ip: 'all' }))).toEqual({ result: 1 });
      expect(await api.store.read(account)).toBeNull();
      await add('92.255.220.0/24');
      await add('92.255.221.0/24');
      await add('92.255.220.13', { allowed: 'false' });
      await add('92.255.221.13', { allowed: 'false' });
      expect(await json(await call('DelAuthorizedAccountIP', { authorized_ip: 'all', allowed: 'false' }))).toEqual({ result: 1 });
      expect((await list()).result.map((e: { allowed: boolean }) => e.allowed)).toEqual([true, true]);
      const version = (await api.store.read(account))?.version;
      expect(await json(await call('DelAuthorizedAccountIP', { authorized_ip: 'all', allowed: 'false' }))).toEqual({ result: 1 });
      expect((await api.store.read(account))?.version).toBe(version);
      expect(await json(await call('DelAuthorizedAccountIP', { authorized_ip: 'all' }))).toEqual({ result: 1 });
      // Emptied, not opened: every caller is refused until an entry is added or the account opened.
      expect(await list()).toEqual({ result: [], count: 0, total_count: 0, list_state: 'empty' });
      expect(await check('92.255.220.7')).toEqual({ allowed: false, authorized_ip: null });
    });
  });

  describe('get', () => {
    it('pages with count and offset and filters by network', async () => {
      for (let i = 0; i < 25; i++) await add(`92.${i}.0.0/16`);
      const first = await list();
      expect(first).toMatchObject({ count: 20, total_count: 25 });
      expect(first.result[0]).toEqual({ authorized_ip: '92.0.0.0/16', allowed: true, description: '', created: '2026-05-12 05:11:51' });
      const second = await list({ count: '10', offset: '20' });
      expect(second).toMatchObject({ count: 5, total_count: 25 });
      expect(second.result.map((e: { authorized_ip: string }) => e.authorized_ip)).toEqual(['92.20.0.0/16', '92.21.0.0/16', '92.22.0.0/16', '92.23.0.0/16', '92.24.0.0/16']);
      expect(await list({ offset: '30' })).toEqual({ result: [], count: 0, total_count: 25, list_state: 'active' });
      expect(await list({ authorized_ip: '92.7.0.0/16' })).toMatchObject({ count: 1, total_count: 1, result: [{ authorized_ip: '92.7.0.0/16' }] });
      expect(await list({ authorized_ip: '92.7.1.0/24' })).toEqual({ result: [], count: 0, total_count: 0, list_state: 'active' });
    });
  });
});
