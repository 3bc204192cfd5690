/**
 * Two allowgate replicas over one redis-server (Debian package `redis-server`), on loopback:
 *
 *   propagation  an entry added (or removed) through replica A's admin API, from the moment the
 *                write is acknowledged to the first request on replica B that the change decides;
 *                B's periodic sweep is pushed out to 10 minutes, so only the change notification
 *                counts.
 *   cold miss    the first request on B for an account it has never seen (its list read from
 *                Redis and compiled) against the next request for the same account (cached).
 *
 *   npm run bench:propagation [-- --quick]
 */
import { Agent } from 'node:http';
import { proxied, startAllowgate, type Allowgate } from './lib/allowgate.ts';
import { startServer } from './lib/forwarders.ts';
import { ensureTool, startRedis, stopAll, workDir } from './lib/processes.ts';
import { median, percentile, report, verdict, type Table } from './lib/report.ts';

const quick = process.argv.includes('--quick');
const CHANGES = quick ? 40 : 200;
const COLD_ACCOUNTS = quick ? 100 : 500;
const CALLER = '127.0.0.1';
const OTHER = '127.0.0.2'; // the office the account always allows, so it is never empty
const agent = new Agent({ keepAlive: true, maxSockets: 4 });

try {
  const tool = ensureTool('redis-server', 'redis-server');
  if (tool !== true) console.log(`propagation benchmark skipped: ${tool}`);
  else await main();
} finally {
  agent.destroy();
  await stopAll();
}

async function main(): Promise<void> {
  const dir = workDir('propagation');
  const store = await startRedis(dir);
  const upstream = await startServer('upstream');
  const env = { ALLOWGATE_REDIS_SWEEP_INTERVAL_MS: '600000', ALLOWGATE_LOG_LEVEL: 'warn' };
  const options = { upstreamUrl: upstream.url, store, dir, env };
  const [a, b] = await Promise.all([startAllowgate(options), startAllowgate(options)]);

  // Propagation: toggle the caller's own entry on A, poll B until it decides the new way.
  await a.admin('POST', '/v1/accounts/ACP/ip-acl', { ip_address: `${OTHER}/32` });
  await until(b, 'ACP', 403);
  const propagation: number[] = [];
  for (let i = 0; i < CHANGES / 2; i++) {
    const added = await a.admin('POST', '/v1/accounts/ACP/ip-acl', { ip_address: `${CALLER}/32` });
    propagation.push(await until(b, 'ACP', 200));
    await a.admin('DELETE', `/v1/accounts/ACP/ip-acl/${(added as { id: string }).id}`);
    propagation.push(await until(b, 'ACP', 403));
  }

  // Cold miss: accounts created through A, never requested on B before.
  for (let n = 0; n < COLD_ACCOUNTS; n++) await a.admin('POST', `/v1/accounts/ACC${n}/ip-acl`, { ip_address: `${CALLER}/32` });
  for (let n = 0; n < 20; n++) await proxied(b, 'ACP', agent); // B's connections and JIT warm
  const cold: number[] = [];
  const warm: number[] = [];
  for (let n = 0; n < COLD_ACCOUNTS; n++) {
    const first = await timed(b, `ACC${n}`);
    const second = await timed(b, `ACC${n}`);
    if (first.status !== 200 || second.status !== 200) throw new Error(`account ACC${n} answered ${first.status}/${second.status}, expected 200`);
    cold.push(first.ms);
    warm.push(second.ms);
  }

  const rows = [
    row(`propagation A -> B (${propagation.length} changes)`, propagation),
    row(`first request, uncached account (${cold.length})`, cold),
    row(`next request, same account (${warm.length})`, warm),
  ];
  const p99 = (xs: number[]): number => percentile(xs, 99);
  const table: Table = {
    title: 'Two replicas over one Redis (loopback): change-to-enforcement and cold-miss latency, ms',
    columns: ['measure', 'p50', 'p90', 'p99', 'max'],
    rows,
    notes: [
      verdict('propagation p99 < 100 ms', p99(propagation) < 100, `${p99(propagation).toFixed(2)} ms`),
      verdict('cold-miss p99 < 2 ms', p99(cold) < 2, `${p99(cold).toFixed(2)} ms`),
      `cold miss costs ${(median(cold) - median(warm)).toFixed(2)} ms at the median over a cached request (one Redis round trip for the compiled list)`,
      'each figure includes one proxied request round trip (client -> replica B -> upstream); B\'s sweep is set to 10 minutes',
    ],
  };
  report('propagation', [table], { propagationMs: propagation, coldMs: cold, warmMs: warm });
}

function row(label: string, xs: number[]): (string | number)[] {
  return [label, percentile(xs, 50), percentile(xs, 90), percentile(xs, 99), Math.max(...xs)];
}



async function timed(gw: Allowgate, account: string): Promise<{ status: number; ms: number }> {
  const start = performance.now();
  const status = await proxied(gw, account, agent);
  return { status, ms: performance.now() - start };
}

/** Milliseconds from now until the replica answers `status` for the account (10 s at most). */
async function until(gw: Allowgate, account: string, status: number): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < 10_000) {
    if ((await proxied(gw, account, agent)) === status) return performance.now() - start;
  }
  throw new Error(`replica did not answer ${status} for ${account} within 10 s`);
}
