/**
 * The proxy engine on its own: bare forwarders without checks, on the same upstream and load,
 * interleaved rounds: http-proxy-3 (`createProxyServer` with a keep-alive http.Agent) against an
 * undici Pool driven through `dispatch` (allowgate's way) and through `pool.stream`.
 *
 *   npm run bench:engine [-- --quick] [--seconds N] [--rounds N] [--connections N]
 */
import { loadavg } from 'node:os';
import { startServer, UPSTREAM_BODY, type ServerKind } from './lib/forwarders.ts';
import { stopAll, workDir } from './lib/processes.ts';
import { report, type Table } from './lib/report.ts';
import { interleavedRounds, loadSettings, loadTitle, preflight, summarize, Wrk, type Target } from './lib/wrk.ts';

const { settings, rounds, warmupSeconds, quick } = loadSettings(process.argv.slice(2));
const ENGINES: readonly { key: string; kind: ServerKind; label: string }[] = [
  { key: 'undici-dispatch', kind: 'undici-dispatch', label: 'undici Pool, dispatch (allowgate)' },
  { key: 'undici-stream', kind: 'undici-stream', label: 'undici Pool, pool.stream' },
  { key: 'http-proxy-3', kind: 'http-proxy-3', label: 'http-proxy-3, keep-alive http.Agent' },
];
const started = Date.now();

try {
  const dir = workDir('engine');
  const wrk = Wrk.create(dir);
  if (typeof wrk === 'string') console.log(`engine benchmark skipped: ${wrk}`);
  else await main(wrk);
} finally {
  await stopAll();
}

async function main(wrk: Wrk): Promise<void> {
  const upstream = await startServer('upstream');
  const targets: Target[] = [];
  for (const engine of ENGINES) {
    const server = await startServer(engine.kind, upstream.port);
    targets.push({ key: engine.key, label: engine.label, url: server.url, spec: { path: '/v1/resource', headers: { 'X-Auth-ID': 'AC1' } } });
  }
  for (const t of targets) await preflight(t, UPSTREAM_BODY);
  const load = loadavg()[0]!;
  const results = await interleavedRounds(wrk, targets, { settings, rounds, warmupSeconds });
  const summaries = new Map([...results].map(([key, list]) => [key, summarize(list)]));
  const ranked = [...targets].sort((x, y) => summaries.get(y.key)!.rps - summaries.get(x.key)!.rps);
  const fastest = summaries.get(ranked[0]!.key)!;
  const proxy3 = summaries.get('http-proxy-3')!;
  const dispatch = summaries.get('undici-dispatch')!;
  const stream = summaries.get('undici-stream')!;
  const table: Table = {
    title: loadTitle('Proxy engine, bare forwarders (no checks)', settings, rounds),
    columns: ['engine', 'req/s', 'p50 ms', 'p99 ms', 'req/s range', 'x fastest', 'x http-proxy-3'],
    rows: targets.map((t) => {
      const m = summaries.get(t.key)!;
      return [t.label, Math.round(m.rps), m.p50Ms, m.p99Ms, `${Math.round(m.rpsMin)}-${Math.round(m.rpsMax)}`, Number((m.rps / fastest.rps).toFixed(2)), Number((m.rps / proxy3.rps).toFixed(2))];
    }),
    notes: [
      `fastest: ${ranked[0]!.label}`,
      `undici dispatch vs http-proxy-3: ${(dispatch.rps / proxy3.rps).toFixed(2)}x the req/s, p99 ${dispatch.p99Ms} vs ${proxy3.p99Ms} ms`,
      `undici dispatch vs pool.stream: ${(((dispatch.rps / stream.rps) - 1) * 100).toFixed(1)}% req/s, p99 ${dispatch.p99Ms} vs ${stream.p99Ms} ms`,
      'each forwarder: one Node process, 128 keep-alive upstream connections, hop-by-hop headers dropped, X-Forwarded-For set',
      ...(load > 0.5 ? [`load average was ${load.toFixed(2)} before the runs: something else is using the CPU, figures are disturbed`] : []),
      ...(quick ? ['--quick: short runs, one round: a smoke test, not a measurement'] : []),
      `took ${((Date.now() - started) / 1000).toFixed(0)} s`,
    ],
  };
  report('engine', [table], { settings, rounds, warmupSeconds, quick, fastest: ranked[0]!.key, summaries: Object.fromEntries(summaries), results: Object.fromEntries(results) });
}
