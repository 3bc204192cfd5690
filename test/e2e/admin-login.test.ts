import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { ADMIN_TOKEN, startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send, type Reply } from '../support/http.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitUntil } from '../support/wait.ts';

/*
 * The admin API's failed-login limit, against the real gateway: wrong tokens from one address are
 * held back (429) after 10 a minute, but a valid credential from that same address is always
 * served (an operator shares 127.0.0.1 with everyone on the same port-forward), on every surface;
 * requests that carry no credential (a browser's /favicon.ico, the console's files, probes) are
 * not failed logins at all; and the log stays bounded however long the guessing goes on.
 * Each case plays its own loopback address, so the cases do not share a count.
 */

const ACCOUNT_TOKEN = 'login-account-token-0123456789';

describe('admin failed-login limit', () => {
  let upstream: EchoUpstream;
  let gw: GatewayProcess;
  const dir = scratchDir();

  beforeAll(async () => {
    const config = join(dir.path, 'allowgate.yaml');
    const digest = createHash('sha256').update(ACCOUNT_TOKEN).digest('hex');
    writeFileSync(config, ['admin:', '  credentials:', `    - {name: ac1-key, role: account, account: AC1, tokenSha256: ${digest}}`, ''].join('\n'));
    upstream = await startEchoUpstream();
    gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_CONFIG: config } });
  }, 30_000);

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
    dir.remove();
  });

  const call = (from: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> =>
    send(`${gw.adminUrl}${path}`, { method, headers, localAddress: from });
  const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
  const failedLines = (from: string): Record<string, unknown>[] => gw.logs.filter((l) => l['msg'] === 'admin authentication failed' && l['source'] === from);
  const heldLines = (from: string): Record<string, unknown>[] => gw.logs.filter((l) => l['msg'] === 'admin authentication failed: too many attempts' && l['source'] === from);

  it('holds back wrong tokens after 10 a minute, and still serves the owner token from the same address', async () => {
    const from = '127.0.0.11';
    for (let i = 0; i < 10; i++) {
      const reply = await call(from, '/v1/accounts', bearer(`wrong-token-${i}`));
      expect([reply.status, reply.json()['reason']]).toEqual([401, 'invalid_token']);
    }
    const held = await call(from, '/v1/accounts', bearer('wrong-token-10'));
    expect(held.status).toBe(429);
    expect(held.json()).toMatchObject({ code: 429, reason: 'too_many_attempts', error: expect.stringContaining('a valid credential is still accepted') });
    expect(Number(held.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(held.headers['retry-after'])).toBeLessThanOrEqual(60);

    // The valid credential, on each surface: served, and the change it asks for made.
    const accounts = await call(from, '/v1/accounts', bearer(ADMIN_TOKEN));
    expect(accounts.status).toBe(200);
    const added = await send(`${gw.adminUrl}/v1/accounts/LOGIN1/ip-acl`, { method: 'POST', headers: { ...bearer(ADMIN_TOKEN), 'content-type': 'application/json' }, body: JSON.stringify({ ip_address: '10.20.0.0/16' }), localAddress: from });
    expect(added.status).toBe(201);
    const voximplant = await call(from, '/platform_api/GetAuthorizedAccountIPs', bearer(ACCOUNT_TOKEN));
    expect(voximplant.status).toBe(200);
    expect(voximplant.json()).toMatchObject({ result: [], count: 0 });
    expect((await call(from, '/api/v1/Account/LOGIN1/ip-acl/', { 'x-auth-id': 'LOGIN1', 'x-auth-token': ADMIN_TOKEN })).status).toBe(200);
    // A wrong token on the compatible surfaces is held back the same way.
    expect((await call(from, '/platform_api/GetAuthorizedAccountIPs', bearer('wrong-token-11'))).status).toBe(429);
    expect((await call(from, '/api/v1/Account/LOGIN1/ip-acl/', { 'x-auth-id': 'LOGIN1', 'x-auth-token': 'wrong-token-12' })).status).toBe(429);

    // Serving the valid credential did not reset the count: wrong tokens are still held back.
    expect((await call(from, '/v1/accounts', bearer('wrong-token-13'))).status).toBe(429);
    // Another address is not held back by this one's guesses.
    expect((await call('127.0.0.12', '/v1/accounts', bearer('wrong-token-0'))).status).toBe(401);
    // One line per failed login up to the limit, the held-back ones summed in one line (the log
    // reaches the test on its own stream, so it is awaited rather than read at once).
    await waitUntil('the held-back attempts logged', () => heldLines(from).length > 0, 10_000);
    expect(failedLines(from)).toHaveLength(10);
    expect(failedLines(from).every((l) => !JSON.stringify(l).includes('wrong-token'))).toBe(true);
    expect(heldLines(from)).toHaveLength(1);
  });

  it('does not let a low-privilege credential reset the count it runs up guessing', async () => {
    const from = '127.0.0.13';
    for (let i = 0; i < 10; i++) expect((await call(from, '/v1/accounts', bearer(`guess-${i}`))).status).toBe(401);
    // Its own valid token is served (within its scope)...
    expect((await call(from, '/v1/accounts/AC1/ip-acl', bearer(ACCOUNT_TOKEN))).status).toBe(200);
    expect((await call(from, '/v1/accounts/AC2/ip-acl', bearer(ACCOUNT_TOKEN))).status).toBe(403);
    // ...and its next guesses are still held back.
    expect((await call(from, '/v1/accounts', bearer('guess-10'))).status).toBe(429);
    expect((await call(from, '/v1/accounts', bearer(ADMIN_TOKEN))).status).toBe(200);
  });

  it('does not count requests without a credential: favicon, console files, probes, unreadable Authorization', async () => {
    const from = '127.0.0.14';
    const uncounted: [string, Record<string, string>, number, string | null][] = [
      ['/favicon.ico', {}, 401, 'missing_token'],
      ['/apple-touch-icon.png', {}, 401, 'missing_token'],
      ['/robots.txt', {}, 401, 'missing_token'],
      ['/v1/accounts', {}, 401, 'missing_token'],
      ['/v1/accounts', { authorization: 'Basic b3duZXI6c2VjcmV0' }, 401, 'invalid_token'],
      ['/v1/accounts', { authorization: 'Bearer' }, 401, 'invalid_token'],
      ['/api/v1/Account/AC1/ip-acl/', { 'x-auth-id': 'AC1' }, 401, 'missing_credentials'],
      ['/platform_api/GetAuthorizedAccountIPs', {}, 401, 'missing_token'],
      ['/console/', {}, 200, null],
      ['/console/ui/main.ts', {}, 200, null],
      ['/healthz', {}, 200, null],
      ['/v1/openapi.json', {}, 200, null],
    ];
    // Four rounds: 48 requests, far past the 10 failed logins that would be held back.
    for (let round = 0; round < 4; round++) {
      for (const [path, headers, status, reason] of uncounted) {
        const reply = await call(from, path, headers);
        expect(reply.status, path).toBe(status);
        if (reason !== null) expect(reply.json()['reason'] ?? (reply.json()['error'] as Record<string, unknown>)['reason'], path).toBe(reason);
      }
    }
    // The first wrong token from this address is the first failed login: 401, not 429. Its log
    // line comes after every line the 48 requests above could have written (one ordered stream),
    // so once it is read, a count of exactly one shows that none of them was counted.
    expect((await call(from, '/v1/accounts', bearer('first-wrong'))).status).toBe(401);
    await waitUntil('the failed login logged', () => failedLines(from).length > 0, 10_000);
    expect(failedLines(from).map((l) => l['failures'])).toEqual([1]);
  });
});
