import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventLog } from '../../../src/observability/logger.ts';
import { PolicyCache } from '../../../src/policy/cache.ts';
import { CacheKeeper } from '../../../src/policy/cache-keeper.ts';
import { compileList, type CompiledList } from '../../../src/list/compile.ts';
import { loadSnapshot, saveSnapshot } from '../../../src/policy/snapshot.ts';
import { MemoryStore } from '../../../src/store/memory-store.ts';
import type { AuditLog } from '../../../src/audit/audit-log.ts';
import type { AccountChange, AclStore, AuditLogSettings, CallerBatch, ChangeFeed, ChangeListener, StateListener, StoreState } from '../../../src/store/store.ts';
import { scratchPerTest } from '../../support/scratch.ts';
import { addEntry, entry } from '../../support/store-contract.ts';

const scratch = scratchPerTest();
const NOW = Date.parse('2026-06-01T00:00:00Z');

/**
 * A shared store that can be lost and regained: `set` flips its state and tells state listeners.
 * While down, reads and version queries reject and change notices are lost; `data` can still be
 * written directly, as another replica would while this one is cut off.
 */
class FlakyStore implements AclStore {
  readonly kind = 'redis';
  readonly data = new MemoryStore();
  versionCalls = 0;
  failVersions = false;
  #state: StoreState;
  readonly #stateListeners = new Set<StateListener>();

  constructor(state: StoreState) {
    this.#state = state;
  }

  set(state: StoreState, detail?: string): void {
    this.#state = state;
    for (const listener of this.#stateListeners) listener(state, detail);
  }

  state(): StoreState {
    return this.#state;
  }

  onStateChange(listener: StateListener): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  subscribe(listener: ChangeListener): () => void {
    return this.data.subscribe((account, version) => {
      if (this.#state === 'up') listener(account, version);
    });
  }

  async versions(accounts: readonly string[]): Promise<ReadonlyMap<string, number>> {
    this.versionCalls++;
    this.#check();
    if (this.failVersions) throw new Error('versions failed');
    const out = new Map<string, number>();
    for (const account of accounts) out.set(account, (await this.data.read(account))?.version ?? 0);
    return out;
  }

  async read(account: string) {
    this.#check();
    return this.data.read(account);
  }

  open = async (): Promise<void> => undefined;
  close = async (): Promise<void> => undefined;
  accounts = async (): Promise<readonly string[]> => this.data.accounts();
  accountPage = async () => this.data.accountPage();
  update = (account: string, change: AccountChange, expectedVersion?: number) => this.data.update(account, change, expectedVersion);
  recordCallers = async (_batch: CallerBatch): Promise<void> => undefined;
  forgetCallers = async (_accounts: readonly string[]): Promise<void> => undefined;
  recentCallers = async () => [];
  dueForExpiry = async (): Promise<readonly string[]> => [];
  openAuditLog = (settings: AuditLogSettings): Promise<AuditLog> => this.data.openAuditLog(settings);
  findKeys = async (indexKeys: readonly string[]) => this.data.findKeys(indexKeys);
  keyAccounts = async () => this.data.keyAccounts();
  recordKeyUse = async (): Promise<void> => undefined;
  keyUse = async () => new Map();

  #check(): void {
    if (this.#state === 'down') throw new Error('store is down');
  }
}

/**
 * Keeps a change log like the Redis store's: every write appended, read from a cursor (its
 * position); `forget` makes the log unable to vouch for earlier cursors.
 */
class LoggingStore extends FlakyStore {
  readonly log: { account: string; version: number; at: number }[] = [];
  versionQueries: string[][] = [];
  #epoch = 0;

  override update = async (account: string, change: AccountChange, expectedVersion?: number) => {
    const out = await this.data.update(account, change, expectedVersion);
    if (out.ok) this.log.push({ account, version: out.record.version, at: NOW - 250 });
    return out;
  };

  forget(): void {
    this.#epoch++;
  }

  override async versions(accounts: readonly string[]): Promise<ReadonlyMap<string, number>> {
    this.versionQueries.push([...accounts]);
    return super.versions(accounts);
  }

  async changes(cursor: string | null): Promise<ChangeFeed> {
    const end = `${this.#epoch}:${this.log.length}`;
    const [epoch, at] = (cursor ?? '').split(':').map(Number);
    if (cursor === null || epoch !== this.#epoch) return { cursor: end, changed: null };
    return { cursor: end, changed: this.log.slice(at) };
  }
}

interface Line {
  readonly level: 'info' | 'warn' | 'error';
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

function recordingLog(): EventLog & { lines: Line[]; messages: () => string[] } {
  const lines: Line[] = [];
  const at = (level: Line['level']) => (obj: object, msg = '') => void lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, messages: () => lines.map((l) => l.msg), info: at('info'), warn: at('warn'), error: at('error') };
}

function keeperFor(store: FlakyStore, snapshotPath?: string, lags: number[] = []) {
  const cache = new PolicyCache(store, () => NOW, { maxEntries: 1_000, maxBytes: 1e9 }, { enforced: (seconds) => lags.push(seconds) });
  const logger = recordingLog();
  const keeper = new CacheKeeper(store, cache, {
    sweepIntervalMs: 3_600_000,
    logger,
    onStoreUnavailable: 'closed',
    now: () => NOW,
    ...(snapshotPath === undefined ? {} : { snapshotPath }),
  });
  return { cache, logger, keeper };
}

/** Lets promise chains started by a callback (the keeper's reconnect sweep) run to the end. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('CacheKeeper', () => {
  it('cannot enforce when the store is down at start and there is no snapshot', async () => {
    const store = new FlakyStore('down');
    const { keeper, logger } = keeperFor(store, join(scratch(), 'absent.json'));
    keeper.start();
    expect(keeper.health()).toMatchObject({ kind: 'redis', state: 'down', lastKnownGood: 0, canEnforce: false });
    expect(logger.lines).toContainEqual(expect.objectContaining({ level: 'error', msg: expect.stringContaining('store unavailable at start') }));
    await keeper.close();
  });

  it('an empty snapshot does not make a down store enforceable', async () => {
    const path = join(scratch(), 'lkg.json');
    await saveSnapshot(path, new Map(), NOW);
    const { keeper } = keeperFor(new FlakyStore('down'), path);
    keeper.start();
    expect(keeper.health().canEnforce).toBe(false);
    await keeper.close();
  });

  it('enforces a non-empty snapshot when the store is down at start', async () => {
    const path = join(scratch(), 'lkg.json');
    const list = compileList({ account: 'AC1', version: 5, settings: {}, entries: [entry('e1', '192.0.2.0/24')] }, NOW);
    await saveSnapshot(path, new Map([['AC1', list]]), NOW);
    const { keeper, cache, logger } = keeperFor(new FlakyStore('down'), path);
    keeper.start();
    expect(keeper.health()).toMatchObject({ state: 'down', lastKnownGood: 1, canEnforce: true });
    expect(logger.messages()).toContain('last-known-good snapshot loaded');
    // The store fails the load, so the seeded list is what gets enforced.
    expect((await cache.get('AC1'))?.version).toBe(5);
    expect(cache.stats().staleServed).toBe(1);
    await keeper.close();
  });

  it('stays able to enforce once the store has answered, even after losing it', async () => {
    const store = new FlakyStore('up');
    const { keeper } = keeperFor(store);
    keeper.start();
    expect(keeper.health()).toMatchObject({ state: 'up', canEnforce: true });
    expect(keeper.health()).not.toHaveProperty('error');
    store.set('down', 'ECONNREFUSED');
    expect(keeper.health()).toMatchObject({ state: 'down', error: 'ECONNREFUSED', canEnforce: true });
    await keeper.close();
  });

  it('says "connected" the first time a store that started down comes up, and can then enforce', async () => {
    const store = new FlakyStore('down');
    const { keeper, logger } = keeperFor(store);
    keeper.start();
    store.set('up');
    await settle();
    expect(logger.messages()).toContain('store connected');
    expect(logger.messages()).not.toContain('store regained');
    store.set('down', 'gone again');
    expect(keeper.health().canEnforce).toBe(true);
    await keeper.close();
  });

  it('logs the store lost and regained, and repairs missed changes with a sweep on reconnect', async () => {
    const store = new FlakyStore('up');
    await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    const { keeper, cache, logger } = keeperFor(store);
    keeper.start();
    expect((await cache.get('AC1'))?.version).toBe(1);

    store.set('down', 'connection reset');
    expect(logger.lines).toContainEqual(expect.objectContaining({
      level: 'error',
      msg: expect.stringContaining('store lost'),
      obj: expect.objectContaining({ error: 'connection reset', on_store_unavailable: 'closed', last_known_good: 1 }),
    }));
    await store.data.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24'))); // notice lost
    expect(cache.peek('AC1')?.version).toBe(1);
    expect(store.versionCalls).toBe(0);

    store.set('up');
    await settle();
    expect(logger.messages()).toContain('store regained');
    expect(store.versionCalls).toBe(1);
    expect(logger.lines).toContainEqual(expect.objectContaining({ msg: 'cache swept against store versions', obj: { repaired: 1, why: 'reconnect', compared: 'all' } }));
    await settle();
    expect(cache.peek('AC1')?.version).toBe(2); // reloaded at once, not at the next request
    await keeper.close();
  });

  it('follows the change log from its cursor: compares only the accounts written since, and everything when the log cannot vouch', async () => {
    const store = new LoggingStore('up');
    for (const account of ['AC1', 'AC2', 'AC3']) await store.update(account, addEntry(account, entry('e1', '192.0.2.0/24')));
    const lags: number[] = [];
    const { keeper, cache, logger } = keeperFor(store, undefined, lags);
    keeper.start();
    await settle(); // the start sweep takes the cursor
    for (const account of ['AC1', 'AC2', 'AC3']) await cache.get(account);
    store.versionQueries = [];

    await keeper.sweep('periodic');
    expect(store.versionQueries).toEqual([]); // nothing written: not one version read

    store.set('down', 'reset');
    await store.data.update('AC2', addEntry('AC2', entry('e2', '198.51.100.0/24'))); // notice lost
    store.log.push({ account: 'AC2', version: 2, at: NOW - 250 });
    await store.data.update('AC9', addEntry('AC9', entry('e1', '192.0.2.0/24'))); // not cached here
    store.log.push({ account: 'AC9', version: 1, at: NOW - 250 });
    store.set('up');
    await settle();
    expect(store.versionQueries).toEqual([['AC2']]);
    await settle();
    expect(cache.peek('AC2')?.version).toBe(2);
    expect(lags).toEqual([0.25]); // enforced 250 ms after it was logged
    expect(logger.lines).toContainEqual(expect.objectContaining({ msg: 'cache swept against store versions', obj: { repaired: 1, why: 'reconnect', compared: 'changed' } }));

    store.forget(); // e.g. away for longer than the log reaches
    await keeper.sweep('periodic');
    expect(store.versionQueries.at(-1)?.sort()).toEqual(['AC1', 'AC2', 'AC3']);
    await keeper.close();
  });

  it('reloads at once, when the store is back, the accounts whose list changed during the outage', async () => {
    const store = new LoggingStore('up');
    await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    const { keeper, cache } = keeperFor(store);
    keeper.start();
    await cache.get('AC1');
    store.set('down', 'frozen');
    cache.invalidate('AC1', 2); // a notice arrived; the store cannot be read
    await settle();
    await expect(cache.get('AC1')).rejects.toThrow(/changed and its new list could not be loaded/);
    await store.data.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')));
    store.set('up');
    await settle();
    await settle();
    expect(cache.peek('AC1')?.version).toBe(2);
    await keeper.close();
  });

  it('logs a failed sweep as a warning and does not sweep a down store', async () => {
    const store = new FlakyStore('up');
    const { keeper, cache, logger } = keeperFor(store);
    keeper.start();
    await cache.get('AC1');
    store.failVersions = true;
    await keeper.sweep('periodic');
    expect(logger.lines).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'cache sweep failed; will retry' }));
    store.set('down', 'x');
    const calls = store.versionCalls;
    await keeper.sweep('periodic');
    expect(store.versionCalls).toBe(calls);
    await keeper.close();
  });

  it('writes the snapshot only when the cache changed since the last write', async () => {
    const path = join(scratch(), 'lkg.json');
    const store = new FlakyStore('up');
    await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    const { keeper, cache } = keeperFor(store, path);
    keeper.start();

    await keeper.saveSnapshot(); // the first save always writes
    expect(loadSnapshot(path).lists.size).toBe(0);
    rmSync(path);
    await keeper.saveSnapshot();
    expect(existsSync(path)).toBe(false);

    await cache.get('AC1');
    await cache.get('NOBODY');
    await keeper.saveSnapshot();
    const { lists } = loadSnapshot(path);
    expect((lists.get('AC1') as CompiledList).version).toBe(1);
    expect(lists.get('NOBODY')).toBeNull();

    rmSync(path);
    await keeper.saveSnapshot();
    expect(existsSync(path)).toBe(false);
    cache.invalidate('AC1');
    await settle(); // told of a change, the cache reloads AC1 at once
    await keeper.close(); // close saves too, and there was a change
    expect((loadSnapshot(path).lists.get('AC1') as CompiledList).version).toBe(1);
  });

  it('refuses to start on a damaged snapshot', () => {
    const path = join(scratch(), 'lkg.json');
    writeFileSync(path, '{"format": "allowgate-lkg-snap');
    const { keeper } = keeperFor(new FlakyStore('up'), path);
    expect(() => keeper.start()).toThrow(/damaged/);
  });
});
