import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster } from 'ioredis';
import { boundedEvent, DEFAULT_AUDIT_ACCOUNT_CAP, encodeEvent, MAX_EVENT_BYTES } from '../../audit/audit-log.ts';
import { DEFAULT_REDIS_AUDIT_CAP } from './redis-audit.ts';
import { refusal, type Refusal } from '../../http/refusal.ts';
import { compileList, type CompiledList } from '../../list/compile.ts';
import { decodeCompiledList, encodeCompiledList } from '../../list/compiled-blob.ts';
import { atLeastAsStrict } from '../../list/strictness.ts';
import { GLOBAL_ACCOUNT, type AccountRecord } from '../../list/types.ts';
import { parseStoredRecord } from '../../list/record-format.ts';
import { RECENT_CALLERS_PER_ACCOUNT, RECENT_CALLERS_TTL_MS } from '../recent-callers.ts';
import { createAuditLog } from '../open-audit.ts';
import type { AuditLog } from '../../audit/audit-log.ts';
import { childrenByParent, nextExpiry, versionConflict, type AccountChange, type AccountPage, type AclStore, type AuditDescriber, type AuditLogSettings, type CallerBatch, type ChangeFeed, type ChangeListener, type ChangeNotice, type ChangeResult, type KeyPointer, type KeyUse, type KeyUseBatch, type RecentCaller, type StateListener, type StoreState, type UpdateOutcome } from '../store.ts';
import { indexKeysOf } from '../../list/key-digest.ts';
import { isKeyListId, parseKeyListId as parseKeyListIdOrNull } from '../../list/key-list-id.ts';
import { keyHeldElsewhere, keyIndexChanges, keysOf, type IndexedKey } from '../../list/keys.ts';
import { FetchingView, NotFetched, type Fetched, type FetchedGraph } from './change-view.ts';
import { createClient, createSubscriber, type RedisClient } from './connection.ts';
import { Keys } from './keys.ts';
import { CHANGES_SINCE, CLAIM_KEYS, COMMIT, INSTALL_GRAPH, READ_COMPILED, READ_GRAPH, RECORD_KEY_USE, RELEASE_KEYS, RELEASE_LEASE, REWRITE_COMPILED, SETTLE_EXPIRY, TAKE_OVER_KEY } from './scripts.ts';
import { DEFAULT_NOTICE_LIST_MAX_BYTES, type RedisStoreSpec } from './spec.ts';

/**
 * Attempts at a compare-and-set before a write gives up under contention, and the longest pause
 * (jittered, growing with the attempt) between two. Writes from one replica to one account, and
 * its parent changes, take turns locally, so they compete only with other replicas' writes.
 */
const MAX_COMMIT_ATTEMPTS = 32;
const MAX_COMMIT_BACKOFF_MS = 25;
/**
 * Times a write is computed again after one of its reads timed out before anything was sent for
 * the commit (nothing changed), while Redis still answers the heartbeat: a slow moment of a loaded
 * host, or of this process, is not an outage.
 */
const TIMED_OUT_WRITE_RETRIES = 2;
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
/** Change-log entries read per round trip. */
const CHANGE_BATCH = 1_000;
/** Past this many changes since its cursor, a replica compares every cached account instead. */
const MAX_CHANGES_FOLLOWED = 50_000;
/** Records read per round trip while indexing expiries written by an older build. */
const EXPIRY_INDEX_CHUNK = 500;
/**
 * A key's digest claimed this long ago by a key that its account's record does not hold is a
 * registration whose commit never happened (the writer failed or gave up): it may be taken over.
 */
const KEY_CLAIM_STALE_MS = 10_000;

/** The Lua scripts, registered with `defineCommand` (ioredis sends EVALSHA, falling back to EVAL). */
interface ScriptCommands {
  /** The account's four keys, then the arguments (a Cluster: the graph lives in another slot). */
  allowgateCommit(...args: (string | number | Buffer)[]): Promise<[number, number]>;
  /** Key count first (it varies: the other accounts a change read), then keys, then arguments. */
  allowgateCommitChecked(...args: (string | number | Buffer)[]): Promise<[number, number]>;
  allowgateInstallGraph(version: string, parents: string, ...pairs: string[]): Promise<number>;
  allowgateReadGraph(version: string, parents: string): Promise<[string | null, string[]]>;
  allowgateReleaseLease(lease: string, token: string): Promise<number>;
  allowgateReadCompiledBuffer(version: string, compiled: string): Promise<[number, Buffer | null, Buffer | null] | [number]>;
  allowgateRewriteCompiled(version: string, compiled: string, at: number, blob: Buffer): Promise<number>;
  allowgateChangesSince(log: string, cursor: string, count: number): Promise<[string, number, number, [string, string[]][]]>;
  allowgateSettleExpiry(expiries: string, account: string, seen: string, next: string): Promise<number>;
  allowgateClaimKeys(index: string, account: string, now: number, ...pairs: string[]): Promise<[1] | [0, string, string]>;
  allowgateTakeOverKey(index: string, digest: string, held: string, value: string): Promise<number>;
  allowgateReleaseKeys(index: string, account: string, ...pairs: string[]): Promise<number>;
  allowgateRecordKeyUse(hash: string, keyId: string, at: number, ip: string): Promise<number>;
}

export interface RedisStoreOptions {
  readonly now?: () => number;
  /** Audit events kept per account (approximately: Redis trims whole stream nodes). */
  readonly auditAccountCap?: number;
  /**
   * Entries kept in the change log (approximately): how far back the global audit view reaches,
   * and how long a replica may be away and still re-check only what changed (`audit.cap`).
   */
  readonly changeLogCap?: number;
  /** Told how long each compilation took (writes, and rebuilds of stale blobs). */
  readonly onCompile?: (seconds: number) => void;
}

/**
 * Access lists in Redis, shared by every replica. Each account is a handful of keys in one Cluster
 * slot (see keys.ts and docs/redis.md): a version that only grows, the record as JSON, and the
 * compiled list tagged with its version. Writes are compare-and-set Lua scripts that also publish
 * `<version> <origin> <published-at> <account> <flags>`, followed by the compiled list when it is
 * small, which every replica's subscriber turns into an update of its cache. Before the script,
 * the write is entered in a change log, so a replica that missed notices re-checks only the
 * accounts written since (not every account it caches), and in the expiry index.
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
  readonly #noticeListMaxBytes: number;
  readonly #auditAccountCap: number;
  readonly #changeLogCap: number;
  readonly #client: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #scripts: ScriptCommands;
  readonly #listeners = new Set<ChangeListener>();
  readonly #stateListeners = new Set<StateListener>();
  /** Names this replica in its change notices (for operators reading the channel). */
  readonly #origin = randomBytes(6).toString('base64url');
  /**
   * Which server the change log is read from: its run id (a restart or failover may have lost
   * entries, so a cursor from another server is not followed), or a count of reconnections for a
   * Cluster, where the log has no single server.
   */
  #server = '';
  #clusterGeneration = 0;
  #expiriesIndexed = false;
  /** Per-account write queues: writes from one replica never race each other for the same CAS. */
  readonly #writing = new Map<string, Promise<unknown>>();
  /**
   * The queue of this replica's writes that read or change the parent graph: every one of them
   * depends on the graph's single version, so side by side they would only race each other for it.
   */
  #graphTurns: Promise<void> = Promise.resolve();
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
    this.#noticeListMaxBytes = spec.noticeListMaxBytes ?? DEFAULT_NOTICE_LIST_MAX_BYTES;
    this.#auditAccountCap = options.auditAccountCap ?? DEFAULT_AUDIT_ACCOUNT_CAP;
    this.#changeLogCap = options.changeLogCap ?? DEFAULT_REDIS_AUDIT_CAP;
    this.#client = createClient(spec);
    this.#subscriber = createSubscriber(this.#client);
    // Two registrations of one script: a fixed key count lets a Cluster client route it by its
    // first key (auto-pipelining groups by the first argument, which a key count would be).
    this.#client.defineCommand('allowgateCommit', { lua: COMMIT, numberOfKeys: 4 });
    this.#client.defineCommand('allowgateCommitChecked', { lua: COMMIT });
    this.#client.defineCommand('allowgateInstallGraph', { lua: INSTALL_GRAPH, numberOfKeys: 2 });
    this.#client.defineCommand('allowgateReadGraph', { lua: READ_GRAPH, numberOfKeys: 2, readOnly: true });
    this.#client.defineCommand('allowgateReleaseLease', { lua: RELEASE_LEASE, numberOfKeys: 1 });
    this.#client.defineCommand('allowgateReadCompiled', { lua: READ_COMPILED, numberOfKeys: 2, readOnly: true });
    this.#client.defineCommand('allowgateRewriteCompiled', { lua: REWRITE_COMPILED, numberOfKeys: 2 });
    this.#client.defineCommand('allowgateChangesSince', { lua: CHANGES_SINCE, numberOfKeys: 1, readOnly: true });
    this.#client.defineCommand('allowgateSettleExpiry', { lua: SETTLE_EXPIRY, numberOfKeys: 1 });
    this.#client.defineCommand('allowgateClaimKeys', { lua: CLAIM_KEYS, numberOfKeys: 1 });
    this.#client.defineCommand('allowgateTakeOverKey', { lua: TAKE_OVER_KEY, numberOfKeys: 1 });
    this.#client.defineCommand('allowgateReleaseKeys', { lua: RELEASE_KEYS, numberOfKeys: 1 });
    this.#client.defineCommand('allowgateRecordKeyUse', { lua: RECORD_KEY_USE, numberOfKeys: 1 });
    this.#scripts = this.#client as unknown as ScriptCommands;

    // ioredis emits 'error' for every failed connection attempt; the state change carries the news.
    const onError = (error: Error): void => {
      this.#lastError = error.message;
    };
    this.#client.on('error', onError);
    this.#subscriber.on('error', onError);
    this.#client.on('ready', () => {
      this.#unresponsive = false; // a fresh connection answered its handshake
      void this.#learnServer().finally(() => this.#refreshState());
    });
    for (const event of ['close', 'end'] as const) this.#client.on(event, () => this.#refreshState());
    this.#subscriber.on('ready', () => void this.#resubscribe());
    for (const event of ['close', 'end'] as const) {
      this.#subscriber.on(event, () => {
        this.#subscribed = false;
        this.#refreshState();
      });
    }
    this.#subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      if (channel.toString() === this.#keys.changes) this.#onMessage(message);
    });
  }

  get keys(): Keys {
    return this.#keys;
  }

  /** The command connection, shared with the audit trail (which must not close it). */
  get client(): RedisClient {
    return this.#client;
  }

  /** The audit streams live beside the lists, under the same prefix, on this connection. */
  openAuditLog({ cap, accountCap, logger }: AuditLogSettings): Promise<AuditLog> {
    return createAuditLog({
      kind: 'redis', client: this.#client, keyPrefix: this.#keys.prefix,
      ...(cap === undefined ? {} : { cap }), ...(accountCap === undefined ? {} : { accountCap }),
    }, logger === undefined ? {} : { logger });
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
    return members.filter((account) => !isKeyListId(account) && (versions.get(account) ?? 0) > 0).sort();
  }

  /**
   * SSCAN of the account set: its members, a page per round trip, without reading any account's
   * keys. The set gains an account before its first commit (it lives in another slot), so every
   * account with a record is named; one whose first write failed may be named too.
   */
  async accountPage(cursor: string | null, count: number): Promise<AccountPage> {
    const [next, members] = await this.#client.sscan(this.#keys.accounts, cursor ?? '0', 'COUNT', count);
    return { accounts: members, cursor: next === '0' ? null : next };
  }

  update(account: string, change: AccountChange, expectedVersion?: number, describe?: AuditDescriber): Promise<UpdateOutcome> {
    const previous = this.#writing.get(account) ?? Promise.resolve();
    const run = previous.then(() => this.#commitRetrying(account, change, expectedVersion, describe));
    const tail = run.catch(() => undefined);
    this.#writing.set(account, tail);
    void tail.then(() => {
      if (this.#writing.get(account) === tail) this.#writing.delete(account);
    });
    return run;
  }

  /** #commit, again (TIMED_OUT_WRITE_RETRIES times) when it timed out having changed nothing while Redis is up. */
  async #commitRetrying(account: string, change: AccountChange, expectedVersion: number | undefined, describe: AuditDescriber | undefined): Promise<UpdateOutcome> {
    for (let retry = 0; ; retry++) {
      const outcome = await this.#commit(account, change, expectedVersion, describe);
      if (outcome.ok || retry >= TIMED_OUT_WRITE_RETRIES || outcome.refusal.reason !== 'store_unavailable' || !timedOut(outcome.refusal.cause ?? '')) return outcome;
      if (this.#closed || this.#state !== 'up' || this.#client.status !== 'ready') return outcome;
    }
  }

  /**
   * Read, compute, compare-and-set, until the commit finds nothing it read moved (or attempts run
   * out). On a standalone or Sentinel-managed server the commit script itself checks the versions
   * of every other account the change read and of the parent graph; on a Cluster those live in
   * other slots, so changes to the graph are serialized by a lease instead (docs/redis.md).
   */
  async #commit(account: string, change: AccountChange, expectedVersion: number | undefined, describe: AuditDescriber | undefined): Promise<UpdateOutcome> {
    const keys = this.#keys.of(account);
    const cluster = this.#spec.topology.mode === 'cluster';
    let lease: { token: string; at: number } | null = null;
    /** Ends this write's turn among the replica's graph writes, once it has one. */
    let endGraphTurn: (() => void) | null = null;
    /** On a Cluster, the graph field written before a commit that then failed: put back. */
    let pendingLink: string | null | undefined;
    // Set once the commit script is on its way: a failure after that is no longer a "not saved".
    let sent: { previous: AccountRecord | null; record: AccountRecord; list: CompiledList } | null = null;
    /** Key digests claimed for this change: released unless the change committed (or may have). */
    let claimed: readonly IndexedKey[] = [];
    try {
      // Registered before the first commit: the account list is a different slot, so it cannot
      // join the commit script; a member without a record is filtered out by accounts().
      if (!isKeyListId(account)) await this.#client.sadd(this.#keys.accounts, account);
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
        if (endGraphTurn === null && (link !== '' || deps.graphVersion !== null)) {
          endGraphTurn = await this.#graphTurn();
          attempt--;
          continue; // computed again in its turn
        }
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
        const keyChanges = keyIndexChanges(current.record, record);
        if (keyChanges.added.length > 0) {
          const refused = await this.#claimKeys(account, keyChanges.added);
          if (refused !== null) return { ok: false, refusal: refused };
          claimed = keyChanges.added;
        }
        const list = this.#compile(record);
        const blob = encodeCompiledList(list);
        // Small lists travel with the notice; for a larger one, replicas that must read it are told
        // whether the list it replaces may stand in meanwhile.
        const inline = blob.length <= this.#noticeListMaxBytes;
        const flags = inline || !this.#loosens(current.record, list) ? '-' : 'l';
        // Logged and indexed before the commit, in other slots: an entry for a write that then
        // fails costs a reader one needless check; a commit missing from them could not happen.
        const expires = nextExpiry(record);
        const [logged] = await Promise.all([
          this.#client.xadd(this.#keys.changeLog, 'MAXLEN', '~', this.#changeLogCap, '*', 'a', account, 'v', String(record.version)),
          expires === null ? null : this.#client.zadd(this.#keys.expiries, 'LT', expires, account),
        ]);
        if (logged === null) throw new Error(`Redis did not add the change of account ${account} to ${this.#keys.changeLog}`);
        const event = describe === undefined ? '' : encodeEvent(null, boundedEvent(describe(current.record, record), MAX_EVENT_BYTES));
        if (cluster && link !== '') {
          // Both parents while the commit is in flight: whatever happens next, the graph names the
          // real one (a later reader under the lease settles it from the record).
          pendingLink ??= before ?? null;
          await this.#client.hset(this.#keys.graph.parents, account, [before, after].filter((p) => p !== undefined).join(' '));
        }
        const args = [
          current.version, record.version, JSON.stringify(record), blob,
          this.#keys.changes, `${record.version} ${this.#origin} ${this.#now()} ${account} ${flags}`,
          account, link, after ?? '', deps.graphVersion === null ? '' : deps.graphVersion, inline ? '1' : '0',
          logged, event, this.#auditAccountCap,
        ];
        sent = { previous: current.record, record, list };
        const [committed] = cluster
          ? await this.#scripts.allowgateCommit(keys.version, keys.record, keys.compiled, keys.audit, ...args)
          : await this.#scripts.allowgateCommitChecked(
            6 + deps.accounts.length, keys.version, keys.record, keys.compiled, keys.audit, this.#keys.graph.version, this.#keys.graph.parents,
            ...deps.accounts.map(([other]) => this.#keys.of(other).version), ...args, ...deps.accounts.map(([, version]) => version),
          );
        sent = null;
        if (committed === 1) {
          claimed = [];
          const removed = keyIndexChanges(current.record, record).removed;
          if (removed.length > 0) await this.#releaseKeys(account, removed).catch(() => undefined);
          if (cluster && link !== '') {
            pendingLink = undefined;
            if (after === undefined) await this.#client.hdel(this.#keys.graph.parents, account);
            else await this.#client.hset(this.#keys.graph.parents, account, after);
          }
          // This replica enforces the change before the write is acknowledged (the compiled list
          // goes straight into its cache: no read that Redis failing now could prevent); the
          // published notice reaches the others (and arrives here as a no-op).
          this.#notify(account, record.version, { list });
          return { ok: true, record, previous: current.record, audited: describe !== undefined };
        }
        // Another writer won this round (or, 2, the change log's clock is behind the account's audit
        // stream, as after a failover): back off a little, with jitter, and recompute.
        await sleep(Math.random() * Math.min(MAX_COMMIT_BACKOFF_MS, 2 * (attempt + 1)));
      }
      return { ok: false, refusal: refusal(503, 'store_contention', `account ${account} (or an account its change depends on) changed ${MAX_COMMIT_ATTEMPTS} times while this change was being applied; retry it`) };
    } catch (error) {
      if (error instanceof CorruptRecord) return { ok: false, refusal: refusal(500, 'store_corrupt', error.message) };
      if (sent !== null && !neverSent(error)) {
        // The commit may have happened: the graph keeps naming both parents until a later writer
        // settles it from the record, rather than be put back to one the record may have left;
        // claimed keys stay claimed (a later registration checks the record).
        pendingLink = undefined;
        claimed = [];
        return await this.#unknownOutcome(account, sent.previous, sent.record, sent.list, error);
      }
      return { ok: false, refusal: unavailableForWrite(account, error) };
    } finally {
      if (pendingLink !== undefined) {
        const restore = pendingLink === null ? this.#client.hdel(this.#keys.graph.parents, account) : this.#client.hset(this.#keys.graph.parents, account, pendingLink);
        await restore.catch(() => undefined);
      }
      if (lease !== null) await this.#scripts.allowgateReleaseLease(this.#keys.graph.lease, lease.token).catch(() => undefined);
      if (claimed.length > 0) await this.#releaseKeys(account, claimed).catch(() => undefined);
      endGraphTurn?.();
    }
  }

  /** Waits for this write's turn among the replica's graph writes; returns what ends it. */
  async #graphTurn(): Promise<() => void> {
    let end!: () => void;
    const turn = new Promise<void>((resolve) => { end = resolve; });
    const previous = this.#graphTurns;
    this.#graphTurns = previous.then(() => turn);
    await previous;
    return end;
  }

  /**
   * Claims the digests of keys a change adds, before its commit: a digest another key holds is
   * refused (409 duplicate), unless that key is not in its account's record and was claimed long
   * enough ago that its registration cannot still be committing, in which case the claim is taken
   * over. A claim left by a commit that failed is harmless: the request path checks the record.
   */
  async #claimKeys(account: string, keys: readonly IndexedKey[]): Promise<Refusal | null> {
    if (!isKeyListId(account)) await this.#client.sadd(this.#keys.keyAccounts, account);
    const pairs = keys.flatMap((k) => [k.indexKey, k.keyId]);
    for (let round = 0; round < 4; round++) {
      const reply = await this.#scripts.allowgateClaimKeys(this.#keys.keyIndex, account, this.#now(), ...pairs);
      if (reply[0] === 1) return null;
      const [, digest, held] = reply;
      const [holderAccount = '', holderKey = '', claimedAt = '0'] = held.split(' ');
      const holder = await this.#fetch(holderAccount);
      const holds = keysOf(holder.record).some((k) => k.id === holderKey && indexKeysOf(k).includes(digest));
      if (holds || this.#now() - Number(claimedAt) < KEY_CLAIM_STALE_MS) return keyHeldElsewhere(account, { account: holderAccount, keyId: holderKey });
      const mine = keys.find((k) => k.indexKey === digest)!;
      await this.#scripts.allowgateTakeOverKey(this.#keys.keyIndex, digest, held, `${account} ${mine.keyId} ${this.#now()}`);
    }
    return refusal(503, 'store_contention', `the key index kept changing while account ${account}'s key was registered; retry`);
  }

  async #releaseKeys(account: string, keys: readonly IndexedKey[]): Promise<void> {
    await this.#scripts.allowgateReleaseKeys(this.#keys.keyIndex, account, ...keys.flatMap((k) => [k.indexKey, k.keyId]));
  }

  async findKeys(indexKeys: readonly string[]): Promise<readonly KeyPointer[]> {
    if (indexKeys.length === 0) return [];
    const held = await this.#client.hmget(this.#keys.keyIndex, ...indexKeys);
    const out: KeyPointer[] = [];
    held.forEach((value, i) => {
      if (value === null) return;
      const [account, keyId] = value.split(' ');
      if (account !== undefined && keyId !== undefined) out.push({ indexKey: indexKeys[i]!, account, keyId });
    });
    return out;
  }

  /** The accounts the set names whose record holds a key now (the set only grows). */
  async keyAccounts(): Promise<readonly string[]> {
    const members = (await this.#client.smembers(this.#keys.keyAccounts)).sort();
    const out: string[] = [];
    for (let i = 0; i < members.length; i += SWEEP_CHUNK) {
      const chunk = members.slice(i, i + SWEEP_CHUNK);
      const records = await Promise.all(chunk.map((account) => this.read(account).catch(() => null)));
      records.forEach((record, j) => {
        if (keysOf(record).length > 0) out.push(chunk[j]!);
      });
    }
    return out;
  }

  async recordKeyUse(batch: KeyUseBatch): Promise<void> {
    await Promise.all([...batch].map(([listId, use]) => {
      const key = parseKeyListIdOrNull(listId);
      return key === null ? null : this.#scripts.allowgateRecordKeyUse(this.#keys.of(listId).keyUse, key.keyId, use.at, use.ip);
    }));
  }

  async keyUse(account: string, keyIds: readonly string[]): Promise<ReadonlyMap<string, KeyUse>> {
    const out = new Map<string, KeyUse>();
    if (keyIds.length === 0) return out;
    const held = await this.#client.hmget(this.#keys.of(account).keyUse, ...keyIds);
    held.forEach((value, i) => {
      const match = value === null ? null : /^([0-9]+) (\S+)$/.exec(value);
      if (match !== null) out.set(keyIds[i]!, { at: Number(match[1]), ip: match[2]! });
    });
    return out;
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
   * The commit script was sent and no answer came back: it may have run. Every replica that
   * heard nothing must not keep enforcing a list the change may have replaced, this one included
   * (its notice, if the script ran, may be lost with the connection): it is told as if notified,
   * and reloads. The caller learns the account's version if it can be read now.
   */
  async #unknownOutcome(account: string, previous: AccountRecord | null, record: AccountRecord, list: CompiledList, error: unknown): Promise<UpdateOutcome> {
    this.#notify(account, record.version, { loosens: this.#loosens(previous, list) });
    const current = await this.#versionNow(account);
    const cause = error instanceof Error ? error.message : String(error);
    const now = current === null
      ? 'its current version could not be read either'
      : `it is at version ${current} now (the change would have made it ${record.version})`;
    return {
      ok: false,
      refusal: {
        ...refusal(503, 'outcome_unknown', `the change to account ${account} was sent to Redis but no answer came back (${describeFailure(cause)}): it may or may not have been applied; ${now}. Read the account before retrying`),
        cause,
        ...(current === null ? {} : { currentVersion: current }),
      },
    };
  }

  /** The account's version, read as soon as the connection is back (within the command timeout); null if it cannot be. */
  async #versionNow(account: string): Promise<number | null> {
    const deadline = Date.now() + this.#spec.commandTimeoutMs;
    while (this.#client.status !== 'ready' && Date.now() < deadline && !this.#closed) await sleep(20);
    try {
      return Number((await this.#client.get(this.#keys.of(account).version)) ?? 0);
    } catch {
      return null;
    }
  }

  /** Whether the list before a change is at least as strict as `next` (see ChangeNotice.loosens). */
  #loosens(previous: AccountRecord | null, next: CompiledList): boolean {
    const now = this.#now();
    return atLeastAsStrict(previous === null ? null : compileList(previous, now), next, now, next.account === GLOBAL_ACCOUNT);
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

  /**
   * The cursor is `<server>/<last id read>/<entries ever added up to it>`: entries after it are
   * all still there exactly when no more than that many were ever trimmed from the log's head.
   */
  async changes(cursor: string | null): Promise<ChangeFeed> {
    const position = parseCursor(cursor);
    const changed: { account: string; version: number; at: number }[] = [];
    let [at, counted] = position !== null && position.server === this.#server ? [position.id, position.added] : ['', 0];
    for (;;) {
      const [last, added, length, entries] = await this.#scripts.allowgateChangesSince(this.#keys.changeLog, at, CHANGE_BATCH);
      const restart = { cursor: `${this.#server}/${last}/${added}`, changed: null };
      // No usable cursor, a log that restarted below it, or entries after it trimmed: cannot tell.
      if (at === '' || compareIds(last, at) < 0 || added < counted || added - length > counted) return restart;
      for (const [id, fields] of entries) {
        const account = fieldOf(fields, 'a');
        const version = Number(fieldOf(fields, 'v'));
        if (account !== undefined && Number.isSafeInteger(version)) changed.push({ account, version, at: Number(id.split('-')[0]) });
        at = id;
        counted++;
      }
      if (entries.length < CHANGE_BATCH) return { cursor: `${this.#server}/${at}/${counted}`, changed };
      if (changed.length > MAX_CHANGES_FOLLOWED) return restart;
    }
  }

  /**
   * From the expiry index: the accounts scored at or before `nowMs`, each checked against its
   * record (a score is never later than the record's next expiry, but may be earlier: an entry
   * deleted, a write that failed); a score found early is moved to the record's next expiry.
   */
  async dueForExpiry(nowMs: number, limit: number): Promise<readonly string[]> {
    if (!this.#expiriesIndexed) await this.#indexExpiries();
    const flat = await this.#client.zrangebyscore(this.#keys.expiries, '-inf', nowMs, 'WITHSCORES', 'LIMIT', 0, limit);
    const due: string[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const account = flat[i]!;
      const next = nextExpiry(await this.read(account).catch((error: unknown) => {
        if (error instanceof CorruptRecord) return null;
        throw error;
      }));
      if (next !== null && next <= nowMs) due.push(account);
      else await this.#scripts.allowgateSettleExpiry(this.#keys.expiries, account, flat[i + 1]!, next === null ? '' : String(next));
    }
    return due;
  }

  /**
   * Fills the expiry index from every record once per deployment (lists written by a build that
   * kept no index), then marks it done; writers keep it current from then on.
   */
  async #indexExpiries(): Promise<void> {
    if ((await this.#client.get(this.#keys.expiriesIndexed)) === null) {
      const accounts = await this.#client.smembers(this.#keys.accounts);
      for (let i = 0; i < accounts.length; i += EXPIRY_INDEX_CHUNK) {
        const chunk = accounts.slice(i, i + EXPIRY_INDEX_CHUNK);
        const records = await Promise.all(chunk.map((account) => this.read(account).catch(() => null)));
        await Promise.all(records.map((record, j) => {
          const next = nextExpiry(record);
          return next === null ? null : this.#client.zadd(this.#keys.expiries, 'LT', next, chunk[j]!);
        }));
      }
      await this.#client.set(this.#keys.expiriesIndexed, '1');
    }
    this.#expiriesIndexed = true;
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
   * `<version> <origin> <published at, epoch ms> <account> <flags>`, then a newline and the
   * compiled list when it was small enough to travel with the notice. Notices from this replica
   * are heard like any other: version checks make its own echo a no-op, and after a write whose
   * outcome was unknown here, the echo is how this replica learns it did happen.
   */
  #onMessage(message: Buffer): void {
    const newline = message.indexOf(0x0a);
    const header = message.toString('latin1', 0, newline < 0 ? message.length : newline);
    const [version, , publishedAt, account, flags] = header.split(' ', 5);
    if (account === undefined || !/^[1-9][0-9]*$/.test(version!) || !/^[0-9]+$/.test(publishedAt!)) return;
    const notice: { publishedAt: number; loosens?: boolean; list?: CompiledList } = { publishedAt: Number(publishedAt) };
    if (flags === 'l') notice.loosens = true;
    if (newline >= 0) {
      try {
        const list = decodeCompiledList(message.subarray(newline + 1));
        if (list.account === account && list.version === Number(version)) notice.list = list;
      } catch {
        // Damaged in transit: the list is read from Redis instead.
      }
    }
    this.#notify(account, Number(version), notice);
  }

  #notify(account: string, version: number, notice?: ChangeNotice): void {
    for (const listener of this.#listeners) listener(account, version, notice);
  }

  /** Which server the change log now comes from (see #server). */
  async #learnServer(): Promise<void> {
    if (this.#client instanceof Cluster) {
      this.#server = `cluster-${++this.#clusterGeneration}`;
      return;
    }
    try {
      const info = await this.#client.info('server');
      this.#server = /^run_id:([0-9a-f]+)/m.exec(info)?.[1] ?? '';
    } catch {
      this.#server = '';
    }
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

/** A write that failed before its commit script was sent: nothing was changed. */
function unavailableForWrite(account: string, error: unknown): Refusal {
  const cause = error instanceof Error ? error.message : String(error);
  return { ...refusal(503, 'store_unavailable', `the change to account ${account} was not saved: ${describeFailure(cause)}; nothing was changed, retry once Redis is back`), cause };
}

/** A Redis client error in the gateway's words (the library's own text goes to the log only). */
function describeFailure(cause: string): string {
  if (timedOut(cause)) return 'Redis did not answer within redis.commandTimeoutMs';
  return 'the connection to Redis is unavailable';
}

function timedOut(cause: string): boolean {
  return /timed? ?out/i.test(cause);
}

/**
 * Whether a failed command certainly never reached Redis (the client refused to send it), or
 * Redis answered with an error; anything else (a timeout, a connection lost with the command
 * written) may have run.
 */
function neverSent(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'ReplyError') return true;
  return /Stream isn't writeable|enableOfflineQueue|None of startup nodes|Failed to refresh slots cache/.test(error.message);
}

/** A cursor as changes() hands it out, or null for anything else. */
function parseCursor(cursor: string | null): { server: string; id: string; added: number } | null {
  const match = cursor === null ? null : /^(.*)\/([0-9]+-[0-9]+)\/([0-9]+)$/.exec(cursor);
  return match === null ? null : { server: match[1]!, id: match[2]!, added: Number(match[3]) };
}

/** Orders stream ids `<ms>-<seq>` numerically. */
function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

function fieldOf(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

async function quit(client: RedisClient): Promise<void> {
  try {
    if (client.status === 'ready') await client.quit();
    else client.disconnect();
  } catch {
    client.disconnect();
  }
}
