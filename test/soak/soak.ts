/**
 * Soak: steady mixed traffic against the real gateway over a real redis-server, every answer
 * checked against a model of the lists, while an admin change lands every second.
 *
 *   npm run soak [-- --seconds 600]        (10 minutes unless told otherwise)
 *
 * Traffic, spread over ACCOUNTS accounts, through a trusted proxy (127.0.0.1) so the client
 * address can vary: a caller inside the account's fixed range (200), a stranger (403), the
 * address whose entry the admin loop keeps adding and removing (200 or 403 as the model says;
 * either when a change landed while the request was in flight), anonymous requests (forwarded),
 * and accounts never seen before (no list: forwarded), which churn the cache.
 * Checked at the end: no unexpected status, no decision the model contradicts, memory growth,
 * and that connections and handles return to their level before the traffic.
 */
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { metric, startAllowgate, type Allowgate } from '../../bench/lib/allowgate.ts';
import { stopAll, workDir } from '../../bench/lib/processes.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';

export interface SoakOptions {
  readonly durationMs: number;
  /** Requests in flight at once. */
  readonly concurrency?: number;
  /** Progress lines on stdout every this many ms (0: none). */
  readonly progressMs?: number;
}

export interface SoakReport {
  readonly seconds: number;
  readonly requests: number;
  readonly byKind: Readonly<Record<Kind, number>>;
  readonly adminChanges: number;
  readonly unexpected: readonly string[];
  readonly unexpectedCount: number;
  readonly wrongDecisions: number;
  readonly transportErrors: number;
  readonly rssStartMb: number;
  readonly rssEndMb: number;
  /** Highest RSS over the middle third and over the last third: flat after warm-up when they agree. */
  readonly rssMiddlePeakMb: number;
  readonly rssEndPeakMb: number;
  /** Lowest heap in use over the first and over the last third of the run. */
  readonly heapStartMb: number;
  readonly heapEndMb: number;
  readonly fdsBefore: number;
  readonly fdsAfter: number;
  readonly handlesBefore: number;
  readonly handlesAfter: number;
}

type Kind = 'allowed' | 'denied' | 'toggled' | 'anonymous' | 'cold';
const KINDS: readonly Kind[] = ['allowed', 'allowed', 'allowed', 'denied', 'denied', 'toggled', 'toggled', 'anonymous', 'cold'];
const ACCOUNTS = 20;
const CACHE_ENTRIES = 200;
/** Short, so that idle upstream connections are gone when sockets are counted at the end. */
const UPSTREAM_KEEP_ALIVE_MS = 2_000;

const account = (a: number): string => `ACSOAK${a}`;
const office = (a: number): string => `198.18.${a}.0/24`;
const toggledIp = (a: number): string => `198.51.100.${a + 1}`;

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const concurrency = options.concurrency ?? 16;
  let redis: RedisServer | undefined;
  let upstream: Server | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  try {
    redis = await startRedis();
    upstream = await startUpstream();
    const gw = await startAllowgate({
      upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      store: redis.url,
      dir: workDir('soak'),
      env: { ALLOWGATE_TRUSTED_PROXIES: '127.0.0.1', ALLOWGATE_LOG_LEVEL: 'warn' },
      // The soak judges decisions, not latency: on a loaded machine a cold account's first load
      // can outlast the default command timeout and be refused 503 (failing closed, as it should),
      // which says nothing about the lists. Latency has its benchmarks.
      config: `cache:\n  maxEntries: ${CACHE_ENTRIES}\nredis:\n  commandTimeoutMs: 5000\n`,
    });
    return await soak(gw, agent, concurrency, options);
  } finally {
    agent.destroy();
    await stopAll();
    await new Promise<void>((done) => (upstream ? upstream.close(() => done()) : done()));
    await redis?.stop();
  }
}

async function soak(gw: Allowgate, agent: Agent, concurrency: number, options: SoakOptions): Promise<SoakReport> {
  // The model: which accounts currently list their toggled address (as acknowledged), and the
  // account whose change is on its way.
  const listed = new Array<boolean>(ACCOUNTS).fill(false);
  const toggledEntry = new Array<string | null>(ACCOUNTS).fill(null);
  let changing = -1;
  for (let a = 0; a < ACCOUNTS; a++) await gw.admin('POST', `/v1/accounts/${account(a)}/ip-acl`, { ip_address: office(a) });

  const fdsBefore = metric(await gw.metrics(), 'process_open_fds');
  const handlesBefore = metric(await gw.metrics(), 'nodejs_active_handles_total');
  // Warm-up before the memory baseline: JIT, pools, caches.
  await traffic(gw, agent, concurrency, 3_000, () => undefined, null);
  // Memory every second; heap in use swings with garbage not yet collected, so each end of the
  // run is judged by its lowest reading (the closest to what is live after a collection).
  const samples: { rss: number; heap: number }[] = [memory(await gw.metrics())];

  let adminChanges = 0;
  let running = true;
  const changes = (async () => {
    while (running) {
      await sleep(1_000);
      if (!running) break;
      const a = adminChanges % ACCOUNTS;
      // From the moment the change is sent until its acknowledgement arrives, the gateway may
      // answer by either list: a request that overlaps that window in any way accepts both.
      changing = a;
      if (listed[a]) {
        await gw.admin('DELETE', `/v1/accounts/${account(a)}/ip-acl/${toggledEntry[a]}`);
        listed[a] = false;
        toggledEntry[a] = null;
      } else {
        const created = (await gw.admin('POST', `/v1/accounts/${account(a)}/ip-acl`, { ip_address: toggledIp(a) })) as { id: string };
        listed[a] = true;
        toggledEntry[a] = created.id;
      }
      changing = -1;
      adminChanges++;
      samples.push(memory(await gw.metrics()));
    }
  })();

  const model: Model = { listed: (a) => listed[a]!, changing: () => changing };
  const begun = performance.now();
  let reported = begun;
  const result = await traffic(gw, agent, concurrency, options.durationMs, (done) => {
    const now = performance.now();
    if (!options.progressMs || now - reported < options.progressMs) return;
    reported = now;
    process.stdout.write(`soak: ${((now - begun) / 1000).toFixed(0)} s, ${done} requests, ${adminChanges} changes\n`);
  }, model);
  const seconds = (performance.now() - begun) / 1000;
  running = false;
  await changes;
  samples.push(memory(await gw.metrics()));
  const third = Math.max(1, Math.floor(samples.length / 3));
  const lowestHeap = (part: typeof samples): number => Math.min(...part.map((m) => m.heap));

  agent.destroy();
  // The gateway sees the closes, and its idle upstream sockets time out (UPSTREAM_KEEP_ALIVE_MS).
  await sleep(UPSTREAM_KEEP_ALIVE_MS + 2_000);
  const after = await gw.metrics();
  return {
    seconds,
    requests: result.requests,
    byKind: result.byKind,
    adminChanges,
    unexpected: result.unexpected.slice(0, 20),
    unexpectedCount: result.unexpected.length,
    wrongDecisions: result.wrong,
    transportErrors: result.errors,
    rssStartMb: samples[0]!.rss,
    rssEndMb: samples[samples.length - 1]!.rss,
    rssMiddlePeakMb: Math.max(...samples.slice(third, -third).map((m) => m.rss)),
    rssEndPeakMb: Math.max(...samples.slice(-third).map((m) => m.rss)),
    heapStartMb: lowestHeap(samples.slice(0, third)),
    heapEndMb: lowestHeap(samples.slice(-third)),
    fdsBefore,
    fdsAfter: metric(after, 'process_open_fds'),
    handlesBefore,
    handlesAfter: metric(after, 'nodejs_active_handles_total'),
  };
}

interface Model {
  listed(account: number): boolean;
  /** The account whose change is sent but not yet acknowledged, or -1. */
  changing(): number;
}

interface TrafficResult {
  requests: number;
  byKind: Record<Kind, number>;
  unexpected: string[];
  wrong: number;
  errors: number;
}

let coldCounter = 0;

/** `concurrency` loops sending requests until `durationMs` has passed; checks each answer. */
async function traffic(gw: Allowgate, agent: Agent, concurrency: number, durationMs: number, onEach: (done: number) => void, model: Model | null): Promise<TrafficResult> {
  const result: TrafficResult = { requests: 0, byKind: { allowed: 0, denied: 0, toggled: 0, anonymous: 0, cold: 0 }, unexpected: [], wrong: 0, errors: 0 };
  const deadline = performance.now() + durationMs;
  let turn = 0;
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const kind = KINDS[turn++ % KINDS.length]!;
      const a = turn % ACCOUNTS;
      const headers: Record<string, string> = {};
      let expected: number[];
      const changingBefore = model?.changing() === a;
      const listedBefore = model?.listed(a) ?? false;
      switch (kind) {
        case 'allowed':
          Object.assign(headers, { 'x-auth-id': account(a), 'x-forwarded-for': `198.18.${a}.${1 + (turn % 250)}` });
          expected = [200];
          break;
        case 'denied':
          Object.assign(headers, { 'x-auth-id': account(a), 'x-forwarded-for': `100.64.${a}.${1 + (turn % 250)}` });
          expected = [403];
          break;
        case 'toggled':
          Object.assign(headers, { 'x-auth-id': account(a), 'x-forwarded-for': toggledIp(a) });
          expected = [];
          break;
        case 'anonymous':
          headers['x-forwarded-for'] = `192.0.2.${1 + (turn % 250)}`;
          expected = [200];
          break;
        case 'cold':
          Object.assign(headers, { 'x-auth-id': `ACCOLD${coldCounter++}`, 'x-forwarded-for': '192.0.2.9' });
          expected = [200];
          break;
      }
      let status: number;
      let code: string;
      try {
        ({ status, code } = await send(gw, agent, headers));
      } catch (error) {
        result.errors++;
        result.unexpected.push(`${kind}: ${(error as Error).message}`);
        continue;
      }
      if (kind === 'toggled') {
        if (model === null) continue; // warm-up: no model yet
        const after = model.listed(a) ? 200 : 403;
        const before = listedBefore ? 200 : 403;
        // While a change of this account is on its way (sent, not yet acknowledged), or when it
        // completed during the request, either answer is right.
        const settled = !changingBefore && model.changing() !== a && before === after;
        expected = settled ? [after] : [200, 403];
      }
      if (model !== null) {
        result.requests++;
        result.byKind[kind]++;
        if (!expected.includes(status)) {
          if (status === 200 || status === 403) result.wrong++;
          result.unexpected.push(`${kind} ${JSON.stringify(headers)}: ${status}${code ? ` ${code}` : ''}, expected ${expected.join(' or ')}`);
        }
        onEach(result.requests);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return result;
}

function send(gw: Allowgate, agent: Agent, headers: Record<string, string>): Promise<{ status: number; code: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${gw.url}/v1/resource`, { agent, headers, timeout: 10_000 }, (res) => {
      // Refusals are small JSON bodies; their code goes into the report of an unexpected answer.
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { if (body.length < 4096) body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: /"code":"([^"]*)"/.exec(body)?.[1] ?? '' }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}

function memory(metrics: string): { rss: number; heap: number } {
  return { rss: metric(metrics, 'process_resident_memory_bytes') / 2 ** 20, heap: metric(metrics, 'nodejs_heap_size_used_bytes') / 2 ** 20 };
}

async function startUpstream(): Promise<Server> {
  const body = Buffer.from('{"ok":true}');
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = UPSTREAM_KEEP_ALIVE_MS;
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return server;
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const at = process.argv.indexOf('--seconds');
  const seconds = at > 0 ? Number(process.argv[at + 1]) : 600;
  if (!Number.isInteger(seconds) || seconds < 5) throw new Error(`--seconds must be an integer >= 5, got '${process.argv[at + 1]}'`);
  const report = await runSoak({ durationMs: seconds * 1000, progressMs: 30_000 });
  console.log(JSON.stringify(report, null, 2));
  const failed = report.unexpectedCount > 0 || report.wrongDecisions > 0;
  process.exit(failed ? 1 : 0);
}
