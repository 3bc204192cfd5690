/**
 * External authorization: allowgate answering checks for another proxy, against baselines doing
 * nothing on the same requests, all in one run (the machine is shared: compare ratios within a
 * run, not figures across runs).
 *
 * HTTP (wrk, same settings, interleaved rounds, medians):
 *   (a) a bare Node HTTP server answering every check with allowgate's allow answer
 *   (b) allowgate /authz/forward-auth   (c) /authz/auth-request   (d) /authz/envoy/...
 *   (e) the upstream directly
 *   (f) nginx alone in front of the upstream (proxy_pass, no check)
 *   (g) nginx + auth_request -> allowgate -> upstream (docs/authz/nginx.conf as shipped)
 *   (h) allowgate as the proxy in front of the upstream
 * gRPC (one HTTP/2 connection, gRPC framing over node:http2, a pre-encoded CheckRequest as Envoy sends it):
 *   (i) a bare grpc-js Check server (proto-loader) answering OK   (j) allowgate's gRPC service
 *   each closed-loop (most checks/s) and open-loop at 1,000 checks/s (latency at that load).
 *
 *   npm run bench:authz [-- --quick] [--seconds N] [--rounds N] [--connections N]
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeEnvoyCheckResponse, encodeEnvoyCheckRequest, envoyCheckRequest } from '../test/support/envoy-check.ts';
import { metric, startAllowgate, writeFileStore, type Allowgate } from './lib/allowgate.ts';
import { startAuthzBaseline } from './lib/authz-servers.ts';
import { startServer, UPSTREAM_BODY } from './lib/forwarders.ts';
import { GrpcLoad, type GrpcLoadResult } from './lib/grpc-load.ts';
import { startNginxWith } from './lib/nginx.ts';
import { freePort, stopAll, workDir } from './lib/processes.ts';
import { median, report, verdict, type Table } from './lib/report.ts';
import { interleavedRounds, loadSettings, loadTitle, preflight, summarize, Wrk, type Summary, type Target } from './lib/wrk.ts';

const DOCS = fileURLToPath(new URL('../docs/authz/', import.meta.url));
const argv = process.argv.slice(2);
const { settings, rounds, warmupSeconds, quick } = loadSettings(argv);
const GRPC_RATE = 1_000;
const GRPC_CONCURRENCY = 50;
const GRPC_SECONDS = quick ? 2 : settings.seconds;
/** The client as the checks name it: inside AC1's list (20.0.1.0/24), sent the way the proxy would. */
const CLIENT = '20.0.1.5';
const PATH = '/v1/Account/AC1/Calls';

const notes: string[] = [];
const started = Date.now();

try {
  const dir = workDir('authz');
  const wrk = Wrk.create(dir);
  if (typeof wrk === 'string') {
    console.log(`authz benchmark skipped: ${wrk}`);
  } else {
    await main(wrk, dir);
  }
} finally {
  await stopAll();
}

async function main(wrk: Wrk, dir: string): Promise<void> {
  const upstream = await startServer('upstream');
  const store = join(dir, 'store.json');
  await writeFileStore(store, 1, []);

  // The decision service as docs/authz/nginx.conf sets it up: no proxy listener, nginx trusted,
  // the client address from X-Real-IP.
  const authzPort = await freePort();
  const grpcPort = await freePort();
  const decisions = await startAllowgate({
    upstreamUrl: upstream.url, store: `file:${store}`, dir,
    env: {
      ALLOWGATE_LISTEN: 'off', ALLOWGATE_AUTHZ_LISTEN: `127.0.0.1:${authzPort}`, ALLOWGATE_AUTHZ_GRPC_LISTEN: `127.0.0.1:${grpcPort}`,
      ALLOWGATE_TRUSTED_PROXIES: '127.0.0.1', ALLOWGATE_FORWARDED_HEADER: 'x-real-ip',
    },
  });
  const proxy = await startAllowgate({ upstreamUrl: upstream.url, store: `file:${store}`, dir });
  const bareHttp = await startAuthzBaseline('http');
  const bareGrpc = await startAuthzBaseline('grpc');
  const authz = `http://127.0.0.1:${authzPort}`;

  const credentials = { 'X-Auth-ID': 'AC1', 'X-Real-IP': CLIENT };
  const targets: Target[] = [
    { key: 'a', label: '(a) bare Node HTTP server, allow answer', url: bareHttp.url, spec: { path: '/authz/forward-auth', headers: { ...credentials, 'X-Forwarded-Uri': PATH, 'X-Forwarded-Method': 'GET' } } },
    { key: 'b', label: '(b) allowgate /authz/forward-auth', url: authz, spec: { path: '/authz/forward-auth', headers: { ...credentials, 'X-Forwarded-Uri': PATH, 'X-Forwarded-Method': 'GET' } } },
    { key: 'c', label: '(c) allowgate /authz/auth-request', url: authz, spec: { path: '/authz/auth-request', headers: { ...credentials, 'X-Original-URI': PATH, 'X-Original-Method': 'GET' } } },
    { key: 'd', label: '(d) allowgate /authz/envoy/...', url: authz, spec: { path: `/authz/envoy${PATH}`, headers: credentials } },
  ];
  const proxied: Target[] = [
    { key: 'e', label: '(e) upstream directly', url: upstream.url, spec: { path: PATH, headers: { 'X-Auth-ID': 'AC1' } } },
  ];
  const nginxAlone = await startNginxWith(dir, 'nginx-alone', (port) => `  upstream api { server 127.0.0.1:${upstream.port}; keepalive 32; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://api; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header X-Forwarded-For $remote_addr; }
  }`);
  const example = readFileSync(join(DOCS, 'nginx.conf'), 'utf8')
    .replaceAll('127.0.0.1:9191', `127.0.0.1:${authzPort}`).replaceAll('127.0.0.1:3000', `127.0.0.1:${upstream.port}`);
  const nginxChecked = await startNginxWith(dir, 'nginx-auth-request', (port) => example.replace('listen 80;', `listen 127.0.0.1:${port};`));
  if (typeof nginxAlone === 'string' || typeof nginxChecked === 'string') {
    notes.push(`(f), (g) nginx skipped: ${typeof nginxAlone === 'string' ? nginxAlone : nginxChecked}`);
  } else {
    proxied.push({ key: 'f', label: `(f) nginx ${nginxAlone.version} alone, 1 worker`, url: nginxAlone.url, spec: { path: PATH, headers: { 'X-Auth-ID': 'AC1' } } });
    proxied.push({ key: 'g', label: '(g) nginx + auth_request -> allowgate', url: nginxChecked.url, spec: { path: PATH, headers: { 'X-Auth-ID': 'AC1' } } });
  }
  proxied.push({ key: 'h', label: '(h) allowgate as the proxy', url: proxy.url, spec: { path: PATH, headers: { 'X-Auth-ID': 'AC1' } } });

  for (const t of targets) await preflight(t, '');
  for (const t of proxied) await preflight(t, UPSTREAM_BODY);
  const request = encodeEnvoyCheckRequest(envoyCheckRequest(PATH, { source: { ip: CLIENT }, headers: [['x-auth-id', 'AC1']] }));
  const grpcTargets = [
    { key: 'i', label: '(i) bare grpc-js Check server (proto-loader), OK answer', load: new GrpcLoad(`127.0.0.1:${bareGrpc.port}`) },
    { key: 'j', label: '(j) allowgate gRPC Check', load: new GrpcLoad(`127.0.0.1:${grpcPort}`) },
  ];
  for (const t of grpcTargets) {
    const answer = decodeEnvoyCheckResponse(await t.load.call(request));
    if ((answer.status?.code ?? 0) !== 0 || answer.http_response !== 'ok_response') throw new Error(`${t.label}: the first check was not allowed: ${JSON.stringify(answer)}`);
  }
  const before = await allowedCount(decisions);

  const load = loadavg()[0]!;
  if (load > 0.5) notes.push(`load average was ${load.toFixed(2)} before the runs: the machine is shared, figures are disturbed (ratios within this run still compare)`);
  const results = await interleavedRounds(wrk, [...targets, ...proxied], { settings, rounds, warmupSeconds });
  const grpc = await grpcRounds(grpcTargets, request);
  for (const t of grpcTargets) t.load.close();
  const allowed = (await allowedCount(decisions)) - before;
  const metricsText = await decisions.metrics();
  const decisionTime = (surface: string): string => {
    const q = (quantile: number): string => bucketQuantile(metricsText, 'allowgate_decision_duration_seconds', surface, quantile);
    return `p50 ${q(0.5)}, p99 ${q(0.99)}`;
  };

  const s = (key: string): Summary => summarize(results.get(key)!);
  const bare = s('a');
  const httpRows = targets.map((t) => {
    const m = s(t.key);
    return [t.label, Math.round(m.rps), m.p50Ms, m.p99Ms, `${Math.round(m.rpsMin)}-${Math.round(m.rpsMax)}`, Number((m.rps / bare.rps).toFixed(2))];
  });
  const checks: string[] = [];
  for (const key of ['b', 'c', 'd']) {
    const ratio = s(key).rps / bare.rps;
    checks.push(verdict(`allowgate (${key}) >= 90% of the bare server's checks/s`, ratio >= 0.9, `${(ratio * 100).toFixed(1)}%${ratio < 0.9 ? `, short by ${((0.9 - ratio) * 100).toFixed(1)} points` : ''}`));
  }
  const nginx = proxied.some((t) => t.key === 'f') ? s('f') : null;
  const proxyRows = proxied.map((t) => {
    const m = s(t.key);
    return [t.label, Math.round(m.rps), m.p50Ms, m.p99Ms, `${Math.round(m.rpsMin)}-${Math.round(m.rpsMax)}`, nginx === null ? null : Number((m.rps / nginx.rps).toFixed(2))];
  });
  const proxyNotes: string[] = [];
  if (nginx !== null) {
    const g = s('g');
    const h = s('h');
    proxyNotes.push(`nginx + auth_request -> allowgate (g): ${((g.rps / nginx.rps) * 100).toFixed(1)}% of nginx alone's req/s, p99 +${(g.p99Ms - nginx.p99Ms).toFixed(2)} ms; ${(g.rps / h.rps).toFixed(2)}x allowgate as the proxy (h)`);
    proxyNotes.push('(g) costs one more loopback HTTP exchange per request (nginx -> allowgate) than (f); (h) does the check and the forwarding in one Node process');
  }

  const grpcRows = grpcTargets.map((t) => {
    const closed = grpc.get(`${t.key}:closed`)!;
    const open = grpc.get(`${t.key}:open`)!;
    return [t.label, Math.round(closed.rate), closed.p50Ms, closed.p99Ms, Math.round(open.rate), open.p50Ms, open.p99Ms, open.maxMs];
  });
  const bareClosed = grpc.get('i:closed')!;
  const ours = grpc.get('j:closed')!;
  const oursOpen = grpc.get('j:open')!;
  const grpcNotes = [
    verdict(`allowgate gRPC p99 under 1 ms at ${GRPC_RATE.toLocaleString('en-US')} checks/s`, oursOpen.p99Ms < 1, `p99 ${oursOpen.p99Ms} ms, p50 ${oursOpen.p50Ms} ms (OPA-Envoy's published figure: p50 0.347 ms, p99 3.0 ms at 1,000/s)`),
    `allowgate gRPC closed loop: ${((ours.rate / bareClosed.rate) * 100).toFixed(1)}% of the bare grpc-js server's checks/s (${GRPC_CONCURRENCY} calls in flight on one connection)`,
    'latency is timed from each call\'s actual send to its answer, by the benchmark\'s own HTTP/2 client on the same machine',
    `allowgate's own decision time (allowgate_decision_duration_seconds, bucket upper bounds): envoy-grpc ${decisionTime('envoy-grpc')}; forward-auth ${decisionTime('forward-auth')}`,
  ];

  const tables: Table[] = [
    { title: loadTitle('HTTP checks', settings, rounds), columns: ['target', 'checks/s', 'p50 ms', 'p99 ms', 'checks/s range', 'x (a)'], rows: httpRows, notes: checks },
    { title: loadTitle('Proxy with checks', settings, rounds), columns: ['target', 'req/s', 'p50 ms', 'p99 ms', 'req/s range', 'x (f)'], rows: proxyRows, notes: proxyNotes },
    {
      title: `gRPC checks: closed loop (${GRPC_CONCURRENCY} in flight) and open loop (${GRPC_RATE.toLocaleString('en-US')}/s), ${GRPC_SECONDS} s each, median of ${rounds} interleaved round${rounds === 1 ? '' : 's'}`,
      columns: ['target', 'closed checks/s', 'p50 ms', 'p99 ms', 'open checks/s', 'p50 ms', 'p99 ms', 'max ms'],
      rows: grpcRows,
      notes: [
        ...grpcNotes,
        `checks allowgate counted as allowed by AC1's list during the runs: ${allowed.toLocaleString('en-US')}`,
        `every target is a process of its own on loopback; wrk, the gRPC client and every server share this machine's ${availableParallelism()} cores`,
        ...notes,
        ...(quick ? ['--quick: short runs, one round: a smoke test, not a measurement'] : []),
        `took ${((Date.now() - started) / 1000).toFixed(0)} s`,
      ],
    },
  ];
  report('authz', tables, { settings, rounds, warmupSeconds, quick, results: Object.fromEntries(results), grpc: Object.fromEntries(grpc) });
}

/** Each target closed-loop then open-loop, round after round; the median of every figure. */
async function grpcRounds(targets: readonly { key: string; label: string; load: GrpcLoad }[], request: Buffer): Promise<Map<string, GrpcLoadResult>> {
  const runs = new Map<string, GrpcLoadResult[]>();
  const add = (key: string, r: GrpcLoadResult, label: string): void => {
    if (r.errors > 0 || r.checks === 0) throw new Error(`${label}: ${r.checks} checks, ${r.errors} errors: the setup is wrong`);
    runs.set(key, [...(runs.get(key) ?? []), r]);
  };
  for (const t of targets) await t.load.closedLoop(request, GRPC_CONCURRENCY, warmupSeconds);
  for (let round = 1; round <= rounds; round++) {
    for (const t of targets) {
      const closed = await t.load.closedLoop(request, GRPC_CONCURRENCY, GRPC_SECONDS);
      add(`${t.key}:closed`, closed, t.label);
      const open = await t.load.openLoop(request, GRPC_RATE, GRPC_SECONDS);
      add(`${t.key}:open`, open, t.label);
      process.stderr.write(`round ${round}/${rounds}: ${t.label}: ${Math.round(closed.rate)} checks/s closed; at ${GRPC_RATE}/s p50 ${open.p50Ms} ms, p99 ${open.p99Ms} ms\n`);
    }
  }
  const out = new Map<string, GrpcLoadResult>();
  for (const [key, list] of runs) {
    out.set(key, {
      checks: median(list.map((r) => r.checks)), rate: median(list.map((r) => r.rate)),
      p50Ms: median(list.map((r) => r.p50Ms)), p90Ms: median(list.map((r) => r.p90Ms)), p99Ms: median(list.map((r) => r.p99Ms)), maxMs: median(list.map((r) => r.maxMs)), errors: 0,
    });
  }
  return out;
}

/** The upper bound of the histogram bucket the quantile falls in, for one surface. */
function bucketQuantile(text: string, name: string, surface: string, quantile: number): string {
  const buckets: [number, number][] = [];
  const prefix = `${name}_bucket{surface="${surface}",le="`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const le = line.slice(prefix.length, line.indexOf('"', prefix.length));
    buckets.push([le === '+Inf' ? Infinity : Number(le), Number(line.slice(line.lastIndexOf(' ') + 1))]);
  }
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return '-';
  const found = buckets.find(([, count]) => count >= quantile * total)!;
  return found[0] === Infinity ? '> 100 ms' : `<= ${Math.round(found[0] * 1e6)} µs`;
}

async function allowedCount(gateway: Allowgate): Promise<number> {
  return metric(await gateway.metrics(), 'allowgate_requests_total', 'reason="ip_allowed"');
}

