import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { scratchDir } from '../support/scratch.ts';

/*
 * Two replicas over one real redis-server: a key registered, restricted, disabled or deleted
 * through one is enforced by the other within milliseconds, from the change notices alone (the
 * repair sweep is set to ten minutes).
 */

const OFFICE = '127.0.0.2';
const CI = '127.0.0.3';
const CI_KEY = 'sk_live_ci_Redis_0123456789ab';
const OFFICE_KEY = 'sk_live_office_Redis_ba9876543210';
const SAMPLES = 40;

const CONFIG = 'identity:\n  strategies:\n    - type: header\n    - type: api-key\n';

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

describe('API keys over Redis: two replicas', () => {
  const dir = scratchDir();
  let redis: RedisServer;
  let upstream: EchoUpstream;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let env: Record<string, string>;

  const statusOn = async (gw: GatewayProcess, from: string, key: string): Promise<{ status: number; reason: string | undefined }> => {
    const reply = await send(`${gw.url}/v1/messages`, { headers: { 'x-api-key': key }, localAddress: from });
    return { status: reply.status, reason: reply.status === 200 ? undefined : reply.json<{ reason: string }>().reason };
  };
  /** Milliseconds until `gw` answers `status` (and `reason`) to `key` from `from`. */
  const until = async (gw: GatewayProcess, from: string, key: string, status: number, reason?: string, limitMs = 3_000): Promise<number> => {
    const start = performance.now();
    for (;;) {
      const seen = await statusOn(gw, from, key);
      if (seen.status === status && (reason === undefined || seen.reason === reason)) return performance.now() - start;
      if (performance.now() - start > limitMs) throw new Error(`expected ${status} ${reason ?? ''} within ${limitMs} ms, still ${seen.status} ${seen.reason ?? ''}`);
    }
  };

  beforeAll(async () => {
    redis = await startRedis();
    upstream = await startEchoUpstream();
    writeFileSync(join(dir.path, 'allowgate.yaml'), CONFIG);
    env = {
      ALLOWGATE_UPSTREAM_URL: upstream.url,
      ALLOWGATE_STORE: redis.url,
      ALLOWGATE_CONFIG: join(dir.path, 'allowgate.yaml'),
      ALLOWGATE_KEY_SECRET: 'redis-replicas-share-this-key-secret-0123456789',
      ALLOWGATE_REDIS_SWEEP_INTERVAL_MS: '600000',
      ALLOWGATE_LOG_LEVEL: 'info',
    };
    [a, b] = await Promise.all([startGateway({ env }), startGateway({ env })]);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await upstream?.close();
    await redis?.stop();
    dir.remove();
  });

  it('refuses to start on Redis without a shared key secret', async () => {
    await expect(startGateway({ env: { ...env, ALLOWGATE_KEY_SECRET: '' } })).rejects.toThrow(/exited with 2[\s\S]*api-key strategy with the redis store needs ALLOWGATE_KEY_SECRET/);
  });

  it('enforces keys registered, restricted, disabled and deleted through one replica on the other', async () => {
    expect((await a.admin('POST', '/v1/accounts/ACR/ip-acl', { ip_address: `${OFFICE}/32` })).status).toBe(201);
    expect((await a.admin('POST', '/v1/accounts/ACR/ip-acl', { ip_address: `${CI}/32` })).status).toBe(201);
    // Unknown on B first: B remembers that, and still learns of the registration at once.
    expect(await statusOn(b, CI, CI_KEY)).toEqual({ status: 401, reason: 'unknown_key' });
    const created = await a.admin('POST', '/v1/accounts/ACR/keys', { key: CI_KEY, name: 'ci' });
    expect(created.status).toBe(201);
    const ci = (await created.json() as { id: string }).id;
    const office = (await (await b.admin('POST', '/v1/accounts/ACR/keys', { key: OFFICE_KEY, name: 'office' })).json() as { id: string }).id;
    await until(b, CI, CI_KEY, 200);
    await until(a, OFFICE, OFFICE_KEY, 200);
    expect(await statusOn(b, OFFICE, CI_KEY)).toEqual({ status: 200, reason: undefined });

    // Restricting the CI key through A, emptying its list and restoring it, over and over: B follows
    // each change, and an emptied key list refuses every caller (it never opens by itself).
    const samples: number[] = [];
    const entry = await a.admin('POST', `/v1/accounts/ACR/keys/${ci}/ip-acl`, { ip_address: `${CI}/32` });
    expect(entry.status).toBe(201);
    samples.push(await until(b, OFFICE, CI_KEY, 403, 'ip_not_allowed_for_key'));
    const entryId = (await entry.json() as { id: string }).id;
    for (let i = 0; i < SAMPLES / 2 - 1; i++) {
      expect((await a.admin('PATCH', `/v1/accounts/ACR/keys/${ci}/ip-acl/${entryId}`, { enabled: false })).status).toBe(200);
      samples.push(await until(b, CI, CI_KEY, 403, 'list_empty_for_key'));
      expect(await statusOn(b, OFFICE, CI_KEY)).toEqual({ status: 403, reason: 'list_empty_for_key' });
      expect((await a.admin('PATCH', `/v1/accounts/ACR/keys/${ci}/ip-acl/${entryId}`, { enabled: true })).status).toBe(200);
      samples.push(await until(b, CI, CI_KEY, 200));
      expect(await statusOn(b, OFFICE, CI_KEY)).toEqual({ status: 403, reason: 'ip_not_allowed_for_key' });
    }
    // Opened explicitly through A (its only entry deleted first): B lets the key through wherever the account does.
    expect((await a.admin('DELETE', `/v1/accounts/ACR/keys/${ci}/ip-acl/${entryId}`)).status).toBe(200);
    samples.push(await until(b, CI, CI_KEY, 403, 'list_empty_for_key'));
    expect((await a.admin('PATCH', `/v1/accounts/ACR/keys/${ci}`, { restricted: false })).status).toBe(200);
    samples.push(await until(b, OFFICE, CI_KEY, 200));
    expect((await statusOn(b, CI, CI_KEY)).status).toBe(200);
    expect((await statusOn(b, OFFICE, OFFICE_KEY)).status).toBe(200);

    // Disabled through A: refused on B; enabled again; deleted: unknown on B.
    expect((await a.admin('PATCH', `/v1/accounts/ACR/keys/${office}`, { enabled: false })).status).toBe(200);
    samples.push(await until(b, OFFICE, OFFICE_KEY, 401, 'key_disabled'));
    expect((await a.admin('PATCH', `/v1/accounts/ACR/keys/${office}`, { enabled: true })).status).toBe(200);
    samples.push(await until(b, OFFICE, OFFICE_KEY, 200));
    expect((await a.admin('DELETE', `/v1/accounts/ACR/keys/${office}`)).status).toBe(200);
    samples.push(await until(b, OFFICE, OFFICE_KEY, 401, 'unknown_key'));
    // Registered again to another account (with a list that refuses the office): B follows the key there.
    expect((await a.admin('POST', '/v1/accounts/ACS/ip-acl', { ip_address: `${CI}/32` })).status).toBe(201);
    expect((await b.admin('POST', '/v1/accounts/ACS/keys', { key: OFFICE_KEY })).status).toBe(201);
    samples.push(await until(a, OFFICE, OFFICE_KEY, 403, 'ip_not_allowed'));
    expect((await statusOn(b, CI, OFFICE_KEY)).status).toBe(200);

    samples.sort((x, y) => x - y);
    console.log(`key change on replica A enforced on replica B over ${samples.length} changes: p50 ${percentile(samples, 50).toFixed(2)} ms, p99 ${percentile(samples, 99).toFixed(2)} ms, max ${samples.at(-1)!.toFixed(2)} ms`);
    expect(samples.length).toBeGreaterThanOrEqual(SAMPLES);
    // B's key lookups were answered from its cache nearly always: the store's index was read on changes only.
    const metrics = await (await b.admin('GET', '/metrics')).text();
    const lookups = (result: string): number => Number(new RegExp(`^allowgate_key_lookups_total\\{result="${result}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
    expect(lookups('cached')).toBeGreaterThan(lookups('located'));
  });

  it('lets exactly one of two replicas register one key for two accounts at once, round after round', async () => {
    for (let round = 0; round < 10; round++) {
      const key = `sk_live_race_${round}_0123456789abcdef`;
      const [onA, onB] = await Promise.all([
        a.admin('POST', `/v1/accounts/RACEA${round}/keys`, { key }),
        b.admin('POST', `/v1/accounts/RACEB${round}/keys`, { key }),
      ]);
      expect([onA.status, onB.status].sort(), `round ${round}`).toEqual([201, 409]);
      const winner = onA.status === 201 ? `RACEA${round}` : `RACEB${round}`;
      const loser = onA.status === 201 ? onB : onA;
      expect((await loser.json() as { reason: string }).reason).toBe('duplicate');
      // Both replicas agree whose key it is.
      for (const gw of [a, b]) {
        const reply = await send(`${gw.url}/v1/messages`, { headers: { 'x-api-key': key, 'x-auth-id': winner }, localAddress: OFFICE });
        expect(reply.status, `round ${round} on ${gw === a ? 'A' : 'B'}`).toBe(200);
      }
    }
  });

  it('refuses one key registered as sent and by its SHA-256, in either order, on either replica, at once or not', async () => {
    const sha256 = (key: string): string => createHash('sha256').update(key).digest('hex');
    const register = (gw: GatewayProcess, account: string, key: string, byHash: boolean): Promise<Response> =>
      gw.admin('POST', `/v1/accounts/${account}/keys`, byHash ? { key_sha256: sha256(key) } : { key });
    for (const [order, byHashFirst] of [['as sent, then by hash', false], ['by hash, then as sent', true]] as const) {
      const key = `sk_live_twice_${byHashFirst ? 'h' : 'v'}_0123456789abcdef`;
      const holder = `TWICE${byHashFirst ? 'H' : 'V'}`;
      expect((await register(a, holder, key, byHashFirst)).status, order).toBe(201);
      // Used on both replicas, so each holds the key's pointer when the second registration comes.
      for (const gw of [a, b]) expect((await statusOn(gw, OFFICE, key)).status, `${order}: first use`).toBe(200);
      for (const [gw, account] of [[b, `${holder}X`], [a, holder]] as const) {
        const second = await register(gw, account, key, !byHashFirst);
        const body = await second.json() as { reason: string; error: string };
        expect([second.status, body.reason], `${order} in ${account}`).toEqual([409, 'duplicate']);
        if (account !== holder) expect(body.error).not.toContain(holder);
      }
      for (const gw of [a, b]) {
        const reply = await send(`${gw.url}/v1/messages`, { headers: { 'x-api-key': key, 'x-auth-id': holder }, localAddress: OFFICE });
        expect(reply.status, `${order}: still ${holder}'s on ${gw === a ? 'A' : 'B'}`).toBe(200);
      }
    }
    // Two replicas registering one key both ways at once: exactly one wins.
    for (let round = 0; round < 10; round++) {
      const key = `sk_live_twice_race_${round}_0123456789abcdef`;
      const [onA, onB] = await Promise.all([register(a, `TWA${round}`, key, false), register(b, `TWB${round}`, key, true)]);
      expect([onA.status, onB.status].sort(), `round ${round}`).toEqual([201, 409]);
      const winner = onA.status === 201 ? `TWA${round}` : `TWB${round}`;
      for (const gw of [a, b]) {
        const reply = await send(`${gw.url}/v1/messages`, { headers: { 'x-api-key': key, 'x-auth-id': winner }, localAddress: OFFICE });
        expect(reply.status, `round ${round} on ${gw === a ? 'A' : 'B'}`).toBe(200);
      }
    }
  });
});
