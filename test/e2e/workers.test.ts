import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * `workers: 2` over a real Redis: the primary serves the admin listener, two worker processes
 * the proxy port. Connections are spread over both, a change made through the primary is
 * enforced by both at once, /metrics counts every process, a killed worker is replaced, and
 * SIGTERM stops the lot cleanly.
 */

const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';
const ROUND = 30;

/** The primary's children, its workers: read from /proc, so no procps is needed. */
function workerPids(gw: GatewayProcess): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === gw.child.pid) pids.push(Number(name));
  }
  return pids.sort((a, b) => a - b);
}

/** Every proxy answer the tests received, by status: what /metrics must add up to across workers. */
const answered = new Map<number, number>();

async function statuses(gw: GatewayProcess, from: string, count = ROUND): Promise<number[]> {
  const out: number[] = [];
  // A new connection each time (send uses no agent): the cluster hands each to the next worker.
  for (let i = 0; i < count; i++) {
    const { status } = await send(`${gw.url}/v1/calls`, { localAddress: from, headers: { 'x-auth-id': 'AC1' } });
    answered.set(status, (answered.get(status) ?? 0) + 1);
    out.push(status);
  }
  return out;
}

function counter(text: string, line: RegExp): number {
  return text.split('\n').filter((l) => line.test(l)).reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('workers: 2 over one Redis', () => {
  let redis: RedisServer;
  let upstream: EchoUpstream;
  let gw: GatewayProcess;

  beforeAll(async () => {
    redis = await startRedis();
    upstream = await startEchoUpstream();
    gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_STORE: redis.url, ALLOWGATE_WORKERS: '2', ALLOWGATE_LOG_LEVEL: 'info' }, timeoutMs: 20_000 });
  });

  afterAll(async () => {
    if (gw && gw.child.exitCode === null) await gw.stop('SIGKILL');
    await upstream?.close();
    await redis?.stop();
  });

  it('starts two workers and reports them ready', async () => {
    expect(workerPids(gw)).toHaveLength(2);
    expect(gw.logs.find((l) => l['msg'] === 'allowgate listening')?.['workers']).toBe(2);
    const ready = await fetch(`${gw.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { workers: unknown }).workers).toEqual({ ready: true, count: 2, listening: 2 });
  });

  it('spreads callers over both workers, each enforcing a change made through the primary at once', async () => {
    // A second entry keeps the list non-empty once the office's is deleted (an empty list is no list).
    expect((await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '127.0.0.9/32' })).status).toBe(201);
    const created = await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `${OFFICE}/32` });
    expect(created.status).toBe(201);
    const id = ((await created.json()) as { id: string }).id;
    expect(await statuses(gw, OFFICE)).toEqual(Array(ROUND).fill(200));
    expect(await statuses(gw, STRANGER)).toEqual(Array(ROUND).fill(403));
    // The access log (every allow logged in tests) names the worker that served each request.
    await waitUntil('allows logged', () => gw.logs.filter((l) => l['decision'] === 'allow' && l['account'] === 'AC1').length >= ROUND, 5_000);
    const servedBy = new Set(gw.logs.filter((l) => l['decision'] === 'allow' && l['account'] === 'AC1').map((l) => l['worker']));
    expect([...servedBy].sort()).toEqual([1, 2]);

    // Deleted through the primary: both workers refuse the office from the next request on.
    expect((await gw.admin('DELETE', `/v1/accounts/AC1/ip-acl/${id}`)).status).toBe(200);
    await waitUntil('office refused by both workers', async () => (await statuses(gw, OFFICE, 4)).every((s) => s === 403), 3_000);
    expect(await statuses(gw, OFFICE)).toEqual(Array(ROUND).fill(403));
  });

  it('serves /metrics for every process: the requests of both workers, the primary\'s admin calls', async () => {
    const text = await (await gw.admin('GET', '/metrics')).text();
    // Exactly what the callers received, summed over both workers. The wait for the deletion to
    // reach both workers may have seen an allow or two: the change travels over Redis, not by
    // the admin call's answer, so the tally is of answers, not of what the test meant to send.
    const allowed = answered.get(200) ?? 0;
    const refused = answered.get(403) ?? 0;
    expect(allowed).toBeGreaterThanOrEqual(ROUND);
    expect(refused).toBeGreaterThanOrEqual(2 * ROUND + 4);
    expect(counter(text, /^allowgate_requests_total\{surface="proxy",decision="allow",/)).toBe(allowed);
    expect(counter(text, /^allowgate_requests_total\{surface="proxy",decision="deny",/)).toBe(refused);
    expect(counter(text, /^allowgate_admin_requests_total\{/)).toBeGreaterThanOrEqual(2);
    // A gauge that must not be summed over three processes.
    expect(text).toMatch(/^allowgate_store_up\{store="redis"\} 1$/m);
  });

  it('replaces a worker that dies, and keeps serving meanwhile', async () => {
    const [victim, survivor] = workerPids(gw);
    process.kill(victim!, 'SIGKILL');
    await waitUntil('replacement started', () => gw.logs.some((l) => l['msg'] === 'worker exited; starting a replacement' && l['signal'] === 'SIGKILL'), 5_000);
    // The survivor answers while the replacement starts.
    expect(await statuses(gw, STRANGER, 4)).toEqual([403, 403, 403, 403]);
    await waitUntil('two workers listening again', async () => {
      const ready = await fetch(`${gw.adminUrl}/readyz`);
      return ready.status === 200 && ((await ready.json()) as { workers: { listening: number } }).workers.listening === 2;
    }, 10_000);
    const now = workerPids(gw);
    expect(now).toContain(survivor);
    expect(now).not.toContain(victim);
  });

  it('stops every process cleanly on SIGTERM to the primary', async () => {
    const pids = workerPids(gw);
    expect(await gw.stop('SIGTERM')).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    expect(gw.logs.some((l) => l['msg'] === 'stopped')).toBe(true);
    expect(gw.logs.filter((l) => l['level'] === 'error' && l['msg'] !== 'worker exited; starting a replacement')).toEqual([]);
  });
});
