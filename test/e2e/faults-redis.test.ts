import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitUntil } from '../support/wait.ts';
import { Caller } from '../support/caller.ts';

/*
 * Redis faults against real gateway processes and a real redis-server: Redis missing when the
 * gateway starts, Redis killed in the middle of traffic, Redis frozen (SIGSTOP: connections
 * open, nothing answers), and Redis restarted. Redis runs with AOF (fsync always), as a
 * deployment should: a restart brings the lists back.
 */

const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';
const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];

/** A short connect timeout (start does not wait 2 s for a Redis that is not there) and command timeout. */
function redisConfig(dir: string): string {
  const path = join(dir, 'allowgate.yaml');
  writeFileSync(path, 'redis:\n  connectTimeoutMs: 300\n  commandTimeoutMs: 300\n');
  return path;
}

async function addEntry(gw: GatewayProcess, account: string, body: Record<string, unknown>): Promise<string> {
  const res = await gw.admin('POST', `/v1/accounts/${account}/ip-acl`, body);
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function readyz(gw: GatewayProcess): Promise<{ status: number; body: { status: string; store: Record<string, unknown> } }> {
  const res = await fetch(`${gw.adminUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as never };
}

function waitForLog(gw: GatewayProcess, msg: string, limitMs = 8_000): Promise<void> {
  return waitUntil(`'${msg}' logged`, () => gw.logs.some((l) => l['msg'] === msg), limitMs);
}

async function status(gw: GatewayProcess, account: string, from: string): Promise<number> {
  return (await send(`${gw.url}/x`, { headers: { 'x-auth-id': account }, localAddress: from })).status;
}

/** The body of a 503 store_unavailable from the proxy, whatever Redis said exactly. */
// The Redis client's own words (e.g. "Stream isn't writeable...") stay in the log (`cause`), never in the body.
const STORE_UNAVAILABLE = {
  error: 'the access list for this request could not be loaded: the store is unavailable; retry shortly',
  code: 503,
  reason: 'store_unavailable',
  request_id: expect.any(String),
};

describe('Redis missing at start', () => {
  let redis: RedisServer;
  let upstream: EchoUpstream;
  const dir = scratchDir();

  beforeAll(async () => {
    redis = await startRedis(AOF);
    upstream = await startEchoUpstream();
  });

  afterAll(async () => {
    await upstream?.close();
    await redis?.stop();
    dir.remove();
  });

  it('starts not ready and fails closed (503, never a forward), refuses admin writes, then enforces the stored lists once Redis is up', async () => {
    const env = { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_STORE: redis.url, ALLOWGATE_CONFIG: redisConfig(dir.path), ALLOWGATE_LOG_LEVEL: 'info' };
    // Lists written while Redis was up, by a gateway that is gone now.
    const seeder = await startGateway({ env });
    await addEntry(seeder, 'AC1', { ip_address: `${OFFICE}/32` });
    expect(await seeder.stop()).toBe(0);
    await redis.kill();

    const gw = await startGateway({ env });
    try {
      expect(gw.logs.some((l) => l['msg'] === 'store unavailable at start: enforcing the snapshot where there is one' && l['on_store_unavailable'] === 'closed')).toBe(true);
      expect(gw.logs.find((l) => l['msg'] === 'allowgate listening')?.['store_state']).toBe('down');
      // Alive but not ready: nothing to enforce with (no Redis, no snapshot).
      expect((await fetch(`${gw.adminUrl}/healthz`)).status).toBe(200);
      const notReady = await readyz(gw);
      expect(notReady.status).toBe(503);
      expect(notReady.body).toMatchObject({ status: 'unavailable', store: { kind: 'redis', state: 'down', canEnforce: false, lastKnownGood: 0 } });

      // Listed and unlisted callers alike: refused, never forwarded unchecked.
      const seenBefore = upstream.seen.length;
      for (const from of [OFFICE, STRANGER]) {
        const reply = await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC1' }, localAddress: from });
        expect(reply.status).toBe(503);
        expect(reply.json()).toEqual({ ...STORE_UNAVAILABLE, request_id: reply.headers['x-request-id'] });
      }
      expect(upstream.seen.length).toBe(seenBefore);
      const write = await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `${STRANGER}/32` });
      expect(write.status).toBe(503);
      expect(await write.json()).toMatchObject({ code: 503, reason: 'store_unavailable' });

      await redis.restart();
      await waitForLog(gw, 'store connected');
      const ready = await readyz(gw);
      expect(ready.status).toBe(200);
      expect(ready.body.store).toMatchObject({ state: 'up', canEnforce: true });
      expect(await status(gw, 'AC1', OFFICE)).toBe(200);
      expect(await status(gw, 'AC1', STRANGER)).toBe(403);
      // The write refused during the outage did not half-happen; made now, it is enforced.
      await addEntry(gw, 'AC1', { ip_address: `${STRANGER}/32` });
      expect(await status(gw, 'AC1', STRANGER)).toBe(200);
      expect(gw.child.exitCode).toBeNull();
    } finally {
      await gw.stop();
    }
  });
});

/** Who asks for which account, and the one answer it must always get. */
interface Probe {
  readonly account: string;
  readonly from: string;
  readonly expected: number;
}

/**
 * Sends every probe round after round until `stop()`, from both gateways, and keeps every answer:
 * the traffic that is running while Redis goes away and comes back.
 */
function traffic(gateways: readonly GatewayProcess[], probes: readonly Probe[]): { stop(): Promise<Map<string, number[]>> } {
  const answers = new Map<string, number[]>();
  let running = true;
  const loops = gateways.flatMap((gw, g) => probes.map(async (probe) => {
    const caller = new Caller(gw.url, probe.from);
    const key = `gw${g} ${probe.account} from ${probe.from}`;
    const list: number[] = [];
    answers.set(key, list);
    try {
      while (running) list.push(await caller.status(probe.account).catch(() => -1));
    } finally {
      caller.close();
    }
  }));
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return answers;
    },
  };
}

describe('Redis lost during traffic, then restarted', () => {
  let redis: RedisServer;
  let upstream: EchoUpstream;
  let closed: GatewayProcess;
  let open: GatewayProcess;
  const dir = scratchDir();
  const ids: Record<string, string> = {};

  // Cached on both gateways before the outage; each must keep getting exactly this answer.
  const PROBES: readonly Probe[] = [
    { account: 'AC1', from: OFFICE, expected: 200 },
    { account: 'AC1', from: STRANGER, expected: 403 },
    { account: 'AC2', from: OFFICE, expected: 200 },
    { account: 'AC2', from: STRANGER, expected: 403 },
    { account: 'SUB1', from: OFFICE, expected: 200 },
    { account: 'SUB1', from: STRANGER, expected: 403 },
    { account: 'ACNONE', from: STRANGER, expected: 200 },
  ];

  beforeAll(async () => {
    redis = await startRedis(AOF);
    upstream = await startEchoUpstream();
    const env = { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_STORE: redis.url, ALLOWGATE_CONFIG: redisConfig(dir.path), ALLOWGATE_LOG_LEVEL: 'info', ALLOWGATE_REDIS_SWEEP_INTERVAL_MS: '500' };
    [closed, open] = await Promise.all([
      startGateway({ env }),
      startGateway({ env: { ...env, ALLOWGATE_ON_STORE_UNAVAILABLE: 'open' } }),
    ]);
    ids['AC1'] = await addEntry(closed, 'AC1', { ip_address: `${OFFICE}/32` });
    await addEntry(closed, 'AC2', { ip_address: '127.0.0.0/24' });
    await addEntry(closed, 'AC2', { ip_address: `${STRANGER}/32`, action: 'deny' });
    expect((await closed.admin('PUT', '/v1/accounts/SUB1', { parent: 'AC1' })).status).toBe(200);
  });

  afterAll(async () => {
    await Promise.all([closed?.stop(), open?.stop()]);
    await upstream?.close();
    await redis?.stop();
    dir.remove();
  });

  it('keeps answering every cached account exactly as before while Redis dies mid-traffic; uncached ones follow onStoreUnavailable', async () => {
    // Warm both caches.
    for (const gw of [closed, open]) {
      for (const probe of PROBES) expect(await status(gw, probe.account, probe.from), `${probe.account} from ${probe.from}`).toBe(probe.expected);
    }
    const load = traffic([closed, open], PROBES);
    await new Promise((r) => setTimeout(r, 300));
    await redis.kill();
    await Promise.all([waitForLog(closed, 'store lost: enforcing last-known-good lists'), waitForLog(open, 'store lost: enforcing last-known-good lists')]);
    await new Promise((r) => setTimeout(r, 700));
    const answers = await load.stop();

    // Every answer, before and during the outage: the one the list gives. No 503 for a cached
    // list, and never a 200 for a caller the list refuses.
    for (const [g] of [closed, open].entries()) {
      for (const probe of PROBES) {
        const got = answers.get(`gw${g} ${probe.account} from ${probe.from}`)!;
        expect(got.length).toBeGreaterThan(5);
        expect(new Set(got), `gw${g} ${probe.account} from ${probe.from}`).toEqual(new Set([probe.expected]));
      }
    }
    for (const gw of [closed, open]) {
      const denied = await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC2' }, localAddress: STRANGER });
      expect(denied.json()).toMatchObject({ code: 403, reason: 'ip_denied' });
      const ready = await readyz(gw);
      expect(ready.status).toBe(200);
      expect(ready.body.store).toMatchObject({ state: 'down', canEnforce: true });
      const write = await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `${STRANGER}/32` });
      expect(write.status).toBe(503);
      expect(await write.json()).toMatchObject({ code: 503, reason: 'store_unavailable' });
    }

    // An account neither gateway has cached: closed refuses, open forwards and logs it.
    const refused = await send(`${closed.url}/x`, { headers: { 'x-auth-id': 'ACNEW' }, localAddress: STRANGER });
    expect(refused.status).toBe(503);
    expect(refused.json()).toEqual({ ...STORE_UNAVAILABLE, request_id: refused.headers['x-request-id'] });
    expect(await status(open, 'ACNEW', STRANGER)).toBe(200);
    await waitUntil('fail_open logged', () => open.logs.some((l) => l['decision'] === 'fail_open' && l['account'] === 'ACNEW'), 3_000);
    expect([closed.child.exitCode, open.child.exitCode]).toEqual([null, null]);
  });

  it('recovers when Redis restarts: a change made after recovery is enforced on both gateways', async () => {
    await redis.restart();
    await Promise.all([waitForLog(closed, 'store regained'), waitForLog(open, 'store regained')]);
    for (const gw of [closed, open]) expect((await readyz(gw)).body.store).toMatchObject({ state: 'up' });
    // Made through one gateway; the other learns it from Redis.
    expect((await open.admin('DELETE', `/v1/accounts/AC1/ip-acl/${ids['AC1']}`)).status).toBe(200);
    await addEntry(open, 'AC1', { ip_address: `${STRANGER}/32` });
    for (const gw of [closed, open]) {
      await waitUntil('the change enforced', async () => (await status(gw, 'AC1', STRANGER)) === 200 && (await status(gw, 'AC1', OFFICE)) === 403, 5_000);
      // The subaccount follows its parent's new list too.
      expect(await status(gw, 'SUB1', STRANGER)).toBe(200);
      expect(await status(gw, 'SUB1', OFFICE)).toBe(403);
      // And the uncached account is no longer refused: it has no list.
      expect(await status(gw, 'ACNEW', STRANGER)).toBe(200);
    }
  });

  it('enforces an acknowledged change on the replica that made it even when Redis dies before the next request', async () => {
    await addEntry(closed, 'AC5', { ip_address: '127.0.0.0/24' });
    expect(await status(closed, 'AC5', STRANGER)).toBe(200);
    // Acknowledged (201) by this gateway, then Redis is gone before any request reloads AC5.
    await addEntry(closed, 'AC5', { ip_address: `${STRANGER}/32`, action: 'deny' });
    await redis.kill();
    await waitForLog(closed, 'store lost: enforcing last-known-good lists');
    // What it acknowledged is what it enforces: not the list from before the change.
    const denied = await send(`${closed.url}/x`, { headers: { 'x-auth-id': 'AC5' }, localAddress: STRANGER });
    expect(denied.status).toBe(403);
    expect(denied.json()).toMatchObject({ code: 403, reason: 'ip_denied' });
    expect(await status(closed, 'AC5', OFFICE)).toBe(200);
    await redis.restart();
    await waitUntil('regained a second time', () => closed.logs.filter((l) => l['msg'] === 'store regained').length === 2, 8_000);
    expect(await status(closed, 'AC5', STRANGER)).toBe(403);
  });

  it('stops honouring a temporary entry at its expiry while Redis is down, keeping the permanent ones', async () => {
    await addEntry(closed, 'AC6', { ip_address: `${OFFICE}/32` });
    const expiresAt = new Date(Date.now() + 2_500).toISOString();
    await addEntry(closed, 'AC6', { ip_address: `${STRANGER}/32`, expires_at: expiresAt });
    expect([await status(closed, 'AC6', STRANGER), await status(closed, 'AC6', OFFICE)]).toEqual([200, 200]);
    const lost = (): number => closed.logs.filter((l) => l['msg'] === 'store lost: enforcing last-known-good lists').length;
    const before = lost();
    await redis.kill();
    await waitUntil('store lost', () => lost() === before + 1, 5_000);
    expect(await status(closed, 'AC6', STRANGER)).toBe(200); // not yet expired
    await new Promise((r) => setTimeout(r, Date.parse(expiresAt) - Date.now() + 100));
    const refused = await send(`${closed.url}/x`, { headers: { 'x-auth-id': 'AC6' }, localAddress: STRANGER });
    expect(refused.status).toBe(403);
    expect(refused.json()).toMatchObject({ code: 403, reason: 'ip_not_allowed' });
    expect(await status(closed, 'AC6', OFFICE)).toBe(200);
    await redis.restart();
  });
});

async function storeState(gw: GatewayProcess): Promise<{ status: number; state: string; canEnforce: boolean; error?: string }> {
  const res = await fetch(`${gw.adminUrl}/readyz`);
  const body = (await res.json()) as { store: { state: string; canEnforce: boolean; error?: string } };
  return { status: res.status, ...body.store };
}

describe('Redis frozen (SIGSTOP): connections open, nothing answers', () => {
  let redis: RedisServer;
  let upstream: EchoUpstream;
  let gw: GatewayProcess;
  let pid = 0;
  const dir = scratchDir();

  beforeAll(async () => {
    redis = await startRedis(AOF);
    upstream = await startEchoUpstream();
    const client = new Redis(redis.url);
    pid = Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1]);
    client.disconnect();
    expect(pid).toBeGreaterThan(0);
    gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_STORE: redis.url, ALLOWGATE_CONFIG: redisConfig(dir.path), ALLOWGATE_LOG_LEVEL: 'info' } });
    await addEntry(gw, 'AC1', { ip_address: `${OFFICE}/32` });
  });

  afterAll(async () => {
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Already gone.
      }
    }
    await gw?.stop();
    await upstream?.close();
    await redis?.stop();
    dir.remove();
  });

  it('keeps deciding cached accounts at once, answers uncached ones and admin writes with 503 within the command timeout, and recovers on SIGCONT', async () => {
    expect(await status(gw, 'AC1', OFFICE)).toBe(200);
    expect(await status(gw, 'AC1', STRANGER)).toBe(403);
    process.kill(pid, 'SIGSTOP');
    try {
      // Cached: decided without Redis.
      let started = performance.now();
      expect(await status(gw, 'AC1', OFFICE)).toBe(200);
      expect(await status(gw, 'AC1', STRANGER)).toBe(403);
      // Well under the 300 ms command timeout that a wait on Redis would cost each of them.
      expect(performance.now() - started).toBeLessThan(300);

      // Uncached: refused once the 300 ms command timeout passes, not held open.
      started = performance.now();
      const refused = await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'ACNEW' }, localAddress: OFFICE });
      expect(refused.status).toBe(503);
      expect(refused.json()).toEqual({ ...STORE_UNAVAILABLE, request_id: refused.headers['x-request-id'] });
      expect(performance.now() - started).toBeLessThan(1_500);
      await waitUntil('refusal logged with its cause', async () => gw.logs.some((l) => l['request_id'] === refused.headers['x-request-id'] && typeof l['cause'] === 'string' && (l['cause'] as string).length > 0), 2_000);

      // Admin reads and writes: the store is unavailable (retry later), which is what they must
      // say; not an internal error of the gateway's.
      const unavailable = { error: 'the store (redis) is unreachable, so nothing was read or changed; retry once it is back (see /readyz)', code: 503, reason: 'store_unavailable' };
      started = performance.now();
      const write = await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `${STRANGER}/32` });
      expect({ status: write.status, body: await write.json() }).toEqual({ status: 503, body: unavailable });
      const read = await gw.admin('GET', '/v1/accounts/AC1/ip-acl');
      expect({ status: read.status, body: await read.json() }).toEqual({ status: 503, body: unavailable });
      expect(performance.now() - started).toBeLessThan(2_000);
      // Every request fails alike: the log gets one line with the cause, not a stack per request.
      for (let i = 0; i < 5; i++) expect((await gw.admin('GET', '/v1/accounts/AC1/ip-acl')).status).toBe(503);
      const failed = gw.logs.filter((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('admin request failed'));
      // (one per route and method: the write, then the first read; the five reads after it held back)
      expect(failed.map((l) => [l['msg'], l['method'], l['route']])).toEqual([
        ['admin request failed: the store is unavailable', 'POST', '/v1/accounts/{account}/ip-acl'],
        ['admin request failed: the store is unavailable', 'GET', '/v1/accounts/{account}/ip-acl'],
      ]);
      expect(failed[0]).toMatchObject({ level: 'warn', method: 'POST', cause: expect.stringMatching(/timed out/i) });
      expect(failed[0]).not.toHaveProperty('err');

      // The connection is open, yet the store is reported down (a heartbeat PING went unanswered):
      // to monitoring and to /readyz, which stays ready since cached lists are still enforced.
      await waitUntil('store reported down', async () => (await storeState(gw)).state === 'down', 5_000);
      const ready = await storeState(gw);
      expect(ready).toMatchObject({ status: 200, state: 'down', canEnforce: true });
      expect(ready.error).toMatch(/no answer to PING/);
      expect(await (await gw.admin('GET', '/metrics')).text()).toMatch(/^allowgate_store_up\{store="redis"\} 0$/m);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitUntil('store reported up again', async () => (await storeState(gw)).state === 'up', 5_000);
    expect(await (await gw.admin('GET', '/metrics')).text()).toMatch(/^allowgate_store_up\{store="redis"\} 1$/m);
    await waitUntil('AC1 writable again', async () => (await gw.admin('GET', '/v1/accounts/AC1/ip-acl')).status === 200, 5_000);
    // The refused write did not land behind the caller's back.
    const listed = (await (await gw.admin('GET', '/v1/accounts/AC1/ip-acl')).json()) as { version: number; entries: { cidrs: string[] }[] };
    expect(listed.entries.map((e) => e.cidrs[0])).toEqual([`${OFFICE}/32`]);
    await addEntry(gw, 'AC1', { ip_address: `${STRANGER}/32` });
    expect(await status(gw, 'AC1', STRANGER)).toBe(200);
    expect(await status(gw, 'ACNEW', STRANGER)).toBe(200);
    expect(gw.child.exitCode).toBeNull();
  });
});
