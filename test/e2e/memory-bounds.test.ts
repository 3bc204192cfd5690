import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';

/**
 * Every per-key structure has a bound, proved on the real process under a 64 MiB heap: 200,000
 * made-up account ids and 100,000 client addresses (from 127.0.0.0/8, through a trusted proxy's
 * X-Forwarded-For) pass through the policy cache, the recent-caller recorder and table, the
 * refusal log and the admission counts. The gateway stays up, keeps deciding a real account's
 * callers correctly throughout, and its heap comes back near where it started.
 */

const ACCOUNTS = 200_000;
const ADDRESSES = 100_000;
const HEAP_MB = 64;
/** Where the real account's callers come from: allowed, and refused. */
const LISTED = '127.200.0.1';
const OTHER = '127.200.0.2';

let upstream: EchoUpstream;
let gw: GatewayProcess;
let pool: Pool;

beforeAll(async () => {
  upstream = await startEchoUpstream();
  gw = await startGateway({
    nodeArgs: [`--max-old-space-size=${HEAP_MB}`],
    env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_TRUSTED_PROXIES: '127.0.0.1', ALLOWGATE_LOG_ALLOW_SAMPLE: '0', ALLOWGATE_LOG_LEVEL: 'info' },
  });
  pool = new Pool(gw.url, { connections: 32 });
  expect((await gw.admin('POST', '/v1/accounts/ACREAL/ip-acl', { ip_address: LISTED })).status).toBe(201);
  // A listed account that every address may call: its callers are recorded for real.
  expect((await gw.admin('POST', '/v1/accounts/ACWIDE/ip-acl', { ip_address: '127.0.0.0/8' })).status).toBe(201);
  // Upstream bodies are not kept: 200,000 of them would be the test's memory, not the gateway's.
  upstream.server.prependListener('request', () => { if (upstream.seen.length > 100) upstream.seen.length = 0; });
});

afterAll(async () => {
  await pool?.close();
  await gw?.stop();
  await upstream?.close();
});

function address(k: number): string {
  return `127.${1 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`;
}

async function status(account: string, client: string): Promise<number> {
  const res = await pool.request({ path: '/v1/resource', method: 'GET', headers: { 'x-auth-id': account, 'x-forwarded-for': client } });
  await res.body.dump();
  return res.statusCode;
}

async function heapUsed(): Promise<number> {
  const text = await (await gw.admin('GET', '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith('nodejs_heap_size_used_bytes '));
  return Number(line!.split(' ')[1]);
}

async function realAccountDecided(): Promise<void> {
  expect(await status('ACREAL', LISTED)).toBe(200);
  expect(await status('ACREAL', OTHER)).toBe(403);
}

describe('memory bounds under a flood of distinct keys', () => {
  it(`stays up under --max-old-space-size=${HEAP_MB} through ${ACCOUNTS.toLocaleString('en-US')} made-up accounts and ${ADDRESSES.toLocaleString('en-US')} client addresses, deciding correctly, and its heap returns near its baseline`, async () => {
    // Warm: the code paths compiled, their one-off allocations made.
    for (let i = 0; i < 2_000; i++) await status(`ACWARM${i % 10}`, address(i));
    await realAccountDecided();
    await new Promise((r) => setTimeout(r, 1_500));
    const baseline = await heapUsed();

    const batch = 256;
    let sent = 0;
    let unexpected = 0;
    for (let i = 0; i < ACCOUNTS; i += batch) {
      const requests: Promise<number>[] = [];
      for (let j = i; j < Math.min(ACCOUNTS, i + batch); j++) {
        requests.push(status(`ACM${j}`, address(j % ADDRESSES)));
        // One in ten also calls the listed account from the same address: real recent callers.
        if (j % 10 === 0) requests.push(status('ACWIDE', address(j % ADDRESSES)));
      }
      const statuses = await Promise.all(requests);
      sent += statuses.length;
      // Accounts without a list are open by default: every one of them is forwarded.
      unexpected += statuses.filter((s) => s !== 200).length;
      if (i % 40_000 === 0) await realAccountDecided();
    }
    expect(sent).toBe(ACCOUNTS + ACCOUNTS / 10);
    expect(unexpected).toBe(0);
    expect(gw.child.exitCode).toBeNull();
    await realAccountDecided();

    // Bounded where it shows: the cache holds at most its segments, the listed account at most 1,000 callers.
    const text = await (await gw.admin('GET', '/metrics')).text();
    const entries = Number(text.split('\n').find((l) => l.startsWith('allowgate_cache_entries '))!.split(' ')[1]);
    expect(entries).toBeLessThanOrEqual(10_000 + 10);
    const recent = (await (await gw.admin('GET', '/v1/accounts/ACWIDE/recent-ips?limit=1000')).json()) as { ips: unknown[] };
    expect(recent.ips).toHaveLength(1_000);

    // Heap back near the baseline once the garbage of the flood is collected (V8 collects when it
    // allocates: the scrapes below allocate).
    let after = await heapUsed();
    for (let attempt = 0; attempt < 40 && after > baseline + 16 * 1024 * 1024; attempt++) {
      await new Promise((r) => setTimeout(r, 250));
      after = await heapUsed();
    }
    console.log(`heap used: baseline ${(baseline / 1048576).toFixed(1)} MiB, after the flood ${(after / 1048576).toFixed(1)} MiB`);
    expect(after).toBeLessThan(baseline + 16 * 1024 * 1024);
  }, 300_000);
});
