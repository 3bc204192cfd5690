import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type AddressInfo } from 'node:net';
import { createServer, get as httpGet } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { scratchDir } from '../support/scratch.ts';
import { send } from '../support/http.ts';

// Loopback is a /8: each test client binds its own 127.x address, so one machine plays many callers.
const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';

async function addEntry(gw: GatewayProcess, account: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await gw.admin('POST', `/v1/accounts/${account}/ip-acl`, body);
  expect(res.status).toBe(201);
  return (await res.json()) as Record<string, unknown>;
}

describe('gateway end to end (memory store)', () => {
  let upstream: EchoUpstream;
  let gw: GatewayProcess;

  beforeAll(async () => {
    upstream = await startEchoUpstream();
    gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url } });
    await addEntry(gw, 'AC1', { ip_address: `${OFFICE}/32`, description: 'office' });
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it('forwards an allowed caller to the upstream with forwarding headers set', async () => {
    const reply = await send(`${gw.url}/v1/Account/AC1/Call?x=1`, { headers: { 'x-auth-id': 'AC1', 'x-request-id': 'trace-42' }, localAddress: OFFICE });
    expect(reply.status).toBe(200);
    const echo = reply.json<{ upstream: string; url: string; headers: Record<string, string> }>();
    expect(echo.upstream).toBe('echo');
    expect(echo.url).toBe('/v1/Account/AC1/Call?x=1');
    expect(echo.headers['x-forwarded-for']).toBe(OFFICE);
    expect(echo.headers['x-request-id']).toBe('trace-42');
    expect(echo.headers['x-auth-id']).toBe('AC1');
    expect(reply.headers['set-cookie']).toEqual(['a=1', 'b=2']);
  });

  it('tells the upstream the account and address it checked, replacing a caller\'s own X-Allowgate-* headers, and refuses folded aliases of them', async () => {
    const reply = await send(`${gw.url}/v1/x`, { headers: [['host', 'gw'], ['x-auth-id', 'AC1'], ['X-Allowgate-Account', 'AC9'], ['x-allowgate-client-ip', '203.0.113.9'], ['X-Allowgate-Account', 'AC8']], localAddress: OFFICE });
    expect(reply.status).toBe(200);
    const echo = reply.json<{ headers: Record<string, string | string[]> }>();
    expect(echo.headers['x-allowgate-account']).toBe('AC1');
    expect(echo.headers['x-allowgate-client-ip']).toBe(OFFICE);
    const anonymous = (await send(`${gw.url}/v1/x`, { headers: [['host', 'gw'], ['x-allowgate-account', 'AC1']], localAddress: STRANGER })).json<{ headers: Record<string, string> }>();
    expect(anonymous.headers['x-allowgate-account']).toBeUndefined();
    expect(anonymous.headers['x-allowgate-client-ip']).toBe(STRANGER);
    const alias = await send(`${gw.url}/v1/x`, { headers: [['host', 'gw'], ['x-auth-id', 'AC1'], ['X_Allowgate_Account', 'AC9']], localAddress: OFFICE });
    expect(alias.status).toBe(400);
    expect(alias.json()).toMatchObject({ reason: 'ambiguous_header' });
  });

  it('refuses a caller outside the list with 403 JSON that says why', async () => {
    const before = upstream.seen.length;
    const reply = await send(`${gw.url}/v1/Account/AC1/Call`, { headers: { 'x-auth-id': 'AC1' }, localAddress: STRANGER });
    expect(reply.status).toBe(403);
    expect(reply.headers['content-type']).toBe('application/json');
    const body = reply.json();
    expect(body).toMatchObject({ error: `IP address ${STRANGER} is not allowed for account AC1`, code: 403, reason: 'ip_not_allowed' });
    expect(typeof body['request_id']).toBe('string');
    expect(upstream.seen.length).toBe(before);
  });

  it('ignores X-Forwarded-For from an untrusted peer', async () => {
    const reply = await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC1', 'x-forwarded-for': OFFICE }, localAddress: STRANGER });
    expect(reply.status).toBe(403);
    expect(reply.json()['error']).toContain(STRANGER);
  });

  it('resolves the account from Basic credentials too, and refuses conflicting ones', async () => {
    const basic = `Basic ${Buffer.from('AC1:secret').toString('base64')}`;
    expect((await send(`${gw.url}/x`, { headers: { authorization: basic }, localAddress: STRANGER })).status).toBe(403);
    expect((await send(`${gw.url}/x`, { headers: { authorization: basic }, localAddress: OFFICE })).status).toBe(200);
    const conflict = await send(`${gw.url}/x`, { headers: { authorization: basic, 'x-auth-id': 'AC9' }, localAddress: OFFICE });
    expect(conflict.status).toBe(400);
    expect(conflict.json()['reason']).toBe('ambiguous_credentials');
  });

  it('lets an account with no list through (open by default) and enforces a rule on the very next request', async () => {
    expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC3' }, localAddress: STRANGER })).status).toBe(200);
    await addEntry(gw, 'AC3', { ip_address: '127.0.0.0/30', name: 'lab' });
    expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC3' }, localAddress: STRANGER })).status).toBe(200);
    expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC3' }, localAddress: '127.0.0.9' })).status).toBe(403);
  });

  it('applies deny entries inside allow ranges (most specific wins)', async () => {
    await addEntry(gw, 'AC4', { ip_address: '127.0.0.0/24' });
    await addEntry(gw, 'AC4', { ip_address: STRANGER, action: 'deny' });
    expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC4' }, localAddress: OFFICE })).status).toBe(200);
    const denied = await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC4' }, localAddress: STRANGER });
    expect(denied.status).toBe(403);
    expect(denied.json()['reason']).toBe('ip_denied');
  });

  it('forwards but logs a would-be denial in report-only mode', async () => {
    await addEntry(gw, 'AC5', { ip_address: OFFICE });
    const put = await gw.admin('PUT', '/v1/accounts/AC5', { mode: 'report-only' });
    expect(put.status).toBe(200);
    const reply = await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC5' }, localAddress: STRANGER });
    expect(reply.status).toBe(200);
    await expect.poll(() => gw.logs.some((l) => l['account'] === 'AC5' && l['decision'] === 'report_only' && l['client_ip'] === STRANGER)).toBe(true);
  });

  it('checks a subaccount against its parent list', async () => {
    const put = await gw.admin('PUT', '/v1/accounts/SUB1', { parent: 'AC1' });
    expect(put.status).toBe(200);
    expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'SUB1' }, localAddress: OFFICE })).status).toBe(200);
    const denied = await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'SUB1' }, localAddress: STRANGER });
    expect(denied.status).toBe(403);
    expect(denied.json()['error']).toBe(`IP address ${STRANGER} is not allowed for account SUB1`);
  });

  it('answers the admin check endpoint with the decision and the matching entry', async () => {
    const res = await gw.admin('GET', `/v1/accounts/AC4/check?ip=${STRANGER}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { decision: string; reason: string; matched: { cidr: string; action: string } };
    expect(body.decision).toBe('deny');
    expect(body.reason).toBe('ip_denied');
    expect(body.matched).toMatchObject({ cidr: `${STRANGER}/32`, action: 'deny' });
  });

  it('checks WebSocket upgrades the same way', async () => {
    const upgrade = (from: string): Promise<string> => new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: gw.port, localAddress: from });
      let data = '';
      socket.setTimeout(5_000, () => socket.destroy(new Error('upgrade timed out')));
      socket.on('data', (d: Buffer) => {
        data += d.toString();
        if (data.includes('\r\n\r\n')) { socket.destroy(); resolve(data); }
      });
      socket.on('error', reject);
      socket.write('GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Auth-ID: AC1\r\n\r\n');
    });
    expect(await upgrade(OFFICE)).toMatch(/^HTTP\/1\.1 101 /);
    const denied = await upgrade(STRANGER);
    expect(denied).toMatch(/^HTTP\/1\.1 403 /);
    expect(denied).toContain('"reason":"ip_not_allowed"');
  });

  it('never writes credentials to its log, whatever form they take and whatever is decided', async () => {
    const jwt = (iss: string) => [{ alg: 'none', typ: 'JWT' }, { iss, sub: 'jwt-sekrit-subject' }].map((p) => Buffer.from(JSON.stringify(p)).toString('base64url')).join('.') + '.sig-sekrit';
    const forms: Record<string, string>[] = [
      { authorization: `Basic ${Buffer.from('AC1:pw-sekrit').toString('base64')}` },
      { authorization: `Bearer ${jwt('AC1')}` },
      { 'x-auth-id': 'AC1', 'x-auth-token': 'tok-sekrit' },
      { 'x-auth-id': 'AC1', cookie: 'session=cookie-sekrit', 'proxy-authorization': 'Basic proxy-sekrit' },
    ];
    for (const [i, headers] of forms.entries()) {
      for (const from of [OFFICE, STRANGER]) {
        await send(`${gw.url}/x/${i}?api_key=sekrit-key&token=query-sekrit&account_id=AC1`, { headers, localAddress: from });
      }
    }
    // Every forwarded request is logged (sample rate 1); the identical refusals (same account,
    // client and reason) are logged once, then counted.
    await expect.poll(() => gw.logs.filter((l) => typeof l['url'] === 'string' && (l['url'] as string).startsWith('/x/') && (l['url'] as string).includes('api_key=[REDACTED]')).length).toBeGreaterThanOrEqual(forms.length + 1);
    const text = JSON.stringify(gw.logs);
    expect(text).not.toContain('sekrit');
    expect(text).not.toContain(Buffer.from('AC1:pw-sekrit').toString('base64'));
    expect(text).not.toContain(jwt('AC1').split('.')[1]);
  });

  it('logs every denial with account, client IP, peer, reason and request id', () => {
    const denial = gw.logs.find((l) => l['msg'] === 'request refused' && l['account'] === 'AC1' && l['reason'] === 'ip_not_allowed');
    expect(denial).toMatchObject({ client_ip: STRANGER, peer: STRANGER, decision: 'deny', status: 403 });
    expect(typeof denial?.['request_id']).toBe('string');
  });
});

describe('gateway behind a trusted proxy', () => {
  let upstream: EchoUpstream;
  let gw: GatewayProcess;

  beforeAll(async () => {
    upstream = await startEchoUpstream();
    gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_TRUSTED_PROXIES: '127.0.0.10' } });
    await addEntry(gw, 'AC1', { ip_address: '198.51.100.0/24' });
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it('takes the client from X-Forwarded-For when the peer is a trusted proxy', async () => {
    const reply = await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC1', 'x-forwarded-for': '203.0.113.9, 198.51.100.7' }, localAddress: '127.0.0.10' });
    expect(reply.status).toBe(200);
    // The upstream sees the checked client in all three headers; 203.0.113.9, the caller's own
    // claim left of it, is not passed on.
    const seen = reply.json<{ headers: Record<string, string> }>().headers;
    expect([seen['x-forwarded-for'], seen['x-real-ip'], seen['forwarded']]).toEqual(['198.51.100.7, 127.0.0.10', '198.51.100.7', 'for=198.51.100.7, for=127.0.0.10']);
    const denied = await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC1', 'x-forwarded-for': '198.51.100.7, 203.0.113.9' }, localAddress: '127.0.0.10' });
    expect(denied.status).toBe(403);
    expect(denied.json()['error']).toContain('203.0.113.9');
  });

  it('refuses a trusted proxy that sent no X-Forwarded-For, and malformed entries', async () => {
    const missing = await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC1' }, localAddress: '127.0.0.10' });
    expect(missing.status).toBe(400);
    expect(missing.json()['reason']).toBe('missing_forwarded_for');
    const bad = await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC1', 'x-forwarded-for': '127.1' }, localAddress: '127.0.0.10' });
    expect(bad.status).toBe(400);
    expect(bad.json()['reason']).toBe('invalid_forwarded_for');
  });

  it('does not believe the same header from any other peer', async () => {
    const reply = await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC1', 'x-forwarded-for': '198.51.100.7' }, localAddress: '127.0.0.11' });
    expect(reply.status).toBe(403);
    expect(reply.json()['error']).toContain('127.0.0.11');
  });
});

describe('gateway lifecycle', () => {
  it('keeps its rules across a restart on the file store, and shuts down cleanly on SIGTERM', async () => {
    const dir = scratchDir();
    const upstream = await startEchoUpstream();
    const env = { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_STORE: `file:${dir.path}/store.json` };
    try {
      const first = await startGateway({ env });
      await addEntry(first, 'AC1', { ip_address: OFFICE });
      expect(await first.stop('SIGTERM')).toBe(0);

      const second = await startGateway({ env });
      try {
        expect((await send(`${second.url}/x`, { headers: { 'x-auth-id': 'AC1' }, localAddress: OFFICE })).status).toBe(200);
        expect((await send(`${second.url}/x`, { headers: { 'x-auth-id': 'AC1' }, localAddress: STRANGER })).status).toBe(403);
      } finally {
        expect(await second.stop('SIGINT')).toBe(0);
      }
    } finally {
      await upstream.close();
      dir.remove();
    }
  });

  it('answers 502 JSON when the upstream is down', async () => {
    const upstream = await startEchoUpstream();
    const deadUrl = upstream.url;
    await upstream.close();
    const gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: deadUrl } });
    try {
      const reply = await send(`${gw.url}/x`, { localAddress: OFFICE });
      expect(reply.status).toBe(502);
      expect(reply.json()).toMatchObject({ code: 502, reason: 'upstream_unavailable' });
      expect(reply.json()['request_id']).toBe(reply.headers['x-request-id']);
      expect(String(reply.headers['x-request-id']).length).toBeGreaterThan(8);
    } finally {
      await gw.stop();
    }
  });

  it('streams request bodies upstream, and maps a reset to 502 and a slow upstream to 504', async () => {
    const dir = scratchDir();
    const upstream = await startEchoUpstream();
    const config = join(dir.path, 'allowgate.yaml');
    writeFileSync(config, 'upstream:\n  headersTimeoutMs: 300\n');
    const gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_CONFIG: config } });
    try {
      const payload = JSON.stringify({ data: 'x'.repeat(200_000) });
      const posted = await send(`${gw.url}/upload`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(payload.length) }, body: payload, localAddress: OFFICE });
      expect(posted.status).toBe(200);
      expect(posted.json<{ body: string }>().body).toBe(payload);

      const reset = await send(`${gw.url}/reset`, { localAddress: OFFICE });
      expect(reset.status).toBe(502);
      expect(reset.json()).toMatchObject({ code: 502, reason: 'upstream_reset' });

      const slow = await send(`${gw.url}/slow?ms=2000`, { localAddress: OFFICE });
      expect(slow.status).toBe(504);
      expect(slow.json()).toMatchObject({ code: 504, reason: 'upstream_timeout' });
    } finally {
      await gw.stop();
      await upstream.close();
      dir.remove();
    }
  });

  it('streams a large response under backpressure, and ends the upstream exchange when the caller hangs up', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const chunks = 256; // 16 MiB
    let endlessClosed = false;
    const upstream = createServer((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(chunk.length * chunks) });
        let sent = 0;
        const pump = (): void => {
          while (sent < chunks) {
            sent++;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
        return;
      }
      // /endless: never finishes on its own.
      res.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => res.write('tick\n'), 10);
      res.on('close', () => {
        clearInterval(timer);
        endlessClosed = true;
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` } });
    try {
      // A slow reader: paused between chunks, so the gateway has to hold the upstream back.
      const received = await new Promise<number>((resolve, reject) => {
        httpGet(`${gw.url}/big`, { localAddress: OFFICE }, (res) => {
          let bytes = 0;
          let corrupt = false;
          res.on('data', (data: Buffer) => {
            bytes += data.length;
            if (data.some((b) => b !== 0x61)) corrupt = true;
            res.pause();
            setTimeout(() => res.resume(), 1);
          });
          res.on('end', () => (corrupt ? reject(new Error('corrupt body')) : resolve(bytes)));
          res.on('error', reject);
        }).on('error', reject);
      });
      expect(received).toBe(chunk.length * chunks);

      const hungUp = new Promise<void>((resolve, reject) => {
        const request = httpGet(`${gw.url}/endless`, { localAddress: OFFICE }, (res) => {
          res.once('data', () => {
            request.destroy();
            resolve();
          });
        });
        request.on('error', (error) => (request.destroyed ? undefined : reject(error)));
      });
      await hungUp;
      await expect.poll(() => endlessClosed, { timeout: 3_000 }).toBe(true);
      // The caller left: that is not an upstream failure.
      expect(gw.logs.filter((line) => String(line['msg']).startsWith('upstream failed'))).toEqual([]);
    } finally {
      await gw.stop();
      await new Promise<void>((resolve) => upstream.close(() => resolve()));
    }
  });

  it('lets in-flight requests finish on SIGTERM and refuses new connections', async () => {
    const upstream = await startEchoUpstream();
    const gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url } });
    try {
      const inFlight = send(`${gw.url}/slow?ms=600`, { localAddress: OFFICE });
      await expect.poll(() => upstream.seen.some((r) => r.url.startsWith('/slow'))).toBe(true);
      const exited = gw.stop('SIGTERM');
      const reply = await inFlight;
      expect(reply.status).toBe(200);
      expect(await exited).toBe(0);
      await expect(send(`${gw.url}/x`, { localAddress: OFFICE, timeoutMs: 1_000 })).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      await gw.stop();
      await upstream.close();
    }
  });

  it('refuses to start on invalid configuration, naming the setting', async () => {
    await expect(startGateway({ env: { ALLOWGATE_TRUSTED_HOPS: 'x' } })).rejects.toThrow(/exited with 2.*ALLOWGATE_TRUSTED_HOPS must be an integer 0-16, got 'x'/s);
    await expect(startGateway({ env: { ALLOWGATE_TRUSTED_HOPS: '1', ALLOWGATE_TRUSTED_PROXIES: '10.0.0.0/8' } })).rejects.toThrow(/not both/);
  });
});
