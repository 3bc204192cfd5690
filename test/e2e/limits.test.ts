import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { once } from 'node:events';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * Limits and abuse, against the real process: connections over limits.maxConnections, admin
 * bodies over their limits, a flood of distinct accounts (bounded cache) and of distinct client
 * addresses (bounded recent-caller tracking).
 */

const MAX_CONNECTIONS = 4;
const CACHE_ENTRIES = 50;

let upstream: EchoUpstream;
let gw: GatewayProcess;
const dir = scratchDir();
const agent = new Agent({ keepAlive: true, maxSockets: 2 });

beforeAll(async () => {
  upstream = await startEchoUpstream();
  const config = join(dir.path, 'allowgate.yaml');
  writeFileSync(config, [
    'admin:', '  maxBodyBytes: 2048', '  maxImportBytes: 8192',
    'cache:', `  maxEntries: ${CACHE_ENTRIES}`, `  maxNegativeEntries: ${CACHE_ENTRIES - 10}`,
    'limits:', `  maxConnections: ${MAX_CONNECTIONS}`,
    // The pool would default to maxConnections (4), and one client's share of it to 1.
    'upstream:', '  connections: 64',
  ].join('\n'));
  gw = await startGateway({
    env: { ALLOWGATE_CONFIG: config, ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_TRUSTED_PROXIES: '127.0.0.1', ALLOWGATE_LOG_ALLOW_SAMPLE: '0' },
  });
});

afterAll(async () => {
  agent.destroy();
  await gw?.stop();
  await upstream?.close();
  dir.remove();
});

function get(path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${gw.url}${path}`, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function metric(name: string): Promise<number> {
  const text = await (await gw.admin('GET', '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`metric ${name} not found`);
  return Number(line.slice(name.length + 1));
}

/** Opens a raw connection and resolves with what the gateway did with a request on it. */
async function rawExchange(): Promise<{ socket: Socket; answer: Promise<string> }> {
  const socket = connect(gw.port, '127.0.0.1');
  await once(socket, 'connect');
  const answer = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
    socket.on('error', () => resolve(`error:${text}`));
    socket.on('close', () => resolve(text));
  });
  return { socket, answer };
}

describe('limits and abuse', () => {
  // First in the file: the test's keep-alive agent holds no connection yet.
  it('answers a connection over limits.maxConnections with 503 and closes it, closes connections past a margin at accept, serves again once one closes, and logs it', async () => {
    const held: Socket[] = [];
    const hold = async (): Promise<void> => {
      const socket = connect(gw.port, '127.0.0.1');
      await once(socket, 'connect');
      held.push(socket);
    };
    for (let i = 0; i < MAX_CONNECTIONS; i++) await hold();

    // One over the limit: accepted, its request answered 503 with the reason, then closed.
    const over = await rawExchange();
    over.socket.write('GET /v1/anything HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n');
    const answer = await over.answer; // resolves on close: the gateway closed it after answering
    expect(answer).toMatch(/^HTTP\/1\.1 503 /);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 503, reason: 'too_many_connections' });
    expect(upstream.seen.some((r) => r.url === '/v1/anything')).toBe(false);

    // Past the margin (16 more idle ones held), a new connection is closed without a word.
    for (let i = 0; i < 16; i++) await hold();
    const dropped = await rawExchange();
    dropped.socket.write('GET /v1/anything HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(await dropped.answer).not.toMatch(/^HTTP\/1\.1/);
    for (const socket of held.splice(MAX_CONNECTIONS)) socket.destroy();

    held.pop()!.destroy();
    // The server counts the closed connection once it has seen the close.
    let status = '';
    for (let attempt = 0; attempt < 50 && !status.startsWith('HTTP/1.1 200'); attempt++) {
      await new Promise((r) => setTimeout(r, 20));
      const next = await rawExchange();
      next.socket.write('GET /v1/anything HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 198.51.100.1\r\nConnection: close\r\n\r\n');
      status = await next.answer;
    }
    expect(status).toMatch(/^HTTP\/1\.1 200 /);
    for (const socket of held) socket.destroy();
    expect(gw.logs.some((l) => l['msg'] === 'connections refused: limits.maxConnections reached' && l['max_connections'] === MAX_CONNECTIONS)).toBe(true);
  });

  it('refuses admin bodies over admin.maxBodyBytes and imports over admin.maxImportBytes with 413, changing nothing', async () => {
    const big = await gw.admin('POST', '/v1/accounts/ACB/ip-acl', { ip_address: '198.51.100.7', description: 'x'.repeat(3000) });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ code: 413, reason: 'body_too_large', error: 'the request body exceeds 2048 bytes' });
    const small = await gw.admin('POST', '/v1/accounts/ACB/ip-acl', { ip_address: '198.51.100.7', description: 'office' });
    expect(small.status).toBe(201);

    const entries = (n: number) => Array.from({ length: n }, (_, i) => ({ ip_address: `198.51.${100 + (i >> 8)}.${i & 255}` }));
    // Over the JSON limit but within the import limit: read, then refused on its merits.
    const midSize = await gw.admin('PUT', '/v1/accounts/ACB/ip-acl', { entries: entries(200) });
    expect(await midSize.json()).toMatchObject({ reason: 'limit_reached' });
    const bulk = await gw.admin('PUT', '/v1/accounts/ACB/ip-acl', { entries: entries(400) });
    expect(bulk.status).toBe(413);
    const list = (await (await gw.admin('GET', '/v1/accounts/ACB/ip-acl')).json()) as { entries: unknown[] };
    expect(list.entries).toHaveLength(1);
  });

  it('keeps the cache at cache.maxEntries under a flood of distinct accounts', async () => {
    const before = await metric('allowgate_cache_evictions_total');
    for (let i = 0; i < 400; i += 20) {
      const statuses = await Promise.all(Array.from({ length: 20 }, (_, k) => get('/v1/resource', { 'x-auth-id': `ACFLOOD${i + k}`, 'x-forwarded-for': '198.51.100.1' })));
      // Accounts with no list: the default policy (open) forwards them.
      expect(statuses.every((s) => s === 200)).toBe(true);
    }
    expect(await metric('allowgate_cache_entries')).toBeLessThanOrEqual(CACHE_ENTRIES);
    expect(await metric('allowgate_cache_evictions_total') - before).toBeGreaterThanOrEqual(400 - CACHE_ENTRIES);
    expect(gw.child.exitCode).toBeNull();
  });

  it('keeps at most 1,000 recent callers per account under a flood of distinct client addresses', async () => {
    expect((await gw.admin('POST', '/v1/accounts/ACR/ip-acl', { ip_address: '198.18.0.0/15' })).status).toBe(201);
    const callers = 1_500;
    for (let i = 0; i < callers; i += 50) {
      const statuses = await Promise.all(Array.from({ length: 50 }, (_, k) => {
        const n = i + k;
        return get('/v1/resource', { 'x-auth-id': 'ACR', 'x-forwarded-for': `198.18.${n >> 8}.${n & 255}` });
      }));
      expect(statuses.every((s) => s === 200)).toBe(true);
    }
    let count = 0;
    for (let attempt = 0; attempt < 40 && count < 1_000; attempt++) {
      await new Promise((r) => setTimeout(r, 100));
      const body = (await (await gw.admin('GET', '/v1/accounts/ACR/recent-ips?limit=1000')).json()) as { ips: unknown[] };
      count = body.ips.length;
    }
    expect(count).toBe(1_000);
    // Asking for more than the cap is refused rather than silently capped.
    expect((await gw.admin('GET', '/v1/accounts/ACR/recent-ips?limit=1001')).status).toBe(400);
  });
});
