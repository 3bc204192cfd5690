import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send, type Reply } from '../support/http.ts';
import { startIntrospectionServer, type IntrospectionServer } from '../support/introspection-server.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitUntil } from '../support/wait.ts';

/*
 * A deployment whose keys live in its identity provider: allowgate asks the provider's RFC 7662
 * introspection endpoint (a real HTTP server started here) whose each token is, and checks that
 * account's list; answers are cached by the token's digest, concurrent lookups share one call,
 * and an endpoint that is down fails closed (or, configured, passes the request as anonymous).
 */

const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.4';
const CLIENT_ID = 'allowgate-gw';
const CLIENT_SECRET = 'introspection-client-secret-42';

function config(url: string, extra = ''): string {
  return `identity:
  strategies:
    - type: api-key
      header: X-API-Key
  introspection:
    url: ${url}
    clientId: ${CLIENT_ID}
    clientSecret: ${CLIENT_SECRET}
    accountField: ext.account
    tokenTypeHint: access_token
    cacheSeconds: 60
    negativeCacheSeconds: 60
    timeoutMs: 1000
${extra}`;
}

describe('token introspection against a real RFC 7662 endpoint', () => {
  const dir = scratchDir();
  let upstream: EchoUpstream;
  let idp: IntrospectionServer;
  let gw: GatewayProcess;

  const call = (from: string, token: string, target: GatewayProcess = gw): Promise<Reply> =>
    send(`${target.url}/v1/messages`, { headers: { 'x-api-key': token }, localAddress: from });
  const outcome = async (reply: Promise<Reply>): Promise<[number, string | undefined]> => {
    const r = await reply;
    return [r.status, r.status === 200 ? undefined : r.json<{ reason: string }>().reason];
  };
  const callsFor = (token: string): number => idp.calls.filter((c) => c.token === token).length;

  beforeAll(async () => {
    upstream = await startEchoUpstream();
    idp = await startIntrospectionServer(CLIENT_ID, CLIENT_SECRET);
    const file = join(dir.path, 'allowgate.yaml');
    writeFileSync(file, config(idp.url));
    gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_CONFIG: file } });
    expect((await gw.admin('POST', '/v1/accounts/ACME/ip-acl', { ip_address: `${OFFICE}/32` })).status).toBe(201);
  });

  afterAll(async () => {
    await gw?.stop();
    await idp?.close();
    await upstream?.close();
    dir.remove();
  });

  it('checks the list of the account the endpoint names, asking once per token', async () => {
    idp.tokens.set('tok_acme_active_1', { active: true, client_id: 'mobile-app', ext: { account: 'ACME' }, exp: Math.floor(Date.now() / 1000) + 3600 });
    expect(await outcome(call(OFFICE, 'tok_acme_active_1'))).toEqual([200, undefined]);
    expect(await outcome(call(STRANGER, 'tok_acme_active_1'))).toEqual([403, 'ip_not_allowed']);
    for (let i = 0; i < 5; i++) expect((await call(OFFICE, 'tok_acme_active_1')).status).toBe(200);
    expect(callsFor('tok_acme_active_1')).toBe(1);
    // As RFC 7662 says: a form-encoded POST, with the gateway's client credentials.
    expect(idp.calls[0]).toMatchObject({ contentType: 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}` });
    expect(upstream.seen.at(-1)!.headers['x-api-key']).toBe('tok_acme_active_1');
  });

  it('refuses inactive, expired and account-less tokens, remembering the inactive ones', async () => {
    expect(await outcome(call(OFFICE, 'tok_never_issued_1'))).toEqual([401, 'unknown_key']);
    expect(await outcome(call(OFFICE, 'tok_never_issued_1'))).toEqual([401, 'unknown_key']);
    expect(callsFor('tok_never_issued_1')).toBe(1);
    idp.tokens.set('tok_expired_1', { active: true, ext: { account: 'ACME' }, exp: Math.floor(Date.now() / 1000) - 10 });
    expect(await outcome(call(OFFICE, 'tok_expired_1'))).toEqual([401, 'unknown_key']);
    idp.tokens.set('tok_no_account_1', { active: true, sub: 'someone' });
    expect(await outcome(call(OFFICE, 'tok_no_account_1'))).toEqual([401, 'invalid_token']);
  });

  it('shares one call among concurrent requests with one new token', async () => {
    idp.tokens.set('tok_burst_1', { active: true, ext: { account: 'ACME' } });
    idp.delayMs = 200;
    try {
      const replies = await Promise.all(Array.from({ length: 20 }, () => call(OFFICE, 'tok_burst_1')));
      expect(replies.map((r) => r.status)).toEqual(Array(20).fill(200));
    } finally {
      idp.delayMs = 0;
    }
    expect(callsFor('tok_burst_1')).toBe(1);
  });

  it('looks a key up in the registry first: a registered key never reaches the endpoint', async () => {
    expect((await gw.admin('POST', '/v1/accounts/ACME/keys', { key: 'sk_registered_0123456789' })).status).toBe(201);
    expect((await call(OFFICE, 'sk_registered_0123456789')).status).toBe(200);
    expect(callsFor('sk_registered_0123456789')).toBe(0);
  });

  it('fails closed when the endpoint fails, and keeps serving what it cached', async () => {
    idp.failWith = 500;
    try {
      expect(await outcome(call(OFFICE, 'tok_during_outage_1'))).toEqual([503, 'introspection_unavailable']);
      // A failure is not cached: the next request asks again.
      expect(await outcome(call(OFFICE, 'tok_during_outage_1'))).toEqual([503, 'introspection_unavailable']);
      expect(callsFor('tok_during_outage_1')).toBe(2);
      expect((await call(OFFICE, 'tok_acme_active_1')).status).toBe(200);
    } finally {
      idp.failWith = null;
    }
    idp.tokens.set('tok_during_outage_1', { active: true, ext: { account: 'ACME' } });
    expect((await call(OFFICE, 'tok_during_outage_1')).status).toBe(200);
  });

  it('counts calls, their outcomes and their duration, and never logs a token', async () => {
    const metrics = await (await gw.admin('GET', '/metrics')).text();
    expect(metrics).toMatch(/^allowgate_introspection_requests_total\{outcome="active"\} [1-9]/m);
    expect(metrics).toMatch(/^allowgate_introspection_requests_total\{outcome="inactive"\} [1-9]/m);
    expect(metrics).toMatch(/^allowgate_introspection_requests_total\{outcome="status"\} [1-9]/m);
    expect(Number(/^allowgate_introspection_duration_seconds_count (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(5);
    expect(metrics).toMatch(/^allowgate_key_lookups_total\{result="introspected"\} [1-9]/m);
    expect(metrics).toMatch(/^allowgate_introspection_cache_entries\{kind="active"\} [1-9]/m);
    const text = gw.logs.map((l) => JSON.stringify(l)).join('\n');
    for (const token of ['tok_acme_active_1', 'tok_never_issued_1', 'tok_during_outage_1', CLIENT_SECRET]) expect(text).not.toContain(token);
  });

  it('refuses while the endpoint is unreachable, or passes the request as anonymous when configured to', async () => {
    const down = 'http://127.0.0.1:9/oauth2/introspect';
    const closedFile = join(dir.path, 'closed.yaml');
    writeFileSync(closedFile, config(down));
    const openFile = join(dir.path, 'open.yaml');
    writeFileSync(openFile, config(down, '    onUnavailable: anonymous\n'));
    const [closed, open] = await Promise.all([
      startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_CONFIG: closedFile } }),
      startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_CONFIG: openFile, ALLOWGATE_ANONYMOUS: 'pass' } }),
    ]);
    try {
      expect(await outcome(call(OFFICE, 'tok_anything_1', closed))).toEqual([503, 'introspection_unavailable']);
      const passed = await call(OFFICE, 'tok_anything_1', open);
      expect(passed.status).toBe(200);
      await waitUntil('the pass logged', () => open.logs.some((l) => l['decision'] === 'anonymous' && l['reason'] === 'introspection_unavailable'));
    } finally {
      await Promise.all([closed.stop(), open.stop()]);
    }
  });
});
