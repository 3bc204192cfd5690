/**
 * The gateway's own work per request, without sockets: the Gatekeeper's decision (client IP,
 * identity with the account id matched to the stored accounts as the app does, policy lookup on a
 * cached list) and the observers (metrics, access log) for the common cases, and the same with an
 * opaque API key (10,000 registered, the key's account and list cached) beside the X-Auth-ID
 * header. Nanoseconds per request and allocations show what the proxy benchmark cannot separate
 * from I/O.
 *
 *   npm run bench:decision [-- --quick]
 */
import type { Checked, Gatekeeper, IncomingView } from '../src/gateway/gatekeeper.ts';
import { gatekeeperFromConfig } from '../src/gateway/from-config.ts';
import { followAccountNames } from '../src/policy/account-names.ts';
import { PolicyCache } from '../src/policy/cache.ts';
import { PolicyResolver } from '../src/policy/resolve.ts';
import type { AclEntry } from '../src/list/types.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { Metrics } from '../src/observability/metrics.ts';
import { RefusalDigest } from '../src/observability/refusal-digest.ts';
import { accessLog } from '../src/observability/access-log.ts';
import { createLogger } from '../src/observability/logger.ts';
import { loadConfig } from '../src/config/load.ts';
import { createWriteStream, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addKey } from '../src/acl/key-changes.ts';
import { KeyDigester } from '../src/list/key-digest.ts';
import { keyListId } from '../src/list/key-list-id.ts';
import { KeyResolver } from '../src/keys/resolver.ts';
import { GLOBAL_ACCOUNT } from '../src/list/types.ts';
import { benchKey } from './lib/allowgate.ts';
import { median, report, type Table } from './lib/report.ts';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 3 : 7;
const ITERATIONS = quick ? 50_000 : 400_000;

function entry(i: number, cidr: string, action: 'allow' | 'deny' = 'allow'): AclEntry {
  return { id: `e${i}`, ipAddress: cidr, cidrs: [cidr], action, description: '', enabled: true, createdAt: 'x', updatedAt: 'x' };
}

const store = new MemoryStore();
const entries = [entry(0, '127.0.0.0/8'), ...Array.from({ length: 49 }, (_, i) => entry(i + 1, `${20 + i}.${i}.0.0/16`))];
await store.update('AC1', () => ({ ok: true, draft: { account: 'AC1', settings: {}, entries } }));
await store.update(GLOBAL_ACCOUNT, () => ({ ok: true, draft: { account: GLOBAL_ACCOUNT, settings: {}, entries: [entry(900, '203.0.113.0/24', 'deny')] } }));
const cache = new PolicyCache(store);

const resolver = new PolicyResolver(cache, { mode: 'enforce', default: 'open' });
await cache.get('AC1');
await cache.get(GLOBAL_ACCOUNT);

// The shipped defaults (identity: header, basic, bearer-jwt), trusting one proxy range.
const config = loadConfig({ argv: [], env: { ALLOWGATE_TRUSTED_PROXIES: '10.0.0.0/8', ALLOWGATE_ADMIN_TOKEN: 'bench-token-0123456789abcdef' } });
const metrics = new Metrics({
  cache: () => ({ ...cache.stats(), rules: 0 }),
  storeState: () => 'up',
  storeKind: 'memory',
  lastSync: () => null,
});
const sink = createLogger('info', createWriteStream('/dev/null'));
const log = accessLog(sink, config.log.allowSampleRate, new RefusalDigest(sink));
const proxyMetrics = metrics.surface('proxy');

// The same gateway with the api-key strategy listed too, and 10,000 keys over 100 accounts (AC1's
// first key with a list of its own).
const KEY_SECRET = 'bench-key-secret-0123456789abcdefghij';
const keyDir = mkdtempSync(join(tmpdir(), 'allowgate-bench-decision-'));
writeFileSync(join(keyDir, 'allowgate.yaml'), 'identity:\n  strategies:\n    - type: header\n      header: X-Auth-ID\n    - type: basic\n    - type: bearer-jwt\n    - type: api-key\n      header: X-API-Key\n');
const keyConfig = loadConfig({ argv: [], env: { ALLOWGATE_CONFIG: join(keyDir, 'allowgate.yaml'), ALLOWGATE_KEY_SECRET: KEY_SECRET, ALLOWGATE_TRUSTED_PROXIES: '10.0.0.0/8', ALLOWGATE_ADMIN_TOKEN: 'bench-token-0123456789abcdef' } });
const digester = new KeyDigester(Buffer.from(KEY_SECRET));
for (let n = 1; n <= 100; n++) {
  const account = `AC${n}`;
  if (n > 1) await store.update(account, () => ({ ok: true, draft: { account, settings: {}, entries } }));
  for (let k = 0; k < 100; k++) {
    await store.update(account, addKey(account, { id: `key_${n}_${k}`, name: '', hash: 'hmac-sha256', digest: digester.hmac(benchKey(n, k)), enabled: true, createdAt: 'x', updatedAt: 'x' }, 100));
  }
}
const keyList = keyListId('AC1', 'key_1_0');
await store.update(keyList, () => ({ ok: true, draft: { account: keyList, settings: {}, entries: [entry(950, '127.0.0.0/24'), entry(951, '34.74.90.0/24')] } }));
await Promise.all([cache.load('AC1'), cache.get(keyList), cache.get(keyListId('AC1', 'key_1_1'))]);
const keys = new KeyResolver(digester, store, cache);
// Ids named by credentials are matched to stored accounts as the app does (identity.accountIdCase
// and accountIdNumeric, both `refuse` by default: an index of every account, a lookup per id).
const names = await followAccountNames({ case: config.identity.accountIdCase, numeric: config.identity.accountIdNumeric, limit: config.identity.accountIndexLimit, pathStrategy: false }, store, cache, sink);
const gatekeeper = gatekeeperFromConfig(config, resolver, names.gateway);
const keyGatekeeper = gatekeeperFromConfig(keyConfig, resolver, names.gateway, keys);

const headers = ['Host', '127.0.0.1:8080', 'User-Agent', 'curl/8.5.0', 'Accept', '*/*', 'X-Auth-ID', 'AC1'];
const keyHeaders = (key: string): string[] => [...headers.slice(0, 6), 'X-API-Key', key];
const HEADER_CASE = 'allow (direct peer, X-Auth-ID)';
const cases: Record<string, [Gatekeeper, IncomingView]> = {
  [HEADER_CASE]: [gatekeeper, { url: '/v1/messages?limit=10', rawHeaders: headers, remoteAddress: '127.0.0.1' }],
  'allow (trusted proxy, XFF)': [gatekeeper, { url: '/v1/messages', rawHeaders: [...headers, 'X-Forwarded-For', '127.0.0.9, 10.1.2.3'], remoteAddress: '10.0.0.5' }],
  'deny (not in list)': [gatekeeper, { url: '/v1/messages', rawHeaders: headers, remoteAddress: '198.51.100.7' }],
  'anonymous': [gatekeeper, { url: '/v1/messages', rawHeaders: headers.slice(0, 6), remoteAddress: '127.0.0.1' }],
  'allow (X-API-Key, 10,000 keys registered)': [keyGatekeeper, { url: '/v1/messages?limit=10', rawHeaders: keyHeaders(benchKey(1, 1)), remoteAddress: '127.0.0.1' }],
  'allow (X-API-Key with a list of its own)': [keyGatekeeper, { url: '/v1/messages?limit=10', rawHeaders: keyHeaders(benchKey(1, 0)), remoteAddress: '127.0.0.1' }],
  'deny (X-API-Key, not in the key\'s list)': [keyGatekeeper, { url: '/v1/messages', rawHeaders: keyHeaders(benchKey(1, 0)), remoteAddress: '20.0.0.7' }],
  'allow (X-Auth-ID, api-key strategy listed)': [keyGatekeeper, { url: '/v1/messages?limit=10', rawHeaders: headers, remoteAddress: '127.0.0.1' }],
};

function run(gatekeeper: Gatekeeper, view: IncomingView, observe: boolean): number {
  const req = { method: 'GET', url: view.url };
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) {
    const checked = gatekeeper.check(view) as Checked;
    if (observe) {
      proxyMetrics.decided(checked.verdict, checked.reason, checked.account, 0.00001);
      log.decided(req, checked, 0.00001);
      proxyMetrics.finished(checked.verdict, 0.0002);
      log.finished(req, checked, 200, 0.0002);
    }
    sink += checked.reason.length;
  }
  const ns = Number(process.hrtime.bigint() - start) / ITERATIONS;
  if (sink === 0) throw new Error('unreachable');
  return ns;
}

const rows: (string | number)[][] = [];
const data: Record<string, { checkNs: number; withObserversNs: number }> = {};
const verdicts = new Map<string, string>();
for (const [name, [gate, view]] of Object.entries(cases)) {
  // The first request with a key reads the store's key index; every later one is answered here.
  await gate.check(view);
  const check = gate.check(view);
  if (check instanceof Promise) throw new Error(`${name}: the list is not cached, the benchmark would measure a store read`);
  verdicts.set(name, check.verdict);
}
// Rounds interleave the cases (each round runs every case once), so a machine that slows down or
// speeds up during the run moves every case alike and the ratios between them hold.
const checkNs = new Map<string, number[]>(Object.keys(cases).map((name) => [name, []]));
const fullNs = new Map<string, number[]>(Object.keys(cases).map((name) => [name, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, [gate, view]] of Object.entries(cases)) {
    checkNs.get(name)!.push(run(gate, view, false));
    fullNs.get(name)!.push(run(gate, view, true));
  }
}
for (const name of Object.keys(cases)) {
  const check = median(checkNs.get(name)!);
  const full = median(fullNs.get(name)!);
  data[name] = { checkNs: check, withObserversNs: full };
  rows.push([name, verdicts.get(name)!, check, full, Math.round(1e9 / full)]);
}

/**
 * The loops above hand the gatekeeper the same header strings again and again, so V8 hashes the key
 * once; a real request's key is a new string, hashed on its first map lookup. That cost, measured
 * apart: a lookup in a map of 10,000 keys with a fresh copy of the key, less making the copy.
 */
function freshKeyHashNs(): number {
  const pointers = new Map<string, number>();
  for (let n = 1; n <= 100; n++) for (let k = 0; k < 100; k++) pointers.set(benchKey(n, k), k);
  const bytes = Buffer.from(benchKey(1, 1), 'latin1');
  const copyNs: number[] = [];
  const lookupNs: number[] = [];
  let held = 0;
  for (let r = 0; r < ROUNDS; r++) {
    let start = process.hrtime.bigint();
    for (let i = 0; i < ITERATIONS; i++) held += bytes.toString('latin1').length;
    copyNs.push(Number(process.hrtime.bigint() - start) / ITERATIONS);
    start = process.hrtime.bigint();
    for (let i = 0; i < ITERATIONS; i++) held += pointers.get(bytes.toString('latin1'))!;
    lookupNs.push(Number(process.hrtime.bigint() - start) / ITERATIONS);
  }
  if (held === 0) throw new Error('unreachable');
  return Math.max(0, median(lookupNs) - median(copyNs));
}
const hashNs = freshKeyHashNs();
const KEY_CASES = ['allow (X-API-Key, 10,000 keys registered)', 'allow (X-API-Key with a list of its own)'];
const ratio = (name: string, extra = 0): string => `${((data[name]!.withObserversNs + extra) / data[HEADER_CASE]!.withObserversNs).toFixed(2)}x`;

const table: Table = {
  title: `Decision cost per request (median of ${ROUNDS} interleaved rounds of ${ITERATIONS.toLocaleString('en-US')}, 50-entry list cached)`,
  columns: ['case', 'verdict', 'check ns', 'check + observers ns', 'requests/s on one core'],
  rows,
  notes: [
    'observers: metrics (counters and histograms) and the access log (allows sampled at 1%, refusals written to /dev/null)',
    `API keys: ${KEY_CASES.map((c) => `${c} ${ratio(c)}`).join(', ')} the cost of ${HEADER_CASE} (check + observers; a key seen before is one map lookup by the key as presented and, with a list of its own, a second trie lookup)`,
    `hashing the key a new request brings (the loops reuse one string, hashed once): +${hashNs.toFixed(0)} ns, measured apart; with it, ${KEY_CASES.map((c) => ratio(c, hashNs)).join(' and ')}`,
  ],
};
report('decision', [table], { ...data, freshKeyHashNs: hashNs });
names.stop();
