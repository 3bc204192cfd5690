import { describe, expect, it } from 'vitest';
import { CallerRecorder } from '../../../src/gateway/caller-recorder.ts';
import { MemoryStore } from '../../../src/store/memory-store.ts';
import { RecentCallerTable } from '../../../src/store/recent-callers.ts';
import type { CallerBatch, KeyUseBatch } from '../../../src/store/store.ts';
import { FLUSH_SLICE, KEY_SIGHTING_RESOLUTION_MS } from '../../../src/gateway/caller-recorder.ts';

type PlainBatch = Record<string, Record<string, number>>;

/** Keeps every batch it is handed (as plain objects); while `failing`, rejects them instead. */
class BatchStore extends MemoryStore {
  readonly batches: PlainBatch[] = [];
  readonly forgotten: string[][] = [];
  failing = false;
  override async forgetCallers(accounts: readonly string[]): Promise<void> {
    this.forgotten.push([...accounts]);
  }
  readonly keyUseSizes: number[] = [];
  /** What had happened on the loop (see `mark`) when each batch arrived. */
  readonly seenMarks: number[] = [];
  marks = 0;
  override async recordCallers(batch: CallerBatch): Promise<void> {
    if (this.failing) throw new Error('store unreachable');
    this.seenMarks.push(this.marks);
    this.batches.push(Object.fromEntries([...batch].map(([account, callers]) => [account, Object.fromEntries(callers)])));
  }
  override async recordKeyUse(batch: KeyUseBatch): Promise<void> {
    this.keyUseSizes.push(batch.size);
    await super.recordKeyUse(batch);
  }
}

function recorder(store: BatchStore, maxPending = 100, onFlushError?: (error: unknown) => void, maxUnlisted?: number) {
  const clock = { now: 1_000 };
  const callers = new CallerRecorder(store, {
    flushIntervalMs: 60_000,
    maxPending,
    ...(maxUnlisted === undefined ? {} : { maxUnlisted }),
    now: () => clock.now,
    ...(onFlushError === undefined ? {} : { onFlushError }),
  });
  return { callers, clock };
}

describe('CallerRecorder', () => {
  it('flushes one batch with the latest sighting per account and address', async () => {
    const store = new BatchStore();
    const { callers, clock } = recorder(store);
    callers.note('AC1', '192.0.2.1');
    clock.now = 1_001;
    callers.note('AC1', '192.0.2.2');
    clock.now = 1_003;
    callers.note('AC2', '192.0.2.1');
    clock.now = 1_005;
    callers.note('AC1', '192.0.2.1');
    await callers.flush();
    expect(store.batches).toEqual([{ AC1: { '192.0.2.1': 1_005, '192.0.2.2': 1_001 }, AC2: { '192.0.2.1': 1_003 } }]);
  });

  it('hands a large batch to the store in slices, with turns of the loop between them', async () => {
    const store = new BatchStore();
    const { callers } = recorder(store, 10_000);
    // 2,500 accounts, one of them with 3 callers: an account is never split across slices.
    for (let i = 0; i < 2_500; i++) callers.note(`AC${i}`, '192.0.2.1');
    callers.note('AC1200', '192.0.2.2');
    callers.note('AC1200', '192.0.2.3');
    for (let i = 0; i < 2_500; i++) callers.noteKey('AK', `key_${i}`, '192.0.2.1');
    // Work queued on the loop before the flush: it runs between slices, not after the whole batch.
    const tick = (): void => {
      store.marks++;
      if (store.marks < 100) setImmediate(tick);
    };
    setImmediate(tick);
    await callers.flush();
    const sizes = store.batches.map((b) => Object.values(b).reduce((n, c) => n + Object.keys(c).length, 0));
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(2_502 + 2_500);
    expect(sizes.every((n) => n <= FLUSH_SLICE + 2)).toBe(true);
    expect(store.batches.length).toBeGreaterThanOrEqual(5);
    expect(store.batches.filter((b) => 'AC1200' in b)).toHaveLength(1);
    expect(Object.keys(store.batches.find((b) => 'AC1200' in b)!['AC1200']!)).toHaveLength(3);
    expect(store.seenMarks[0]).toBe(0);
    expect(new Set(store.seenMarks).size).toBe(store.seenMarks.length);
    expect(store.keyUseSizes).toEqual([1_000, 1_000, 500]);
  });

  it('cuts the callers into parts of about FLUSH_SLICE addresses, not accounts, and never splits an account', async () => {
    const store = new BatchStore();
    const { callers } = recorder(store, 10_000);
    const note = (account: string, count: number): void => {
      for (let i = 0; i < count; i++) callers.note(account, `2001:db8::${i.toString(16)}`);
    };
    note('BIG', FLUSH_SLICE + 500); // more than a part on its own: a part of its own, whole
    note('A', FLUSH_SLICE - 1);
    note('B', 1); // A and B make a part exactly
    note('C', 1);
    await callers.flush();
    expect(store.batches.map((b) => Object.keys(b))).toEqual([['BIG'], ['A', 'B'], ['C']]);
    expect(Object.keys(store.batches[0]!['BIG']!)).toHaveLength(FLUSH_SLICE + 500);
  });

  it('records a key seen again from the same address once per KEY_SIGHTING_RESOLUTION_MS, and at once from a new address', async () => {
    const store = new BatchStore();
    const { callers, clock } = recorder(store);
    const lastUse = async (account: string, keyId: string): Promise<unknown> => (await store.keyUse(account, [keyId])).get(keyId);
    callers.noteKey('AK', 'key_1', '192.0.2.1');
    await callers.flush();
    expect(await lastUse('AK', 'key_1')).toEqual({ at: 1_000, ip: '192.0.2.1' });
    // Repeats from the same address inside the window: nothing to record, the store is not called.
    clock.now += KEY_SIGHTING_RESOLUTION_MS - 1;
    callers.noteKey('AK', 'key_1', '192.0.2.1');
    await callers.flush();
    expect(store.keyUseSizes).toEqual([1]);
    expect(await lastUse('AK', 'key_1')).toEqual({ at: 1_000, ip: '192.0.2.1' });
    // Another address: recorded at once, as the key's last use and among its own recent callers.
    callers.noteKey('AK', 'key_1', '192.0.2.9');
    await callers.flush();
    expect(await lastUse('AK', 'key_1')).toEqual({ at: 1_000 + KEY_SIGHTING_RESOLUTION_MS - 1, ip: '192.0.2.9' });
    expect(store.batches.at(-1)).toEqual({ 'AK/key:key_1': { '192.0.2.9': 1_000 + KEY_SIGHTING_RESOLUTION_MS - 1 } });
    // The same key id under another account is another key.
    callers.noteKey('AK2', 'key_1', '192.0.2.9');
    await callers.flush();
    expect(await lastUse('AK2', 'key_1')).toEqual({ at: 1_000 + KEY_SIGHTING_RESOLUTION_MS - 1, ip: '192.0.2.9' });
    // Past the window, the same address is recorded again.
    clock.now += KEY_SIGHTING_RESOLUTION_MS;
    callers.noteKey('AK2', 'key_1', '192.0.2.9');
    await callers.flush();
    expect(await lastUse('AK2', 'key_1')).toEqual({ at: clock.now, ip: '192.0.2.9' });
    expect(store.keyUseSizes).toEqual([1, 1, 1, 1]);
  });

  it('does not skip a key\'s next sighting when the full batch dropped its caller, or when its batch was lost', async () => {
    const store = new BatchStore();
    const errors: unknown[] = [];
    const { callers, clock } = recorder(store, 2, (error) => errors.push(error));
    // The batch is full: the key's caller is dropped, so nothing may stand for it.
    callers.note('AC1', '198.51.100.1');
    callers.note('AC1', '198.51.100.2');
    callers.noteKey('AK', 'key_1', '192.0.2.7');
    await callers.flush();
    expect(store.batches.some((b) => 'AK/key:key_1' in b)).toBe(false);
    clock.now += 1_000;
    callers.noteKey('AK', 'key_1', '192.0.2.7');
    await callers.flush();
    expect(store.batches.at(-1)).toEqual({ 'AK/key:key_1': { '192.0.2.7': clock.now } });
    // A flush that fails loses its batch: the next sighting from the same address is recorded.
    clock.now += 1_000;
    callers.noteKey('AK', 'key_2', '192.0.2.8');
    store.failing = true;
    await callers.flush();
    expect(errors).toHaveLength(1);
    store.failing = false;
    clock.now += 1_000;
    callers.noteKey('AK', 'key_2', '192.0.2.8');
    await callers.flush();
    expect(store.batches.at(-1)).toEqual({ 'AK/key:key_2': { '192.0.2.8': clock.now } });
    expect((await store.keyUse('AK', ['key_2'])).get('key_2')).toEqual({ at: clock.now, ip: '192.0.2.8' });
  });

  it('does not call the store when nothing is pending', async () => {
    const store = new BatchStore();
    const { callers } = recorder(store);
    await callers.flush();
    expect(store.batches).toEqual([]);
    callers.note('AC1', '192.0.2.1');
    await Promise.all([callers.flush(), callers.flush()]);
    expect(store.batches).toHaveLength(1);
  });

  it('drops and counts new pairs beyond maxPending, still updating pairs it holds', async () => {
    const store = new BatchStore();
    const { callers, clock } = recorder(store, 2);
    callers.note('AC1', '192.0.2.1');
    callers.note('AC1', '192.0.2.2');
    callers.note('AC1', '192.0.2.3'); // new address: dropped
    callers.note('AC2', '192.0.2.1'); // new account: dropped
    clock.now = 2_000;
    callers.note('AC1', '192.0.2.1'); // known pair: updated
    expect(callers.dropped).toBe(2);
    await callers.flush();
    expect(store.batches).toEqual([{ AC1: { '192.0.2.1': 2_000, '192.0.2.2': 1_000 } }]);

    // A flush makes room again; the count of drops is cumulative.
    callers.note('AC2', '192.0.2.1');
    await callers.flush();
    expect(store.batches[1]).toEqual({ AC2: { '192.0.2.1': 2_000 } });
    expect(callers.dropped).toBe(2);
  });

  it('reports a failed flush instead of throwing, and keeps flushing afterwards', async () => {
    const store = new BatchStore();
    const errors: unknown[] = [];
    const { callers } = recorder(store, 100, (error) => errors.push(error));
    store.failing = true;
    callers.note('AC1', '192.0.2.1');
    await expect(callers.flush()).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('store unreachable');

    store.failing = false;
    callers.note('AC1', '192.0.2.2');
    await callers.flush();
    expect(store.batches).toEqual([{ AC1: { '192.0.2.2': 1_000 } }]); // the failed batch is not retried
    expect(errors).toHaveLength(1);
  });

  it('keeps flushing after a store that throws synchronously and a reporter that throws', async () => {
    class ThrowingStore extends BatchStore {
      throwNext = true;
      override recordCallers(batch: CallerBatch): Promise<void> {
        if (this.throwNext) {
          this.throwNext = false;
          throw new Error('sync failure');
        }
        return super.recordCallers(batch);
      }
    }
    const store = new ThrowingStore();
    const { callers } = recorder(store, 100, () => {
      throw new Error('reporter failed too');
    });
    callers.note('AC1', '192.0.2.1');
    await expect(callers.flush()).resolves.toBeUndefined();
    callers.note('AC1', '192.0.2.2');
    await expect(callers.flush()).resolves.toBeUndefined();
    await expect(callers.close()).resolves.toBeUndefined();
    expect(store.batches).toEqual([{ AC1: { '192.0.2.2': 1_000 } }]);
  });

  it('flushes what is pending on close', async () => {
    const store = new BatchStore();
    const { callers } = recorder(store);
    callers.start();
    callers.note('AC1', '2001:db8::1');
    await callers.close();
    expect(store.batches).toEqual([{ AC1: { '2001:db8::1': 1_000 } }]);
  });

  it('keeps at most maxUnlisted accounts without a list, forgetting the oldest in the store, and never a listed account for them', async () => {
    const store = new BatchStore();
    const { callers } = recorder(store, 100, undefined, 2);
    callers.note('LISTED', '192.0.2.9', true);
    callers.note('U1', '192.0.2.1', false);
    await callers.flush();
    callers.note('U2', '192.0.2.2', false);
    callers.note('U3', '192.0.2.3', false); // U1 goes
    callers.note('U4', '192.0.2.4', false); // U2 goes, before it was ever flushed
    callers.note('U3', '192.0.2.5', false); // held already: nothing goes
    await callers.flush();
    expect(store.batches).toEqual([
      { LISTED: { '192.0.2.9': 1_000 }, U1: { '192.0.2.1': 1_000 } },
      { U3: { '192.0.2.3': 1_000, '192.0.2.5': 1_000 }, U4: { '192.0.2.4': 1_000 } },
    ]);
    expect(store.forgotten).toEqual([['U1', 'U2']]);
    // An account that gets a list leaves the unlisted bound: a flood of unlisted ids cannot evict it.
    callers.note('U3', '192.0.2.3', true);
    for (let i = 0; i < 10; i++) callers.note(`FLOOD${i}`, '192.0.2.7', false);
    await callers.flush();
    expect(store.forgotten[1]).not.toContain('U3');
    expect(store.forgotten[1]).toContain('U4');
  });
});

describe('RecentCallerTable', () => {
  it('holds at most `total` addresses over all accounts, dropping the account recorded least recently, and forgets on request', () => {
    const table = new RecentCallerTable(3, 60_000, 5);
    const now = 1_000;
    table.record(new Map([['A', new Map([['192.0.2.1', now], ['192.0.2.2', now]])]]));
    table.record(new Map([['B', new Map([['192.0.2.1', now], ['192.0.2.2', now], ['192.0.2.3', now], ['192.0.2.4', now + 1]])]]));
    // B keeps its 3 most recent (per-account bound); 2 + 3 = 5 fits the total.
    expect(table.size).toEqual({ accounts: 2, addresses: 5 });
    table.record(new Map([['A', new Map([['192.0.2.9', now + 5]])]]));
    // A grew to 3 and is now the most recent; B, recorded least recently, goes whole.
    expect(table.size).toEqual({ accounts: 1, addresses: 3 });
    expect(table.list('B', 10, now)).toEqual([]);
    expect(table.list('A', 10, now + 10).map((c) => c.ip)).toEqual(['192.0.2.9', '192.0.2.1', '192.0.2.2']);
    table.forget(['A', 'nobody']);
    expect(table.size).toEqual({ accounts: 0, addresses: 0 });
  });
});
