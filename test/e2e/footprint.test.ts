import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { parseAllDocuments } from 'yaml';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { startGateway, type GatewayProcess } from '../support/gateway-process.ts';

/**
 * The gateway fits the memory its own manifest grants, under the load that used to take it past:
 * 50 keep-alive connections at full speed, one account for the first half, then 20,000 distinct
 * accounts. Run under a cgroup v2 memory limit equal to the manifest's where this machine lets the
 * test create one; elsewhere with the same runtime flags (its heap ceiling) while the kernel's
 * high-water mark of the process's resident memory (VmHWM) is checked against that limit.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PHASE_MS = 8_000;
const ACCOUNTS = 20_000;
const CONNECTIONS = 50;

/** The allowgate container's memory limit in k8s/base, in bytes. */
function manifestLimit(): number {
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'k8s', 'base', 'deployment.yaml'), 'utf8')).map((d) => d.toJS() as { kind?: string; spec?: { template: { spec: { initContainers?: { name: string; resources: { limits: { memory: string } } }[] } } } });
  const pod = docs.find((d) => d.kind === 'Deployment')!.spec!.template.spec;
  const text = pod.initContainers!.find((c) => c.name === 'allowgate')!.resources.limits.memory;
  const match = /^(\d+)(Mi|Gi)$/.exec(text);
  if (match === null) throw new Error(`unexpected memory limit ${text}`);
  return Number(match[1]) * (match[2] === 'Gi' ? 2 ** 30 : 2 ** 20);
}

/** A cgroup v2 directory of our own with memory.max set, or why there is none. */
function cgroupWithLimit(limit: number): { dir: string } | { reason: string } {
  const root = '/sys/fs/cgroup';
  const controllers = join(root, 'cgroup.controllers');
  if (!existsSync(controllers)) return { reason: 'no cgroup v2 hierarchy at /sys/fs/cgroup' };
  if (!readFileSync(controllers, 'utf8').split(/\s+/).includes('memory')) return { reason: 'the cgroup v2 hierarchy has no memory controller' };
  const own = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
  if (own === undefined) return { reason: 'this process is in no cgroup v2 group' };
  const dir = join(root, own, `allowgate-footprint-${process.pid}`);
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, 'memory.max'), String(limit));
    writeFileSync(join(dir, 'memory.swap.max'), '0');
    return { dir };
  } catch (error) {
    try {
      rmdirSync(dir);
    } catch {
      // Never created.
    }
    return { reason: `cannot create a memory-limited cgroup here (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
  }
}

function peakRss(pid: number): number {
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

let upstream: EchoUpstream;
let gw: GatewayProcess;
let pool: Pool;
let cgroup: { dir: string } | { reason: string };
const limit = manifestLimit();

beforeAll(async () => {
  upstream = await startEchoUpstream();
  upstream.server.prependListener('request', () => { if (upstream.seen.length > 100) upstream.seen.length = 0; });
  gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_LOG_ALLOW_SAMPLE: '0', ALLOWGATE_LOG_LEVEL: 'info' } });
  cgroup = cgroupWithLimit(limit);
  if ('dir' in cgroup) writeFileSync(join(cgroup.dir, 'cgroup.procs'), String(gw.child.pid));
  pool = new Pool(gw.url, { connections: CONNECTIONS });
  expect((await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '127.0.0.1' })).status).toBe(201);
});

afterAll(async () => {
  await pool?.close();
  await gw?.stop();
  await upstream?.close();
  if (cgroup !== undefined && 'dir' in cgroup) rmdirSync(cgroup.dir);
});

/** Keeps every connection busy for `ms`; returns how many answers were not 200. */
async function load(ms: number, account: (n: number) => string): Promise<{ requests: number; failed: number }> {
  const until = performance.now() + ms;
  let requests = 0;
  let failed = 0;
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (performance.now() < until) {
      const n = requests++;
      const res = await pool.request({ path: '/v1/resource', method: 'GET', headers: { 'x-auth-id': account(n) } });
      await res.body.dump();
      if (res.statusCode !== 200) failed++;
    }
  }));
  return { requests, failed };
}

describe('memory within the manifest\'s limit', () => {
  it(`serves 50 keep-alive connections at full speed (one account, then ${ACCOUNTS.toLocaleString('en-US')}) within the allowgate container's memory limit`, async () => {
    const how = 'dir' in cgroup ? `a cgroup v2 memory limit of ${limit / 2 ** 20} MiB` : `the runtime's heap ceiling, peak RSS checked against ${limit / 2 ** 20} MiB (${cgroup.reason})`;
    const one = await load(PHASE_MS, () => 'AC1');
    const many = await load(PHASE_MS, (n) => `AC${(n % ACCOUNTS) + 1}`);
    expect(gw.child.exitCode).toBeNull();
    expect(one.failed + many.failed).toBe(0);
    const peak = peakRss(gw.child.pid!);
    console.log(`footprint under ${how}: ${one.requests + many.requests} requests, peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`);
    expect(peak).toBeLessThan(limit);
    // Still answering after the load.
    expect((await fetch(`${gw.adminUrl}/healthz`)).status).toBe(200);
  }, 60_000);
});
