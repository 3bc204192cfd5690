import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send, type Reply } from '../support/http.ts';
import { scratchDir } from '../support/scratch.ts';
import { pollUntil } from '../support/wait.ts';

/*
 * A team whose API takes opaque keys puts allowgate in front of it: the real gateway process on a
 * file store, a real upstream, callers on distinct loopback addresses. The account allows its
 * office and its CI range; the CI key is restricted to the CI range on top; the other keys keep
 * working from the office.
 */

const OFFICE = '127.0.0.2';
const CI = '127.0.0.3';
const STRANGER = '127.0.0.4';

const CI_KEY = 'sk_live_ci_7Hq2ZpX9vLmN4rT8';
const OFFICE_KEY = 'sk_live_office_Qw3Er5Ty7Ui9Op1A';
const PARTNER_KEY = 'pk_partner_Zx8Cv6Bn4Mm2Lk0J';

const CONFIG = `identity:
  strategies:
    - type: header
      header: X-Auth-ID
    - type: basic
    - type: bearer-jwt
      claim: iss
    - type: api-key
      header: X-API-Key
      bearer: true
      basic: password
      query: api_key
`;

function jwt(payload: Record<string, unknown>): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part(payload)}.${Buffer.from('not-checked').toString('base64url')}`;
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

describe('opaque API keys in front of a real upstream', () => {
  const dir = scratchDir();
  let upstream: EchoUpstream;
  let gw: GatewayProcess;
  let env: Record<string, string>;
  const ids: Record<string, string> = {};

  // Headers as pairs (to repeat one) go out as given: Host included.
  const call = (from: string, headers: Record<string, string> | readonly (readonly [string, string])[], path = '/v1/messages'): Promise<Reply> =>
    send(`${gw.url}${path}`, { headers: Array.isArray(headers) ? [['Host', 'api.example'], ...headers] : headers, localAddress: from });
  const reasonOf = (reply: Reply): string => reply.json<{ reason: string }>().reason;

  beforeAll(async () => {
    upstream = await startEchoUpstream();
    writeFileSync(join(dir.path, 'allowgate.yaml'), CONFIG);
    env = {
      ALLOWGATE_UPSTREAM_URL: upstream.url,
      ALLOWGATE_STORE: `file:${join(dir.path, 'data', 'store.json')}`,
      ALLOWGATE_CONFIG: join(dir.path, 'allowgate.yaml'),
      ALLOWGATE_AUTHZ_LISTEN: '127.0.0.1:0',
      ALLOWGATE_TRUSTED_PROXIES: '127.0.0.1',
    };
    gw = await startGateway({ env });
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
    dir.remove();
  });

  it('registers keys by value and by hash, and never answers with the key', async () => {
    for (const [name, key] of [['ci', CI_KEY], ['office', OFFICE_KEY]] as const) {
      const res = await gw.admin('POST', '/v1/accounts/ACME/keys', { key, name });
      expect(res.status).toBe(201);
      const body = await res.json() as Record<string, unknown>;
      expect(body).toMatchObject({ account: 'ACME', name, hash: 'hmac-sha256', enabled: true, last_used_at: null, last_used_ip: null });
      expect(body['fingerprint']).toMatch(/^[0-9a-f]{12}$/);
      expect(JSON.stringify(body)).not.toContain(key);
      ids[name] = String(body['id']);
    }
    const sha = createHash('sha256').update(PARTNER_KEY).digest('hex');
    const partner = await gw.admin('POST', '/v1/accounts/ACME/keys', { key_sha256: sha, name: 'partner' });
    expect(partner.status).toBe(201);
    ids['partner'] = String((await partner.json() as { id: string }).id);
    // A key belongs to one account.
    const again = await gw.admin('POST', '/v1/accounts/OTHER/keys', { key: CI_KEY });
    expect([again.status, (await again.json() as { reason: string }).reason]).toEqual([409, 'duplicate']);
    // Whichever way each registration names it: as sent, then by hash, or the other way round; here or elsewhere.
    for (const [account, body] of [
      ['OTHER', { key_sha256: createHash('sha256').update(CI_KEY).digest('hex') }], ['ACME', { key_sha256: createHash('sha256').update(CI_KEY).digest('hex') }],
      ['OTHER', { key: PARTNER_KEY }], ['ACME', { key: PARTNER_KEY }],
    ] as const) {
      const twice = await gw.admin('POST', `/v1/accounts/${account}/keys`, body);
      expect([twice.status, (await twice.json() as { reason: string }).reason], `${account} ${Object.keys(body)[0]}`).toEqual([409, 'duplicate']);
    }
    // Neither the store file nor the log holds a key.
    const stored = readFileSync(join(dir.path, 'data', 'store.json'), 'utf8');
    for (const key of [CI_KEY, OFFICE_KEY, PARTNER_KEY]) expect(stored).not.toContain(key);
    expect(readFileSync(join(dir.path, 'data', 'key-secret'), 'utf8').trim().length).toBeGreaterThanOrEqual(32);
  });

  it('restricts the CI key to the CI range while the account\'s other keys keep working from the office', async () => {
    for (const ip of [`${OFFICE}/32`, `${CI}/32`]) expect((await gw.admin('POST', '/v1/accounts/ACME/ip-acl', { ip_address: ip })).status).toBe(201);
    const entry = await gw.admin('POST', `/v1/accounts/ACME/keys/${ids['ci']}/ip-acl`, { ip_address: `${CI}/32`, description: 'CI runners' });
    expect(entry.status).toBe(201);

    const ciFromCi = await call(CI, { 'X-API-Key': CI_KEY });
    expect(ciFromCi.status).toBe(200);
    // Forwarded as sent: the upstream authenticates the key itself.
    expect(upstream.seen.at(-1)!.headers['x-api-key']).toBe(CI_KEY);
    const ciFromOffice = await call(OFFICE, { 'X-API-Key': CI_KEY });
    expect([ciFromOffice.status, reasonOf(ciFromOffice)]).toEqual([403, 'ip_not_allowed_for_key']);
    expect(ciFromOffice.json<{ error: string }>().error).toBe(`IP address ${OFFICE} is not allowed for key ${ids['ci']} of account ACME`);
    expect((await call(OFFICE, { 'X-API-Key': OFFICE_KEY })).status).toBe(200);
    expect((await call(CI, { 'X-API-Key': OFFICE_KEY })).status).toBe(200);
    expect((await call(OFFICE, { 'X-API-Key': PARTNER_KEY })).status).toBe(200);
    const stranger = await call(STRANGER, { 'X-API-Key': OFFICE_KEY });
    expect([stranger.status, reasonOf(stranger)]).toEqual([403, 'ip_not_allowed']);

    // Every place the strategy reads a key from.
    expect((await call(CI, { authorization: `Bearer ${CI_KEY}` })).status).toBe(200);
    expect(reasonOf(await call(OFFICE, { authorization: `Bearer ${CI_KEY}` }))).toBe('ip_not_allowed_for_key');
    expect((await call(OFFICE, { authorization: basic('ACME', OFFICE_KEY) })).status).toBe(200);
    expect(reasonOf(await call(OFFICE, { authorization: basic('ACME', CI_KEY) }))).toBe('ip_not_allowed_for_key');
    expect((await call(CI, {}, `/v1/messages?api_key=${encodeURIComponent(CI_KEY)}`)).status).toBe(200);
    expect(reasonOf(await call(OFFICE, {}, `/v1/messages?api_key=${encodeURIComponent(CI_KEY)}`))).toBe('ip_not_allowed_for_key');
    // A JWT is still the bearer-jwt strategy's: its claim names the account, no key is involved.
    expect((await call(OFFICE, { authorization: `Bearer ${jwt({ iss: 'ACME' })}` })).status).toBe(200);
    expect(reasonOf(await call(STRANGER, { authorization: `Bearer ${jwt({ iss: 'ACME' })}` }))).toBe('ip_not_allowed');

    // Through an external-authorization check, the same decisions.
    const check = (client: string, key: string): Promise<Reply> => send(`http://127.0.0.1:${gw.authzPort}/authz/forward-auth`, {
      headers: { 'x-forwarded-for': client, 'x-forwarded-uri': '/v1/messages', 'x-forwarded-method': 'GET', 'x-api-key': key },
      localAddress: '127.0.0.1',
    });
    expect((await check(CI, CI_KEY)).status).toBe(200);
    expect([(await check(OFFICE, CI_KEY)).status, reasonOf(await check(OFFICE, CI_KEY))]).toEqual([403, 'ip_not_allowed_for_key']);
  });

  it('never opens a key by itself: an emptied key list refuses every caller until it is opened', async () => {
    const keyList = `/v1/accounts/ACME/keys/${ids['ci']}/ip-acl`;
    const keyState = async (): Promise<string> => (await (await gw.admin('GET', `/v1/accounts/ACME/keys/${ids['ci']}`)).json() as { list_state: string }).list_state;
    expect(await keyState()).toBe('active');
    const [only] = (await (await gw.admin('GET', keyList)).json() as { entries: { id: string }[] }).entries;
    // Its only allow entry disabled, then deleted: refused from everywhere, the CI range included.
    for (const [method, body] of [['PATCH', { enabled: false }], ['DELETE', undefined]] as const) {
      const changed = await gw.admin(method, `${keyList}/${only!.id}`, body);
      expect(changed.status).toBe(200);
      for (const from of [CI, OFFICE]) {
        const reply = await call(from, { 'X-API-Key': CI_KEY });
        expect([reply.status, reasonOf(reply)], `${method} from ${from}`).toEqual([403, 'list_empty_for_key']);
      }
    }
    expect(await keyState()).toBe('empty');
    expect((await (await gw.admin('GET', keyList)).json() as { list_state: string }).list_state).toBe('empty');
    expect(await (await gw.admin('GET', `/v1/accounts/ACME/keys/${ids['ci']}/check?ip=${CI}`)).json()).toMatchObject({ decision: 'deny', reason: 'list_empty_for_key', list_state: 'empty' });
    // The account's other keys are not concerned.
    expect((await call(OFFICE, { 'X-API-Key': OFFICE_KEY })).status).toBe(200);

    // A temporary entry as the only one: in force until it expires, then the key refuses again.
    const soon = new Date(Date.now() + 2_000).toISOString();
    const temporary = await gw.admin('POST', keyList, { ip_address: `${CI}/32`, expires_at: soon });
    expect(temporary.status).toBe(201);
    expect((await temporary.json() as { warnings?: { reason: string }[] }).warnings?.map((w) => w.reason)).toContain('will_empty');
    expect((await call(CI, { 'X-API-Key': CI_KEY })).status).toBe(200);
    await pollUntil('the temporary entry expired', async () => (reasonOf(await call(CI, { 'X-API-Key': CI_KEY })) === 'list_empty_for_key' ? true : undefined), 20_000);

    // Opening is explicit, refused while an allow entry is enabled, and not for the key's recent callers to find out.
    const open = (guard = ''): Promise<Response> => gw.admin('PATCH', `/v1/accounts/ACME/keys/${ids['ci']}${guard}`, { restricted: false });
    const pending = await gw.admin('POST', keyList, { ip_address: `${STRANGER}/32` });
    expect(pending.status).toBe(201);
    const refused = await open();
    expect([refused.status, (await refused.json() as { reason: string }).reason]).toEqual([409, 'list_in_force']);
    // Every allow entry goes (the expired one too, if the sweep has not taken it yet): now it may be opened.
    for (const e of (await (await gw.admin('GET', keyList)).json() as { entries: { id: string }[] }).entries) {
      expect((await gw.admin('DELETE', `${keyList}/${e.id}`)).status).toBe(200);
    }
    const mixed = await gw.admin('PATCH', `/v1/accounts/ACME/keys/${ids['ci']}`, { restricted: false, name: 'x' });
    expect([mixed.status, (await mixed.json() as { reason: string }).reason]).toEqual([400, 'invalid_format']);
    const strict = await open('?guard=strict');
    expect([strict.status, (await strict.json() as { reason: string }).reason]).toEqual([409, 'would_open']);
    const opened = await open();
    expect(opened.status).toBe(200);
    expect(await opened.json()).toMatchObject({ id: ids['ci'], list_state: 'none', warnings: [{ reason: 'would_open' }] });
    // Opened: the account's list alone applies to the key.
    expect((await call(OFFICE, { 'X-API-Key': CI_KEY })).status).toBe(200);
    expect(reasonOf(await call(STRANGER, { 'X-API-Key': CI_KEY }))).toBe('ip_not_allowed');
    // In the account's audit trail, naming the key.
    const audit = await (await gw.admin('GET', '/v1/audit?account=ACME')).json() as { events: { action: string; key?: string; before: unknown; after: unknown }[] };
    expect(audit.events.find((e) => e.action === 'settings.update' && e.key === ids['ci'])).toMatchObject({ before: { restricted: true }, after: {} });

    // Restricted to the CI range again, for the tests that follow.
    expect((await gw.admin('POST', keyList, { ip_address: `${CI}/32`, description: 'CI runners' })).status).toBe(201);
    expect(reasonOf(await call(OFFICE, { 'X-API-Key': CI_KEY }))).toBe('ip_not_allowed_for_key');
  });

  it('refuses unknown, unreadable and ambiguous keys, and every spelling an upstream could read another way', async () => {
    const refused = async (from: string, headers: Record<string, string> | readonly (readonly [string, string])[], status: number, reason: string, path?: string): Promise<void> => {
      const reply = await call(from, headers, path);
      expect([reply.status, reasonOf(reply)], JSON.stringify(headers) + (path ?? '')).toEqual([status, reason]);
    };
    await refused(OFFICE, { 'X-API-Key': 'sk_live_made_up_0000000000' }, 401, 'unknown_key');
    await refused(OFFICE, { authorization: 'Bearer sk_live_made_up_0000000000' }, 401, 'unknown_key');
    await refused(OFFICE, { 'X-API-Key': '' }, 401, 'invalid_key');
    await refused(OFFICE, { 'X-API-Key': 'sk live with space' }, 401, 'invalid_key');
    // The key's account and another credential's must agree.
    await refused(OFFICE, { 'X-API-Key': OFFICE_KEY, 'X-Auth-ID': 'OTHER' }, 400, 'ambiguous_credentials');
    await refused(OFFICE, { authorization: basic('OTHER', OFFICE_KEY) }, 400, 'ambiguous_credentials');
    expect((await call(OFFICE, { 'X-API-Key': OFFICE_KEY, 'X-Auth-ID': 'ACME' })).status).toBe(200);
    // A key in two places, or twice in one, even the same key.
    await refused(OFFICE, { 'X-API-Key': OFFICE_KEY, authorization: `Bearer ${OFFICE_KEY}` }, 400, 'ambiguous_credentials');
    await refused(OFFICE, { 'X-API-Key': OFFICE_KEY }, 400, 'ambiguous_credentials', `/v1/messages?api_key=${OFFICE_KEY}`);
    await refused(OFFICE, [['X-API-Key', OFFICE_KEY], ['X-API-Key', CI_KEY]], 400, 'ambiguous_credentials');
    // Names upstreams fold into X-API-Key or api_key, and a Connection header dropping the key.
    await refused(CI, { X_API_Key: CI_KEY }, 400, 'ambiguous_header');
    await refused(CI, { 'X.API.Key': CI_KEY }, 400, 'ambiguous_header');
    await refused(OFFICE, { 'X-API-Key': OFFICE_KEY, Connection: 'close, X-API-Key' }, 400, 'invalid_connection_header');
    await refused(CI, {}, 400, 'ambiguous_credentials', `/v1/messages?api.key=${CI_KEY}`);
    await refused(CI, {}, 400, 'ambiguous_credentials', `/v1/messages?api_key[]=${CI_KEY}`);
    await refused(CI, {}, 400, 'ambiguous_credentials', `/v1/messages?API_KEY=${CI_KEY}&api_key=${CI_KEY}`);
    await refused(CI, { cookie: `api_key=${CI_KEY}` }, 400, 'ambiguous_credentials');
    await refused(CI, { 'X-API-Key': CI_KEY, 'content-type': 'application/x-www-form-urlencoded' }, 400, 'ambiguous_credentials');
  });

  it('disables, enables and deletes keys, effective from the next request', async () => {
    const patch = (id: string, body: unknown): Promise<Response> => gw.admin('PATCH', `/v1/accounts/ACME/keys/${id}`, body);
    expect((await patch(ids['office']!, { enabled: false })).status).toBe(200);
    const disabled = await call(OFFICE, { 'X-API-Key': OFFICE_KEY });
    expect([disabled.status, reasonOf(disabled)]).toEqual([401, 'key_disabled']);
    expect((await patch(ids['office']!, { enabled: true, name: 'office laptops' })).status).toBe(200);
    expect((await call(OFFICE, { 'X-API-Key': OFFICE_KEY })).status).toBe(200);
    expect((await gw.admin('DELETE', `/v1/accounts/ACME/keys/${ids['partner']}`)).status).toBe(200);
    expect(reasonOf(await call(OFFICE, { 'X-API-Key': PARTNER_KEY }))).toBe('unknown_key');
  });

  it('shows each key\'s last use and its own recent callers, and counts lookups', async () => {
    // Used from the CI range now: last use is written behind the request path, within a second or
    // so. The key's last recorded use was from the office (its list was open), so this one, from
    // another address, is recorded at once despite KEY_SIGHTING_RESOLUTION_MS.
    const sent = Date.now();
    expect((await call(CI, { 'X-API-Key': CI_KEY })).status).toBe(200);
    const listed = await pollUntil('last use recorded', async () => {
      const body = await (await gw.admin('GET', '/v1/accounts/ACME/keys')).json() as { keys: { id: string; last_used_at: string | null; last_used_ip: string | null }[] };
      const ci = body.keys.find((k) => k.id === ids['ci'])!;
      return ci.last_used_ip === CI && ci.last_used_at !== null && Date.parse(ci.last_used_at) >= sent ? body : undefined;
    }, 15_000);
    expect(listed.keys.find((k) => k.id === ids['ci'])).toMatchObject({ last_used_ip: CI });
    expect(listed.keys.find((k) => k.id === ids['office'])).toMatchObject({ last_used_ip: expect.stringMatching(/^127\.0\.0\.[23]$/) });
    // The key's own recent callers, each with what it gets now (the office was let through while the key's list was open).
    const recent = await (await gw.admin('GET', `/v1/accounts/ACME/keys/${ids['ci']}/recent-ips`)).json() as { key: string; ips: { ip: string; decision: string }[] };
    expect(recent.key).toBe(ids['ci']);
    expect(recent.ips).toContainEqual(expect.objectContaining({ ip: CI, decision: 'allow' }));
    for (const caller of recent.ips.filter((c) => c.ip !== CI)) expect(caller).toMatchObject({ ip: OFFICE, decision: 'deny' });
    // The lockout guard of the key's list knows the CI runners call from there.
    const narrowing = await gw.admin('PUT', `/v1/accounts/ACME/keys/${ids['ci']}/ip-acl?guard=strict`, { entries: [{ ip_address: `${OFFICE}/32` }] });
    expect([narrowing.status, (await narrowing.json() as { reason: string }).reason]).toEqual([409, 'would_lock_out']);
    const metrics = await (await gw.admin('GET', '/metrics')).text();
    expect(Number(/^allowgate_key_lookups_total\{result="cached"\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(Number(/^allowgate_key_lookups_total\{result="unknown"\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toMatch(/^allowgate_requests_total\{surface="proxy",decision="deny",reason="ip_not_allowed_for_key"\} [1-9]/m);
    expect(metrics).toMatch(/^allowgate_key_cache_entries\{kind="keys"\} [1-9]/m);
  });

  it('never writes a key to its log', () => {
    const text = gw.logs.map((line) => JSON.stringify(line)).join('\n');
    expect(gw.logs.some((l) => l['reason'] === 'ip_not_allowed_for_key' && l['key_id'] === ids['ci'])).toBe(true);
    for (const key of [CI_KEY, OFFICE_KEY, PARTNER_KEY]) expect(text).not.toContain(key);
    expect(text).toContain('api_key=[REDACTED]');
  });

  it('keeps keys and lists across a restart (the key secret beside the store)', async () => {
    await gw.stop();
    gw = await startGateway({ env });
    expect((await call(CI, { 'X-API-Key': CI_KEY })).status).toBe(200);
    expect(reasonOf(await call(OFFICE, { 'X-API-Key': CI_KEY }))).toBe('ip_not_allowed_for_key');
    expect((await call(OFFICE, { 'X-API-Key': OFFICE_KEY })).status).toBe(200);
  });
});
