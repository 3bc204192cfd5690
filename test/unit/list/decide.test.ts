import { describe, expect, it } from 'vitest';
import { parseIp } from '../../../src/ip/address.ts';
import { compileList, type CompiledList } from '../../../src/list/compile.ts';
import { decideForAccount, decideForKey, decideGlobalOnly, type AccountPolicy } from '../../../src/list/decide.ts';
import type { AccountRecord, AclEntry, AccountSettings } from '../../../src/list/types.ts';

const NOW = Date.parse('2026-06-01T00:00:00Z');
let nextId = 1;

function entry(cidrs: string[], extra: Partial<AclEntry> = {}): AclEntry {
  return {
    id: `e${nextId++}`, ipAddress: cidrs.join(','), cidrs, action: 'allow', description: '', enabled: true,
    createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z', ...extra,
  };
}

function list(account: string, entries: AclEntry[], settings: AccountSettings = {}): CompiledList {
  const record: AccountRecord = { account, version: 1, settings, entries };
  return compileList(record, NOW);
}

function policy(own: CompiledList | null, overrides: Partial<AccountPolicy> = {}): AccountPolicy {
  return { own, list: own, listKind: 'account', mode: 'enforce', default: 'open', ...overrides };
}

function decide(ip: string, global: CompiledList | null, p: AccountPolicy) {
  const addr = parseIp(ip)!;
  return decideForAccount(addr.family, addr.words, global, p);
}

describe('decideForAccount', () => {
  const office = list('AC1', [entry(['198.51.100.0/24']), entry(['198.51.100.7/32'], { action: 'deny' }), entry(['2001:db8::/32'])]);

  it('allows a match, refuses a miss, and lets the most specific entry win', () => {
    expect(decide('198.51.100.9', null, policy(office))).toMatchObject({ outcome: 'allow', reason: 'ip_allowed', list: 'account' });
    expect(decide('198.51.100.7', null, policy(office))).toMatchObject({ outcome: 'deny', reason: 'ip_denied' });
    expect(decide('203.0.113.1', null, policy(office))).toMatchObject({ outcome: 'deny', reason: 'ip_not_allowed', slot: -1 });
    expect(decide('2001:db8:1::5', null, policy(office))).toMatchObject({ outcome: 'allow' });
    expect(decide('::ffff:198.51.100.9', null, policy(office))).toMatchObject({ outcome: 'allow' });
  });

  it('names the matching entry through the trie slot', () => {
    const d = decide('198.51.100.7', null, policy(office));
    expect(d.source?.trie.idOf(d.slot)).toBe(office.trie.idOf(office.trie.lookupIp(parseIp('198.51.100.7')!)));
    expect(d.source?.trie.actionOf(d.slot)).toBe('deny');
  });

  it('is open without allow entries unless the default is closed', () => {
    const none = list('AC2', []);
    const denyOnly = list('AC3', [entry(['203.0.113.0/24'], { action: 'deny' })]);
    expect(decide('192.0.2.1', null, policy(null))).toMatchObject({ outcome: 'allow', reason: 'no_list' });
    expect(decide('192.0.2.1', null, policy(none))).toMatchObject({ outcome: 'allow', reason: 'no_list' });
    expect(decide('192.0.2.1', null, policy(denyOnly))).toMatchObject({ outcome: 'allow', reason: 'no_list' });
    expect(decide('203.0.113.5', null, policy(denyOnly))).toMatchObject({ outcome: 'deny', reason: 'ip_denied' });
    expect(decide('192.0.2.1', null, policy(none, { default: 'closed' }))).toMatchObject({ outcome: 'deny', reason: 'ip_not_allowed' });
    expect(decide('192.0.2.1', null, policy(null, { default: 'closed' }))).toMatchObject({ outcome: 'deny', reason: 'ip_not_allowed' });
  });

  it('ignores disabled and expired entries, and goes stale when an entry expires', () => {
    const l = list('AC4', [
      entry(['192.0.2.0/24'], { enabled: false }),
      entry(['198.51.100.0/24'], { expiresAt: '2026-05-01T00:00:00Z' }),
      entry(['203.0.113.0/24'], { expiresAt: '2026-07-01T00:00:00Z' }),
    ]);
    expect(l.validUntil).toBe(Date.parse('2026-07-01T00:00:00Z'));
    expect(decide('192.0.2.1', null, policy(l))).toMatchObject({ outcome: 'deny' });
    expect(decide('198.51.100.1', null, policy(l))).toMatchObject({ outcome: 'deny' });
    expect(decide('203.0.113.1', null, policy(l))).toMatchObject({ outcome: 'allow' });
  });

  it('turns the account list refusals into report_only, but never a global deny', () => {
    const global = list('_global', [entry(['192.0.2.66/32'], { action: 'deny' })]);
    expect(decide('203.0.113.1', global, policy(office, { mode: 'report-only' }))).toMatchObject({ outcome: 'report_only', reason: 'ip_not_allowed' });
    expect(decide('192.0.2.66', global, policy(office, { mode: 'report-only' }))).toMatchObject({ outcome: 'deny', list: 'global' });
    expect(decide('192.0.2.66', global, policy(office, { mode: 'off' }))).toMatchObject({ outcome: 'deny', list: 'global' });
    expect(decide('203.0.113.1', global, policy(office, { mode: 'off' }))).toMatchObject({ outcome: 'allow', reason: 'mode_off' });
  });

  it('lets a global allow entry admit a caller every account accepts', () => {
    const global = list('_global', [entry(['192.0.2.10/32'])]);
    expect(decide('192.0.2.10', global, policy(office))).toMatchObject({ outcome: 'allow', reason: 'global_allow', list: 'global' });
    expect(decide('192.0.2.11', global, policy(office))).toMatchObject({ outcome: 'deny', list: 'account' });
  });

  it('reports a parent list as the deciding list for a subaccount', () => {
    expect(decide('203.0.113.1', null, policy(null, { list: office, listKind: 'parent' }))).toMatchObject({ outcome: 'deny', list: 'parent' });
  });
});

describe('decideGlobalOnly', () => {
  it('checks anonymous callers against the global list alone', () => {
    const global = list('_global', [entry(['192.0.2.0/24'])]);
    const ip = (s: string) => parseIp(s)!;
    const d = (s: string, g: CompiledList | null, def: 'open' | 'closed' = 'open') => decideGlobalOnly(ip(s).family, ip(s).words, g, { mode: 'enforce', default: def });
    expect(d('192.0.2.5', global)).toMatchObject({ outcome: 'allow', reason: 'global_allow' });
    expect(d('198.51.100.5', global)).toMatchObject({ outcome: 'deny', reason: 'ip_not_allowed' });
    expect(d('198.51.100.5', null)).toMatchObject({ outcome: 'allow', reason: 'no_list' });
    expect(d('198.51.100.5', null, 'closed')).toMatchObject({ outcome: 'deny' });
  });
});

describe('compileList', () => {
  it('fails loudly on a corrupted stored CIDR instead of enforcing a list with a hole', () => {
    expect(() => list('AC9', [entry(['10.0.0.1/8'])])).toThrow(/AC9.*host bits/);
  });
});

describe('decideForKey', () => {
  const account = list('AC1', [entry(['198.51.100.0/24']), entry(['203.0.113.0/24'])]);
  const ciOnly = list('AC1/key:key_ci', [entry(['203.0.113.0/24']), entry(['203.0.113.66/32'], { action: 'deny' })]);
  const denyOnly = list('AC1/key:key_d', [entry(['198.51.100.9/32'], { action: 'deny' })]);
  const empty = list('AC1/key:key_e', []);
  const forKey = (ip: string, key: CompiledList | null, p: AccountPolicy = policy(account), global: CompiledList | null = null) => {
    const addr = parseIp(ip)!;
    return decideForKey(addr.family, addr.words, global, p, key);
  };

  it('needs the account\'s list and the key\'s own to let the caller through', () => {
    expect(forKey('203.0.113.5', ciOnly)).toMatchObject({ outcome: 'allow', reason: 'ip_allowed', list: 'account' });
    expect(forKey('198.51.100.9', ciOnly)).toMatchObject({ outcome: 'deny', reason: 'ip_not_allowed_for_key', list: 'key', slot: -1 });
    expect(forKey('203.0.113.66', ciOnly)).toMatchObject({ outcome: 'deny', reason: 'ip_denied_for_key', list: 'key' });
    // The account refuses first, whatever the key's list says.
    expect(forKey('192.0.2.1', ciOnly)).toMatchObject({ outcome: 'deny', reason: 'ip_not_allowed', list: 'account' });
  });

  it('treats a key without a list, or with deny entries only, as restricted by the account alone (and its denies)', () => {
    expect(forKey('198.51.100.9', null)).toMatchObject({ outcome: 'allow', reason: 'ip_allowed' });
    expect(forKey('198.51.100.9', empty)).toMatchObject({ outcome: 'allow', reason: 'ip_allowed' });
    expect(forKey('198.51.100.10', denyOnly)).toMatchObject({ outcome: 'allow' });
    expect(forKey('198.51.100.9', denyOnly)).toMatchObject({ outcome: 'deny', reason: 'ip_denied_for_key' });
  });

  it('follows the account\'s mode and the global list for the key\'s list too', () => {
    expect(forKey('198.51.100.9', ciOnly, policy(account, { mode: 'off' }))).toMatchObject({ outcome: 'allow', reason: 'mode_off' });
    expect(forKey('198.51.100.9', ciOnly, policy(account, { mode: 'report-only' }))).toMatchObject({ outcome: 'report_only', reason: 'ip_not_allowed_for_key' });
    const global = list('_global', [entry(['198.51.100.9/32'])]);
    expect(forKey('198.51.100.9', ciOnly, policy(account), global)).toMatchObject({ outcome: 'allow', reason: 'global_allow' });
    // An account without a list, open by default: the key's list alone restricts.
    expect(forKey('192.0.2.1', ciOnly, policy(null))).toMatchObject({ outcome: 'deny', reason: 'ip_not_allowed_for_key' });
    expect(forKey('203.0.113.9', ciOnly, policy(null))).toMatchObject({ outcome: 'allow', reason: 'no_list' });
  });

  it('refuses every caller with a key whose list had allow entries and has none in force any more, until it is opened', () => {
    const expired = list('AC1/key:key_x', [entry(['203.0.113.0/24'], { expiresAt: '2026-05-01T00:00:00Z' })]);
    const disabled = list('AC1/key:key_y', [entry(['203.0.113.0/24'], { enabled: false })], { restricted: true });
    const emptied = list('AC1/key:key_z', [], { restricted: true });
    const emptiedWithDeny = list('AC1/key:key_w', [entry(['198.51.100.9/32'], { action: 'deny' })], { restricted: true });
    for (const key of [expired, disabled, emptied, emptiedWithDeny]) {
      expect(forKey('203.0.113.5', key), key.account).toMatchObject({ outcome: 'deny', reason: 'list_empty_for_key', list: 'key', slot: -1 });
    }
    // A matching deny entry still names itself; the account's list still refuses first.
    expect(forKey('198.51.100.9', emptiedWithDeny)).toMatchObject({ outcome: 'deny', reason: 'ip_denied_for_key' });
    expect(forKey('192.0.2.1', emptied)).toMatchObject({ outcome: 'deny', reason: 'ip_not_allowed', list: 'account' });
    // report-only reports it; opened (restricted cleared, no allow entry), the account's list alone applies.
    expect(forKey('203.0.113.5', emptied, policy(account, { mode: 'report-only' }))).toMatchObject({ outcome: 'report_only', reason: 'list_empty_for_key' });
    expect(forKey('203.0.113.5', list('AC1/key:key_z', []))).toMatchObject({ outcome: 'allow', reason: 'ip_allowed', list: 'account' });
  });
});
