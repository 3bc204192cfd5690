import { describe, expect, it } from 'vitest';
import { AccountIndex, compileAccountNaming, compileAdminAccountNaming } from '../../../src/policy/account-names.ts';
import { MemoryStore } from '../../../src/store/memory-store.ts';

async function indexOf(accounts: readonly string[], limit?: number): Promise<AccountIndex> {
  const index = new AccountIndex(limit);
  await index.load({ accountPage: async () => ({ accounts, cursor: null }) });
  return index;
}

const reasonOf = (named: ReturnType<ReturnType<typeof compileAccountNaming>>): string => (named.ok ? named.value : `${named.refusal.status} ${named.refusal.reason}`);
/** The account an admin id maps to, or the refusal, unwrapped for the assertions below. */
const adminName = (named: ReturnType<ReturnType<typeof compileAdminAccountNaming>>): unknown => (named.ok ? named.value : named.refusal);

describe('account naming (identity.accountIdCase)', () => {
  it('refuse: an id that only matches a stored account ignoring case is refused; exact and unknown ids pass', async () => {
    const naming = compileAccountNaming('refuse', await indexOf(['AC1', 'Acme', 'acme', '_global']), () => 'up');
    expect(reasonOf(naming('AC1'))).toBe('AC1');
    expect(reasonOf(naming('ac1'))).toBe('400 ambiguous_account');
    expect(reasonOf(naming('aC1'))).toBe('400 ambiguous_account');
    expect(reasonOf(naming('acme'))).toBe('acme');
    expect(reasonOf(naming('Acme'))).toBe('Acme');
    expect(reasonOf(naming('ACME'))).toBe('400 ambiguous_account');
    expect(reasonOf(naming('AC2'))).toBe('AC2');
    expect(reasonOf(naming('_GLOBAL'))).toBe('_GLOBAL');
  });

  it('fold: the stored spelling, or a refusal when two spellings are stored', async () => {
    const naming = compileAccountNaming('fold', await indexOf(['AC1', 'Acme', 'acme']), () => 'up');
    expect(reasonOf(naming('ac1'))).toBe('AC1');
    expect(reasonOf(naming('acme'))).toBe('400 ambiguous_account');
    expect(reasonOf(naming('ac2'))).toBe('ac2');
  });

  it('exact, lower and upper take the id as the identity strategies made it', async () => {
    const index = await indexOf(['AC1']);
    for (const mode of ['exact', 'lower', 'upper'] as const) expect(reasonOf(compileAccountNaming(mode, index, () => 'up')('ac1'))).toBe('ac1');
  });

  it('fails closed on ids it cannot tell apart while incomplete', async () => {
    const unloaded = new AccountIndex();
    unloaded.add('AC1');
    expect(reasonOf(compileAccountNaming('refuse', unloaded, () => 'up')('ac1'))).toBe('400 ambiguous_account');
    expect(reasonOf(compileAccountNaming('refuse', unloaded, () => 'up')('AC2'))).toBe('503 store_unavailable');
    // With the store down the policy step cannot read AC2's list either: it decides (fail closed or open).
    expect(reasonOf(compileAccountNaming('refuse', unloaded, () => 'down')('AC2'))).toBe('AC2');
    const full = await indexOf(Array.from({ length: 1_001 }, (_, i) => `A${i}`), 1_000);
    expect(full.full).toBe(true);
    expect(full.size).toBe(1_000);
    expect(reasonOf(compileAccountNaming('refuse', full, () => 'down')('B1'))).toBe('503 account_index_full');
  });

  it('follows the store: accounts written later are indexed, from any replica\'s notice', async () => {
    const store = new MemoryStore();
    const index = new AccountIndex();
    const stop = index.follow(store, { info: () => undefined, warn: () => undefined, error: () => undefined } as never);
    await store.update('AC9', () => ({ ok: true, draft: { account: 'AC9', settings: {}, entries: [] } }));
    await new Promise((r) => setImmediate(r));
    expect(index.complete).toBe(true);
    expect(reasonOf(compileAccountNaming('refuse', index, () => 'up')('ac9'))).toBe('400 ambiguous_account');
    stop();
  });

  it('numbers: an id that reads as the number of a stored account other than itself is refused, unless numbers compare exactly', async () => {
    const index = await indexOf(['123', 'AC1', '0777']);
    const naming = compileAccountNaming('refuse', index, () => 'up');
    for (const id of ['0123', '123.0', '1.23e2', '0x7B', '123-acme', '777']) expect(reasonOf(naming(id)), id).toBe('400 ambiguous_account');
    for (const id of ['123', '0777', '124', '1234', 'x123']) expect(reasonOf(naming(id)), id).toBe(id);
    expect(reasonOf(compileAccountNaming({ case: 'exact', numeric: 'exact' }, index, () => 'up')('0123'))).toBe('0123');
    // Numeric ids wait for the index under exact case too, since a number may name a stored account.
    const unloaded = new AccountIndex();
    expect(reasonOf(compileAccountNaming({ case: 'exact', numeric: 'refuse' }, unloaded, () => 'up')('0123'))).toBe('503 store_unavailable');
    expect(reasonOf(compileAccountNaming({ case: 'exact', numeric: 'refuse' }, unloaded, () => 'up')('AC2'))).toBe('AC2');
  });

  it('format suffixes: a suffixed path id whose part before a dot is a stored account is refused, even when it is stored itself', async () => {
    const naming = compileAccountNaming('refuse', await indexOf(['AC1', 'AC1.csv', '123', 'a.b']), () => 'up');
    for (const id of ['AC1.json', 'AC1.csv', 'ac1.json', 'AC1.tar.gz', '0123.json', 'a.b.json']) expect(reasonOf(naming(id, true)), id).toBe('400 ambiguous_account');
    for (const id of ['b.example', 'AC2.json']) expect(reasonOf(naming(id, true)), id).toBe(id);
    // Not in the path's last segment: the id as it is.
    expect(reasonOf(naming('AC1.csv', false))).toBe('AC1.csv');
    expect(reasonOf(naming('AC1.json', false))).toBe('AC1.json');
  });

  it('lists the store a page at a time, whatever the page size', async () => {
    const names = Array.from({ length: 2_500 }, (_, i) => `N${i}`);
    const index = new AccountIndex();
    let calls = 0;
    await index.load({
      accountPage: async (cursor) => {
        calls++;
        const at = cursor === null ? 0 : Number(cursor);
        return { accounts: names.slice(at, at + 1_000), cursor: at + 1_000 < names.length ? String(at + 1_000) : null };
      },
    });
    expect([calls, index.size, index.complete]).toEqual([3, 2_500, true]);
  });

  it('maps admin ids so lists are stored under the spelling the gateway looks up', async () => {
    const index = await indexOf(['AC1', 'Acme', 'acme']);
    expect(adminName(compileAdminAccountNaming('lower', index)('AC1'))).toBe('ac1');
    expect(adminName(compileAdminAccountNaming('upper', index)('ac1'))).toBe('AC1');
    expect(adminName(compileAdminAccountNaming('fold', index)('ac1'))).toBe('AC1');
    expect(adminName(compileAdminAccountNaming('fold', index)('new'))).toBe('new');
    expect(adminName(compileAdminAccountNaming('fold', index)('acme'))).toBe('acme');
    expect(adminName(compileAdminAccountNaming('fold', index)('ACME'))).toMatchObject({ status: 409, reason: 'ambiguous_account' });
    expect(adminName(compileAdminAccountNaming('refuse', index)('ac1'))).toBe('ac1');
  });
});
