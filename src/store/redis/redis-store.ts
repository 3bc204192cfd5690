import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { refusal, type Refusal } from '../../http/refusal.ts';
import { compileList, type CompiledList } from '../../policy/compile.ts';
import { decodeCompiledList, encodeCompiledList } from '../../policy/compiled-blob.ts';
import type { AccountRecord } from '../../policy/types.ts';
import { parseStoredRecord } from '../record-format.ts';
import { RECENT_CALLERS_PER_ACCOUNT, RECENT_CALLERS_TTL_MS } from '../recent-callers.ts';
import { versionConflict, type AccountChange, type AclStore, type CallerBatch, type ChangeListener, type RecentCaller, type StateListener, type StoreState, type UpdateOutcome } from '../store.ts';
import { createClient, createSubscriber, type RedisClient } from './connection.ts';
import { Keys } from './keys.ts';
import { COMMIT, READ_COMPILED, REWRITE_COMPILED } from './scripts.ts';
import type { RedisStoreSpec } from './spec.ts';

/** Attempts at a compare-and-set before a write gives up under contention. */
const MAX_COMMIT_ATTEMPTS = 16;
/** Keys read per round trip by the version sweep. */
const SWEEP_CHUNK = 500;

/** The Lua scripts, registered with `defineCommand` (ioredis sends EVALSHA, falling back to EVAL). */
interface ScriptCommands {
  allowgateCommit(version: string, record: string, compiled: string, expected: number, next: number, json: string, blob: Buffer, channel: string, message: string): Promise<[number, number]>;
  allowgateReadCompiledBuffer(version: string, compiled: string): Promise<[number, Buffer | null, Buffer | null] | [number]>;
  allowgateRewriteCompiled(version: string, compiled: string, at: number, blob: Buffer): Promise<number>;
}

export interface RedisStoreOptions {
  readonly now?: () => number;
  /** Told how long each compilation took (writes, and rebuilds of stale blobs). */
  readonly onCompile?: (seconds: number) => void;
}

/**
 * Access lists in Redis, shared by every replica. Each account is a handful of keys in one Cluster
 * slot (see keys.ts and docs/redis.md): a version that only grows, the record as JSON, and the
 * compiled list tagged with its version. Writes are compare-and-set Lua scripts that also publish
 * `<version> <origin> <published-at> <account>`, which every other replica's subscriber turns into a cache
 * invalidation.
 *
 * Redis being unreachable is a state, not a crash: commands fail fast (no offline queue), the
 * state goes `down`, ioredis reconnects with capped backoff, and the state returns to `up` once
 * both connections are back and subscribed again (the cache then sweeps for missed changes).
 * A connection can also stay open while nothing answers (a frozen or overloaded server): a PING
 * every second that gets no answer within the command timeout counts as down too.
 */
export class RedisStore implements AclStore {
  readonly kind = 'redis' as const;
  readonly #spec: RedisStoreSpec;
  readonly #keys: Keys;
  readonly #now: () => number;
  readonly #onCompile: ((seconds: number) => void) | undefined;
  readonly #client: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #scripts: ScriptCommands;
  readonly #listeners = new Set<ChangeListener>();
  readonly #stateListeners = new Set<StateListener>();
  /** Tells this replica's own change messages apart: it has applied them before acknowledging. */
  readonly #origin = randomBytes(6).toString('base64url');
  /** Per-account write queues: writes from one replica never race each other for the same CAS. */
  readonly #writing = new Map<string, Promise<unknown>>();
  #subscribed = false;
  #state: StoreState = 'down';
  #lastError: string | undefined;
  #closed = false;
  /** The last heartbeat PING got no answer in time; cleared by the next one that does. */
  #unresponsive = false;
  #heartbeat: NodeJS.Timeout | null = null;

  constructor(spec: RedisStoreSpec, options: RedisStoreOptions = {}) {
    this.#spec = spec;
    this.#keys = new Keys(spec.keyPrefix);
    this.#now = options.now ?? Date.now;
    this.#onCompile = options.onCompile;
    this.#client = createClient(spec);
    this.#subscriber = createSubscriber(this.#client);
    this.#client.defineCommand('allowgateCommit', { lua: COMMIT, numberOfKeys: 3 });
    this.#client.defineCommand('allowgateReadCompiled', { lua: READ_COMPILED, numberOfKeys: 2, readOnly: true });
    this.#client.defineCommand('allowgateRewriteCompiled', { lua: REWRITE_COMPILED, numberOfKeys: 2 });
    this.#scripts = this.#client as unknown as ScriptCommands;

    // ioredis emits 'error' for every failed connection attempt; the state change carries the news.
    const onError = (error: Error): void => {
      this.#lastError = error.message;
    };
    this.#client.on('error', onError);
    this.#subscriber.on('error', onError);
    this.#client.on('ready', () => {
      this.#unresponsive = false; // a fresh connection answered its handshake
      this.#refreshState();
    });
    for (const event of ['close', 'end'] as const) this.#client.on(event, () => this.#refreshState());
    this.#subscriber.on('ready', () => void this.#resubscribe());
    for (const event of ['close', 'end'] as const) {
      this.#subscriber.on(event, () => {
        this.#subscribed = false;
        this.#refreshState();
      });
    }
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.#keys.changes) this.#onMessage(message);
    });
  }

  get keys(): Keys {
    return this.#keys;
  }

  /** The command connection, shared with the audit trail (which must not close it). */
  get client(): RedisClient {
    return this.#client;
  }

  /**
   * Starts connecting and waits up to the connect timeout for Redis. Never throws for an
   * unreachable server: the gateway starts `down`, enforces what it can (snapshot, fail mode)
   * and reports not ready until Redis answers.
   */
  async open(): Promise<void> {
    const connect = (client: RedisClient): Promise<void> => client.connect().catch(() => undefined);
    void connect(this.#client);
    void connect(this.#subscriber);
    this.#heartbeat = setInterval(() => void this.#ping(), HEARTBEAT_MS);
    this.#heartbeat.unref();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.#spec.connectTimeoutMs);
      const unsubscribe = this.onStateChange((state) => {
        if (state === 'up') done();
      });
      function done(): void {
        clearTimeout(timer);
        unsubscribe();
        resolve();
      }
      if (this.#state === 'up') done();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#listeners.clear();
    await Promise.all([quit(this.#client), quit(this.#subscriber)]);
    this.#stateListeners.clear();
  }

  state(): StoreState {
    return this.#state;
  }

  /** The last connection error, for logs and /readyz. */
  lastError(): string | undefined {
    return this.#lastError;
  }

  onStateChange(listener: StateListener): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  subscribe(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async read(account: string): Promise<AccountRecord | null> {
    const keys = this.#keys.of(account);
    const [version, json] = await this.#client.mget(keys.version, keys.record);
    return this.#parseRecord(account, version ?? null, json ?? null);
  }

  async accounts(): Promise<readonly string[]> {
    // The set may name an account whose first write failed after the SADD: keep only real ones.
    const members = await this.#client.smembers(this.#keys.accounts);
    const versions = await this.versions(members);
    return members.filter((account) => (versions.get(account) ?? 0) > 0).sort();
  }

  update(account: string, change: AccountChange, expectedVersion?: number): Promise<UpdateOutcome> {
    const previous = this.#writing.get(account) ?? Promise.resolve();
    const run = previous.then(() => this.#commit(account, change, expectedVersion));
    const tail = run.catch(() => undefined);
    this.#writing.set(account, tail);
    void tail.then(() => {
      if (this.#writing.get(account) === tail) this.#writing.delete(account);
    });
    return run;
  }

  async #commit(account: string, change: AccountChange, expectedVersion: number | undefined): Promise<UpdateOutcome> {
    const keys = this.#keys.of(account);
    try {
      // Registered before the first commit: the account list is a different slot, so it cannot
      // join the commit script; a member without a record is filtered out by accounts().
      await this.#client.sadd(this.#keys.accounts, account);
      for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
        const [rawVersion, json] = await this.#client.mget(keys.version, keys.record);
        const current = this.#parseRecord(account, rawVersion ?? null, json ?? null);
        const version = current?.version ?? 0;
        if (expectedVersion !== undefined && expectedVersion !== version) return versionConflict(account, version, expectedVersion);
        const result = change(current);
        if (!result.ok) return result;
        const record: AccountRecord = { ...result.draft, account, version: version + 1 };
        const list = this.#compile(record);
        const blob = encodeCompiledList(list);
        const [committed] = await this.#scripts.allowgateCommit(
          keys.version, keys.record, keys.compiled,
          version, record.version, JSON.stringify(record), blob,
          this.#keys.changes, `${record.version} ${this.#origin} ${this.#now()} ${account}`,
        );
        if (committed === 1) {
          // This replica enforces the change before the write is acknowledged (the compiled list
          // goes straight into its cache: no read that Redis failing now could prevent); the
          // published message makes the others reload it (and arrives here as a no-op).
          this.#notify(account, record.version, undefined, list);
          return { ok: true, record, previous: current };
        }
        // Another replica won this round: back off a little, with jitter, and recompute.
        await sleep(Math.random() * 2 * (attempt + 1));
      }
      return { ok: false, refusal: refusal(503, 'store_contention', `account ${account} changed ${MAX_COMMIT_ATTEMPTS} times while this change was being applied; retry it`) };
    } catch (error) {
      if (error instanceof CorruptRecord) return { ok: false, refusal: refusal(500, 'store_corrupt', error.message) };
      return { ok: false, refusal: unavailableForWrite(account, error) };
    }
  }

  /**
   * The compiled list from Redis: one round trip when the stored blob is current. A blob that is
   * missing, damaged, of another version or past its expiry is rebuilt from the record and
   * written back, so the next replica finds it ready.
   */
  async readCompiled(account: string): Promise<CompiledList | null> {
    const keys = this.#keys.of(account);
    const reply = await this.#scripts.allowgateReadCompiledBuffer(keys.version, keys.compiled);
    const version = reply[0];
    if (version === 0) return null;
    const blobVersion = reply[1] ?? null;
    const blob = reply[2] ?? null;
    if (blob !== null && blobVersion !== null && Number(blobVersion.toString()) === version) {
      try {
        const list = decodeCompiledList(blob);
        if (list.account === account && list.version === version && list.validUntil > this.#now()) return list;
      } catch {
        // Damaged: fall through and rebuild it.
      }
    }
    const record = await this.read(account);
    if (record === null) return null;
    const list = this.#compile(record);
    await this.#scripts.allowgateRewriteCompiled(keys.version, keys.compiled, list.version, encodeCompiledList(list)).catch(() => undefined);
    return list;
  }

  async versions(accounts: readonly string[]): Promise<ReadonlyMap<string, number>> {
    const out = new Map<string, number>();
    for (let i = 0; i < accounts.length; i += SWEEP_CHUNK) {
      const chunk = accounts.slice(i, i + SWEEP_CHUNK);
      // One GET per account (auto-pipelined): an MGET across accounts would cross Cluster slots.
      const values = await Promise.all(chunk.map((account) => this.#client.get(this.#keys.of(account).version)));
      chunk.forEach((account, j) => out.set(account, Number(values[j] ?? 0)));
    }
    return out;
  }

  async recordCallers(batch: CallerBatch): Promise<void> {
    const now = this.#now();
    const pending: Promise<unknown>[] = [];
    for (const [account, callers] of batch) {
      const key = this.#keys.of(account).callers;
      const args: (string | number)[] = [];
      for (const [ip, at] of callers) args.push(at, ip);
      if (args.length === 0) continue;
      // GT keeps the latest sighting when replicas flush out of order; then trim by age and count.
      pending.push(
        this.#client.zadd(key, 'GT', ...args),
        this.#client.zremrangebyscore(key, '-inf', now - RECENT_CALLERS_TTL_MS),
        this.#client.zremrangebyrank(key, 0, -(RECENT_CALLERS_PER_ACCOUNT + 1)),
        this.#client.pexpire(key, RECENT_CALLERS_TTL_MS),
      );
    }
    await Promise.all(pending);
  }

  async forgetCallers(accounts: readonly string[]): Promise<void> {
    // One DEL per key (auto-pipelined): a multi-key DEL would cross Cluster slots.
    await Promise.all(accounts.map((account) => this.#client.del(this.#keys.of(account).callers)));
  }

  async recentCallers(account: string, limit: number): Promise<readonly RecentCaller[]> {
    const since = this.#now() - RECENT_CALLERS_TTL_MS;
    const flat = await this.#client.zrevrangebyscore(this.#keys.of(account).callers, '+inf', `(${since}`, 'WITHSCORES', 'LIMIT', 0, limit);
    const out: RecentCaller[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ ip: flat[i]!, lastSeen: Number(flat[i + 1]) });
    return out;
  }

  #compile(record: AccountRecord): CompiledList {
    const start = performance.now();
    const list = compileList(record, this.#now());
    this.#onCompile?.((performance.now() - start) / 1000);
    return list;
  }

  #parseRecord(account: string, rawVersion: string | null, json: string | null): AccountRecord | null {
    const version = Number(rawVersion ?? 0);
    if (version === 0 && json === null) return null;
    const where = `Redis key ${this.#keys.of(account).record}`;
    let record: AccountRecord;
    try {
      record = parseStoredRecord(JSON.parse(json ?? 'null'), account, where);
    } catch (error) {
      throw new CorruptRecord(`${(error as Error).message}; repair or delete the account's keys`);
    }
    if (record.version !== version) throw new CorruptRecord(`${where} is at version ${record.version} but its version key says ${version}; repair or delete the account's keys`);
    return record;
  }

  /**
   * `<version> <origin> <published at, epoch ms> <account>`; this replica's own messages were
   * notified at commit time.
   */
  #onMessage(message: string): void {
    const [version, origin, publishedAt, account] = message.split(' ', 4);
    if (account === undefined || origin === this.#origin || !/^[1-9][0-9]*$/.test(version!) || !/^[0-9]+$/.test(publishedAt!)) return;
    this.#notify(account, Number(version), Number(publishedAt));
  }

  #notify(account: string, version: number, publishedAt?: number, list?: CompiledList): void {
    for (const listener of this.#listeners) listener(account, version, publishedAt, list);
  }

  /**
   * Subscribes on every (re)connection ourselves rather than relying on auto-resubscribe, so the
   * store reports `up` only once the subscription is confirmed: a sweep started after that
   * cannot miss a change published in between.
   */
  async #resubscribe(): Promise<void> {
    try {
      await this.#subscriber.subscribe(this.#keys.changes);
      this.#subscribed = true;
    } catch (error) {
      this.#lastError = (error as Error).message;
      this.#subscribed = false;
    }
    this.#refreshState();
  }

  async #ping(): Promise<void> {
    // A closed connection is reported by its own events; only an open one can hang silently.
    if (this.#client.status !== 'ready') return;
    let unresponsive = false;
    try {
      await this.#client.ping();
    } catch (error) {
      unresponsive = true;
      this.#lastError = `no answer to PING: ${(error as Error).message}`;
    }
    if (unresponsive === this.#unresponsive) return;
    this.#unresponsive = unresponsive;
    this.#refreshState();
  }

  #refreshState(): void {
    if (this.#closed) return;
    const next: StoreState = this.#client.status === 'ready' && this.#subscribed && !this.#unresponsive ? 'up' : 'down';
    if (next === this.#state) return;
    this.#state = next;
    for (const listener of this.#stateListeners) listener(next, next === 'down' ? this.#lastError ?? 'connection closed' : undefined);
  }
}

/** How often an open connection is checked for answers (a frozen server keeps it open). */
const HEARTBEAT_MS = 1_000;

class CorruptRecord extends Error {}

/**
 * A write that failed on the way to Redis. A timeout is ambiguous (the script may have run), so
 * the message says to read the account back rather than claim nothing changed.
 */
function unavailableForWrite(account: string, error: unknown): Refusal {
  const message = error instanceof Error ? error.message : String(error);
  const timedOut = /timed? ?out/i.test(message);
  // The client library's own words stay in the log (cause): they mean nothing to an API caller.
  return refusal(503, 'store_unavailable', timedOut
    ? `Redis did not answer in time while saving the change to account ${account}; it may or may not have been applied: read the account and retry if needed`
    : `the change to account ${account} was not saved: Redis is unreachable; retry once it is back`, message);
}

async function quit(client: RedisClient): Promise<void> {
  try {
    if (client.status === 'ready') await client.quit();
    else client.disconnect();
  } catch {
    client.disconnect();
  }
}
