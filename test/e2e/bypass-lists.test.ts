import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { ADMIN_TOKEN, startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitUntil } from '../support/wait.ts';

/*
 * No list opens by itself, against the real gateway process on each store: an account whose
 * only allow entry expires, is disabled, deleted, replaced away (natively or through either
 * compatible surface) refuses every caller with `list_empty`, the check endpoint says so, and
 * only an explicit settings change opens it. OFFICE is the listed caller; STRANGER is not.
 * Every refusal is asserted with its status and reason, and as not having reached the upstream.
 */

const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';

interface Outcome {
  readonly status: number;
  readonly reason?: string;
}

let marker = 0;

async function call(gw: GatewayProcess, upstream: EchoUpstream, account: string | null, from: string): Promise<Outcome> {
  const path = `/lists/${marker++}`;
  const reply = await send(`${gw.url}${path}`, { headers: [['Host', 'api.example'], ...(account === null ? [] : [['X-Auth-ID', account] as [string, string]])], localAddress: from });
  const reached = upstream.seen.some((r) => r.url === path);
  expect(reached, `${account} from ${from}: reached the upstream`).toBe(reply.status === 200);
  return reply.status === 200 ? { status: 200 } : { status: reply.status, reason: reply.json()['reason'] as string };
}

async function json(res: Response): Promise<Record<string, unknown>> {
  return await res.json() as Record<string, unknown>;
}

async function allow(gw: GatewayProcess, account: string, fields: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const res = await gw.admin('POST', `/v1/accounts/${account}/ip-acl`, { ip_address: `${OFFICE}/32`, ...fields });
  expect(res.status).toBe(201);
  return json(res);
}

const EMPTY = { status: 403, reason: 'list_empty' };

async function expectEmptied(gw: GatewayProcess, upstream: EchoUpstream, account: string): Promise<void> {
  expect(await call(gw, upstream, account, OFFICE)).toEqual(EMPTY);
  expect(await call(gw, upstream, account, STRANGER)).toEqual(EMPTY);
  const check = await json(await gw.admin('GET', `/v1/accounts/${account}/check?ip=${OFFICE}`));
  expect(check).toMatchObject({ decision: 'deny', reason: 'list_empty', matched: null, list_state: 'empty' });
  expect(await json(await gw.admin('GET', `/v1/accounts/${account}`))).toMatchObject({ restricted: true, list_state: 'empty' });
}

const STORES = [
  { name: 'memory', env: (): Record<string, string> => ({}) },
  { name: 'file', env: (dir: string): Record<string, string> => ({ ALLOWGATE_STORE: `file:${join(dir, 'store.json')}` }) },
  { name: 'redis', env: (_dir: string, redis?: RedisServer): Record<string, string> => ({ ALLOWGATE_STORE: redis!.url, ALLOWGATE_REDIS_KEY_PREFIX: `lists${Date.now()}:` }) },
] as const;

describe.each(STORES)('no list opens by itself ($name store)', (store) => {
  let upstream: EchoUpstream;
  let redis: RedisServer | undefined;
  let gw: GatewayProcess;
  let env: Record<string, string>;
  const dir = scratchDir();

  beforeAll(async () => {
    upstream = await startEchoUpstream();
    if (store.name === 'redis') redis = await startRedis();
    env = { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_ANONYMOUS: 'global', ...store.env(dir.path, redis) };
    gw = await startGateway({ env });
  });
  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
    await redis?.stop();
    dir.remove();
  });

  it('a temporary entry that is the only allow entry: warned at creation, everyone refused at its expiry', async () => {
    const expires = new Date(Date.now() + 1_500).toISOString();
    const created = await allow(gw, 'T1', { expires_at: expires });
    expect(created['warnings']).toEqual([{ reason: 'will_empty', at: expires, message: expect.stringContaining('refuses every caller (list_empty)') }]);
    expect(await call(gw, upstream, 'T1', OFFICE)).toEqual({ status: 200 });
    expect(await call(gw, upstream, 'T1', STRANGER)).toEqual({ status: 403, reason: 'ip_not_allowed' });
    await waitUntil('the entry expired', async () => (await call(gw, upstream, 'T1', OFFICE)).status === 403, 5_000);
    await expectEmptied(gw, upstream, 'T1');
  });

  it('the only allow entry disabled, deleted, or the list replaced by an empty one', async () => {
    const disabled = await allow(gw, 'D1');
    expect((await gw.admin('PATCH', `/v1/accounts/D1/ip-acl/${String(disabled['id'])}`, { enabled: false })).status).toBe(200);
    await expectEmptied(gw, upstream, 'D1');

    const deleted = await allow(gw, 'D2');
    expect((await gw.admin('DELETE', `/v1/accounts/D2/ip-acl/${String(deleted['id'])}`)).status).toBe(200);
    await expectEmptied(gw, upstream, 'D2');

    await allow(gw, 'D3');
    expect((await gw.admin('PUT', '/v1/accounts/D3/ip-acl', { entries: [] })).status).toBe(200);
    await expectEmptied(gw, upstream, 'D3');

    // Replaced by a list with deny entries only: the denied address is denied, everyone else emptied.
    await allow(gw, 'D4');
    expect((await gw.admin('POST', '/v1/accounts/D4/ip-acl/import?mode=replace', { entries: [{ ip_address: `${STRANGER}/32`, action: 'deny' }] })).status).toBe(200);
    expect(await call(gw, upstream, 'D4', STRANGER)).toEqual({ status: 403, reason: 'ip_denied' });
    expect(await call(gw, upstream, 'D4', OFFICE)).toEqual(EMPTY);
  });

  it('through the Vobiz-compatible surface: deleting the last entry empties the list, and its listing says so', async () => {
    const headers = { 'X-Auth-ID': 'V1', 'X-Auth-Token': ADMIN_TOKEN, 'Content-Type': 'application/json' };
    const base = `${gw.adminUrl}/api/v1/Account/V1/ip-acl`;
    const created = await json(await fetch(base, { method: 'POST', headers, body: JSON.stringify({ name: 'office', ip_address: OFFICE }) }));
    expect((await fetch(`${base}/${String(created['id'])}`, { method: 'DELETE', headers })).status).toBe(204);
    await expectEmptied(gw, upstream, 'V1');
    expect((await json(await fetch(base, { headers })))['meta']).toMatchObject({ total_count: 0, list_state: 'empty' });
  });

  it('through the Voximplant-compatible surface: deleting all empties the list, and the check refuses', async () => {
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const api = (method: string, params: string): Promise<Record<string, unknown>> => fetch(`${gw.adminUrl}/platform_api/${method}?account_id=X1&${params}`, { method: 'POST', headers: auth }).then(json);
    expect(await api('AddAuthorizedAccountIP', `authorized_ip=${OFFICE}`)).toEqual({ result: 1 });
    expect(await api('DelAuthorizedAccountIP', 'authorized_ip=all')).toEqual({ result: 1 });
    await expectEmptied(gw, upstream, 'X1');
    expect(await api('CheckAuthorizedAccountIP', `authorized_ip=${OFFICE}`)).toEqual({ result: { allowed: false, authorized_ip: null } });
    expect(await api('GetAuthorizedAccountIPs', '')).toMatchObject({ total_count: 0, list_state: 'empty' });
  });

  it('opens only by an explicit settings change: refused while an allow entry is enabled, reported as would_open, refused under guard=strict', async () => {
    const entry = await allow(gw, 'O1');
    expect(await json(await gw.admin('PUT', '/v1/accounts/O1', { restricted: false }))).toMatchObject({ code: 409, reason: 'list_in_force' });
    expect((await gw.admin('DELETE', `/v1/accounts/O1/ip-acl/${String(entry['id'])}`)).status).toBe(200);
    expect(await json(await gw.admin('PUT', '/v1/accounts/O1?guard=strict', { restricted: false }))).toMatchObject({ code: 409, reason: 'would_open' });
    await expectEmptied(gw, upstream, 'O1');
    const opened = await json(await gw.admin('PUT', '/v1/accounts/O1', { restricted: false }));
    expect(opened).toMatchObject({ restricted: false, list_state: 'none', warnings: [{ reason: 'would_open' }] });
    expect(await call(gw, upstream, 'O1', STRANGER)).toEqual({ status: 200 });
    expect(await json(await gw.admin('GET', `/v1/accounts/O1/check?ip=${STRANGER}`))).toMatchObject({ decision: 'allow', reason: 'no_list', list_state: 'none' });

    // An account whose guard setting is strict is opened in two steps, each explicit.
    await allow(gw, 'O2');
    expect((await gw.admin('PUT', '/v1/accounts/O2', { guard: 'strict' })).status).toBe(200);
    expect((await gw.admin('PUT', '/v1/accounts/O2/ip-acl', { entries: [] })).status).toBe(200);
    expect(await json(await gw.admin('PUT', '/v1/accounts/O2', { restricted: false }))).toMatchObject({ code: 409, reason: 'would_open' });
    await expectEmptied(gw, upstream, 'O2');
  });

  it('an account that never had a list keeps its default; a subaccount follows its parent\'s emptied list; report-only only reports', async () => {
    expect((await gw.admin('PUT', '/v1/accounts/N1', { mode: 'enforce' })).status).toBe(200);
    expect(await call(gw, upstream, 'N1', STRANGER)).toEqual({ status: 200 });
    expect((await gw.admin('PUT', '/v1/accounts/N2', { default: 'closed' })).status).toBe(200);
    expect(await call(gw, upstream, 'N2', STRANGER)).toEqual({ status: 403, reason: 'ip_not_allowed' });

    const parentEntry = await allow(gw, 'P1');
    expect((await gw.admin('PUT', '/v1/accounts/C1', { parent: 'P1' })).status).toBe(200);
    expect(await call(gw, upstream, 'C1', OFFICE)).toEqual({ status: 200 });
    expect((await gw.admin('DELETE', `/v1/accounts/P1/ip-acl/${String(parentEntry['id'])}`)).status).toBe(200);
    expect(await call(gw, upstream, 'C1', OFFICE)).toEqual(EMPTY);
    expect(await json(await gw.admin('GET', `/v1/accounts/C1/check?ip=${OFFICE}`))).toMatchObject({ reason: 'list_empty', list_state: 'empty' });

    const reported = await allow(gw, 'R1');
    expect((await gw.admin('PUT', '/v1/accounts/R1', { mode: 'report-only' })).status).toBe(200);
    expect((await gw.admin('DELETE', `/v1/accounts/R1/ip-acl/${String(reported['id'])}`)).status).toBe(200);
    expect(await call(gw, upstream, 'R1', STRANGER)).toEqual({ status: 200 });
    expect(await json(await gw.admin('GET', `/v1/accounts/R1/check?ip=${STRANGER}`))).toMatchObject({ decision: 'report_only', reason: 'list_empty' });
  });

  it('the global list, for callers without credentials (anonymous: global), does not open either', async () => {
    expect(await call(gw, upstream, null, STRANGER)).toEqual({ status: 200 });
    const created = await json(await gw.admin('POST', '/v1/global/ip-acl', { ip_address: `${OFFICE}/32` }));
    expect(await call(gw, upstream, null, STRANGER)).toEqual({ status: 403, reason: 'ip_not_allowed' });
    expect((await gw.admin('DELETE', `/v1/global/ip-acl/${String(created['id'])}`)).status).toBe(200);
    expect(await call(gw, upstream, null, STRANGER)).toEqual(EMPTY);
    expect(await call(gw, upstream, null, OFFICE)).toEqual(EMPTY);
    expect(await json(await gw.admin('GET', '/v1/global'))).toMatchObject({ restricted: true, list_state: 'empty' });
    expect(await json(await gw.admin('PUT', '/v1/global', { mode: 'off' }))).toMatchObject({ code: 400, reason: 'invalid_field' });
    expect(await json(await gw.admin('PUT', '/v1/global', { restricted: false }))).toMatchObject({ list_state: 'none' });
    expect(await call(gw, upstream, null, STRANGER)).toEqual({ status: 200 });
  });

  it('the state survives the gateway (file and Redis), and another replica enforces it at once (Redis)', async () => {
    if (store.name === 'memory') {
      expect((await gw.admin('GET', '/v1/accounts/D1')).status).toBe(200);
      return;
    }
    await gw.stop();
    gw = await startGateway({ env });
    await expectEmptied(gw, upstream, 'D1');
    if (store.name !== 'redis') return;
    const other = await startGateway({ env });
    try {
      const entry = await allow(gw, 'M1');
      expect(await call(other, upstream, 'M1', OFFICE)).toEqual({ status: 200 });
      expect((await gw.admin('PATCH', `/v1/accounts/M1/ip-acl/${String(entry['id'])}`, { enabled: false })).status).toBe(200);
      await waitUntil('the other replica enforces the emptied list', async () => (await call(other, upstream, 'M1', OFFICE)).status === 403, 5_000);
      expect(await call(other, upstream, 'M1', OFFICE)).toEqual(EMPTY);
    } finally {
      await other.stop();
    }
  });
});
