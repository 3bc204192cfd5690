/**
 * The same upstream measured directly, through bare Node forwarders, through allowgate (a 50-entry
 * list; 10,000 accounts of 50 entries plus a 100,000-entry global list), nginx (one worker,
 * allow/deny + realip) and the usual express stack. The three bare forwarders double as the
 * engine comparison: undici (dispatch and stream) against http-proxy-3 on the same load. Same load for every target, rounds
 * interleaved, medians reported, ratios to the faster bare forwarder.
 *
 *   npm run bench:proxy [-- --quick]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { have, load, start, stopAll, waitForPort, type LoadResult, type LoadSettings } from './lib/load.ts';
import { median, report, verdict, type Table } from './lib/report.ts';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = join(BENCH, '..');
const quick = process.argv.includes('--quick');
const settings: LoadSettings = { connections: 50, seconds: quick ? 2 : 5 };
const ROUNDS = quick ? 1 : 3;
const node = process.execPath;
const work = mkdtempSync(join(tmpdir(), 'allowgate-bench-'));
const notes: string[] = [];

interface Target {
  readonly key: string;
  readonly label: string;
  readonly port: number;
  readonly header?: string;
  readonly accounts?: number;
}

const UPSTREAM = 18100;
const targets: Target[] = [];

// ---- the lists -----------------------------------------------------------------------------------

const STAMP = '2026-01-01T00:00:00.000Z';
const entry = (id: string, cidr: string, action: 'allow' | 'deny' = 'allow') =>
  ({ id, ipAddress: cidr, cidrs: [cidr], action, description: '', enabled: true, createdAt: STAMP, updatedAt: STAMP });
/** 127.0.0.0/8 (the load generator) plus 49 public /24s, distinct per account. */
const accountEntries = (n: number) => [entry(`e${n}-0`, '127.0.0.0/8'),
  ...Array.from({ length: 49 }, (_, k) => entry(`e${n}-${k + 1}`, `${20 + k}.${(n >> 8) & 255}.${n & 255}.0/24`))];
const record = (account: string, entries: unknown[]) => ({ account, version: 1, settings: {}, entries });

function storeFile(name: string, accounts: number, globalEntries: number): string {
  const all: Record<string, unknown> = {};
  for (let n = 1; n <= accounts; n++) all[`AC${n}`] = record(`AC${n}`, accountEntries(n));
  if (globalEntries > 0) {
    // Deny /24s in 11.0.0.0/8 and 12.0.0.0/8: never the load generator's address.
    all['_global'] = record('_global', Array.from({ length: globalEntries }, (_, i) =>
      entry(`g${i}`, `${11 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`, 'deny')));
  }
  const path = join(work, `${name}.json`);
  writeFileSync(path, JSON.stringify({ format: 'allowgate-store', version: 1, accounts: all }));
  return path;
}

function allowgate(port: number, store: string): void {
  const config = join(work, `allowgate-${port}.yaml`);
  writeFileSync(config, 'cache:\n  maxEntries: 20000\n');
  start(node, [join(ROOT, 'src', 'cli.ts'), 'serve'], {
    ALLOWGATE_CONFIG: config,
    ALLOWGATE_LISTEN: `127.0.0.1:${port}`,
    ALLOWGATE_ADMIN_LISTEN: `127.0.0.1:${port + 1}`,
    ALLOWGATE_UPSTREAM_URL: `http://127.0.0.1:${UPSTREAM}`,
    ALLOWGATE_STORE: `file:${store}`,
    ALLOWGATE_ADMIN_TOKEN: 'bench-admin-token-0123456789',
    ALLOWGATE_LOG_LEVEL: 'warn',
  });
}

// ---- nginx and the express stack ------------------------------------------------------------------

function nginx(port: number): boolean {
  if (!have('nginx')) {
    notes.push('nginx skipped: not installed (Debian package nginx)');
    return false;
  }
  const allow = ['127.0.0.0/8', ...Array.from({ length: 49 }, (_, k) => `${20 + k}.0.1.0/24`)].map((c) => `      allow ${c};`).join('\n');
  const conf = join(work, 'nginx.conf');
  writeFileSync(conf, `worker_processes 1;
daemon off;
pid ${work}/nginx.pid;
error_log ${work}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${work}/nginx-body;
  proxy_temp_path ${work}/nginx-proxy;
  upstream up { server 127.0.0.1:${UPSTREAM}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    set_real_ip_from 10.0.0.0/8;
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;
    location / {
${allow}
      deny all;
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`);
  start('nginx', ['-c', conf, '-p', work]);
  return true;
}

function expressStack(port: number): boolean {
  const deps = join(BENCH, '.deps');
  const installed = spawnSync('npm', ['install', '--prefix', deps, '--no-save', '--no-audit', '--no-fund', '--loglevel=error',
    'express@^5', 'express-ipfilter@^1', 'http-proxy-middleware@^3'], { encoding: 'utf8', timeout: 180_000 });
  if (installed.status !== 0) {
    notes.push(`express stack skipped: npm install into bench/.deps failed (${(installed.stderr || '').trim().split('\n')[0]})`);
    return false;
  }
  start(node, [join(BENCH, 'lib', 'express-stack.ts'), deps, String(port), String(UPSTREAM)]);
  return true;
}

// ---- run ---------------------------------------------------------------------------------------------

try {
  if (!have('wrk')) throw new Error('wrk is needed (Debian package wrk: apt-get install -y wrk)');
  start(node, [join(BENCH, 'lib', 'servers.ts'), 'upstream', String(UPSTREAM)]);
  targets.push({ key: 'a', label: '(a) upstream directly', port: UPSTREAM });
  start(node, [join(BENCH, 'lib', 'servers.ts'), 'undici-dispatch', '18101', String(UPSTREAM)]);
  targets.push({ key: 'b', label: '(b) bare forwarder, undici dispatch', port: 18101 });
  start(node, [join(BENCH, 'lib', 'servers.ts'), 'undici-stream', '18102', String(UPSTREAM)]);
  targets.push({ key: 'b2', label: '(b2) bare forwarder, undici stream', port: 18102 });
  start(node, [join(BENCH, 'lib', 'servers.ts'), 'http-proxy-3', '18103', String(UPSTREAM)]);
  targets.push({ key: 'b3', label: '(b3) bare forwarder, http-proxy-3', port: 18103 });
  allowgate(18110, storeFile('small', 1, 0));
  targets.push({ key: 'c', label: '(c) allowgate, 50-entry list', port: 18110, header: 'X-Auth-ID: AC1' });
  allowgate(18120, storeFile('large', quick ? 1_000 : 10_000, 100_000));
  targets.push({ key: 'd', label: `(d) allowgate, ${quick ? '1,000' : '10,000'} accounts x 50 + 100k global`, port: 18120, accounts: quick ? 1_000 : 10_000 });
  if (nginx(18130)) targets.push({ key: 'e', label: '(e) nginx, 1 worker, allow/deny + realip', port: 18130 });
  if (expressStack(18140)) targets.push({ key: 'f', label: '(f) express + express-ipfilter + http-proxy-middleware', port: 18140 });

  for (const t of targets) await waitForPort(t.port, 60_000);
  // Warm-up: JIT, keep-alive pools, and for (d) every account's list compiled into the cache.
  for (const t of targets) load(`http://127.0.0.1:${t.port}/`, { connections: settings.connections, seconds: t.key === 'd' ? 8 : 2 }, t.header, t.accounts);

  const results = new Map<string, LoadResult[]>(targets.map((t) => [t.key, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of targets) {
      const r = load(`http://127.0.0.1:${t.port}/`, settings, t.header, t.accounts);
      if (r.requests === 0 || r.non2xx > 0 || r.errors > 0) throw new Error(`${t.label}: ${r.non2xx} non-2xx responses and ${r.errors} socket errors: the setup is wrong`);
      results.get(t.key)!.push(r);
      process.stderr.write(`round ${round + 1}: ${t.label}: ${Math.round(r.rps)} req/s\n`);
    }
  }

  const med = (key: string, f: (r: LoadResult) => number): number | null => {
    const list = results.get(key);
    return list === undefined || list.length === 0 ? null : median(list.map(f));
  };
  const rps = (key: string) => med(key, (r) => r.rps);
  const p99 = (key: string) => med(key, (r) => r.p99Ms);
  const bareKey = (['b', 'b2', 'b3'] as const).reduce((best, key) => ((rps(key) ?? 0) > (rps(best) ?? 0) ? key : best));
  const bareRps = rps(bareKey)!;
  const bareP99 = p99(bareKey)!;
  const rows = targets.map((t) => [t.label, rps(t.key), med(t.key, (r) => r.p50Ms), p99(t.key),
    Number((rps(t.key)! / bareRps).toFixed(2)), Number((p99(t.key)! - bareP99).toFixed(2))]);

  const checks: string[] = [];
  for (const key of ['c', 'd']) {
    const ratio = rps(key)! / bareRps;
    checks.push(verdict(`allowgate (${key}) >= 90% of the faster bare forwarder`, ratio >= 0.9, `${(ratio * 100).toFixed(1)}%`));
    const extra = p99(key)! - bareP99;
    checks.push(verdict(`allowgate (${key}) p99 within +0.5 ms of it`, extra <= 0.5, `${extra >= 0 ? '+' : ''}${extra.toFixed(2)} ms`));
  }
  if (rps('f') !== null) checks.push(verdict('allowgate (c) >= 5x the express stack', rps('c')! >= 5 * rps('f')!, `${(rps('c')! / rps('f')!).toFixed(1)}x`));
  if (rps('e') !== null) {
    checks.push(verdict('allowgate (c) >= 60% of nginx (1 worker)', rps('c')! >= 0.6 * rps('e')!, `${((rps('c')! / rps('e')!) * 100).toFixed(1)}%`));
    checks.push(`bare forwarder (${bareKey}) reaches ${((bareRps / rps('e')!) * 100).toFixed(1)}% of nginx`);
  }

  const table: Table = {
    title: `Proxy throughput: wrk 1 thread, ${settings.connections} connections, ${settings.seconds} s, median of ${ROUNDS} interleaved round(s)`,
    columns: ['target', 'req/s', 'p50 ms', 'p99 ms', `ratio to (${bareKey})`, `p99 vs (${bareKey}) ms`],
    rows,
    notes: [...checks, ...notes],
  };
  report('proxy', [table], { settings, rounds: ROUNDS, bare: bareKey, results: Object.fromEntries(results) });
} finally {
  stopAll();
  rmSync(work, { recursive: true, force: true });
}
