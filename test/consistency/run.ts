/**
 * A Jepsen-style consistency run of the Redis store through real gateway replicas: several
 * replicas over one redis-server (AOF, fsync always), concurrent writers adding and deleting
 * entries through the admin API of any replica, and a nemesis that freezes Redis (SIGSTOP) and
 * kills it (SIGKILL, then a restart from its AOF) while they write. Every operation is recorded
 * with its outcome as the client saw it: ok, failed (the gateway said nothing was changed) or
 * unknown (503 outcome_unknown, or no answer at all). Once the writers stop and Redis is back, the
 * history is checked against the final state, the versions and the audit trail:
 *
 *   - an acknowledged add is present (unless a delete of it was attempted), an acknowledged
 *     delete absent; a failed add never appears, a failed delete never removed anything;
 *   - no entry exists that no add (ok or unknown) could have made;
 *   - each account's audit trail has exactly one event per version 1..V, in version order, each
 *     the event of one operation that was ok or unknown, every ok operation's at the version its
 *     answer gave; replaying the trail gives the final list; the cross-account trail is the union
 *     of the accounts' trails, same ids, version order within each account;
 *   - every replica enforces the final lists: present entries admit their address, removed or
 *     never-made ones do not.
 *
 *   npm run test:consistency [-- --seconds 300 --writers 12 --accounts 6 --replicas 3]
 *
 * test/e2e/consistency.test.ts runs a short form of it in the suite.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startEchoUpstream } from '../support/echo-upstream.ts';
import { ADMIN_TOKEN, startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { startRedis } from '../support/redis-server.ts';
import { scratchDir } from '../support/scratch.ts';

export interface RunOptions {
  readonly seconds: number;
  readonly replicas: number;
  readonly writers: number;
  readonly accounts: number;
  /** Seconds between faults; they alternate freeze and kill. */
  readonly faultEverySeconds: number;
  readonly log?: (line: string) => void;
}

export const SHORT: RunOptions = { seconds: 36, replicas: 3, writers: 6, accounts: 3, faultEverySeconds: 7 };
export const LONG: RunOptions = { seconds: 300, replicas: 3, writers: 12, accounts: 6, faultEverySeconds: 9 };

type Outcome = 'ok' | 'failed' | 'unknown';

interface Op {
  readonly kind: 'add' | 'delete';
  readonly writer: number;
  readonly account: string;
  /** The entry's address (add) and description, unique per add: how an event or entry is matched to it. */
  readonly ip: string;
  readonly description: string;
  /** The entry's id: from the answer (add ok) or the add it deletes. */
  id: string | null;
  outcome: Outcome;
  status: number;
  reason: string;
  /** The version the answer gave (ok). */
  version: number | null;
  readonly replica: number;
}

interface Fault {
  readonly kind: 'freeze' | 'kill';
  readonly at: number;
  readonly ms: number;
}

export interface RunReport {
  readonly ops: number;
  readonly outcomes: Readonly<Record<Outcome, number>>;
  readonly faults: readonly Fault[];
  readonly violations: readonly string[];
  readonly finalVersions: Readonly<Record<string, number>>;
}

interface ApiEntry {
  id: string;
  ip_address: string;
  description: string;
}

interface AuditEventShape {
  id: string;
  account: string;
  action: string;
  version: number;
  before: ApiEntry | null;
  after: ApiEntry | null;
}

const ANCHOR = '127.0.0.250';
const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];

export async function runConsistency(options: RunOptions): Promise<RunReport> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const dir = scratchDir();
  const redis = await startRedis(AOF);
  const upstream = await startEchoUpstream();
  const config = join(dir.path, 'allowgate.yaml');
  writeFileSync(config, [
    'redis: {connectTimeoutMs: 300, commandTimeoutMs: 300, sweepIntervalMs: 1000}',
    // Many writers on one owner token: the per-credential admission is not what is tested here.
    'admin:',
    '  writes: {perSecond: 100000, burst: 100000, concurrent: 256, concurrentPerCredential: 256}',
    // The whole history kept, so every operation's event can be checked.
    'audit: {cap: 10000000, accountCap: 1000000}',
    'validation: {maxEntries: 1000}',
    '',
  ].join('\n'));
  const env = { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_STORE: redis.url, ALLOWGATE_CONFIG: config, ALLOWGATE_LOG_LEVEL: 'info' };
  const replicas = await Promise.all(Array.from({ length: options.replicas }, () => startGateway({ env, timeoutMs: 30_000 })));
  const accounts = Array.from({ length: options.accounts }, (_, i) => `JC${i + 1}`);
  const ops: Op[] = [];
  const faults: Fault[] = [];
  let pid = 0;
  try {
    // Each account always restricts (an anchor entry), so a removed address is refused, not open.
    for (const account of accounts) {
      const res = await admin(replicas[0]!, 'POST', `/v1/accounts/${account}/ip-acl`, { ip_address: `${ANCHOR}/32`, description: 'anchor' });
      if (res.status !== 201) throw new Error(`anchor of ${account}: ${res.status}`);
    }
    pid = await redisPid(redis.url);
    const end = Date.now() + options.seconds * 1000;
    const writers = Array.from({ length: options.writers }, (_, w) => writer(w, replicas, accounts, ops, end));
    const nemesis = (async () => {
      for (let n = 0; Date.now() + options.faultEverySeconds * 1000 < end; n++) {
        await sleep(options.faultEverySeconds * 1000 * (0.6 + 0.4 * ((n * 7) % 5) / 4));
        if (n % 2 === 0) {
          const ms = 1_200;
          process.kill(pid, 'SIGSTOP');
          await sleep(ms);
          process.kill(pid, 'SIGCONT');
          faults.push({ kind: 'freeze', at: Date.now(), ms });
          log(`nemesis: froze Redis for ${ms} ms`);
        } else {
          const began = Date.now();
          await redis.kill();
          await sleep(800);
          await redis.restart();
          pid = await redisPid(redis.url);
          faults.push({ kind: 'kill', at: Date.now(), ms: Date.now() - began });
          log(`nemesis: killed Redis, restarted it from its AOF after ${Date.now() - began} ms`);
        }
      }
    })();
    await Promise.all([...writers, nemesis]);

    // Quiet: every replica reconnected and swept (the sweep interval is 1 s).
    await waitFor('every replica up', async () => (await Promise.all(replicas.map(storeUp))).every(Boolean), 20_000);
    await sleep(2_500);
    const violations = await check(replicas, accounts, ops);
    const outcomes = { ok: 0, failed: 0, unknown: 0 };
    for (const op of ops) outcomes[op.outcome]++;
    const finalVersions: Record<string, number> = {};
    for (const account of accounts) finalVersions[account] = (await listOf(replicas[0]!, account)).version;
    const reasons = new Map<string, number>();
    for (const op of ops) if (op.outcome !== 'ok') reasons.set(`${op.outcome} ${op.status} ${op.reason}`, (reasons.get(`${op.outcome} ${op.status} ${op.reason}`) ?? 0) + 1);
    log(`outcomes other than ok: ${JSON.stringify(Object.fromEntries(reasons))}`);
    log(`consistency: ${ops.length} operations (${outcomes.ok} ok, ${outcomes.failed} failed, ${outcomes.unknown} unknown), ${faults.filter((f) => f.kind === 'freeze').length} freezes, ${faults.filter((f) => f.kind === 'kill').length} kills, ${violations.length} violations`);
    for (const violation of violations.slice(0, 50)) log(`  VIOLATION ${violation}`);
    return { ops: ops.length, outcomes, faults, violations, finalVersions };
  } finally {
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Gone already.
      }
    }
    await Promise.all(replicas.map((gw) => gw.stop()));
    await upstream.close();
    await redis.stop();
    dir.remove();
  }
}

/** One client writing until `end`: adds of its own addresses, deletes of what it added. */
async function writer(w: number, replicas: readonly GatewayProcess[], accounts: readonly string[], ops: Op[], end: number): Promise<void> {
  // This writer's acknowledged adds not yet deleted (each entry is deleted at most once).
  const deletable: Op[] = [];
  for (let seq = 0; Date.now() < end; seq++) {
    const replica = (w + seq) % replicas.length;
    const gw = replicas[replica]!;
    if (deletable.length > 0 && seq % 2 === 1) {
      const [target] = deletable.splice((seq * 31) % deletable.length, 1) as [Op];
      const op: Op = { kind: 'delete', writer: w, account: target.account, ip: target.ip, description: target.description, id: target.id, outcome: 'unknown', status: 0, reason: '', version: null, replica };
      ops.push(op);
      await attempt(op, () => admin(gw, 'DELETE', `/v1/accounts/${target.account}/ip-acl/${target.id}`));
      continue;
    }
    const account = accounts[(w * 7 + seq) % accounts.length]!;
    const ip = `127.${10 + w}.${(seq >> 8) & 255}.${seq & 255}`;
    const op: Op = { kind: 'add', writer: w, account, ip, description: `w${w}-${seq}`, id: null, outcome: 'unknown', status: 0, reason: '', version: null, replica };
    ops.push(op);
    await attempt(op, () => admin(gw, 'POST', `/v1/accounts/${account}/ip-acl`, { ip_address: `${ip}/32`, description: op.description }), (body) => {
      op.id = (body as { id?: string }).id ?? null;
      deletable.push(op);
    });
    // The store out of reach: try again shortly, not in a tight loop.
    if (op.outcome !== 'ok') await sleep(50);
  }
}

/** Refusals that say the gateway changed nothing; any other failure leaves the outcome unknown. */
const NOTHING_CHANGED = new Set(['store_unavailable', 'store_contention', 'store_write_failed', 'admin_busy']);

/** Runs the request and classifies the answer. */
async function attempt(op: Op, request: () => Promise<Response>, onOk?: (body: unknown) => void): Promise<void> {
  let res: Response;
  try {
    res = await request();
  } catch (error) {
    op.reason = `no answer: ${(error as Error).message}`; // the gateway may have done it: unknown
    return;
  }
  op.status = res.status;
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  op.reason = typeof body['reason'] === 'string' ? body['reason'] : '';
  if (res.status === 200 || res.status === 201) {
    op.outcome = 'ok';
    op.version = Number(res.headers.get('etag')?.replace(/"/g, ''));
    onOk?.(body);
  } else if (res.status < 500 || NOTHING_CHANGED.has(op.reason)) {
    op.outcome = 'failed';
  }
}

async function check(replicas: readonly GatewayProcess[], accounts: readonly string[], ops: readonly Op[]): Promise<string[]> {
  const violations: string[] = [];
  const globalTrail = await auditOf(replicas[0]!, null);
  for (const account of accounts) {
    const final = await listOf(replicas[0]!, account);
    const present = new Map(final.entries.filter((e) => e.ip_address !== `${ANCHOR}/32`).map((e) => [e.description, e]));
    const mine = ops.filter((op) => op.account === account);
    const adds = new Map(mine.filter((op) => op.kind === 'add').map((op) => [op.description, op]));
    const deleteOf = (description: string): Op | undefined => mine.find((op) => op.kind === 'delete' && op.description === description);

    // Final state against the history.
    for (const add of adds.values()) {
      const del = deleteOf(add.description);
      const there = present.has(add.description);
      if (add.outcome === 'ok' && !there && del === undefined) violations.push(`${account}: acknowledged add ${add.description} (v${add.version}) is missing`);
      if (add.outcome === 'ok' && !there && del?.outcome === 'failed') violations.push(`${account}: delete of ${add.description} answered ${del.status} ${del.reason} (not saved) but the entry is gone`);
      if (add.outcome === 'failed' && there) violations.push(`${account}: add ${add.description} answered ${add.status} ${add.reason} (not saved) but is present`);
      if (del?.outcome === 'ok' && there) violations.push(`${account}: acknowledged delete of ${add.description} (v${del.version}) is undone`);
    }
    for (const description of present.keys()) if (!adds.has(description)) violations.push(`${account}: entry ${description} was never added`);

    // The audit trail against the versions, the history and the final state.
    const trail = await auditOf(replicas[0]!, account);
    const versions = trail.map((e) => e.version);
    const expected = Array.from({ length: final.version }, (_, i) => final.version - i);
    if (JSON.stringify(versions) !== JSON.stringify(expected)) violations.push(`${account}: audit versions ${summary(versions)} are not ${final.version}..1 in order`);
    const replayed = new Set<string>();
    const matched = new Set<Op>();
    for (const event of [...trail].reverse()) {
      const entry = event.action === 'entry.create' ? event.after : event.before;
      const description = entry?.description ?? '';
      if (description === 'anchor') {
        if (event.action === 'entry.create') replayed.add(description);
        continue;
      }
      const op = event.action === 'entry.create' ? adds.get(description) : deleteOf(description);
      if (op === undefined || (event.action !== 'entry.create' && event.action !== 'entry.delete')) {
        violations.push(`${account}: audit event v${event.version} ${event.action} ${description} matches no operation`);
        continue;
      }
      if (matched.has(op)) violations.push(`${account}: operation ${op.kind} ${description} has two audit events`);
      matched.add(op);
      if (op.outcome === 'failed') violations.push(`${account}: ${op.kind} ${description} answered ${op.status} ${op.reason} (not saved) but has audit event v${event.version}`);
      if (op.outcome === 'ok' && op.version !== event.version) violations.push(`${account}: ${op.kind} ${description} was acknowledged at v${op.version} but audited at v${event.version}`);
      if (event.action === 'entry.create') replayed.add(description);
      else replayed.delete(description);
    }
    for (const op of mine) if (op.outcome === 'ok' && !matched.has(op)) violations.push(`${account}: acknowledged ${op.kind} ${op.description} (v${op.version}) has no audit event`);
    const finalDescriptions = new Set(final.entries.map((e) => e.description));
    if (JSON.stringify([...replayed].sort()) !== JSON.stringify([...finalDescriptions].sort())) violations.push(`${account}: replaying the audit trail does not give the final list`);
    const inGlobal = globalTrail.filter((e) => e.account === account);
    if (JSON.stringify(inGlobal) !== JSON.stringify(trail)) violations.push(`${account}: the cross-account trail (${inGlobal.length} events) is not the account's (${trail.length})`);

    // Enforcement on every replica: a sample of present addresses admitted, removed ones refused.
    const removed = [...adds.values()].filter((add) => !present.has(add.description)).slice(0, 8);
    const kept = [...present.values()].slice(0, 8);
    for (const [r, gw] of replicas.entries()) {
      for (const entry of kept) {
        const status = await probe(gw, account, entry.ip_address.replace('/32', ''));
        if (status !== 200) violations.push(`${account}: replica ${r} answers ${status} for listed ${entry.ip_address}`);
      }
      for (const add of removed) {
        const status = await probe(gw, account, add.ip);
        if (status !== 403) violations.push(`${account}: replica ${r} answers ${status} for ${add.ip}, which is not listed`);
      }
    }
  }
  return violations;
}

function summary(versions: readonly number[]): string {
  return versions.length <= 12 ? `[${versions.join(',')}]` : `[${versions.slice(0, 6).join(',')},...,${versions.slice(-6).join(',')}] (${versions.length})`;
}

function admin(gw: GatewayProcess, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${gw.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(5_000),
  });
}

async function listOf(gw: GatewayProcess, account: string): Promise<{ version: number; entries: ApiEntry[] }> {
  const res = await admin(gw, 'GET', `/v1/accounts/${account}/ip-acl?limit=1000`);
  return (await res.json()) as { version: number; entries: ApiEntry[] };
}

async function auditOf(gw: GatewayProcess, account: string | null): Promise<AuditEventShape[]> {
  const events: AuditEventShape[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1_000; page++) {
    const query: string = `limit=500${account === null ? '' : `&account=${account}`}${cursor === null ? '' : `&cursor=${cursor}`}`;
    const body = (await (await admin(gw, 'GET', `/v1/audit?${query}`)).json()) as { events: AuditEventShape[]; next: string | null };
    events.push(...body.events.map((e) => ({ id: e.id, account: e.account, action: e.action, version: e.version, before: e.before, after: e.after })));
    if (body.next === null) return events;
    cursor = body.next;
  }
  throw new Error('audit paging did not end');
}

async function probe(gw: GatewayProcess, account: string, from: string): Promise<number> {
  return (await send(`${gw.url}/x`, { headers: { 'x-auth-id': account }, localAddress: from })).status;
}

async function storeUp(gw: GatewayProcess): Promise<boolean> {
  try {
    const body = (await (await fetch(`${gw.adminUrl}/readyz`)).json()) as { store?: { state?: string } };
    return body.store?.state === 'up';
  } catch {
    return false;
  }
}

async function redisPid(url: string): Promise<number> {
  const client = new Redis(url);
  try {
    return Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1]);
  } finally {
    client.disconnect();
  }
}

async function waitFor(what: string, condition: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${ms} ms`);
    await sleep(100);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const value = (name: string, fallback: number): number => {
    const at = args.indexOf(`--${name}`);
    return at < 0 ? fallback : Number(args[at + 1]);
  };
  const options: RunOptions = {
    seconds: value('seconds', LONG.seconds),
    replicas: value('replicas', LONG.replicas),
    writers: value('writers', LONG.writers),
    accounts: value('accounts', LONG.accounts),
    faultEverySeconds: value('fault-every', LONG.faultEverySeconds),
  };
  const report = await runConsistency(options);
  process.exit(report.violations.length === 0 ? 0 : 1);
}
