/**
 * allowgate over one redis-server with many accounts (100,000 by default), on loopback: what a
 * replica costs as the number of accounts grows, measured in one run for this tree and, with
 * `--before <git revision>`, for an earlier one (exported to a temporary directory and run the
 * same way), so the two are compared under the same load on the same machine.
 *
 *   seeding          every account's list written through one replica's admin API (one bulk PUT
 *                    of 5 entries per account, 16 at a time): wall time, and that replica's RSS
 *                    afterwards (a writer that caches what it writes grows with it)
 *   Redis            used_memory per account after seeding, and per key kind (MEMORY USAGE of a
 *                    sample)
 *   cold start       a new replica, from spawn to /readyz answering 200
 *   first request    on that replica, the first request of 2,000 accounts it never saw (each
 *                    one Redis round trip), p50 / p99
 *   idle             two replicas holding every account warm, each alone (the other stopped) for
 *                    30 s with no traffic: CPU (from /proc) and Redis commands per second; then
 *                    30 s of one request of a warm account every 20 ms: its p50 / p99 / max
 *   RSS vs maxBytes  a replica with cache.maxBytes 16 MiB that every account passes through:
 *                    its RSS and heap against the bound, and what it says it holds
 *
 *   npm run bench:scale [-- --accounts 100000] [--before <rev>] [--quick]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { CLI, metric, proxied, startAllowgate, type Allowgate } from './lib/allowgate.ts';
import { startServer } from './lib/forwarders.ts';
import { ensureTool, startRedis, stopAll, workDir } from './lib/processes.ts';
import { percentile, report, type Table } from './lib/report.ts';

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
};
const quick = args.includes('--quick');
const ACCOUNTS = Number(option('--accounts') ?? (quick ? 10_000 : 100_000));
const BEFORE = option('--before');
const FIRST_REQUESTS = Math.min(2_000, ACCOUNTS);
const IDLE_MS = quick ? 10_000 : 30_000;
const PROBE_EVERY_MS = 20;
const SEED_CONCURRENCY = 16;
const WARM_CONCURRENCY = 8;
const SMALL_CACHE_BYTES = 16 * 1024 * 1024;
const CALLER = '127.0.0.1';
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

interface Figures {
  readonly tree: string;
  readonly seedSeconds: number;
  readonly seedRate: number;
  readonly seederRssMiB: number;
  readonly redisBytesPerAccount: number;
  readonly redisKeyBytes: Record<string, number>;
  readonly coldStartMs: number;
  readonly firstRequest: { readonly p50: number; readonly p99: number };
  readonly idle: readonly { readonly cpuPercent: number; readonly redisCommandsPerSecond: number }[];
  readonly idleProbe: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly smallCache: { readonly rssMiB: number; readonly heapMiB: number; readonly cacheMiB: number; readonly entries: number };
}

try {
  const tool = ensureTool('redis-server', 'redis-server');
  if (tool !== true) console.log(`scale benchmark skipped: ${tool}`);
  else await main();
} finally {
  agent.destroy();
  await stopAll();
}

async function main(): Promise<void> {
  const trees: { name: string; cli: string }[] = [];
  if (BEFORE !== undefined) trees.push({ name: `before (${BEFORE})`, cli: exportTree(BEFORE) });
  trees.push({ name: 'this tree', cli: CLI });
  const results: Figures[] = [];
  for (const tree of trees) {
    console.log(`\n== ${tree.name}: ${ACCOUNTS.toLocaleString('en-US')} accounts`);
    results.push(await measure(tree.name, tree.cli));
  }
  const columns = ['measure', ...results.map((r) => r.tree)];
  const row = (label: string, pick: (f: Figures) => number | string): (string | number)[] => [label, ...results.map(pick)];
  const table: Table = {
    title: `${ACCOUNTS.toLocaleString('en-US')} accounts (5 entries each) over one redis-server, loopback`,
    columns,
    rows: [
      row('seeding, s (bulk PUT per account, 16 at a time)', (f) => f.seedSeconds),
      row('seeding, accounts/s', (f) => f.seedRate),
      row('seeding replica RSS after, MiB', (f) => f.seederRssMiB),
      row('Redis bytes per account', (f) => f.redisBytesPerAccount),
      ...Object.keys(results.at(-1)!.redisKeyBytes).map((key) => row(`  of which ${key}, bytes (sample)`, (f) => f.redisKeyBytes[key] ?? '-')),
      row('cold start to ready, ms', (f) => f.coldStartMs),
      row(`first request of an unseen account, p50 ms (${FIRST_REQUESTS})`, (f) => f.firstRequest.p50),
      row('first request of an unseen account, p99 ms', (f) => f.firstRequest.p99),
      ...[0, 1].flatMap((r) => [
        row(`idle replica ${r + 1} (all accounts cached), CPU %`, (f) => f.idle[r]?.cpuPercent ?? '-'),
        row(`idle replica ${r + 1}, Redis commands/s`, (f) => f.idle[r]?.redisCommandsPerSecond ?? '-'),
      ]),
      row('warm request while idle, p50 ms', (f) => f.idleProbe.p50),
      row('warm request while idle, p99 ms', (f) => f.idleProbe.p99),
      row('warm request while idle, max ms', (f) => f.idleProbe.max),
      row(`cache.maxBytes ${SMALL_CACHE_BYTES / 2 ** 20} MiB: RSS after all accounts, MiB`, (f) => f.smallCache.rssMiB),
      row('  heap used, MiB', (f) => f.smallCache.heapMiB),
      row('  allowgate_cache_bytes, MiB', (f) => f.smallCache.cacheMiB),
      row('  lists held', (f) => f.smallCache.entries),
    ],
    notes: [
      'every figure of a column comes from one run; the columns ran one after the other on the same machine, which is shared: compare them as ratios',
      'both trees run under Node\'s defaults (no footprint flags); the idle replicas are given room for every account (cache.maxEntries, cache.maxBytes 1 GiB), the seeding replica runs with its tree\'s defaults',
      'Redis commands/s: total_commands_processed over the idle window with only that replica connected, minus the measuring INFO calls',
    ],
  };
  report('scale', [table], { accounts: ACCOUNTS, results });
}

/** `git archive` of `rev` into a temporary directory, sharing this tree's node_modules; its CLI. */
function exportTree(rev: string): string {
  const dir = workDir('scale-tree');
  const root = join(dir, 'tree');
  mkdirSync(root);
  const here = join(CLI, '..', '..');
  execFileSync('sh', ['-c', `git -C "$1" archive "$2" | tar -x -C "$3"`, 'sh', here, rev, root]);
  symlinkSync(join(here, 'node_modules'), join(root, 'node_modules'));
  return join(root, 'src', 'cli.ts');
}

async function measure(tree: string, cli: string): Promise<Figures> {
  const dir = workDir('scale');
  const redisUrl = await startRedis(dir);
  const redis = new Redis(redisUrl);
  const upstream = await startServer('upstream');
  const env = { ALLOWGATE_LOG_LEVEL: 'warn' };
  // Seeding is one owner writing as fast as it can: the per-credential write limits raised.
  const writes = 'admin:\n  writes: {perSecond: 100000, burst: 1000000, concurrent: 64, concurrentPerCredential: 64}\n';
  // Both trees under Node's defaults (runtime: false), so the columns compare the code; `npm start`
  // adds this project's footprint flags on top, which lower RSS further.
  const start = (config = ''): Promise<Allowgate> =>
    startAllowgate({ upstreamUrl: upstream.url, store: redisUrl, dir, env, cli, config: writes + config, startTimeoutMs: 120_000, runtime: false });
  // Room for every account in the idle replicas' caches: the cost measured is the one of holding them.
  const everything = `cache:\n  maxEntries: ${2 * ACCOUNTS}\n  maxBytes: ${2 ** 30}\n`;
  try {
    const baseline = await usedMemory(redis);
    // Seeding, through one replica.
    const seeder = await start();
    const seedStart = performance.now();
    await forEach(ACCOUNTS, SEED_CONCURRENCY, (n) => retried(() => seeder.admin('PUT', `/v1/accounts/AC${n}/ip-acl`, { entries: entriesOf(n) })));
    const seedSeconds = (performance.now() - seedStart) / 1000;
    const seederRssMiB = rssMiB(seeder.pid);
    console.log(`seeded in ${seedSeconds.toFixed(1)} s; seeding replica RSS ${seederRssMiB} MiB`);
    const redisBytesPerAccount = Math.round(((await usedMemory(redis)) - baseline) / ACCOUNTS);
    const redisKeyBytes = await keyBytes(redis);
    await stop(seeder);

    // Cold start and first requests, on a replica that never saw the accounts.
    const spawned = performance.now();
    const first = await start(everything);
    const coldStartMs = performance.now() - spawned;
    for (let i = 0; i < 50; i++) await proxied(first, 'AC1', agent); // connections and JIT warm
    const firsts: number[] = [];
    for (let i = 0; i < FIRST_REQUESTS; i++) {
      const n = 2 + Math.floor((i * (ACCOUNTS - 2)) / FIRST_REQUESTS);
      const began = performance.now();
      const status = await proxied(first, `AC${n}`, agent);
      if (status !== 200) throw new Error(`AC${n} answered ${status}`);
      firsts.push(performance.now() - began);
    }
    console.log(`cold start ${coldStartMs.toFixed(0)} ms; first request p99 ${percentile(firsts, 99).toFixed(2)} ms`);

    // Idle: two replicas with every account cached (the first one, and a second warmed the same way).
    const second = await start(everything);
    for (const replica of [first, second]) await forEach(ACCOUNTS, WARM_CONCURRENCY, async (n) => expect200(await proxied(replica, `AC${n}`, agent), n));
    await sleep(6_000); // let a sweep or two pass after warming
    const idle: { cpuPercent: number; redisCommandsPerSecond: number }[] = [];
    let probes: number[] = [];
    for (const replica of [first, second]) {
      // One replica at a time connected, so Redis's command count is its own.
      const other = replica === first ? second : first;
      process.kill(other.pid, 'SIGSTOP');
      try {
        await sleep(500);
        // No traffic at all: what the replica costs by itself.
        const cpu0 = cpuSeconds(replica.pid);
        const cmd0 = await commandsProcessed(redis);
        const began = performance.now();
        await sleep(IDLE_MS);
        const seconds = (performance.now() - began) / 1000;
        const cmd1 = await commandsProcessed(redis);
        idle.push({
          cpuPercent: round1((100 * (cpuSeconds(replica.pid) - cpu0)) / seconds),
          // Each INFO call of ours is one command.
          redisCommandsPerSecond: round1((cmd1 - cmd0 - 1) / seconds),
        });
        // Then one warm request every PROBE_EVERY_MS for as long: what its housekeeping costs a caller.
        probes = probes.concat(await probe(replica, 'AC1', IDLE_MS));
      } finally {
        process.kill(other.pid, 'SIGCONT');
      }
    }
    console.log(`idle: ${JSON.stringify(idle)}`);
    await stop(first);
    await stop(second);

    // RSS against a small cache.maxBytes, every account passing through.
    const small = await start(`cache:\n  maxBytes: ${SMALL_CACHE_BYTES}\n`);
    await forEach(ACCOUNTS, WARM_CONCURRENCY, async (n) => expect200(await proxied(small, `AC${n}`, agent), n));
    await sleep(2_000);
    const text = await small.metrics();
    const smallCache = {
      rssMiB: rssMiB(small.pid),
      heapMiB: round1(metric(text, 'nodejs_heap_size_used_bytes') / 2 ** 20),
      cacheMiB: round1(metric(text, 'allowgate_cache_bytes') / 2 ** 20),
      entries: metric(text, 'allowgate_cache_entries'),
    };
    console.log(`small cache: ${JSON.stringify(smallCache)}`);
    await stop(small);
    return {
      tree,
      seedSeconds: round1(seedSeconds),
      seedRate: Math.round(ACCOUNTS / seedSeconds),
      seederRssMiB,
      redisBytesPerAccount,
      redisKeyBytes,
      coldStartMs: Math.round(coldStartMs),
      firstRequest: { p50: round2(percentile(firsts, 50)), p99: round2(percentile(firsts, 99)) },
      idle,
      idleProbe: { p50: round2(percentile(probes, 50)), p99: round2(percentile(probes, 99)), max: round2(Math.max(...probes)) },
      smallCache,
    };
  } finally {
    redis.disconnect();
  }
}

/** An account's five allow entries: the caller's address and four public /24s of its own. */
function entriesOf(n: number): { ip_address: string }[] {
  return [CALLER, ...[0, 1, 2, 3].map((k) => `${20 + k * 10 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}.0/24`)].map((ip_address) => ({ ip_address }));
}

/**
 * A list replace retried after a refusal (the machine is shared: Redis may miss its command
 * timeout now and then); the replace is idempotent, so a retry after any outcome is safe.
 */
async function retried<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (attempt >= 5) throw error;
      await sleep(100 * attempt);
    }
  }
}

function expect200(status: number, n: number): void {
  if (status !== 200) throw new Error(`AC${n} answered ${status}`);
}

/** Runs `task(1..count)` with at most `concurrency` at once. */
async function forEach(count: number, concurrency: number, task: (n: number) => Promise<unknown>): Promise<void> {
  let next = 1;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next <= count) {
      const n = next++;
      await task(n);
    }
  }));
}


/** Latencies of one request every PROBE_EVERY_MS for `ms`. */
async function probe(gw: Allowgate, account: string, ms: number): Promise<number[]> {
  const out: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const began = performance.now();
    expect200(await proxied(gw, account, agent), 1);
    out.push(performance.now() - began);
    await sleep(PROBE_EVERY_MS);
  }
  return out;
}

async function stop(gw: Allowgate): Promise<void> {
  await new Promise<void>((resolve) => {
    try {
      process.kill(gw.pid, 'SIGTERM');
    } catch {
      resolve();
      return;
    }
    const check = setInterval(() => {
      try {
        process.kill(gw.pid, 0);
      } catch {
        clearInterval(check);
        resolve();
      }
    }, 50);
  });
}

async function usedMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
}

async function commandsProcessed(redis: Redis): Promise<number> {
  return Number(/total_commands_processed:(\d+)/.exec(await redis.info('stats'))?.[1]);
}

/** MEMORY USAGE of each kind of key, averaged over a sample of accounts (and the shared keys whole). */
async function keyBytes(redis: Redis): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const sample = Array.from({ length: 50 }, (_, i) => 1 + Math.floor((i * ACCOUNTS) / 50));
  for (const kind of ['version', 'record', 'compiled', 'audit', 'callers']) {
    let sum = 0;
    for (const n of sample) sum += Number(await redis.call('MEMORY', 'USAGE', `allowgate:{AC${n}}:${kind}`, 'SAMPLES', '0') ?? 0);
    out[`{account}:${kind}`] = Math.round(sum / sample.length);
  }
  for (const key of ['accounts', 'audit', 'changelog', 'expiries']) {
    out[`${key} (shared) / account`] = Math.round(Number(await redis.call('MEMORY', 'USAGE', `allowgate:${key}`, 'SAMPLES', '0') ?? 0) / ACCOUNTS);
  }
  return out;
}

/** User + system CPU seconds of a process (Linux /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return Math.round(kb / 1024);
}


function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
