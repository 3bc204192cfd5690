import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { refusal, type Refusal } from '../../http/refusal.ts';
import { compileList, type CompiledList } from '../../policy/compile.ts';
import { decodeCompiledList, encodeCompiledList } from '../../policy/compiled-blob.ts';
import type { AccountRecord } from '../../policy/types.ts';
import { parseStoredRecord } from '../record-format.ts';
import { RECENT_CALLERS_PER_ACCOUNT, RECENT_CALLERS_TTL_MS } from '../recent-callers.ts';
import { childrenByParent, versionConflict, type AccountChange, type AclStore, type CallerBatch, type ChangeListener, type ChangeResult, type RecentCaller, type StateListener, type StoreState, type UpdateOutcome } from '../store.ts';
import { FetchingView, NotFetched, type Fetched, type FetchedGraph } from './change-view.ts';
import { createClient, createSubscriber, type RedisClient } from './connection.ts';
import { Keys } from './keys.ts';
import { COMMIT, INSTALL_GRAPH, READ_COMPILED, READ_GRAPH, RELEASE_LEASE, REWRITE_COMPILED } from './scripts.ts';
import type { RedisStoreSpec } from './spec.ts';

/** Attempts at a compare-and-set before a write gives up under contention. */
const MAX_COMMIT_ATTEMPTS = 16;
/** Fetch-and-re-run rounds of one change (a parent chain, both sides of a lockout check). */
const MAX_FETCH_ROUNDS = 32;
/**
 * On a Cluster, parent changes hold a lease on the graph (it lives in another slot than the
 * accounts, so one script cannot check both); a holder gives up on committing past half of it.
 */
const GRAPH_LEASE_MS = 10_000;
const GRAPH_LEASE_WAIT_MS = 5_000;
/** Keys read per round trip by the version sweep. */
const SWEEP_CHUNK = 500;

/** The Lua scripts, registered with `defineCommand` (ioredis sends EVALSHA, falling back to EVAL). */
interface ScriptCommands {
  /** The account's three keys, then the arguments (a Cluster: the graph lives in another slot). */
  allowgateCommit(...args: (string | number | Buffer)[]): Promise<[number, number]>;
  /** Key count first (it varies: the other accounts a change read), then keys, then arguments. */
  allowgateCommitChecked(...args: (string | number | Buffer)[]): Promise<[number, number]>;
  allowgateInstallGraph(version: string, parents: string, ...pairs: string[]): Promise<number>;
  allowgateReadGraph(version: string, parents: string): Promise<[string | null, string[]]>;
  allowgateReleaseLease(lease: string, token: string): Promise<number>;
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
    // Two registrations of one script: a fixed key count lets a Cluster client route it by its
    // first key (auto-pipelining groups by the first argument, which a key count would be).
    this.#client.defineCommand('allowgateCommit', { lua: COMMIT, numberOfKeys: 3 });
    this.#client.defineCommand('allowgateCommitChecked', { lua: COMMIT });
    this.#client.defineCommand('allowgateInstallGraph', { lua: INSTALL_GRAPH, numberOfKeys: 2 });
    this.#client.defineCommand('allowgateReadGraph', { lua: READ_GRAPH, numberOfKeys: 2, readOnly: true });
    this.#client.defineCommand('allowgateReleaseLease', { lua: RELEASE_LEASE, numberOfKeys: 1 });
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
    return (await this.#fetch(account)).record;
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

  /**
   * Read, compute, compare-and-set, until the commit finds nothing it read moved (or attempts run
   * out). On a standalone or Sentinel-managed server the commit script itself checks the versions
   * of every other account the change read and of the parent graph; on a Cluster those live in
   * other slots, so changes to the graph are serialized by a lease instead (docs/redis.md).
   */
  async #commit(account: string, change: AccountChange, expectedVersion: number | undefined): Promise<UpdateOutcome> {
    const keys = this.#keys.of(account);
    const cluster = this.#spec.topology.mode === 'cluster';
    let lease: { token: string; at: number } | null = null;
    /** On a Cluster, the graph field written before a commit that then failed: put back. */
    let pendingLink: string | null | undefined;
    try {
      // Registered before the first commit: the account list is a different slot, so it cannot
      // join the commit script; a member without a record is filtered out by accounts().
      await this.#client.sadd(this.#keys.accounts, account);
      for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
        const current = await this.#fetch(account);
        if (expectedVersion !== undefined && expectedVersion !== current.version) return versionConflict(account, current.version, expectedVersion);
        const view = new FetchingView(account, current);
        const result = await this.#run(change, current.record, view);
        if (!result.ok) return result;
        const before = current.record?.settings.parent;
        const after = result.draft.settings.parent;
        const link = before === after ? '' : after === undefined ? 'del' : 'set';
        const deps = view.dependencies();
        if (cluster && lease === null && (link !== '' || deps.graphVersion !== null)) {
          lease = await this.#acquireLease(account);
          if (lease === null) break;
          attempt--;
          continue; // computed again under the lease
        }
        // A first parent link needs the graph to exist, or it would start with this link alone.
        if (link !== '' && deps.graphVersion === null) await this.#loadGraph(cluster);
        if (lease !== null && performance.now() - lease.at > GRAPH_LEASE_MS / 2) break;
        const record: AccountRecord = { ...result.draft, account, version: current.version + 1 };
        const list = this.#compile(record);
        const blob = encodeCompiledList(list);
        if (cluster && link !== '') {
          // Both parents while the commit is in flight: whatever happens next, the graph names the
          // real one (a later reader under the lease settles it from the record).
          pendingLink ??= before ?? null;
          await this.#client.hset(this.#keys.graph.parents, account, [before, after].filter((p) => p !== undefined).join(' '));
        }
        const args = [
          current.version, record.version, JSON.stringify(record), blob,
          this.#keys.changes, `${record.version} ${this.#origin} ${this.#now()} ${account}`,
          account, link, after ?? '', deps.graphVersion === null ? '' : deps.graphVersion,
        ];
        const [committed] = cluster
          ? await this.#scripts.allowgateCommit(keys.version, keys.record, keys.compiled, ...args)
          : await this.#scripts.allowgateCommitChecked(
            5 + deps.accounts.length, keys.version, keys.record, keys.compiled, this.#keys.graph.version, this.#keys.graph.parents,
            ...deps.accounts.map(([other]) => this.#keys.of(other).version), ...args, ...deps.accounts.map(([, version]) => version),
          );
        if (committed === 1) {
          if (cluster && link !== '') {
            pendingLink = undefined;
            if (after === undefined) await this.#client.hdel(this.#keys.graph.parents, account);
            else await this.#client.hset(this.#keys.graph.parents, account, after);
          }
          // This replica enforces the change before the write is acknowledged (the compiled list
          // goes straight into its cache: no read that Redis failing now could prevent); the
          // published message makes the others reload it (and arrives here as a no-op).
          this.#notify(account, record.version, undefined, list);
          return { ok: true, record, previous: current.record };
        }
        // Another writer won this round: back off a little, with jitter, and recompute.
        await sleep(Math.random() * 2 * (attempt + 1));
      }
      return { ok: false, refusal: refusal(503, 'store_contention', `account ${account} (or an account its change depends on) changed ${MAX_COMMIT_ATTEMPTS} times while this change was being applied; retry it`) };
    } catch (error) {
      if (error instanceof CorruptRecord) return { ok: false, refusal: refusal(500, 'store_corrupt', error.message) };
      return { ok: false, refusal: unavailableForWrite(account, error) };
    } finally {
      if (pendingLink !== undefined) {
        const restore = pendingLink === null ? this.#client.hdel(this.#keys.graph.parents, account) : this.#client.hset(this.#keys.graph.parents, account, pendingLink);
        await restore.catch(() => undefined);
      }
      if (lease !== null) await this.#scripts.allowgateReleaseLease(this.#keys.graph.lease, lease.token).catch(() => undefined);
    }
  }

  /** Runs `change`, fetching what it reads until it completes. */
  async #run(change: AccountChange, current: AccountRecord | null, view: FetchingView): Promise<ChangeResult> {
    for (let round = 0; round < MAX_FETCH_ROUNDS; round++) {
      view.beginRun();
      try {
        return change(current, view);
      } catch (error) {
        if (!(error instanceof NotFetched)) throw error;
        if (error.account === null) view.setGraph(await this.#loadGraph(this.#spec.topology.mode === 'cluster'));
        else view.add(error.account, await this.#fetch(error.account));
      }
    }
    throw new Error(`a change read more than ${MAX_FETCH_ROUNDS} records or graphs one by one`);
  }

  /** One account's record and version, read together (one slot). */
  async #fetch(account: string): Promise<Fetched> {
    const keys = this.#keys.of(account);
    const [rawVersion, json] = await this.#client.mget(keys.version, keys.record);
    const record = this.#parseRecord(account, rawVersion ?? null, json ?? null);
    return { record, version: record?.version ?? Number(rawVersion ?? 0) };
  }

  /**
   * The parent graph, built from the records the first time it is needed (a store written before
   * the graph existed). On a Cluster (called under the lease) a field naming two parents is a
   * commit that did not finish: settled from the account's record.
   */
  async #loadGraph(cluster: boolean): Promise<FetchedGraph> {
    const { version: versionKey, parents: parentsKey } = this.#keys.graph;
    for (let round = 0; round < 3; round++) {
      const [version, flat] = await this.#scripts.allowgateReadGraph(versionKey, parentsKey);
      if (version === null) {
        await this.#buildGraph();
        continue;
      }
      const pairs: [string, string][] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const child = flat[i]!;
        let parent: string | undefined = flat[i + 1]!;
        if (parent.includes(' ') && cluster) {
          parent = (await this.#fetch(child)).record?.settings.parent;
          if (parent === undefined) await this.#client.hdel(parentsKey, child);
          else await this.#client.hset(parentsKey, child, parent);
        }
        if (parent !== undefined) pairs.push([child, parent]);
      }
      return { version: Number(version), children: childrenByParent(pairs) };
    }
    throw new Error(`the parent graph ${parentsKey} could not be built`);
  }

  /** Reads every record's parent and installs the graph, unless another writer did first. */
  async #buildGraph(): Promise<void> {
    const members = await this.#client.smembers(this.#keys.accounts);
    const pairs: string[] = [];
    for (let i = 0; i < members.length; i += SWEEP_CHUNK) {
      const chunk = members.slice(i, i + SWEEP_CHUNK);
      const fetched = await Promise.all(chunk.map((account) => this.#fetch(account)));
      for (const { record } of fetched) {
        if (record?.settings.parent !== undefined) pairs.push(record.account, record.settings.parent);
      }
    }
    await this.#scripts.allowgateInstallGraph(this.#keys.graph.version, this.#keys.graph.parents, ...pairs);
  }

  /** The Cluster graph lease, or null when another writer held it for too long. */
  async #acquireLease(account: string): Promise<{ token: string; at: number } | null> {
    const token = `${this.#origin}:${account}:${randomBytes(6).toString('base64url')}`;
    const deadline = performance.now() + GRAPH_LEASE_WAIT_MS;
    for (let round = 0; performance.now() < deadline; round++) {
      const at = performance.now();
      if (await this.#client.set(this.#keys.graph.lease, token, 'PX', GRAPH_LEASE_MS, 'NX') === 'OK') return { token, at };
      await sleep(Math.min(100, 5 * (round + 1)) * (0.5 + Math.random()));
    }
    return null;
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
