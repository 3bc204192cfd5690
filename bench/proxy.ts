/**
 * The same upstream (100-byte JSON, keep-alive) measured (a) directly, (b) through bare undici
 * forwarders without checks (dispatch: allowgate's engine; stream: undici's documented API),
 * (c) through allowgate with one 50-entry list (c2: the same with `workers: 2` over a Redis store;
 * c3: opaque API keys instead of X-Auth-ID, 10,000 keys registered over 100 accounts of 50 entries,
 * each key with a 5-entry list of its own, requests spread over every key; c4: the same keys
 * without lists of their own),
 * (d) through allowgate with 10,000 accounts of 50
 * entries plus a 100,000-entry global list (requests spread over the accounts), (e) nginx (one
 * worker, allow/deny + realip) and (f) express + express-ipfilter + http-proxy-middleware.
 * Same wrk settings for every target, interleaved rounds, medians, ratios to the faster bare
 * forwarder.
 *
 *   npm run bench:proxy [-- --quick] [--seconds N] [--rounds N] [--connections N] [--cpu-prof] [--only c,c3,c4]
 *
 * --cpu-prof runs both allowgate processes under `node --cpu-prof` (profiles kept in os.tmpdir())
 * and prints the functions with the most self time.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_TOKEN, accountNetworks, globalDenyEntries, metric, startAllowgate, writeFileStore, type Allowgate } from './lib/allowgate.ts';
import { topSelfTime } from './lib/cpuprofile.ts';
import { ensureExpressStack, startExpressStack } from './lib/express-stack.ts';
import { startServer, UPSTREAM_BODY } from './lib/forwarders.ts';
import { startNginx, TRUSTED_PROXIES } from './lib/nginx.ts';
import { startRedis, stopAll, workDir } from './lib/processes.ts';
import { report, verdict, type Table } from './lib/report.ts';
import { interleavedRounds, loadSettings, loadTitle, preflight, summarize, Wrk, type Summary, type Target } from './lib/wrk.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const { settings, rounds, warmupSeconds, quick } = loadSettings(argv);
const profile = argv.includes('--cpu-prof');
// --only c,c3,c4: start and measure those targets alone (the faster bare forwarder is always measured).
const onlyAt = argv.indexOf('--only');
const only = onlyAt >= 0 ? new Set([...(argv[onlyAt + 1] ?? '').split(','), 'b', 'b2']) : null;
const want = (key: string): boolean => only === null || only.has(key);
const ACCOUNTS = 10_000;
const GLOBAL_ENTRIES = 100_000;
const HEADERS = { 'X-Auth-ID': 'AC1' };
const KEYED_ACCOUNTS = 100;
const KEYS_PER_ACCOUNT = 100;
const KEY_SECRET = 'bench-key-secret-0123456789abcdefghij';
/** The old generation's ceiling for (c3), whose file store holds 10,101 lists. */
const KEY_LISTS_HEAP_MIB = 256;
/** The api-key strategy beside the default ones, as a team with opaque keys would list it. */
const KEY_CONFIG = `identity:
  strategies:
    - type: header
      header: X-Auth-ID
    - type: basic
    - type: bearer-jwt
    - type: api-key
      header: X-API-Key
`;
const PATH = '/v1/resource';

const notes: string[] = [];
const started = Date.now();

try {
  const dir = workDir('proxy');
  const wrk = Wrk.create(dir);
  if (typeof wrk === 'string') {
    console.log(`proxy benchmark skipped: ${wrk}`);
    process.exitCode = 0;
  } else {
    await main(wrk, dir);
  }
} finally {
  await stopAll(profile ? 20_000 : 5_000);
}

async function main(wrk: Wrk, dir: string): Promise<void> {
  const targets: Target[] = [];
  const target = (key: string, label: string, url: string, accounts?: number): void => {
    targets.push({ key, label, url, spec: accounts === undefined ? { path: PATH, headers: HEADERS } : { path: PATH, headers: {}, accounts } });
  };

  const upstream = await startServer('upstream');
  if (want('a')) target('a', '(a) upstream directly', upstream.url);
  target('b', '(b) bare forwarder, undici dispatch', (await startServer('undici-dispatch', upstream.port)).url);
  target('b2', '(b2) bare forwarder, undici stream', (await startServer('undici-stream', upstream.port)).url);

  // allowgate: the defaults, plus trusted proxies as nginx gets them (set_real_ip_from).
  const profileDir = profile ? mkdtempSync(join(tmpdir(), 'allowgate-bench-cpuprof-')) : null;
  const nodeFlags = profileDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
  const env = { ALLOWGATE_TRUSTED_PROXIES: TRUSTED_PROXIES };
  const small = join(dir, 'small.json');
  await writeFileStore(small, 1, []);
  const c = want('c') ? await startAllowgate({ upstreamUrl: upstream.url, store: `file:${small}`, dir, env, nodeFlags }) : null;
  if (c !== null) target('c', '(c) allowgate, one 50-entry list', c.url);

  // The same check reached through opaque API keys, 10,000 registered: (c3) each with a list of its
  // own (10,101 lists compiled and held), (c4) the keys alone (the accounts' lists decide).
  const keyed: Record<'c3' | 'c4', Allowgate | null> = { c3: null, c4: null };
  for (const key of ['c3', 'c4'] as const) {
    if (!want(key)) continue;
    const listEntries = key === 'c3' ? 5 : 0;
    const path = join(dir, `keyed-${key}.json`);
    const keys = await writeFileStore(path, KEYED_ACCOUNTS, [], 50, { perAccount: KEYS_PER_ACCOUNT, secret: KEY_SECRET, listEntries });
    // 10,101 lists in a file store keep about 80 MiB of heap in use (every record and compiled
    // list): (c3) raises the old generation's ceiling as docs/deployment.md tells a file store of
    // many lists to, where the default 128 MiB would have V8 collect at 60% full all the time.
    const heap = key === 'c3' ? { NODE_OPTIONS: `--max-old-space-size=${KEY_LISTS_HEAP_MIB}` } : {};
    const gateway = await startAllowgate({ upstreamUrl: upstream.url, store: `file:${path}`, dir, env: { ...env, ALLOWGATE_KEY_SECRET: KEY_SECRET, ...heap }, config: KEY_CONFIG, nodeFlags });
    keyed[key] = gateway;
    const lists = listEntries > 0 ? `${listEntries}-entry key lists, old generation ${KEY_LISTS_HEAP_MIB} MiB` : 'no key lists';
    targets.push({ key, label: `(${key}) allowgate, api-key strategy, ${keys.length.toLocaleString('en-US')} keys over ${KEYED_ACCOUNTS} accounts x 50, ${lists}`, url: gateway.url, spec: { path: PATH, headers: {}, spread: { header: 'X-API-Key', values: keys } } });
  }
  const { c3, c4 } = keyed;

  // Two workers need the shared store; the list is added through the admin API, as an operator would.
  let c2: Allowgate | null = null;
  if (want('c2')) try {
    const redis = await startRedis(dir);
    c2 = await startAllowgate({ upstreamUrl: upstream.url, store: redis, dir, env: { ...env, ALLOWGATE_WORKERS: '2' }, nodeFlags });
    for (const network of accountNetworks(1)) await c2.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: network });
    target('c2', '(c2) allowgate, one 50-entry list, 2 workers (redis store)', c2.url);
  } catch (error) {
    notes.push(`(c2) 2 workers skipped: ${(error as Error).message}`);
  }

  let d: Allowgate | null = null;
  if (want('d')) {
    const seedStart = performance.now();
    const large = join(dir, 'large.json');
    await writeFileStore(large, ACCOUNTS, globalDenyEntries(GLOBAL_ENTRIES));
    // The file store keeps all 500,000 entries (and 100,000 global ones) as records in the heap:
    // far past the heap ceiling the runtime sets for a sidecar's few lists, so (d) raises it.
    d = await startAllowgate({ upstreamUrl: upstream.url, store: `file:${large}`, dir, env: { ...env, NODE_OPTIONS: '--max-old-space-size=2048' }, nodeFlags, startTimeoutMs: 120_000 });
    notes.push(`(d) seeded as a file store of ${ACCOUNTS.toLocaleString('en-US')} accounts x 50 entries + ${GLOBAL_ENTRIES.toLocaleString('en-US')} global deny /24s; written and loaded in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);
    target('d', `(d) allowgate, ${ACCOUNTS.toLocaleString('en-US')} accounts x 50 + ${GLOBAL_ENTRIES.toLocaleString('en-US')} global`, d.url, ACCOUNTS);
  }

  const nginx = want('e') ? await startNginx(upstream.port, accountNetworks(1), dir) : null;
  if (typeof nginx === 'string') notes.push(`(e) nginx skipped: ${nginx}`);
  else if (nginx !== null) target('e', `(e) nginx ${nginx.version}, 1 worker, allow/deny + realip`, nginx.url);

  const express = want('f') ? ensureExpressStack() : null;
  if (typeof express === 'string') notes.push(`(f) express stack skipped: ${express}`);
  else if (express !== null) target('f', '(f) express + express-ipfilter + http-proxy-middleware', await startExpressStack(upstream.port));

  for (const t of targets) await preflight(t, UPSTREAM_BODY);
  // The load generator's address must be allowed by the list, not merely let through: a cached
  // "no list" or a mode other than enforce would measure something else.
  if (c !== null) await assertAllowedByList(c, 'AC1');
  if (c2 !== null) await assertAllowedByList(c2, 'AC1');
  if (d !== null) await assertAllowedByList(d, `AC${ACCOUNTS}`);
  // Allowed by the account's list and by the key's own, for the first and the last key.
  for (const [key, gateway] of [['c3', c3], ['c4', c4]] as const) {
    if (gateway === null) continue;
    // Every key once before the runs, as a replica in service has seen its clients' keys: the
    // first request with each key reads the store's key index (and compiles the key's list),
    // which the warm-up alone (a few seconds) would not reach for all 10,000.
    const warm = performance.now();
    await touchEveryKey(gateway, keysOf(targets, key));
    notes.push(`(${key}) every key sent once before the runs (the first request with a key reads the store's key index and compiles its list): ${((performance.now() - warm) / 1000).toFixed(1)} s`);
    // Allowed by the account's list (and by the key's own, in (c3)), for the first and the last key.
    const last = `key_${KEYED_ACCOUNTS}_${KEYS_PER_ACCOUNT - 1}`;
    await assertAllowedByList(gateway, 'AC1', key === 'c3' ? 'key_1_0' : undefined);
    await assertAllowedByList(gateway, `AC${KEYED_ACCOUNTS}`, key === 'c3' ? last : undefined);
  }

  const load = loadavg()[0]!;
  if (load > 0.5) notes.push(`load average was ${load.toFixed(2)} before the runs: something else is using the CPU, figures are disturbed`);
  const gateways = ([['c', c], ['c2', c2], ['c3', c3], ['c4', c4], ['d', d]] as [string, Allowgate | null][]).filter((e): e is [string, Allowgate] => e[1] !== null);
  const gcBefore = new Map(await Promise.all(gateways.map(async ([key, gateway]) => [key, gcFigures(await gateway.metrics())] as const)));
  const results = await interleavedRounds(wrk, targets, { settings, rounds, warmupSeconds });
  // Where a target's tail latency may go: the collector's pauses over warm-up and runs, by kind.
  const gc: Record<string, GcFigures> = {};
  for (const [key, gateway] of gateways) {
    const after = gcFigures(await gateway.metrics());
    const before = gcBefore.get(key)!;
    const spent = (kind: GcKind): Pauses => ({ seconds: after[kind].seconds - before[kind].seconds, count: after[kind].count - before[kind].count });
    const requests = after.requests - before.requests;
    gc[key] = { major: spent('major'), minor: spent('minor'), incremental: spent('incremental'), heapMiB: after.heapMiB, lagP99Ms: after.lagP99Ms, requests, cpuSeconds: after.cpuSeconds - before.cpuSeconds };
    const g = gc[key]!;
    const perRequest = (seconds: number): string => `${((seconds / requests) * 1e6).toFixed(1)} µs`;
    notes.push(`(${key}) CPU per request over warm-up and runs (its own process, user + system): ${perRequest(g.cpuSeconds)}, of which garbage collection ${perRequest(g.major.seconds + g.minor.seconds + g.incremental.seconds)} (${requests.toLocaleString('en-US')} requests)`);
    const part = (name: string, x: Pauses): string => `${name} ${x.seconds.toFixed(2)} s in ${x.count.toLocaleString('en-US')}`;
    notes.push(`(${key}) garbage collection over warm-up and runs: ${part('major', g.major)}, ${part('minor', g.minor)}, ${part('incremental marking', g.incremental)}; heap used after ${g.heapMiB.toFixed(0)} MiB; event-loop lag p99 over the runs ${g.lagP99Ms.toFixed(1)} ms`);
  }
  const summaries = new Map<string, Summary>([...results].map(([key, list]) => [key, summarize(list)]));
  const s = (key: string): Summary | undefined => summaries.get(key);

  // The cache over warm-up and runs: each account compiled once, then hits only (unless evicted).
  const cache: Record<string, Record<string, number>> = {};
  for (const [key, gateway] of [['d', d], ['c3', c3], ['c4', c4]] as const) {
    if (gateway === null) continue;
    const text = await gateway.metrics();
    const stats = { entries: metric(text, 'allowgate_cache_entries'), hits: metric(text, 'allowgate_cache_hits_total'), misses: metric(text, 'allowgate_cache_misses_total'), evictions: metric(text, 'allowgate_cache_evictions_total') };
    cache[key] = stats;
    notes.push(`(${key}) cache after the runs: ${stats.entries.toLocaleString('en-US')} lists held, ${stats.hits.toLocaleString('en-US')} hits, ${stats.misses.toLocaleString('en-US')} misses (${((stats.misses / (stats.hits + stats.misses)) * 100).toFixed(1)}%), ${stats.evictions.toLocaleString('en-US')} evictions`);
  }
  const decisions: Record<string, number> = {};
  for (const [key, gateway] of [['c', c], ['c2', c2], ['c3', c3], ['c4', c4], ['d', d]] as const) if (gateway !== null) decisions[key] = await allowedCount(gateway);
  for (const [key, gateway] of [['c3', c3], ['c4', c4]] as const) {
    if (gateway === null) continue;
    const lookups = await gateway.metrics();
    const count = (result: string): string => metric(lookups, 'allowgate_key_lookups_total', `result="${result}"`).toLocaleString('en-US');
    notes.push(`(${key}) key lookups: ${count('cached')} answered from the replica's own map (no hashing, no store read), ${count('located')} read from the store's key index, ${count('unknown')} unknown`);
  }

  const bareKey = (s('b')?.rps ?? 0) >= (s('b2')?.rps ?? 0) ? 'b' : 'b2';
  const bare = s(bareKey)!;
  const rows = targets.map((t) => {
    const m = s(t.key)!;
    const non2xx = results.get(t.key)!.reduce((n, r) => n + r.non2xx, 0);
    return [t.label, Math.round(m.rps), m.p50Ms, m.p99Ms, `${Math.round(m.rpsMin)}-${Math.round(m.rpsMax)}`, non2xx, Number((m.rps / bare.rps).toFixed(2)), Number((m.p99Ms - bare.p99Ms).toFixed(2))];
  });

  const checks: string[] = [];
  for (const key of ['c', 'd'].filter((k) => s(k) !== undefined)) {
    const m = s(key)!;
    const ratio = m.rps / bare.rps;
    checks.push(verdict(`allowgate (${key}) >= 90% of the faster bare forwarder (${bareKey}) req/s`, ratio >= 0.9, `${(ratio * 100).toFixed(1)}%${ratio < 0.9 ? `, short by ${((0.9 - ratio) * 100).toFixed(1)} points` : ''}`));
    const extra = m.p99Ms - bare.p99Ms;
    checks.push(verdict(`allowgate (${key}) p99 within +0.5 ms of (${bareKey})`, extra <= 0.5, `${extra >= 0 ? '+' : ''}${extra.toFixed(2)} ms${extra > 0.5 ? `, ${(extra - 0.5).toFixed(2)} ms over` : ''}`));
  }
  const f = s('f');
  if (f !== undefined) {
    for (const key of ['c', 'd'].filter((k) => s(k) !== undefined)) {
      const times = s(key)!.rps / f.rps;
      checks.push(verdict(`allowgate (${key}) >= 5x the express stack`, times >= 5, `${times.toFixed(1)}x`));
    }
  }
  const e = s('e');
  if (e !== undefined) {
    for (const key of ['c', 'd'].filter((k) => s(k) !== undefined)) {
      const share = s(key)!.rps / e.rps;
      checks.push(verdict(`allowgate (${key}) >= 60% of nginx (1 worker)`, share >= 0.6, `${(share * 100).toFixed(1)}%${share < 0.6 ? `, short by ${((0.6 - share) * 100).toFixed(1)} points` : ''}`));
    }
    const cm = s('c');
    if (cm !== undefined) checks.push(`nginx vs allowgate (c): ${(e.rps / cm.rps).toFixed(2)}x the req/s, p50 ${e.p50Ms} vs ${cm.p50Ms} ms, p99 ${e.p99Ms} vs ${cm.p99Ms} ms; vs the bare forwarder (${bareKey}): ${(e.rps / bare.rps).toFixed(2)}x`);
  }
  for (const key of ['c3', 'c4']) {
    const keyed = s(key);
    const header = s('c');
    if (keyed === undefined || header === undefined) continue;
    const share = keyed.rps / header.rps;
    // Each round's keyed run beside the (c) run of the same round: the machine's drift between
    // rounds moves both, so the ratios of pairs spread less than the ratio of medians.
    const headerRounds = results.get('c')!;
    const pairs = results.get(key)!.map((r, i) => r.rps / headerRounds[i]!.rps).sort((a, b) => a - b);
    const paired = pairs[Math.floor(pairs.length / 2)]!;
    const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
    checks.push(verdict(`api keys (${key}) within 10% of the X-Auth-ID header (c) req/s`, share >= 0.9, `${pct(share)}${share < 0.9 ? `, short by ${((0.9 - share) * 100).toFixed(1)} points` : ''}; p99 ${keyed.p99Ms} vs ${header.p99Ms} ms`));
    checks.push(`api keys (${key}) against (c), round by round: median ${pct(paired)}, ${pct(pairs[0]!)}-${pct(pairs[pairs.length - 1]!)} over ${pairs.length} rounds`);
  }
  const c2s = s('c2');
  if (c2s !== undefined && s('c') !== undefined) {
    const cm = s('c')!;
    checks.push(`2 workers (c2): ${(c2s.rps / cm.rps).toFixed(2)}x one process (c)${e === undefined ? '' : `, ${((c2s.rps / e.rps) * 100).toFixed(1)}% of nginx (1 worker)`}; wrk, the upstream and every process share this machine's ${availableParallelism()} cores`);
  }
  const table: Table = {
    title: loadTitle('Proxy throughput', settings, rounds),
    columns: ['target', 'req/s', 'p50 ms', 'p99 ms', 'req/s range', 'non-2xx', `x (${bareKey})`, `p99 - (${bareKey}) ms`],
    rows,
    notes: [
      ...checks,
      `upstream: one Node process, ${Buffer.byteLength(UPSTREAM_BODY)}-byte JSON body, keep-alive; every target in a process of its own on loopback, all sharing the machine's cores with wrk`,
      `requests allowgate counted as allowed by a list (its metrics, warm-up included): ${Object.entries(decisions).map(([key, n]) => `(${key}) ${n.toLocaleString('en-US')}`).join(', ')}`,
      ...notes,
      ...(quick ? ['--quick: short runs, one round: a smoke test, not a measurement'] : []),
      ...(only === null ? [] : [`--only: ${targets.map((t) => t.key).join(', ')} measured`]),
      `took ${((Date.now() - started) / 1000).toFixed(0)} s`,
    ],
  };
  const tables = [table];
  let profiles: unknown = null;
  if (profileDir !== null) {
    await stopAll(20_000);
    profiles = profileTables(profileDir, Object.fromEntries([['(c)', c], ['(c3)', c3], ['(c4)', c4], ['(d)', d]].filter((e): e is [string, Allowgate] => e[1] !== null)), tables);
  }
  report('proxy', tables, { settings, rounds, warmupSeconds, quick, bare: bareKey, summaries: Object.fromEntries(summaries), results: Object.fromEntries(results), cache, gc, profiles });
}

/** Fails unless allowgate's own /check says the load generator's address is allowed by an entry (of the key's list too, with a key). */
async function assertAllowedByList(gateway: Allowgate, account: string, keyId?: string): Promise<void> {
  const path = keyId === undefined ? `/v1/accounts/${account}/check` : `/v1/accounts/${account}/keys/${keyId}/check`;
  const res = await fetch(`${gateway.adminUrl}${path}?ip=127.0.0.1`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const body = (await res.json()) as { decision?: string; reason?: string };
  if (res.status !== 200 || body.decision !== 'allow' || body.reason !== 'ip_allowed') {
    throw new Error(`allowgate does not allow 127.0.0.1 for ${account} by its list: ${res.status} ${JSON.stringify(body)}`);
  }
}

function keysOf(targets: readonly Target[], key: string): readonly string[] {
  return targets.find((t) => t.key === key)?.spec.spread?.values ?? [];
}

/** One request with each key, 32 at a time over keep-alive connections; each must be let through. */
async function touchEveryKey(gateway: Allowgate, keys: readonly string[]): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++]!;
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(`${gateway.url}${PATH}`, { agent, headers: { 'x-api-key': key } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
      if (status !== 200) throw new Error(`a request with a registered key answered ${status}: the keyed store is set up wrong`);
    }
  };
  try {
    await Promise.all(Array.from({ length: 32 }, worker));
  } finally {
    agent.destroy();
  }
}

/** The collector's pauses of one kind: their total time and how many. */
interface Pauses {
  readonly seconds: number;
  readonly count: number;
}

type GcKind = 'major' | 'minor' | 'incremental';

interface GcFigures {
  readonly major: Pauses;
  readonly minor: Pauses;
  readonly incremental: Pauses;
  readonly heapMiB: number;
  readonly lagP99Ms: number;
  readonly requests: number;
  readonly cpuSeconds: number;
}

/** The collector's totals by kind (prom-client's default metrics), the heap in use and the loop's lag. */
function gcFigures(text: string): GcFigures {
  const kind = (name: GcKind): Pauses => ({
    seconds: metric(text, 'nodejs_gc_duration_seconds_sum', `kind="${name}"`),
    count: metric(text, 'nodejs_gc_duration_seconds_count', `kind="${name}"`),
  });
  return {
    major: kind('major'),
    minor: kind('minor'),
    incremental: kind('incremental'),
    heapMiB: metric(text, 'nodejs_heap_size_used_bytes') / 2 ** 20,
    lagP99Ms: metric(text, 'nodejs_eventloop_lag_p99_seconds') * 1000,
    requests: metric(text, 'allowgate_requests_total'),
    cpuSeconds: metric(text, 'process_cpu_seconds_total'),
  };
}

async function allowedCount(gateway: Allowgate): Promise<number> {
  return metric(await gateway.metrics(), 'allowgate_requests_total', 'reason="ip_allowed"');
}

function profileTables(profileDir: string, gateways: Record<string, Allowgate>, tables: Table[]): unknown {
  const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'));
  const out: Record<string, unknown> = {};
  for (const [label, gateway] of Object.entries(gateways)) {
    // node names the file CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile
    const file = files.find((f) => f.split('.')[3] === String(gateway.pid));
    if (file === undefined) {
      out[label] = `no profile for process ${gateway.pid} in ${profileDir}`;
      continue;
    }
    const path = join(profileDir, file);
    const { busyMs, top } = topSelfTime(path, ROOT, 25);
    out[label] = { path, busyMs, top };
    tables.push({
      title: `allowgate ${label} CPU profile: top self time (${(busyMs / 1000).toFixed(1)} s busy over warm-up and all rounds)`,
      columns: ['function', 'where', 'self ms', '% of busy'],
      rows: top.map((t) => [t.fn, t.where, Math.round(t.ms), Number(t.percent.toFixed(1))]),
      notes: [`profile: ${path}`],
    });
  }
  return out;
}
