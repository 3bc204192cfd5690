/**
 * allowgate as the real process (`node src/cli.ts serve`, configured through ALLOWGATE_*
 * variables), ready once its /readyz answers 200; and the lists the benchmarks give it, written
 * as a file store (src/store/file-store.ts, records as src/list/record-format.ts reads them).
 *
 * Every list is one the admin API would accept (ALLOWGATE_RESERVED_RANGES=none, because the
 * load generator calls from loopback): no duplicates, no overlaps, public space otherwise.
 */
import { createHmac } from 'node:crypto';
import { createWriteStream, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { request, type Agent } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RUNTIME_ENV, RUNTIME_FLAGS } from '../../src/cli/runtime.ts';
import { freePort, start, waitForHttp } from './processes.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'src', 'cli.ts');
export const ADMIN_TOKEN = 'bench-admin-token-0123456789';

export interface Allowgate {
  readonly pid: number;
  readonly port: number;
  readonly adminPort: number;
  readonly url: string;
  readonly adminUrl: string;
  /** The Prometheus text of /metrics. */
  metrics(): Promise<string>;
  /** An admin API call with the owner token; the JSON answer, or an error naming the refusal. */
  admin(method: string, path: string, body?: unknown): Promise<unknown>;
}

export interface AllowgateOptions {
  readonly upstreamUrl: string;
  /** ALLOWGATE_STORE: memory, file:PATH, redis://... */
  readonly store: string;
  /** A directory for its config file (and whatever the store keeps beside it). */
  readonly dir: string;
  readonly env?: Record<string, string>;
  /** Extra Node flags, e.g. --cpu-prof. */
  readonly nodeFlags?: readonly string[];
  /** Start with the project's runtime flags and environment, as `npm start` does (default true). */
  readonly runtime?: boolean;
  /** YAML for settings with no environment variable (e.g. cache.maxEntries); empty by default. */
  readonly config?: string;
  readonly startTimeoutMs?: number;
  /** The CLI to run: this tree's by default (a benchmark comparing trees passes another's). */
  readonly cli?: string;
}

export async function startAllowgate(options: AllowgateOptions): Promise<Allowgate> {
  const [port, adminPort] = [await freePort(), await freePort()];
  // An empty config file of its own: config/allowgate.yaml in the tree is not this benchmark's.
  const config = join(options.dir, `allowgate-${port}.yaml`);
  writeFileSync(config, options.config ?? '# bench: configured through the environment\n');
  // As `npm start` runs it (the project's runtime flags and environment) unless told otherwise.
  const runtime = options.runtime ?? true;
  const child = start(process.execPath, [...(runtime ? RUNTIME_FLAGS : []), ...(options.nodeFlags ?? []), options.cli ?? CLI, 'serve'], {
    cwd: options.dir,
    env: {
      ...(runtime ? RUNTIME_ENV : {}),
      ALLOWGATE_CONFIG: config,
      ALLOWGATE_LISTEN: `127.0.0.1:${port}`,
      ALLOWGATE_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
      ALLOWGATE_UPSTREAM_URL: options.upstreamUrl,
      ALLOWGATE_STORE: options.store,
      ALLOWGATE_ADMIN_TOKEN: ADMIN_TOKEN,
      ALLOWGATE_RESERVED_RANGES: 'none',
      ...options.env,
    },
  });
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitForHttp(`${adminUrl}/readyz`, options.startTimeoutMs ?? 60_000, child);
  return {
    pid: child.pid ?? 0,
    port,
    adminPort,
    url: `http://127.0.0.1:${port}`,
    adminUrl,
    metrics: async () => (await fetch(`${adminUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text(),
    admin: async (method, path, body) => {
      const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
      const res = await fetch(`${adminUrl}${path}`, body === undefined ? { method, headers } : { method, headers, body: JSON.stringify(body) });
      const text = await res.text();
      if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
      return text === '' ? null : JSON.parse(text);
    },
  };
}

/** One request through the replica's proxy port as `account` (X-Auth-ID); resolves with its status. */
export function proxied(gw: Allowgate, account: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${gw.url}/v1/resource`, { agent, headers: { 'x-auth-id': account } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A counter or gauge from Prometheus text, summed over its label sets (0 when absent). */
export function metric(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith(' ') || rest.startsWith('{'))) continue;
    if (labels !== '' && !rest.includes(labels)) continue;
    sum += Number(rest.slice(rest.lastIndexOf(' ') + 1));
  }
  return sum;
}

// ---- lists ---------------------------------------------------------------------------------------

const STAMP = '2026-01-01T00:00:00.000Z';

export interface StoredEntry {
  readonly id: string;
  readonly ipAddress: string;
  readonly cidrs: readonly string[];
  readonly action: 'allow' | 'deny';
  readonly description: string;
  readonly enabled: boolean;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export function storedEntry(id: string, ipAddress: string, cidr: string, action: 'allow' | 'deny' = 'allow'): StoredEntry {
  return { id, ipAddress, cidrs: [cidr], action, description: '', enabled: true, createdAt: STAMP, updatedAt: STAMP };
}

/**
 * The 50 networks of account number `n` (1..65,536): the load generator's address 127.0.0.1 and
 * 49 public /24s, 20-68.x.y.0/24 with x.y from n, so no two accounts share one.
 */
export function accountNetworks(n: number): string[] {
  return ['127.0.0.1', ...Array.from({ length: 49 }, (_, k) => `${20 + k}.${(n >> 8) & 255}.${n & 255}.0/24`)];
}

/** An account's 50 allow entries as the store keeps them. */
export function accountEntries(n: number): StoredEntry[] {
  return accountNetworks(n).map((net, k) => storedEntry(`ipacl_${n}_${k}`, net, net.includes('/') ? net : `${net}/32`));
}

/**
 * `count` distinct deny /24s (up to 5 x 65,536) in 11-15.0.0.0/8: public space, away from the
 * accounts' ranges and from the load generator.
 */
export function globalDenyEntries(count: number): StoredEntry[] {
  if (count > 5 * 65_536) throw new RangeError('at most 327,680 global entries');
  return Array.from({ length: count }, (_, i) => {
    const net = `${11 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`;
    return storedEntry(`ipacl_g${i}`, net, net, 'deny');
  });
}

/** API keys registered in a file store: how many per account, under which secret, each with a list of its own. */
export interface SeededKeys {
  readonly perAccount: number;
  /** ALLOWGATE_KEY_SECRET of the gateway that reads the store. */
  readonly secret: string;
  /** Entries of each key's own list (the load generator's address first); 0: no key lists. */
  readonly listEntries: number;
}

/** The `k`th key of account number `n`, as clients would send it. */
export function benchKey(n: number, k: number): string {
  return `sk_bench_${n}_${k}_${'x'.repeat(24)}`;
}

/**
 * Writes a file store holding accounts AC1..ACn with accountEntries(n) each (the first
 * `entriesPerAccount` of them: the load generator's address is the first), and the global list
 * `global` (none if empty), streamed so 10,000 accounts need no one giant string. With `keys`,
 * each account also holds that many API keys (stored as the registry stores them: HMAC-SHA-256
 * under the secret), each with its own list; resolves with the keys as clients send them.
 */
export async function writeFileStore(path: string, accounts: number, global: readonly StoredEntry[], entriesPerAccount = 50, keys?: SeededKeys): Promise<string[]> {
  const out = createWriteStream(path);
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, 'drain');
  };
  await write('{"format":"allowgate-store","version":1,"accounts":{');
  let first = true;
  const record = async (account: string, entries: readonly StoredEntry[], settings: object, extra: object = {}): Promise<void> => {
    await write(`${first ? '' : ','}${JSON.stringify(account)}:${JSON.stringify({ account, version: 1, settings, entries, ...extra })}`);
    first = false;
  };
  const sent: string[] = [];
  for (let n = 1; n <= accounts; n++) {
    const entries = accountEntries(n).slice(0, entriesPerAccount);
    if (keys === undefined) {
      await record(`AC${n}`, entries, {});
      continue;
    }
    const stored = Array.from({ length: keys.perAccount }, (_, k) => {
      const key = benchKey(n, k);
      sent.push(key);
      return { id: `key_${n}_${k}`, name: `bench ${k}`, hash: 'hmac-sha256', digest: createHmac('sha256', keys.secret).update(key, 'latin1').digest('hex'), enabled: true, createdAt: STAMP, updatedAt: STAMP };
    });
    await record(`AC${n}`, entries, {}, { keys: stored });
    if (keys.listEntries === 0) continue;
    // Each key's list: the load generator's address and /24s of its own, inside the account's list.
    for (const [k, key] of stored.entries()) {
      const own = ['127.0.0.1', ...Array.from({ length: keys.listEntries - 1 }, (_, j) => `${20 + j}.${(n >> 8) & 255}.${n & 255}.${k}/32`)];
      await record(`AC${n}/key:${key.id}`, own.map((net, j) => storedEntry(`ipacl_${n}_${k}_${j}`, net, net.includes('/') ? net : `${net}/32`)), {});
    }
  }
  if (global.length > 0) await record('_global', global, { maxEntries: global.length });
  await write('}}\n');
  out.end();
  await once(out, 'finish');
  return sent;
}
