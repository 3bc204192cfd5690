import { describe, expect, it } from 'vitest';
import { addEntry, deleteEntry, replaceEntries, removeExpired, updateEntry, type ChangeContext, type NewEntryFields } from '../../../src/acl/changes.ts';
import { compileRanges, DEFAULT_RESERVED, PRIVATE_RANGES } from '../../../src/acl/reserved.ts';
import type { ValidationPolicy } from '../../../src/acl/validation.ts';
import { formatCidr } from '../../../src/ip/cidr.ts';
import { parseRule } from '../../../src/ip/rule.ts';
import type { AccountRecord, AccountSettings, AclEntry } from '../../../src/list/types.ts';
import type { AccountChange } from '../../../src/store/store.ts';
import { NO_OTHERS } from '../../support/store-view.ts';

const NOW = '2026-06-01T12:00:00.000Z';
const POLICY: ValidationPolicy = { maxEntries: 50, ipv4Only: false, refused: compileRanges(DEFAULT_RESERVED, 'reserved') };
const CTX: ChangeContext = { policy: POLICY, now: NOW };

function fields(text: string, extra: Partial<NewEntryFields> = {}): NewEntryFields {
  const rule = parseRule(text);
  if (!rule.ok) throw new Error(rule.error);
  return { ipAddress: { input: rule.value.input, cidrs: rule.value.cidrs.map(formatCidr) }, ...extra };
}

function record(entries: AclEntry[], settings: AccountSettings = {}): AccountRecord {
  return { account: 'AC1', version: entries.length, settings, entries };
}

/** Applies changes in order from an empty record; returns the last record or the refusal. */
function run(...changes: AccountChange[]): AccountRecord | { status: number; reason: string; message: string } {
  let current = null as AccountRecord | null;
  let version = 0;
  for (const change of changes) {
    const result = change(current, NO_OTHERS);
    if (!result.ok) return result.refusal;
    current = { ...result.draft, version: ++version };
  }
  return current!;
}

const add = (id: string, text: string, extra: Partial<NewEntryFields> = {}, ctx: ChangeContext = CTX) => addEntry('AC1', id, fields(text, extra), ctx);

describe('entry validation', () => {
  it('accepts the documented example network and a private range', () => {
    const out = run(add('a', '92.255.220.0/24'), add('b', '10.20.30.0/24'));
    expect('entries' in out && out.entries.map((e) => e.cidrs)).toEqual([['92.255.220.0/24'], ['10.20.30.0/24']]);
  });

  it('refuses reserved space in allow entries, naming the block', () => {
    for (const [text, block] of [['203.0.113.0/24', '203.0.113.0/24'], ['127.0.0.1', '127.0.0.0/8'], ['0.0.0.0/0', '0.0.0.0/8'], ['169.254.1.1', '169.254.0.0/16'],
      ['224.0.0.1', '224.0.0.0/4'], ['198.18.0.0/16', '198.18.0.0/15'], ['2001:db8::/48', '2001:db8::/32'], ['::1', '::1/128'], ['fe80::1', 'fe80::/10'], ['ff02::1', 'ff00::/8']] as const) {
      expect(run(add('x', text)), text).toMatchObject({ status: 400, reason: 'reserved_range', message: expect.stringContaining(block) });
    }
    // The refusal names the setting that decides, for whoever must change it.
    expect(run(add('x', '127.0.0.1'))).toMatchObject({ message: expect.stringContaining('validation.reservedRanges (ALLOWGATE_RESERVED_RANGES)') });
  });

  it('allows private ranges unless configured to refuse them, and lets deny entries name any space', () => {
    const strict: ChangeContext = { ...CTX, policy: { ...POLICY, refused: [...POLICY.refused, ...compileRanges(PRIVATE_RANGES, 'private')] } };
    expect(run(add('a', '192.168.1.0/24', {}, strict))).toMatchObject({ status: 400, reason: 'reserved_range', message: expect.stringContaining('private address space, which this gateway is configured to refuse (validation.refusePrivate, ALLOWGATE_REFUSE_PRIVATE)') });
    expect(run(add('a', 'fd00::/8'))).toMatchObject({ entries: [{ id: 'a' }] });
    expect(run(add('a', '127.0.0.1', { action: 'deny' }))).toMatchObject({ entries: [{ id: 'a', action: 'deny' }] });
  });

  it('refuses a duplicate, whatever its spelling', () => {
    expect(run(add('a', '10.1.0.0/24'), add('b', '10.1.0.0-10.1.0.255'))).toMatchObject({ status: 409, reason: 'duplicate', message: expect.stringContaining('a (10.1.0.0/24)') });
  });

  it('refuses a subset of an allow entry, naming the covering entry', () => {
    expect(run(add('net', '92.255.220.0/24'), add('host', '92.255.220.7/32'))).toMatchObject({ status: 409, reason: 'subset_exists', message: expect.stringContaining('net (92.255.220.0/24)') });
    // A range inside a CIDR is a subset too.
    expect(run(add('net', '10.0.0.0/16'), add('r', '10.0.1.10-10.0.1.20'))).toMatchObject({ reason: 'subset_exists' });
  });

  it('refuses a superset of allow entries, naming them, and replaces them with replace=true', () => {
    const narrow = [add('a', '10.0.1.0/24'), add('b', '10.0.2.0/24'), add('other', '10.9.0.0/24')];
    expect(run(...narrow, add('wide', '10.0.0.0/22'))).toMatchObject({ status: 409, reason: 'superset_conflict', message: expect.stringMatching(/a \(10\.0\.1\.0\/24\), b \(10\.0\.2\.0\/24\).*replace=true/) });
    const replaced = run(...narrow, add('wide', '10.0.0.0/22', {}, { ...CTX, replace: true }));
    expect('entries' in replaced && replaced.entries.map((e) => e.id)).toEqual(['other', 'wide']);
  });

  it('lets deny entries sit inside allow ranges', () => {
    const out = run(add('net', '10.0.0.0/16'), add('hole', '10.0.5.0/24', { action: 'deny' }));
    expect('entries' in out && out.entries.map((e) => e.action)).toEqual(['allow', 'deny']);
  });

  it('refuses the entry past the limit: 50 by default, or the account\'s own', () => {
    const fifty = Array.from({ length: 50 }, (_, i) => add(`e${i}`, `11.0.${i}.0/24`));
    expect(run(...fifty)).toMatchObject({ entries: expect.any(Array) });
    expect(run(...fifty, add('e50', '11.1.0.0/24'))).toMatchObject({ status: 409, reason: 'limit_reached', message: expect.stringMatching(/at most 50 .*the account's max_entries setting/) });
    const own: AccountChange = () => ({ ok: true, draft: { account: 'AC1', settings: { maxEntries: 1 }, entries: [] } });
    expect(run(own, add('a', '11.0.0.0/24'), add('b', '11.0.1.0/24'))).toMatchObject({ reason: 'limit_reached', message: expect.stringContaining('at most 1') });
  });

  it('refuses IPv6 when the gateway or the account is IPv4-only', () => {
    expect(run(add('a', '2a00:1450::/32', {}, { ...CTX, policy: { ...POLICY, ipv4Only: true } }))).toMatchObject({ status: 400, reason: 'ipv6_not_allowed', message: expect.stringContaining('gateway') });
    const own: AccountChange = () => ({ ok: true, draft: { account: 'AC1', settings: { ipv4Only: true }, entries: [] } });
    expect(run(own, add('a', '2a00:1450::/32'))).toMatchObject({ reason: 'ipv6_not_allowed', message: expect.stringContaining('account') });
    expect(run(add('a', '2a00:1450::/32'))).toMatchObject({ entries: [{ cidrs: ['2a00:1450::/32'] }] });
  });

  it('refuses entry changes on a subaccount: its list is the parent\'s', () => {
    const sub: AccountChange = () => ({ ok: true, draft: { account: 'AC1', settings: { parent: 'AC0' }, entries: [] } });
    expect(run(sub, add('a', '11.0.0.0/24'))).toMatchObject({ status: 409, reason: 'inherited_list', message: expect.stringContaining('AC0') });
  });

  it('applies the same rules on edit', () => {
    const base = [add('a', '10.0.0.0/16'), add('b', '11.0.0.0/24')];
    expect(run(...base, updateEntry('AC1', 'b', fields('10.0.3.0/24'), CTX))).toMatchObject({ reason: 'subset_exists' });
    expect(run(...base, updateEntry('AC1', 'b', fields('203.0.113.9'), CTX))).toMatchObject({ reason: 'reserved_range' });
    expect(run(...base, updateEntry('AC1', 'b', { enabled: false }, CTX))).toMatchObject({ entries: [{ id: 'a' }, { id: 'b', enabled: false, updatedAt: NOW }] });
    expect(run(...base, updateEntry('AC1', 'zz', { enabled: false }, CTX))).toMatchObject({ status: 404, reason: 'entry_not_found' });
    expect(run(...base, deleteEntry('AC1', 'a'))).toMatchObject({ entries: [{ id: 'b' }] });
  });

  it('replaces or merges a whole list, naming the item that fails', () => {
    const items = [{ id: 'x', fields: fields('12.0.0.0/24') }, { id: 'y', fields: fields('12.0.1.0/24') }];
    expect(run(add('old', '13.0.0.0/24'), replaceEntries('AC1', items, CTX, 'replace'))).toMatchObject({ entries: [{ id: 'x' }, { id: 'y' }] });
    const merged = run(add('old', '13.0.0.0/24'), replaceEntries('AC1', [...items, { id: 'again', fields: fields('13.0.0.0/24') }], CTX, 'merge'));
    expect('entries' in merged && merged.entries.map((e) => e.id)).toEqual(['old', 'x', 'y']);
    expect(run(replaceEntries('AC1', [...items, { id: 'z', fields: fields('12.0.0.5') }], CTX, 'replace'))).toMatchObject({ reason: 'subset_exists', message: expect.stringMatching(/^item 3 \(12\.0\.0\.5\)/) });
  });

  it('removes expired entries only', () => {
    const out = run(add('keep', '14.0.0.0/24'), add('gone', '14.0.1.0/24', { expiresAt: '2026-06-01T12:30:00.000Z' }), removeExpired('AC1', Date.parse('2026-06-01T13:00:00Z')));
    expect('entries' in out && out.entries.map((e) => e.id)).toEqual(['keep']);
    expect(run(add('keep', '14.0.0.0/24'), removeExpired('AC1', Date.parse('2026-06-01T13:00:00Z')))).toMatchObject({ status: 409, reason: 'nothing_expired' });
  });

  it('keeps a record untouched when a change is refused', () => {
    const before = record([{ id: 'a', ipAddress: '15.0.0.0/24', cidrs: ['15.0.0.0/24'], action: 'allow', description: '', enabled: true, createdAt: NOW, updatedAt: NOW }]);
    const frozen = JSON.stringify(before);
    expect(add('b', '15.0.0.9')(before, NO_OTHERS).ok).toBe(false);
    expect(JSON.stringify(before)).toBe(frozen);
  });
});
