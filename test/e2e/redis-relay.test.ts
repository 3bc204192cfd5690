import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Caller } from '../support/caller.ts';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { ADMIN_TOKEN, startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { scratchDir } from '../support/scratch.ts';
import { startRelay, type Relay } from '../support/tcp-relay.ts';
import { waitUntil } from '../support/wait.ts';

/*
 * Real gateway replicas over a real redis-server, one of them reaching Redis through a relay that
 * injects faults at exact points (a frozen command connection while its subscriber still hears
 * notices; the reply to the commit script lost). The repair sweep is pushed out to ten minutes,
 * so only the behaviour under test can make a replica enforce a change in time.
 */

const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';
const COMMAND_TIMEOUT_MS = 300;

function config(dir: string): string {
  const path = join(dir, `allowgate-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, `redis:\n  connectTimeoutMs: 300\n  commandTimeoutMs: ${COMMAND_TIMEOUT_MS}\n  sweepIntervalMs: 600000\n`);
  return path;
}

async function addEntry(gw: GatewayProcess, account: string, body: Record<string, unknown>): Promise<string> {
  const res = await gw.admin('POST', `/v1/accounts/${account}/ip-acl`, body);
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function status(gw: GatewayProcess, account: string, from: string): Promise<number> {
  return (await send(`${gw.url}/x`, { headers: { 'x-auth-id': account }, localAddress: from })).status;
}

async function metric(gw: GatewayProcess, line: RegExp): Promise<number> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  return Number(line.exec(text)?.[1] ?? Number.NaN);
}

/** The allowgate command, as a user runs it; its exit code and what it wrote to stderr. */
function runCli(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('../../src/cli.ts', import.meta.url)), ...args], { env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

async function storeState(gw: GatewayProcess): Promise<string> {
  return ((await (await fetch(`${gw.adminUrl}/readyz`)).json()) as { store: { state: string } }).store.state;
}

/**
 * For one describe block: a redis-server, a relay in front of it and an upstream, started before
 * its tests and stopped after them with every gateway `gateway` started.
 */
function relayedRedis(): { readonly relay: Relay; gateway(store: 'relay' | 'direct', env?: Record<string, string>): Promise<GatewayProcess> } {
  let redis: RedisServer;
  let relay: Relay;
  let upstream: EchoUpstream;
  const gateways: GatewayProcess[] = [];
  const dir = scratchDir();
  beforeAll(async () => {
    redis = await startRedis();
    upstream = await startEchoUpstream();
    relay = await startRelay(redis.port);
  });
  afterAll(async () => {
    await Promise.all(gateways.map((gw) => gw.stop()));
    await relay?.close();
    await upstream?.close();
    await redis?.stop();
    dir.remove();
  });
  return {
    get relay() {
      return relay;
    },
    async gateway(store, env = {}) {
      const gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_LOG_LEVEL: 'info', ALLOWGATE_STORE: store === 'relay' ? relay.url : redis.url, ALLOWGATE_CONFIG: config(dir.path), ...env } });
      gateways.push(gw);
      return gw;
    },
  };
}

describe('a revocation while a replica cannot read Redis (its notices still arrive)', () => {
  const setting = relayedRedis();
  let a: GatewayProcess;
  let b: GatewayProcess;
  afterEach(async () => {
    await Promise.all([a.stop(), b.stop()]);
    setting.relay.freezeNew(false);
  });

  const start = async (writerEnv: Record<string, string> = {}): Promise<void> => {
    [a, b] = await Promise.all([
      setting.gateway('direct', writerEnv),
      // B reaches Redis only through the relay, and forwards unknown accounts when the store is out (open).
      setting.gateway('relay', { ALLOWGATE_ON_STORE_UNAVAILABLE: 'open' }),
    ]);
  };

  it('enforces the revocation at once from the list carried by the notice, without reading Redis', async () => {
    await start();
    const stranger = await addEntry(a, 'RV1', { ip_address: `${STRANGER}/32` });
    await addEntry(a, 'RV1', { ip_address: `${OFFICE}/32` });
    await waitUntil('B enforces RV1', async () => (await status(b, 'RV1', STRANGER)) === 200 && (await status(b, 'RV1', OFFICE)) === 200, 5_000);

    setting.relay.freeze('command'); // B's reads hang; its subscriber still hears the notice
    setting.relay.freezeNew(true);
    const reads = setting.relay.commandsSent('command').length;
    expect((await a.admin('DELETE', `/v1/accounts/RV1/ip-acl/${stranger}`)).status).toBe(200);
    // A 403 (not a 503) with B unable to read Redis: the new list came with the notice.
    await waitUntil('B refuses the revoked address', async () => (await status(b, 'RV1', STRANGER)) === 403, 2_000);
    for (let i = 0; i < 5; i++) expect([await status(b, 'RV1', STRANGER), await status(b, 'RV1', OFFICE)]).toEqual([403, 200]);
    // Not one read of RV1 was attempted.
    expect(setting.relay.commandsSent('command').slice(reads).filter((c) => c === 'EVALSHA' || c === 'EVAL')).toEqual([]);
  });

  it('refuses the account, never the list it replaced, when the notice carries no list; one read in flight, then backoff; enforced once Redis answers', async () => {
    // A publishes notices without lists (as it would for a list larger than noticeListMaxBytes).
    await start({ ALLOWGATE_REDIS_NOTICE_LIST_MAX_BYTES: '0' });
    const stranger = await addEntry(a, 'RV2', { ip_address: `${STRANGER}/32` });
    await addEntry(a, 'RV2', { ip_address: `${OFFICE}/32` });
    await addEntry(a, 'KEPT', { ip_address: `${OFFICE}/32` });
    await waitUntil('B enforces RV2 and KEPT', async () => (await status(b, 'RV2', STRANGER)) === 200 && (await status(b, 'KEPT', OFFICE)) === 200, 5_000);

    setting.relay.freeze('command');
    setting.relay.freezeNew(true);
    const reads = (): number => setting.relay.commandsSent('command').filter((c) => c === 'EVALSHA' || c === 'EVAL').length;
    const readsBefore = reads();
    expect((await a.admin('DELETE', `/v1/accounts/RV2/ip-acl/${stranger}`)).status).toBe(200);
    await waitUntil('B stops admitting the revoked address', async () => (await status(b, 'RV2', STRANGER)) !== 200, 2_000);

    // Every caller of the changed account is refused (503, even though B forwards unknown
    // accounts when the store is out), never the revoked one admitted; unchanged accounts go on.
    for (let i = 0; i < 10; i++) {
      const revoked = await send(`${b.url}/x`, { headers: { 'x-auth-id': 'RV2' }, localAddress: STRANGER });
      expect(revoked.status).toBe(503);
      expect(revoked.json()).toMatchObject({ reason: 'store_unavailable', error: expect.stringMatching(/^the access list of account RV2 changed and the new one could not be loaded yet/) });
      expect(await status(b, 'RV2', OFFICE)).toBe(503);
      expect(await status(b, 'KEPT', OFFICE)).toBe(200);
    }
    // Twenty requests for RV2, and a handful of reads: one in flight at a time, then a backoff
    // that doubles (without it, every request would wait for its own read to time out).
    expect(reads() - readsBefore, 'reads of RV2 while Redis could not answer').toBeLessThanOrEqual(7);
    expect(await metric(b, /^allowgate_cache_refusing_accounts (\d+)$/m)).toBe(1);
    expect(await status(b, 'NEVERSEEN', STRANGER)).toBe(200); // open: an unknown account is forwarded

    // Redis reachable again: the new list is loaded and enforced without any request asking.
    setting.relay.freezeNew(false);
    setting.relay.drop('command');
    await waitUntil('B back up', async () => (await storeState(b)) === 'up', 5_000);
    await waitUntil('B enforces the new list', async () => (await status(b, 'RV2', STRANGER)) === 403 && (await status(b, 'RV2', OFFICE)) === 200, 3_000);
    expect(await metric(b, /^allowgate_cache_refusing_accounts (\d+)$/m)).toBe(0);
    // Propagation is measured to enforcement: this change counts as late, not prompt.
    const prompt = await metric(b, /^allowgate_propagation_lag_seconds_bucket\{le="0.25"\} (\d+)$/m);
    const all = await metric(b, /^allowgate_propagation_lag_seconds_count (\d+)$/m);
    expect(all - prompt).toBeGreaterThanOrEqual(1);
  });
});

describe('a write whose outcome is unknown, on the replica that made it', () => {
  const setting = relayedRedis();
  let a: GatewayProcess;
  beforeAll(async () => {
    a = await setting.gateway('relay');
  });

  it('enforces a change whose answer came too late within milliseconds, not at the next sweep', async () => {
    await addEntry(a, 'AM1', { ip_address: '127.0.0.0/24' });
    const caller = new Caller(a.url, STRANGER);
    try {
      expect(await caller.status('AM1')).toBe(200);
      // Redis runs the commit but its answer is held past the command timeout (the connection
      // stays open). Started right after a heartbeat, so no PING waits in that window and the
      // replica never sees the store as down: nothing but the write's own outcome can tell it.
      await setting.relay.onCommand('PING', 'none', 'command');
      const fired = setting.relay.onCommand('EVALSHA', 'hold-reply', 'command', COMMAND_TIMEOUT_MS + 150);
      const res = await a.admin('POST', '/v1/accounts/AM1/ip-acl', { ip_address: `${STRANGER}/32`, action: 'deny' });
      await fired;
      const answered = performance.now();
      expect(res.status).toBe(503);
      await waitUntil('the deny enforced on the replica that wrote it', async () => (await caller.status('AM1')) === 403, 2_000);
      expect(performance.now() - answered).toBeLessThan(1_000);
      expect(a.logs.some((l) => l['msg'] === 'store lost: enforcing last-known-good lists')).toBe(false);
      expect(await res.json()).toMatchObject({ code: 503, reason: 'outcome_unknown', error: expect.stringContaining('it may or may not have been applied; it is at version 2 now') });
    } finally {
      caller.close();
    }
  });

  it('answers "may or may not have been applied" when the connection drops after the commit was sent; one log line with the cause, not one per failure', async () => {
    await addEntry(a, 'AM2', { ip_address: '127.0.0.0/24' });
    const fired = setting.relay.onCommand('EVALSHA', 'lose-reply', 'command');
    const res = await a.admin('POST', '/v1/accounts/AM2/ip-acl', { ip_address: `${STRANGER}/32`, action: 'deny' });
    await fired;
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      code: 503,
      reason: 'outcome_unknown',
      error: 'the change to account AM2 was sent to Redis but no answer came back (the connection to Redis is unavailable): it may or may not have been applied; it is at version 2 now (the change would have made it 2). Read the account before retrying',
      current_version: 2,
    });
    // Applied (the reply was lost, not the command): a retry would be a duplicate.
    const listed = (await (await a.admin('GET', '/v1/accounts/AM2/ip-acl')).json()) as { version: number; entries: unknown[] };
    expect(listed).toMatchObject({ version: 2 });
    expect(listed.entries).toHaveLength(2);
    // One line with the cause for the first of these writes (AM1's, above); the second within the
    // interval is held back, so an outage cannot flood the log.
    const message = 'store write outcome unknown: the change may or may not have been applied';
    const lines = a.logs.filter((l) => l['msg'] === message);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', account: 'AM1', reason: 'outcome_unknown', current_version: 2, cause: 'Command timed out', suppressed: 0 });
    // The failed writes are logged as that line with their cause, never as a stack trace. (A
    // background job that met the same timeout, such as a flush of the recent callers on a loaded
    // machine, logs a warning of its own: not what this checks.)
    const hasStack = (l: Record<string, unknown>): boolean => typeof l['stack'] === 'string' || typeof (l['err'] as { stack?: unknown } | undefined)?.stack === 'string';
    expect(a.logs.filter((l) => l['msg'] === 'admin request failed' || (l['msg'] === message && hasStack(l)))).toEqual([]);
  });
  it('tells the CLI user the same, with the current version, and exits 3 (not 1: a retry may duplicate it)', async () => {
    await addEntry(a, 'AM3', { ip_address: '127.0.0.0/24' });
    const fired = setting.relay.onCommand('EVALSHA', 'lose-reply', 'command');
    const cli = await runCli(['acl', 'add', 'AM3', `${STRANGER}/32`, '--deny', '--url', a.adminUrl, '--token', ADMIN_TOKEN]);
    await fired;
    expect(cli.code).toBe(3);
    expect(cli.stderr).toMatch(/it may or may not have been applied; it is at version 2 now \(the change would have made it 2\)\. Read the account before retrying \(outcome_unknown, HTTP 503; current version 2\)/);
    expect(cli.stderr).toMatch(/look at the account \(allowgate acl list ACCOUNT, or allowgate audit --account ACCOUNT\) before running the command again/);
  });
});

describe('the audit trail of a write whose connection is lost right after the commit', () => {
  const setting = relayedRedis();
  let a: GatewayProcess;
  let b: GatewayProcess;
  beforeAll(async () => {
    [a, b] = await Promise.all([setting.gateway('relay'), setting.gateway('direct')]);
  });

  it('has the event of every acknowledged change: written by the commit itself, nothing left to write after it', async () => {
    await addEntry(a, 'AU1', { ip_address: `${OFFICE}/32` });
    // Whatever the replica would send after the commit is answered, the connection is cut at.
    const cut = setting.relay.onCommand('EVALSHA', 'none', 'command').then(() => setting.relay.onCommand('XADD', 'swallow', 'command'));
    const res = await a.admin('POST', '/v1/accounts/AU1/ip-acl', { ip_address: `${STRANGER}/32` });
    await Promise.race([cut, sleep(200)]);
    setting.relay.disarm();
    expect(res.status).toBe(201);
    const trail = (await (await b.admin('GET', '/v1/audit?account=AU1')).json()) as { events: { version: number; action: string }[] };
    expect(trail.events.map((e) => [e.version, e.action])).toEqual([[2, 'entry.create'], [1, 'entry.create']]);
    const global = (await (await b.admin('GET', '/v1/audit?limit=100')).json()) as { events: { account: string; version: number; id: string }[] };
    expect(global.events.filter((e) => e.account === 'AU1').map((e) => e.version)).toEqual([2, 1]);
  });

  it('lists every replica\'s changes to one account in version order, the global view agreeing with the account\'s', async () => {
    // Three at a time through each replica (within its writes in progress per credential).
    for (let round = 0; round < 2; round++) {
      const writes = Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).admin('POST', '/v1/accounts/AU2/ip-acl', { ip_address: `192.0.2.${round * 6 + i + 1}/32` }));
      expect((await Promise.all(writes)).map((r) => r.status)).toEqual(Array(6).fill(201));
    }
    type Page = { events: { account: string; version: number; id: string }[]; next: string | null };
    const own = (await (await a.admin('GET', '/v1/audit?account=AU2&limit=100')).json()) as Page;
    expect(own.events.map((e) => e.version)).toEqual(Array.from({ length: 12 }, (_, i) => 12 - i));
    for (const gw of [a, b]) {
      const all = (await (await gw.admin('GET', '/v1/audit?limit=100')).json()) as Page;
      expect(all.events.filter((e) => e.account === 'AU2')).toEqual(own.events);
    }
  });
});

