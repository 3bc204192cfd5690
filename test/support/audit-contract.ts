import { afterEach, describe, expect, it } from 'vitest';
import { AuditCursorError, type AuditEvent, type AuditLog, type AuditQuery, type NewAuditEvent } from '../../src/audit/audit-log.ts';

/** A small event for `account`; `n` shows up in its snapshot so tests can tell events apart. */
export function auditEvent(account: string, n: number, overrides: Partial<NewAuditEvent> = {}): NewAuditEvent {
  return {
    at: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    actor: { name: 'ops', role: 'admin' },
    account,
    action: 'entry.create',
    version: n,
    before: null,
    after: { id: `e${n}`, ipAddress: '192.0.2.0/24' },
    ...overrides,
  };
}

/** Every event of the query, following `next` to the end, with the size of each page. */
export async function listAll(log: AuditLog, query: Omit<AuditQuery, 'cursor'>): Promise<{ events: AuditEvent[]; pages: number[] }> {
  const events: AuditEvent[] = [];
  const pages: number[] = [];
  let cursor: string | undefined;
  for (let guard = 0; guard < 10_000; guard++) {
    const page = await log.list({ ...query, ...(cursor === undefined ? {} : { cursor }) });
    events.push(...page.events);
    pages.push(page.events.length);
    if (page.next === null) return { events, pages };
    expect(page.events.length).toBe(query.limit);
    cursor = page.next;
  }
  throw new Error('paging did not end');
}

const versions = (events: readonly AuditEvent[]): number[] => events.map((e) => e.version);
const descending = (from: number, to: number): number[] => Array.from({ length: from - to + 1 }, (_, i) => from - i);

export interface AuditContractOptions {
  /**
   * `fair` (memory, file): exactly `cap` events in all, and when over, the account holding the
   * most loses its oldest. `newest` (Redis): a stream of every event keeping the newest `cap`,
   * beside one stream per account keeping its newest `accountCap`; Redis trims with MAXLEN ~,
   * whole stream nodes at a time, so at least that many stay, and up to about one node (100
   * entries) more.
   */
  readonly retention: 'fair' | 'newest';
}

export interface Caps {
  readonly cap?: number;
  readonly accountCap?: number;
}

/**
 * What every audit log must do, whatever keeps the events: run against memory, file and Redis.
 * `make` returns a fresh, empty log (with `cap` when given); the contract closes it afterwards.
 */
export function describeAuditContract(kind: string, make: (caps?: Caps) => Promise<AuditLog>, options: AuditContractOptions): void {
  describe(`${kind} audit log contract`, () => {
    const opened: AuditLog[] = [];
    afterEach(async () => {
      for (const log of opened.splice(0)) await log.close();
    });
    const fresh = async (caps?: Caps): Promise<AuditLog> => {
      const log = await make(caps);
      opened.push(log);
      return log;
    };

    it('lists nothing when empty', async () => {
      const log = await fresh();
      expect(log.kind).toBe(kind);
      expect(await log.list({ limit: 10 })).toEqual({ events: [], next: null });
      expect(await log.list({ limit: 10, account: 'AC1' })).toEqual({ events: [], next: null });
    });

    it('returns what was appended, with an id, exactly', async () => {
      const log = await fresh();
      const full: NewAuditEvent = {
        at: '2026-03-04T05:06:07.089Z',
        actor: { name: 'alice', role: 'owner' },
        account: 'AC1',
        action: 'list.replace',
        version: 7,
        before: { entries: [{ id: 'e1', cidrs: ['192.0.2.0/24'], enabled: true, note: 'naïve ✓ "quoted"\nline' }], settings: {} },
        after: { entries: [], settings: { mode: 'report-only' }, n: 1.5, deep: [[null, false, 0]] },
        requestId: 'req-123',
        via: 'native',
      };
      await log.append(full);
      await log.append(auditEvent('AC2', 2, { actor: { name: 'AC2-key', role: 'account' }, action: 'entry.delete', before: { id: 'e9' }, after: null }));
      const { events, next } = await log.list({ limit: 10 });
      expect(next).toBeNull();
      expect(events).toHaveLength(2);
      const [second, first] = events as [AuditEvent, AuditEvent];
      expect(typeof first.id).toBe('string');
      expect(first.id).not.toBe('');
      expect(first).toEqual({ id: first.id, ...full });
      expect(Object.keys(first)[0]).toBe('id');
      // Optional fields left out stay out; they do not come back as undefined or null.
      expect(second).toEqual({ id: second.id, ...auditEvent('AC2', 2, { actor: { name: 'AC2-key', role: 'account' }, action: 'entry.delete', before: { id: 'e9' }, after: null }) });
      expect('requestId' in second).toBe(false);
      expect('via' in second).toBe(false);
      expect(second.id).not.toBe(first.id);
    });

    it('keeps an event of up to 16 KiB whole, and a larger one\'s snapshots as their size and digest', async () => {
      const log = await fresh();
      const list = (n: number): unknown => Array.from({ length: n }, (_, i) => ({ id: `e${i}`, ip_address: `10.0.${i >> 8}.${i & 255}/32`, description: 'x'.repeat(60) }));
      await log.append(auditEvent('AC1', 1, { before: list(50), after: null }));
      await log.append(auditEvent('AC1', 2, { before: list(50), after: list(500) }));
      const [large, small] = (await log.list({ limit: 2 })).events as [AuditEvent, AuditEvent];
      expect(small.before).toEqual(list(50));
      expect(large.before).toMatchObject({ omitted: expect.stringContaining('16384 bytes'), bytes: JSON.stringify(list(50)).length, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(large.after).toMatchObject({ bytes: JSON.stringify(list(500)).length });
    });

    it('keeps a copy: changing the appended object later does not change the trail', async () => {
      const log = await fresh();
      const after = { entries: ['a'] };
      await log.append(auditEvent('AC1', 1, { after }));
      after.entries.push('b');
      const [event] = (await log.list({ limit: 1 })).events;
      expect(event?.after).toEqual({ entries: ['a'] });
      (event!.after as { entries: string[] }).entries.push('c');
      expect((await log.list({ limit: 1 })).events[0]?.after).toEqual({ entries: ['a'] });
    });

    it('stores a missing snapshot as null', async () => {
      const log = await fresh();
      await log.append({ ...auditEvent('AC1', 1), before: undefined, after: undefined });
      const [event] = (await log.list({ limit: 1 })).events;
      expect(event?.before).toBeNull();
      expect(event?.after).toBeNull();
    });

    it('pages newest first with cursors, ending with next: null', async () => {
      const log = await fresh();
      for (let n = 1; n <= 25; n++) await log.append(auditEvent(`AC${n % 3}`, n));
      const { events, pages } = await listAll(log, { limit: 10 });
      expect(pages).toEqual([10, 10, 5]);
      expect(versions(events)).toEqual(descending(25, 1));
      expect(new Set(events.map((e) => e.id)).size).toBe(25);
      // A page boundary that falls on the last event: no empty page after it.
      expect((await listAll(log, { limit: 5 })).pages).toEqual([5, 5, 5, 5, 5]);
      expect((await listAll(log, { limit: 25 })).pages).toEqual([25]);
      expect((await listAll(log, { limit: 1000 })).pages).toEqual([25]);
      // A cursor is stable: the same page twice, and events appended since do not shift it.
      const first = await log.list({ limit: 10 });
      await log.append(auditEvent('AC1', 26));
      const again = await log.list({ limit: 10, cursor: first.next! });
      expect(versions(again.events)).toEqual(descending(15, 6));
      expect(versions((await log.list({ limit: 10, cursor: first.next! })).events)).toEqual(descending(15, 6));
    });

    it('filters by account, paging through that account only', async () => {
      const log = await fresh();
      for (let n = 1; n <= 30; n++) await log.append(auditEvent(n % 3 === 0 ? 'AC1' : 'AC2', n));
      const ac1 = await listAll(log, { account: 'AC1', limit: 3 });
      expect(ac1.pages).toEqual([3, 3, 3, 1]);
      expect(versions(ac1.events)).toEqual([30, 27, 24, 21, 18, 15, 12, 9, 6, 3]);
      expect(ac1.events.every((e) => e.account === 'AC1')).toBe(true);
      const ac2 = await listAll(log, { account: 'AC2', limit: 7 });
      expect(ac2.events).toHaveLength(20);
      expect(ac2.events.every((e) => e.account === 'AC2')).toBe(true);
      expect(await log.list({ account: 'nobody', limit: 10 })).toEqual({ events: [], next: null });
      // The same events, whether listed by account or not.
      const all = await listAll(log, { limit: 100 });
      expect(ac1.events).toEqual(all.events.filter((e) => e.account === 'AC1'));
    });

    it('keeps every concurrent append, each with its own id', async () => {
      const log = await fresh();
      await Promise.all(Array.from({ length: 50 }, (_, n) => log.append(auditEvent(`AC${n % 2}`, n + 1))));
      const { events } = await listAll(log, { limit: 8 });
      expect(versions(events).sort((a, b) => a - b)).toEqual(descending(50, 1).reverse());
      expect(new Set(events.map((e) => e.id)).size).toBe(50);
    });

    it(options.retention === 'fair' ? 'keeps exactly cap events, each account its newest' : 'keeps at least the newest cap events, and not many more', async () => {
      const cap = 100;
      const log = await fresh({ cap });
      for (let n = 1; n <= 400; n++) await log.append(auditEvent(n % 4 === 0 ? 'AC1' : 'AC2', n));
      const { events } = await listAll(log, { limit: 64 });
      const ac1 = await listAll(log, { account: 'AC1', limit: 10 });
      const ac2 = await listAll(log, { account: 'AC2', limit: 10 });
      const newestOfAc1 = Array.from({ length: 25 }, (_, i) => 400 - 4 * i);
      if (options.retention === 'fair') {
        expect(events).toHaveLength(cap);
        // Each account keeps its newest, without gaps, and the two share the cap.
        expect(versions(ac1.events)).toEqual(Array.from({ length: ac1.events.length }, (_, i) => 400 - 4 * i));
        expect(versions(ac2.events)[0]).toBe(399);
        expect(ac1.events.length + ac2.events.length).toBe(cap);
        expect(Math.abs(ac1.events.length - ac2.events.length)).toBeLessThanOrEqual(1);
        expect(events).toEqual([...ac1.events, ...ac2.events].sort((a, b) => b.version - a.version));
      } else {
        expect(events.length).toBeGreaterThanOrEqual(cap);
        expect(events.length).toBeLessThan(3 * cap);
        // Whatever the stream of every event keeps is the newest, without gaps.
        expect(versions(events)).toEqual(descending(400, 400 - events.length + 1));
        // An account's own stream keeps its newest, older ones too.
        expect(versions(ac1.events).slice(0, 25)).toEqual(newestOfAc1);
      }
    });

    it('keeps an account\'s history when another account floods the trail', async () => {
      const log = await fresh({ cap: 200 });
      for (let n = 1; n <= 10; n++) await log.append(auditEvent('QUIET', n));
      for (let n = 11; n <= 1_000; n++) await log.append(auditEvent('FLOOD', n));
      expect(versions((await listAll(log, { account: 'QUIET', limit: 4 })).events)).toEqual(descending(10, 1));
      const flood = await listAll(log, { account: 'FLOOD', limit: 50 });
      expect(versions(flood.events).slice(0, 100)).toEqual(descending(1_000, 901));
      if (options.retention === 'fair') {
        // In all: QUIET's 10 and FLOOD's newest 190, also when listed without a filter.
        expect(flood.events).toHaveLength(190);
        expect(versions((await listAll(log, { limit: 64 })).events)).toEqual([...descending(1_000, 811), ...descending(10, 1)]);
      }
    });

    it('keeps at most accountCap events of one account', async () => {
      const log = await fresh({ cap: 500, accountCap: 100 });
      for (let n = 1; n <= 300; n++) await log.append(auditEvent(n % 2 === 0 ? 'AC1' : 'AC2', n));
      const ac1 = await listAll(log, { account: 'AC1', limit: 64 });
      if (options.retention === 'fair') expect(ac1.events).toHaveLength(100);
      else expect(ac1.events.length).toBeLessThan(250);
      expect(versions(ac1.events).slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => 300 - 2 * i));
    });

    it('refuses a cursor it did not hand out, and a limit that cannot page', async () => {
      const log = await fresh();
      await log.append(auditEvent('AC1', 1));
      for (const cursor of ['', 'abc', '-1', '1.5', '12345678901234567890123', '0-0', '99999999999999999999999-1']) {
        await expect(log.list({ limit: 10, cursor }), cursor).rejects.toBeInstanceOf(AuditCursorError);
        await expect(log.list({ limit: 10, cursor, account: 'AC1' }), cursor).rejects.toThrow(/not one this audit log returned/);
      }
      const error = await log.list({ limit: 10, cursor: 'abc' }).catch((e: unknown) => e);
      expect((error as AuditCursorError).refusal).toMatchObject({ status: 400, reason: 'invalid_field' });
      for (const limit of [0, -1, 1.5, Number.NaN]) await expect(log.list({ limit })).rejects.toThrow(/limit must be a positive integer/);
    });

    it('refuses an event that cannot be stored, and keeps working', async () => {
      const log = await fresh();
      const cyclic: Record<string, unknown> = {};
      cyclic['self'] = cyclic;
      await expect(log.append(auditEvent('AC1', 1, { after: cyclic }))).rejects.toThrow(/entry.create for account AC1 is not JSON-serialisable/);
      await expect(log.append(auditEvent('', 1))).rejects.toThrow(/has no account/);
      await log.append(auditEvent('AC1', 2));
      expect(versions((await log.list({ limit: 10 })).events)).toEqual([2]);
    });

    it('refuses to append once closed', async () => {
      const log = await make();
      await log.append(auditEvent('AC1', 1));
      await log.close();
      await expect(log.append(auditEvent('AC1', 2))).rejects.toThrow(/closed/);
      await log.close();
    });
  });
}
