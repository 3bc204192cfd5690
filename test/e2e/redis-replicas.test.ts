import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { scratchDir } from '../support/scratch.ts';
import { send } from '../support/http.ts';
import { waitUntil } from '../support/wait.ts';
import { Caller } from '../support/caller.ts';

// Distinct loopback addresses play distinct callers.
const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';
const PROPAGATION_SAMPLES = 60;

async function addEntry(gw: GatewayProcess, account: string, ip: string): Promise<string> {
  const res = await gw.admin('POST', `/v1/accounts/${account}/ip-acl`, { ip_address: ip });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** Polls until `caller` gets `status` for `account`; returns the milliseconds it took. */
async function until(caller: Caller, account: string, status: number, limitMs = 3_000): Promise<number> {
  const start = performance.now();
  for (;;) {
    if ((await caller.status(account)) === status) return performance.now() - start;
    if (performance.now() - start > limitMs) throw new Error(`${account} did not answer ${status} within ${limitMs} ms`);
  }
}

async function readyz(gw: GatewayProcess): Promise<{ status: number; body: { store: { state: string; canEnforce: boolean; lastKnownGood: number } } }> {
  const res = await fetch(`${gw.adminUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as never };
}

function waitForLog(gw: GatewayProcess, msg: string, limitMs = 10_000): Promise<void> {
  return waitUntil(`'${msg}' logged`, () => gw.logs.some((l) => l['msg'] === msg), limitMs);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

describe('two gateways sharing one Redis', () => {
  let redis: RedisServer;
  let upstream: EchoUpstream;
  let a: GatewayProcess;
  let b: GatewayProcess;

  beforeAll(async () => {
    redis = await startRedis();
    upstream = await startEchoUpstream();
    // A long sweep interval: only the change notifications can make a replica enforce quickly.
    const env = { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_STORE: redis.url, ALLOWGATE_REDIS_SWEEP_INTERVAL_MS: '600000', ALLOWGATE_LOG_LEVEL: 'info' };
    [a, b] = await Promise.all([startGateway({ env }), startGateway({ env })]);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await upstream?.close();
    await redis?.stop();
  });

  it('reports Redis as up in /readyz', async () => {
    const ready = await readyz(a);
    expect(ready.status).toBe(200);
    expect(ready.body.store).toMatchObject({ kind: 'redis', state: 'up', canEnforce: true });
  });

  it('enforces an entry added through one replica on the other at once, and measures how fast', async () => {
    const stranger = new Caller(b.url, STRANGER);
    try {
      await addEntry(a, 'ACP', `${OFFICE}/32`);
      await until(stranger, 'ACP', 403);
      const samples: number[] = [];
      for (let i = 0; i < PROPAGATION_SAMPLES / 2; i++) {
        const id = await addEntry(a, 'ACP', `${STRANGER}/32`);
        samples.push(await until(stranger, 'ACP', 200));
        expect((await a.admin('DELETE', `/v1/accounts/ACP/ip-acl/${id}`)).status).toBe(200);
        samples.push(await until(stranger, 'ACP', 403));
      }
      samples.sort((x, y) => x - y);
      const [p50, p99, max] = [percentile(samples, 50), percentile(samples, 99), samples[samples.length - 1]!];
      console.log(`propagation from admin acknowledgement on replica A to enforcement on replica B over ${samples.length} changes: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${max.toFixed(2)} ms`);
      expect(samples).toHaveLength(PROPAGATION_SAMPLES);
      // Replica B measured the same thing itself: changes published by A, enforced here.
      const metrics = await (await fetch(`${b.adminUrl}/metrics`)).text();
      expect(Number(/^allowgate_propagation_lag_seconds_count (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(PROPAGATION_SAMPLES);
      expect(metrics).toMatch(/^allowgate_store_up\{store="redis"\} 1$/m);
    } finally {
      stranger.close();
    }
  });

  it('drops a cached "no list" on the other replica when the first entry arrives', async () => {
    const stranger = new Caller(b.url, STRANGER);
    try {
      expect(await stranger.status('ACNEG')).toBe(200);
      expect(await stranger.status('ACNEG')).toBe(200);
      await addEntry(a, 'ACNEG', `${OFFICE}/32`);
      await until(stranger, 'ACNEG', 403);
      expect((await send(`${b.url}/x`, { headers: { 'x-auth-id': 'ACNEG' }, localAddress: OFFICE })).status).toBe(200);
    } finally {
      stranger.close();
    }
  });

  it('shares ETags across replicas: a write with a stale If-Match is refused with 412', async () => {
    await addEntry(a, 'ACE', `${OFFICE}/32`);
    const seen = await a.admin('GET', '/v1/accounts/ACE/ip-acl');
    const etag = seen.headers.get('etag')!;
    expect(etag).toBe('"1"');
    await addEntry(b, 'ACE', '192.0.2.0/24');
    const stale = await a.admin('POST', '/v1/accounts/ACE/ip-acl', { ip_address: '198.51.100.0/24' }, { 'if-match': etag });
    expect(stale.status).toBe(412);
    expect(await stale.json()).toMatchObject({ reason: 'version_conflict' });
    const fresh = await a.admin('POST', '/v1/accounts/ACE/ip-acl', { ip_address: '198.51.100.0/24' }, { 'if-match': '"2"' });
    expect(fresh.status).toBe(201);
    expect(fresh.headers.get('etag')).toBe('"3"');
    // The audit trail lives in Redis too: either replica lists every change, newest first.
    const trail = (await (await b.admin('GET', '/v1/audit?account=ACE')).json()) as { events: { version: number; action: string }[] };
    expect(trail.events.map((e) => [e.version, e.action])).toEqual([[3, 'entry.create'], [2, 'entry.create'], [1, 'entry.create']]);
  });

  it('records recent callers on one replica, readable through the other', async () => {
    await addEntry(a, 'ACR', '127.0.0.0/29');
    for (const ip of ['127.0.0.4', '127.0.0.5', '127.0.0.4']) {
      expect((await send(`${b.url}/x`, { headers: { 'x-auth-id': 'ACR' }, localAddress: ip })).status).toBe(200);
    }
    // Refused callers are not "recent callers": the list is who uses the account, not who tried.
    expect((await send(`${b.url}/x`, { headers: { 'x-auth-id': 'ACR' }, localAddress: '127.0.0.9' })).status).toBe(403);
    // Sightings are flushed once a second, so the second sighting of .4 may arrive a flush later.
    let ips: { ip: string; last_seen: string }[] = [];
    const seen = (ip: string): number => Date.parse(ips.find((c) => c.ip === ip)?.last_seen ?? '');
    await waitUntil('both callers recorded, .4 seen last', async () => {
      ips = ((await (await a.admin('GET', '/v1/accounts/ACR/recent-ips')).json()) as { ips: typeof ips }).ips;
      return ips.length === 2 && seen('127.0.0.4') >= seen('127.0.0.5');
    }, 5_000);
    expect(ips.map((c) => c.ip).sort()).toEqual(['127.0.0.4', '127.0.0.5']);
    expect(Date.parse(ips[0]!.last_seen)).toBeGreaterThan(Date.now() - 60_000);
    expect((await a.admin('GET', '/v1/accounts/ACR/recent-ips?limit=0')).status).toBe(400);
  });
});

describe('Redis lost mid-traffic', () => {
  let redis: RedisServer;
  let upstream: EchoUpstream;
  let closed: GatewayProcess;
  let open: GatewayProcess;
  let snapshotDir: { path: string; remove: () => void };
  let env: Record<string, string>;

  beforeAll(async () => {
    // Persistence on (fsync every write), so a restart brings the data back as a real deployment would.
    redis = await startRedis(['--appendonly', 'yes', '--appendfsync', 'always']);
    upstream = await startEchoUpstream();
    snapshotDir = scratchDir();
    env = { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_STORE: redis.url, ALLOWGATE_LOG_LEVEL: 'info', ALLOWGATE_REDIS_SWEEP_INTERVAL_MS: '500' };
    [closed, open] = await Promise.all([
      startGateway({ env: { ...env, ALLOWGATE_CACHE_SNAPSHOT: join(snapshotDir.path, 'lkg.json') } }),
      startGateway({ env: { ...env, ALLOWGATE_ON_STORE_UNAVAILABLE: 'open' } }),
    ]);
    await addEntry(closed, 'AC1', `${OFFICE}/32`);
  });

  afterAll(async () => {
    await Promise.all([closed?.stop(), open?.stop()]);
    await upstream?.close();
    await redis?.stop();
    snapshotDir?.remove();
  });

  it('keeps enforcing cached lists, follows the fail mode for the rest, and recovers with changes made meanwhile', async () => {
    // Warm both replicas: AC1 (a list) and ACNONE (no list) are cached.
    for (const gw of [closed, open]) {
      expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC1' }, localAddress: OFFICE })).status).toBe(200);
      expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC1' }, localAddress: STRANGER })).status).toBe(403);
      expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'ACNONE' }, localAddress: STRANGER })).status).toBe(200);
    }

    await redis.kill();
    await Promise.all([waitForLog(closed, 'store lost: enforcing last-known-good lists'), waitForLog(open, 'store lost: enforcing last-known-good lists')]);

    for (const gw of [closed, open]) {
      // Cached decisions stand: nothing that was closed opens.
      expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC1' }, localAddress: OFFICE })).status).toBe(200);
      expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'AC1' }, localAddress: STRANGER })).status).toBe(403);
      expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'ACNONE' }, localAddress: STRANGER })).status).toBe(200);
      const ready = await readyz(gw);
      expect(ready.status).toBe(200);
      expect(ready.body.store).toMatchObject({ state: 'down', canEnforce: true });
      expect(await (await fetch(`${gw.adminUrl}/metrics`)).text()).toMatch(/^allowgate_store_up\{store="redis"\} 0$/m);
    }
    // An account never seen: closed refuses with 503, open forwards and says so in its log.
    const refused = await send(`${closed.url}/x`, { headers: { 'x-auth-id': 'ACNEW' }, localAddress: OFFICE });
    expect(refused.status).toBe(503);
    expect(refused.json()).toMatchObject({ code: 503, reason: 'store_unavailable' });
    expect((await send(`${open.url}/x`, { headers: { 'x-auth-id': 'ACNEW' }, localAddress: OFFICE })).status).toBe(200);
    // The log line travels through the child's stdout: it may land just after the response.
    await waitUntil('fail_open logged', () => open.logs.some((l) => l['decision'] === 'fail_open' && l['account'] === 'ACNEW'), 5_000);
    // Writes are refused, not lost silently.
    const write = await closed.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `${STRANGER}/32` });
    expect(write.status).toBe(503);
    expect(await write.json()).toMatchObject({ reason: 'store_unavailable' });

    // A replica restarted during the outage enforces the snapshot.
    await closed.stop();
    closed = await startGateway({ env: { ...env, ALLOWGATE_CACHE_SNAPSHOT: join(snapshotDir.path, 'lkg.json'), ALLOWGATE_REDIS_SWEEP_INTERVAL_MS: '500' } });
    expect(closed.logs.some((l) => l['msg'] === 'last-known-good snapshot loaded')).toBe(true);
    expect((await readyz(closed)).body.store).toMatchObject({ state: 'down', canEnforce: true });
    expect((await send(`${closed.url}/x`, { headers: { 'x-auth-id': 'AC1' }, localAddress: OFFICE })).status).toBe(200);
    expect((await send(`${closed.url}/x`, { headers: { 'x-auth-id': 'AC1' }, localAddress: STRANGER })).status).toBe(403);
    expect((await send(`${closed.url}/x`, { headers: { 'x-auth-id': 'ACNEW' }, localAddress: OFFICE })).status).toBe(503);

    // Redis returns; a change is made right away (the replicas may not have reconnected yet).
    await redis.restart();
    await waitForLog(open, 'store regained');
    await addEntry(open, 'AC1', `${STRANGER}/32`);
    await waitForLog(closed, 'store connected');
    for (const gw of [closed, open]) {
      const caller = new Caller(gw.url, STRANGER);
      try {
        await until(caller, 'AC1', 200, 5_000);
      } finally {
        caller.close();
      }
      expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'ACNEW' }, localAddress: OFFICE })).status).toBe(200);
      expect((await readyz(gw)).body.store).toMatchObject({ state: 'up' });
    }
  });
});
