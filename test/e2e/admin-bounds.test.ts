import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { request, type ClientRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { attacks, sendAttack, wideRange } from '../support/admin-attacks.ts';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { ADMIN_TOKEN, startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { scratchDir } from '../support/scratch.ts';
import { STORE_KINDS, useFleet } from '../support/store-fleet.ts';
import { waitUntil } from '../support/wait.ts';

/*
 * One tenant's admin traffic cannot stall or crash the gateway: an account credential sends the
 * worst list bodies it can (1 MiB of wide IPv6 ranges as CSV and JSON, rows over the network
 * limit, a key flood, deep nesting, a body that never ends), several at once and over and over,
 * while another account's allowed caller goes through the proxy, on each store. The gateway runs
 * as the Kubernetes manifests run it (a 128 MiB heap ceiling) and must stay within their 256 MiB
 * memory limit. The latency bound here is generous (a loaded 2-core machine);
 * bench/admin-bounds.ts measures it strictly.
 */

const ATTACKER_TOKEN = 'bounds-attacker-token-0123456789';
const VICTIM_CALLER = '127.0.0.2';
const ATTACKERS = 4;
const ATTACK_RUNNER = fileURLToPath(new URL('../support/admin-attacks.ts', import.meta.url));
const ATTACK_MS = 4_000;
/** The gateway container's memory limit in k8s/base/deployment.yaml. */
const MANIFEST_MEMORY_LIMIT_MIB = 256;
/** Writes in progress at once, all credentials together (one credential: 4, the default). */
const CONCURRENT_WRITES = 6;
/** Generous: a stall like the one this guards against (seconds) is far beyond it. */
const P99_MARGIN_MS = 100;

/** Times one request of an allowed caller of `account` through the proxy. */
async function timedCall(gw: GatewayProcess, account: string): Promise<number> {
  const start = performance.now();
  const reply = await send(`${gw.url}/v1/calls`, { headers: { 'x-auth-id': account }, localAddress: VICTIM_CALLER });
  expect(reply.status).toBe(200);
  return performance.now() - start;
}

/** The p99 of 300 calls in a row. */
async function p99Alone(call: () => Promise<number>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 300; i++) samples.push(await call());
  return p99(samples);
}

function p99(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
}

/** Peak resident memory of a process, in MiB (VmHWM). */
function peakRssMiB(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) / 1024;
}

const DIGEST = createHash('sha256').update(ATTACKER_TOKEN).digest('hex');

describe.each(STORE_KINDS)('admin bodies from an account credential on the %s store', (kind) => {
  // The write pace is raised so the bodies themselves, not the rate limit, are what is tested.
  const running = useFleet(kind, {
    replicas: 1,
    config: ['admin:', `  writes: {perSecond: 1000, burst: 1000, concurrent: ${CONCURRENT_WRITES}}`, '  credentials:', `    - {name: attacker, role: account, account: ATT, tokenSha256: ${DIGEST}}`, ''].join('\n'),
  });
  let gw: GatewayProcess;

  beforeAll(async () => {
    gw = running().at(0);
    expect((await gw.admin('POST', '/v1/accounts/VIC/ip-acl', { ip_address: `${VICTIM_CALLER}/32` })).status).toBe(201);
  }, 30_000);

  const victim = (): Promise<number> => timedCall(gw, 'VIC');

  it('refuses each worst body with a reason, cheaply, and writes nothing', async () => {
    const expected: Record<string, [number, string]> = {
      'wide CSV import': [409, 'limit_reached'],
      'wide JSON import': [409, 'limit_reached'],
      'wide JSON replace': [409, 'limit_reached'],
      '50 rows of 254 networks': [400, 'too_many_networks'],
      '60,000 keys in one item': [400, 'unknown_field'],
      'nesting 500,000 deep': [400, 'invalid_json'],
      'endless CSV body': [409, 'limit_reached'],
    };
    for (const attack of attacks('ATT')) {
      const start = performance.now();
      const reply = await sendAttack(gw.adminUrl, ATTACKER_TOKEN, attack);
      const [status, reason] = expected[attack.name]!;
      expect(performance.now() - start, attack.name).toBeLessThan(2_000);
      // A body that never ends: the answer goes out at once and the connection is closed soon
      // after, which a client still writing may see as a reset before it reads the answer.
      if (attack.name === 'endless CSV body' && reply.status === 0) continue;
      expect({ attack: attack.name, status: reply.status, reason: (JSON.parse(reply.body) as { reason: string }).reason }).toEqual({ attack: attack.name, status, reason });
    }
    expect((await gw.admin('GET', '/v1/accounts/ATT')).headers.get('etag')).toBe('"0"');
    // A row over the network limit is named; the limit is per entry.
    const one = await fetch(`${gw.adminUrl}/v1/accounts/ATT/ip-acl`, { method: 'POST', headers: { authorization: `Bearer ${ATTACKER_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ ip_address: wideRange(7) }) });
    expect(await one.json()).toMatchObject({ code: 400, reason: 'too_many_networks', error: expect.stringMatching(/expands into \d{3} networks; an entry may hold at most 64/) });
  }, 60_000);

  it('bounds the networks one request expands into, for the owner too: 2,000 rows of 62 networks each are refused whole', async () => {
    expect((await gw.admin('PUT', '/v1/accounts/BIG', { max_entries: 5_000 })).status).toBe(200);
    // Each row within the 64 networks an entry may hold; together 124,000.
    const rows = Array.from({ length: 2_000 }, (_, i) => `2001:db8:${i.toString(16)}::1 - 2001:db8:${i.toString(16)}::ffff:fffe`);
    const res = await fetch(`${gw.adminUrl}/v1/accounts/BIG/ip-acl/import`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'text/csv' }, body: ['ip_address', ...rows].join('\n'),
    });
    expect(await res.json()).toMatchObject({ code: 413, reason: 'too_many_networks', error: expect.stringContaining('more than the 100000 one request may hold') });
    expect(await (await gw.admin('GET', '/v1/accounts/BIG/ip-acl')).json()).toMatchObject({ total: 0 });
  });

  it('holds a credential to 4 writes in progress and all of them to 6, each refusal with Retry-After, and frees the slots as the writes end', async () => {
    const held: { req: ClientRequest; answered: boolean }[] = [];
    /** An import whose body stops after its header row: a write in progress until it is cut. */
    const slowImport = (token: string, account: string): void => {
      if (stopped) return;
      const slow = { req: null as unknown as ClientRequest, answered: false };
      slow.req = request(`${gw.adminUrl}/v1/accounts/${account}/ip-acl/import`, {
        // A connection of its own (no pooled one the gateway may have closed after an earlier answer).
        agent: false, method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv', 'content-length': '100000' },
      });
      // Answered at once when a probe took the slot first: then it is sent again.
      slow.req.on('response', (res) => { slow.answered = true; res.resume(); setImmediate(() => slowImport(token, account)); });
      slow.req.on('error', () => undefined);
      slow.req.write('ip_address\n');
      held.push(slow);
    };
    let stopped = false;
    const holding = (): number => held.filter((slow) => !slow.answered).length;
    /** A write that changes nothing (a dry run), to see whether a slot is free. */
    const probe = (token: string, account: string): Promise<Response> => fetch(`${gw.adminUrl}/v1/accounts/${account}/ip-acl?dry_run=true`, {
      method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ entries: [] }),
    });
    try {
      for (let i = 0; i < 4; i++) slowImport(ATTACKER_TOKEN, 'ATT');
      await waitUntil('the attacker\'s four writes in progress', async () => (await probe(ATTACKER_TOKEN, 'ATT')).status === 429 && holding() === 4, 10_000);
      const mine = await probe(ATTACKER_TOKEN, 'ATT');
      expect([mine.status, mine.headers.get('retry-after')]).toEqual([429, '1']);
      expect(await mine.json()).toMatchObject({ reason: 'writes_in_progress', error: expect.stringContaining('credential attacker already has 4 writes in progress') });
      // Another credential still writes, up to the bound on all writes in progress.
      expect((await probe(ADMIN_TOKEN, 'OWN')).status).toBe(200);
      for (let i = 4; i < CONCURRENT_WRITES; i++) slowImport(ADMIN_TOKEN, 'OWN');
      await waitUntil('every write slot taken', async () => (await probe(ADMIN_TOKEN, 'OWN')).status === 503 && holding() === CONCURRENT_WRITES, 10_000);
      const busy = await probe(ADMIN_TOKEN, 'OWN');
      expect([busy.status, busy.headers.get('retry-after')]).toEqual([503, '1']);
      expect(await busy.json()).toMatchObject({ reason: 'admin_busy', error: expect.stringContaining(`${CONCURRENT_WRITES} writes in progress`) });
      // Reads are not bounded, and the proxy serves on.
      expect((await gw.admin('GET', '/v1/accounts/ATT/ip-acl')).status).toBe(200);
      await victim();
    } finally {
      stopped = true;
      held.forEach((slow) => { slow.answered = true; });
      for (const slow of held) slow.req.destroy();
    }
    await waitUntil('the slots freed as the writes end', async () => (await probe(ATTACKER_TOKEN, 'ATT')).status === 200, 10_000);
    expect((await gw.admin('POST', '/v1/accounts/OWN/ip-acl', { ip_address: '10.1.0.0/24' })).status).toBe(201);
    expect((await gw.admin('GET', '/v1/accounts/ATT')).headers.get('etag')).toBe('"0"');
  }, 60_000);

  // The latency and memory under attack do not depend on the store (bodies are refused or parsed
  // before it is reached): measured once, on the default store, so the machine's load weighs once.
  if (kind === 'memory') it('keeps another account\'s allowed caller fast, and the gateway within its memory, while the worst bodies arrive in parallel', async () => {
    for (let i = 0; i < 50; i++) await victim(); // warm
    const before = await p99Alone(victim);

    // The attack runs in a process of its own: this one only measures.
    const attacker = spawn(process.execPath, [ATTACK_RUNNER, gw.adminUrl, ATTACKER_TOKEN, 'ATT', String(ATTACKERS), String(ATTACK_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    attacker.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    const finished = new Promise<void>((resolve) => attacker.once('exit', () => resolve()));
    const during: number[] = [];
    const deadline = Date.now() + ATTACK_MS;
    await sleep(200); // the runner starting up
    while (Date.now() < deadline) during.push(await victim());
    await finished;
    const statuses = new Map(Object.entries((JSON.parse(output) as { statuses: Record<string, number> }).statuses).map(([s, n]) => [Number(s), n]));

    // Alone before and after: the machine is shared, and its load may move while the bodies arrive.
    const base = Math.max(before, await p99Alone(victim));
    const loaded = p99(during);
    console.log(`allowed caller p99 on the ${kind} store: ${base.toFixed(1)} ms alone, ${loaded.toFixed(1)} ms during ${[...statuses.values()].reduce((a, b) => a + b, 0)} worst-case admin bodies (${during.length} samples); peak RSS ${peakRssMiB(gw.child.pid!).toFixed(0)} MiB`);
    expect(loaded).toBeLessThan(base + P99_MARGIN_MS);
    // Every body was answered with a refusal, none crashed anything: 4xx, or 429/503 when over the write limits.
    expect([...statuses.keys()].every((s) => s === 0 || s === 400 || s === 409 || s === 413 || s === 429 || s === 503), JSON.stringify([...statuses])).toBe(true);
    expect(peakRssMiB(gw.child.pid!)).toBeLessThan(MANIFEST_MEMORY_LIMIT_MIB);
    expect(gw.child.exitCode).toBeNull();
    expect((await gw.admin('GET', '/v1/accounts/ATT')).headers.get('etag')).toBe('"0"');
  }, 60_000);
});

describe('admin writes to a file store of many accounts', () => {
  const ACCOUNTS = 3_000;
  const ENTRIES = 30;
  const dir = scratchDir();
  let upstream: EchoUpstream;
  let gw: GatewayProcess;

  beforeAll(async () => {
    // Written as the store writes it, so the gateway starts with every account in place.
    const at = new Date().toISOString();
    const accounts: Record<string, unknown> = {};
    for (let a = 0; a < ACCOUNTS; a++) {
      const entries = Array.from({ length: ENTRIES }, (_, i) => {
        const cidr = `10.${i}.${a >> 8}.${a & 255}/32`;
        return { id: `ipacl_${a}_${i}`, ipAddress: cidr, cidrs: [cidr], action: 'allow', description: `entry ${i} of account ${a}`, enabled: true, createdAt: at, updatedAt: at };
      });
      accounts[`BULK${a}`] = { account: `BULK${a}`, version: 1, settings: {}, entries };
    }
    const store = join(dir.path, 'store.json');
    writeFileSync(store, JSON.stringify({ format: 'allowgate-store', version: 1, accounts }));
    upstream = await startEchoUpstream();
    gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_STORE: `file:${store}`, ALLOWGATE_LOG_LEVEL: 'info', ALLOWGATE_LOG_ALLOW_SAMPLE: '0' }, timeoutMs: 30_000 });
    expect((await gw.admin('POST', '/v1/accounts/VIC/ip-acl', { ip_address: `${VICTIM_CALLER}/32` })).status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
    dir.remove();
  });

  it('keeps an allowed caller fast while every write saves all of them', async () => {
    const victim = (): Promise<number> => timedCall(gw, 'VIC');
    for (let i = 0; i < 50; i++) await victim(); // warm
    const before = await p99Alone(victim);
    // One writer, one write after another: each rewrites the whole file.
    let writes = 0;
    const deadline = Date.now() + 4_000;
    const writer = (async () => {
      for (let n = 0; Date.now() < deadline; n++) {
        const res = await gw.admin('PUT', `/v1/accounts/BULK${n % ACCOUNTS}`, { mode: n % 2 === 0 ? 'enforce' : 'report-only' });
        expect(res.status).toBe(200);
        writes++;
      }
    })();
    const during: number[] = [];
    while (Date.now() < deadline) during.push(await victim());
    await writer;
    const base = Math.max(before, await p99Alone(victim));
    const loaded = p99(during);
    console.log(`allowed caller p99 beside a file store of ${ACCOUNTS} accounts of ${ENTRIES} entries: ${base.toFixed(1)} ms alone, ${loaded.toFixed(1)} ms during ${writes} writes (${during.length} samples)`);
    expect(writes).toBeGreaterThan(0);
    expect(loaded).toBeLessThan(base + P99_MARGIN_MS);
    // Every write is in the file.
    const saved = JSON.parse(readFileSync(join(dir.path, 'store.json'), 'utf8')) as { accounts: Record<string, { version: number }> };
    expect(Object.keys(saved.accounts)).toHaveLength(ACCOUNTS + 1);
    expect(saved.accounts['BULK0']?.version).toBe(1 + Math.ceil(writes / ACCOUNTS));
  }, 60_000);
});
