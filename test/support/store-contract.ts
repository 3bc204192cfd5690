import { afterEach, describe, expect, it } from 'vitest';
import type { AccountDraft, AccountRecord, AclEntry } from '../../src/list/types.ts';
import { changeSettings } from '../../src/acl/changes.ts';
import type { AccountChange, AclStore } from '../../src/store/store.ts';
import { addEntry as addListEntry } from '../../src/acl/changes.ts';
import { indexKeyOf } from '../../src/list/key-digest.ts';
import { keyListId } from '../../src/list/key-list-id.ts';
import { addKey, deleteKey, updateKey } from '../../src/acl/key-changes.ts';
import type { ApiKeyRecord } from '../../src/list/types.ts';

export function apiKey(id: string, digestSeed: number, hash: ApiKeyRecord['hash'] = 'hmac-sha256'): ApiKeyRecord {
  return { id, name: id, hash, digest: digestSeed.toString(16).padStart(64, '0'), enabled: true, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z' };
}

export function entry(id: string, cidr: string): AclEntry {
  return { id, ipAddress: cidr, cidrs: [cidr], action: 'allow', description: id, enabled: true, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z' };
}

export function draftOf(current: AccountRecord | null, account: string): AccountDraft {
  return { account, settings: current?.settings ?? {}, entries: current?.entries ?? [] };
}

export const addEntry = (account: string, e: AclEntry): AccountChange => (current) => {
  const draft = draftOf(current, account);
  return { ok: true, draft: { ...draft, entries: [...draft.entries, e] } };
};

/**
 * What every store must do, whatever keeps the data: run against memory, file and Redis.
 * `make` returns a fresh, empty store; the contract opens it and closes it after each test.
 */
export function describeStoreContract(kind: string, make: () => AclStore): void {
  describe(`${kind} store contract`, () => {
    const opened: AclStore[] = [];
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
    });
    const fresh = (): AclStore => {
      const store = make();
      opened.push(store);
      return store;
    };

    it('assigns growing versions and tells subscribers after the commit', async () => {
      const store = fresh();
      await store.open();
      const seen: [string, number][] = [];
      store.subscribe((account, version) => seen.push([account, version]));
      const first = await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
      expect(seen[0]).toEqual(['AC1', 1]); // before the write is acknowledged
      const second = await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')));
      expect(first.ok && first.record.version).toBe(1);
      expect(second.ok && second.record.version).toBe(2);
      expect(second.ok && second.previous?.version).toBe(1);
      expect(seen.at(-1)).toEqual(['AC1', 2]);
      // A shared store also delivers a replica's own notices back to it (harmless: same versions).
      expect([...new Set(seen.map(([a, v]) => `${a}@${v}`))]).toEqual(['AC1@1', 'AC1@2']);
      expect((await store.read('AC1'))?.entries.map((e) => e.id)).toEqual(['e1', 'e2']);
      expect(await store.read('nobody')).toBeNull();
      expect(await store.accounts()).toEqual(['AC1']);
    });

    it('names every account with a record through accountPage, a page per call, until the cursor is null', async () => {
      const store = fresh();
      await store.open();
      const accounts = Array.from({ length: 25 }, (_, i) => `P${i}`);
      for (const account of accounts) await store.update(account, addEntry(account, entry(`e-${account}`, '192.0.2.0/24')));
      const named = new Set<string>();
      let cursor: string | null = null;
      let calls = 0;
      do {
        const page = await store.accountPage(cursor, 4);
        for (const account of page.accounts) named.add(account);
        cursor = page.cursor;
        calls++;
      } while (cursor !== null && calls < 1_000);
      expect(cursor).toBeNull();
      expect([...named].sort()).toEqual([...accounts].sort());
    });

    it('refuses a stale expected version with 412 and changes nothing', async () => {
      const store = fresh();
      await store.open();
      await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
      const stale = await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')), 0);
      expect(stale).toMatchObject({ ok: false, refusal: { status: 412, reason: 'version_conflict' } });
      const created = await store.update('AC2', addEntry('AC2', entry('e3', '198.51.100.0/24')), 0);
      expect(created.ok).toBe(true);
      expect((await store.read('AC1'))?.entries).toHaveLength(1);
    });

    it('passes a change function\'s refusal through with nothing written', async () => {
      const store = fresh();
      await store.open();
      const seen: string[] = [];
      store.subscribe((a) => seen.push(a));
      const out = await store.update('AC1', () => ({ ok: false, refusal: { status: 409, reason: 'duplicate', message: 'dup' } }));
      expect(out).toEqual({ ok: false, refusal: { status: 409, reason: 'duplicate', message: 'dup' } });
      expect(await store.read('AC1')).toBeNull();
      expect(seen).toEqual([]);
    });

    it('serializes concurrent updates so none is lost', async () => {
      const store = fresh();
      await store.open();
      const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => store.update('AC1', addEntry('AC1', entry(`e${i}`, `10.0.${i}.0/24`)))));
      expect(outcomes.every((o) => o.ok)).toBe(true);
      const record = await store.read('AC1');
      expect(record?.entries).toHaveLength(50);
      expect(record?.version).toBe(50);
    });

    it('lets a change read other accounts and the parent graph as they are at its commit', async () => {
      const store = fresh();
      await store.open();
      await store.update('ROOT', addEntry('ROOT', entry('r1', '10.1.0.0/24')));
      for (const child of ['KID1', 'KID2']) expect((await store.update(child, changeSettings(child, { parent: 'ROOT' }))).ok).toBe(true);
      let seen: unknown = null;
      const out = await store.update('ROOT', (current, view) => {
        seen = { kids: view.children('ROOT'), kid: view.read('KID1')?.settings, nobody: view.read('NOBODY') };
        return { ok: true, draft: draftOf(current, 'ROOT') };
      });
      expect(out.ok).toBe(true);
      expect(seen).toEqual({ kids: ['KID1', 'KID2'], kid: { parent: 'ROOT' }, nobody: null });
      expect((await store.update('KID2', changeSettings('KID2', { parent: null }))).ok).toBe(true);
      await store.update('ROOT', (current, view) => {
        seen = view.children('ROOT');
        return { ok: true, draft: draftOf(current, 'ROOT') };
      });
      expect(seen).toEqual(['KID1']);
    });

    it('refuses one of two parent links made at once that together close a cycle, in every round', async () => {
      const store = fresh();
      await store.open();
      for (let round = 0; round < 20; round++) {
        const [x, y] = [`X${round}`, `Y${round}`];
        await Promise.all([store.update(x, addEntry(x, entry('x', '10.1.0.0/24'))), store.update(y, addEntry(y, entry('y', '10.2.0.0/24')))]);
        const outcomes = await Promise.all([store.update(x, changeSettings(x, { parent: y })), store.update(y, changeSettings(y, { parent: x }))]);
        expect(outcomes.map((o) => o.ok).sort(), `round ${round}`).toEqual([false, true]);
        expect(outcomes.find((o) => !o.ok)).toMatchObject({ refusal: { reason: 'invalid_parent' } });
      }
    });
    it('keeps recent callers per account, latest sighting first, never moving backwards', async () => {
      const store = fresh();
      await store.open();
      const now = Date.now();
      await store.recordCallers(new Map([
        ['AC1', new Map([['192.0.2.1', now - 3000], ['192.0.2.2', now - 1000]])],
        ['AC2', new Map([['2001:db8::1', now - 500]])],
      ]));
      // An older sighting flushed late (another replica, a slow batch) does not move a caller back.
      await store.recordCallers(new Map([['AC1', new Map([['192.0.2.2', now - 9000], ['192.0.2.3', now - 2000]])]]));
      expect(await store.recentCallers('AC1', 10)).toEqual([
        { ip: '192.0.2.2', lastSeen: now - 1000 },
        { ip: '192.0.2.3', lastSeen: now - 2000 },
        { ip: '192.0.2.1', lastSeen: now - 3000 },
      ]);
      expect(await store.recentCallers('AC1', 2)).toHaveLength(2);
      expect(await store.recentCallers('AC2', 10)).toEqual([{ ip: '2001:db8::1', lastSeen: now - 500 }]);
      expect(await store.recentCallers('nobody', 10)).toEqual([]);
      // Forgotten accounts (the recorder's bound on accounts without a list) lose their callers; others keep theirs.
      await store.forgetCallers(['AC2', 'nobody']);
      expect(await store.recentCallers('AC2', 10)).toEqual([]);
      expect(await store.recentCallers('AC1', 10)).toHaveLength(3);
    });

    it('forgets callers older than a day and keeps at most 1,000 per account', async () => {
      const store = fresh();
      await store.open();
      const now = Date.now();
      const many = new Map<string, number>();
      for (let i = 0; i < 1200; i++) many.set(`10.0.${i >> 8}.${i & 255}`, now - 60_000 + i);
      many.set('192.0.2.99', now - 25 * 60 * 60 * 1000);
      await store.recordCallers(new Map([['AC1', many]]));
      const recent = await store.recentCallers('AC1', 5000);
      expect(recent).toHaveLength(1000);
      expect(recent[0]).toEqual({ ip: '10.0.4.175', lastSeen: now - 60_000 + 1199 });
      expect(recent.some((c) => c.ip === '192.0.2.99')).toBe(false);
      expect(recent.some((c) => c.ip === '10.0.0.0')).toBe(false);
    });

    it('finds registered keys by digest, refuses a digest another key holds, and releases it on delete', async () => {
      const store = fresh();
      await store.open();
      const ci = apiKey('key_ci', 1);
      const office = apiKey('key_office', 2, 'sha256');
      expect((await store.update('AC1', addKey('AC1', ci, 10))).ok).toBe(true);
      expect((await store.update('AC1', addKey('AC1', office, 10))).ok).toBe(true);
      expect(await store.findKeys([indexKeyOf(ci), indexKeyOf(office), indexKeyOf(apiKey('x', 3))])).toEqual([
        { indexKey: indexKeyOf(ci), account: 'AC1', keyId: 'key_ci' },
        { indexKey: indexKeyOf(office), account: 'AC1', keyId: 'key_office' },
      ]);
      // A key belongs to one account: another account, or another key of this one, is refused, and nothing is written.
      const elsewhere = await store.update('AC2', addKey('AC2', apiKey('key_other', 1), 10));
      expect(elsewhere).toMatchObject({ ok: false, refusal: { status: 409, reason: 'duplicate' } });
      expect(await store.read('AC2')).toBeNull();
      expect(await store.update('AC1', addKey('AC1', apiKey('key_again', 1), 10))).toMatchObject({ ok: false, refusal: { reason: 'duplicate' } });
      // The same digest of the other kind is another key.
      expect((await store.update('AC2', addKey('AC2', apiKey('key_by_hash', 1, 'sha256'), 10))).ok).toBe(true);
      expect(await store.keyAccounts()).toEqual(['AC1', 'AC2']);

      // An entry change keeps the keys; a key change keeps the entries.
      const ctx = { policy: { maxEntries: 10, ipv4Only: false, refused: [] }, now: '2026-01-01T00:00:00.000Z' };
      await store.update('AC1', addListEntry('AC1', 'e1', { ipAddress: { input: '192.0.2.0/24', cidrs: ['192.0.2.0/24'] } }, ctx));
      await store.update('AC1', updateKey('AC1', 'key_ci', { enabled: false }, '2026-01-02T00:00:00.000Z'));
      const record = await store.read('AC1');
      expect(record?.entries.map((e) => e.id)).toEqual(['e1']);
      expect(record?.keys?.map((k) => [k.id, k.enabled])).toEqual([['key_ci', false], ['key_office', true]]);

      // A key's own list is a record of its own, never listed as an account.
      const list = keyListId('AC1', 'key_ci');
      expect((await store.update(list, addListEntry(list, 'k1', { ipAddress: { input: '198.51.100.0/24', cidrs: ['198.51.100.0/24'] } }, ctx))).ok).toBe(true);
      expect((await store.read(list))?.entries.map((e) => e.id)).toEqual(['k1']);
      expect(await store.accounts()).toEqual(['AC1', 'AC2']);

      expect((await store.update('AC1', deleteKey('AC1', 'key_ci'))).ok).toBe(true);
      expect(await store.findKeys([indexKeyOf(ci)])).toEqual([]);
      expect((await store.update('AC3', addKey('AC3', apiKey('key_moved', 1), 10))).ok).toBe(true);
      expect(await store.findKeys([indexKeyOf(ci)])).toEqual([{ indexKey: indexKeyOf(ci), account: 'AC3', keyId: 'key_moved' }]);
    });

    it('lets exactly one of concurrent registrations of one key win, round after round', async () => {
      const store = fresh();
      await store.open();
      for (let round = 0; round < 12; round++) {
        const outcomes = await Promise.all(['A', 'B', 'C', 'D'].map((who) => store.update(`R${round}${who}`, addKey(`R${round}${who}`, apiKey(`key_${round}_${who}`, 1000 + round), 10))));
        expect(outcomes.filter((o) => o.ok), `round ${round}`).toHaveLength(1);
        for (const lost of outcomes.filter((o) => !o.ok)) expect(lost).toMatchObject({ refusal: { reason: 'duplicate' } });
        expect(await store.findKeys([indexKeyOf(apiKey('x', 1000 + round))])).toHaveLength(1);
      }
    });

    it('keeps each key\'s latest use', async () => {
      const store = fresh();
      await store.open();
      const list = keyListId('AC1', 'key_ci');
      await store.recordKeyUse(new Map([[list, { at: 2_000, ip: '192.0.2.2' }]]));
      // An older sighting (a replica flushing late) does not go back in time.
      await store.recordKeyUse(new Map([[list, { at: 1_000, ip: '192.0.2.1' }]]));
      expect(await store.keyUse('AC1', ['key_ci', 'key_none'])).toEqual(new Map([['key_ci', { at: 2_000, ip: '192.0.2.2' }]]));
      await store.recordKeyUse(new Map([[list, { at: 3_000, ip: '2001:db8::3' }]]));
      expect((await store.keyUse('AC1', ['key_ci'])).get('key_ci')).toEqual({ at: 3_000, ip: '2001:db8::3' });
      expect(await store.keyUse('AC2', [])).toEqual(new Map());
    });
  });
}
