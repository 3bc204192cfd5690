import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { addEntry, changeSettings, deleteEntry, removeExpired, replaceEntries, updateEntry, type ChangeContext } from '../../../src/acl/changes.ts';
import { createEvaluator } from '../../../src/acl/evaluator.ts';
import { guarded } from '../../../src/acl/lockout.ts';
import { parseIp } from '../../../src/ip/address.ts';
import { compileList, withoutExpired, type CompiledList } from '../../../src/list/compile.ts';
import { decodeCompiledList, encodeCompiledList } from '../../../src/list/compiled-blob.ts';
import { decideForAccount, decideGlobalOnly } from '../../../src/list/decide.ts';
import { settleListState } from '../../../src/acl/changes.ts';
import { recordListState } from '../../../src/list/list-state.ts';
import { atLeastAsStrict } from '../../../src/list/strictness.ts';
import type { AccountRecord, AccountSettings, AclEntry } from '../../../src/list/types.ts';
import type { AccountChange } from '../../../src/store/store.ts';
import { NO_OTHERS } from '../../support/store-view.ts';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const LATER = NOW + 3_600_000;
const CTX: ChangeContext = { policy: { maxEntries: 50, ipv4Only: false, refused: [] }, now: new Date(NOW).toISOString() };
const cidr = (text: string) => ({ input: text, cidrs: [text] });

function entry(id: string, text: string, extra: Partial<AclEntry> = {}): AclEntry {
  return { id, ipAddress: text, cidrs: [text], action: 'allow', description: '', enabled: true, createdAt: CTX.now, updatedAt: CTX.now, ...extra };
}
function record(entries: AclEntry[], settings: AccountSettings = {}, version = 1): AccountRecord {
  return { account: 'AC1', version, settings, entries };
}
/** Runs a change as the management core does (list state settled inside it) and returns the record written. */
function run(change: AccountChange, current: AccountRecord | null): AccountRecord {
  const result = settleListState(change)(current, NO_OTHERS);
  if (!result.ok) throw new Error(`refused: ${result.refusal.reason}`);
  return { ...result.draft, version: (current?.version ?? 0) + 1 };
}
function refusalOf(change: AccountChange, current: AccountRecord | null): string {
  const result = settleListState(change)(current, NO_OTHERS);
  return result.ok ? 'ok' : `${result.refusal.status} ${result.refusal.reason}`;
}
function decide(ip: string, list: CompiledList | null, fallback: 'open' | 'closed' = 'open', mode: 'enforce' | 'report-only' | 'off' = 'enforce') {
  const address = parseIp(ip)!;
  return decideForAccount(address.family, address.words, null, { own: list, list, listKind: 'account', mode, default: fallback });
}

describe('list state: a list never opens by itself', () => {
  it('is set, in the same change, by the first enabled allow entry', () => {
    const first = run(addEntry('AC1', 'a', { ipAddress: cidr('10.0.0.0/24') }, CTX), null);
    expect(first.settings.restricted).toBe(true);
    expect(recordListState(first, NOW)).toBe('active');
    // A deny entry or a disabled allow entry alone restricts nothing.
    expect(run(addEntry('AC1', 'd', { ipAddress: cidr('10.0.0.0/24'), action: 'deny' }, CTX), null).settings.restricted).toBeUndefined();
    expect(run(addEntry('AC1', 'x', { ipAddress: cidr('10.0.0.0/24'), enabled: false }, CTX), null).settings.restricted).toBeUndefined();
  });

  it('stays when the last allow entry is deleted, disabled, replaced away, expires or is swept', () => {
    const current = run(addEntry('AC1', 'a', { ipAddress: cidr('10.0.0.0/24') }, CTX), null);
    for (const change of [deleteEntry('AC1', 'a'), updateEntry('AC1', 'a', { enabled: false }, CTX), replaceEntries('AC1', [], CTX, 'replace'), changeSettings('AC1', { mode: 'enforce' })]) {
      const next = run(change, current);
      expect(next.settings.restricted).toBe(true);
    }
    const emptied = run(deleteEntry('AC1', 'a'), current);
    expect(recordListState(emptied, NOW)).toBe('empty');
    const list = compileList(emptied, NOW);
    expect(decide('10.0.0.1', list)).toMatchObject({ outcome: 'deny', reason: 'list_empty' });
    expect(decide('192.0.2.1', list)).toMatchObject({ outcome: 'deny', reason: 'list_empty' });

    const temporary = run(addEntry('AC1', 't', { ipAddress: cidr('10.0.0.0/24'), expiresAt: new Date(NOW + 1_000).toISOString() }, CTX), null);
    expect(decide('10.0.0.1', compileList(temporary, NOW)).reason).toBe('ip_allowed');
    expect(decide('10.0.0.1', compileList(temporary, NOW + 2_000)).reason).toBe('list_empty');
    expect(decide('10.0.0.1', withoutExpired(compileList(temporary, NOW), NOW + 2_000)).reason).toBe('list_empty');
    const swept = run(removeExpired('AC1', NOW + 2_000), temporary);
    expect(swept.entries).toEqual([]);
    expect(swept.settings.restricted).toBe(true);
  });

  it('reads a record written before the setting existed as restricted while it holds an enabled allow entry, expired or not', () => {
    const legacy = record([entry('t', '10.0.0.0/24', { expiresAt: new Date(NOW - 1_000).toISOString() })]);
    expect(recordListState(legacy, NOW)).toBe('empty');
    expect(decide('10.0.0.1', compileList(legacy, NOW)).reason).toBe('list_empty');
    expect(run(removeExpired('AC1', NOW), legacy).settings.restricted).toBe(true);
  });

  it('opens only by an explicit settings change, refused while an allow entry is enabled', () => {
    const active = run(addEntry('AC1', 'a', { ipAddress: cidr('10.0.0.0/24') }, CTX), null);
    expect(refusalOf(changeSettings('AC1', { restricted: false }), active)).toBe('409 list_in_force');
    const disabled = run(updateEntry('AC1', 'a', { enabled: false }, CTX), active);
    const opened = run(changeSettings('AC1', { restricted: false }), disabled);
    expect(opened.settings.restricted).toBeUndefined();
    expect(recordListState(opened, NOW)).toBe('none');
    expect(decide('192.0.2.1', compileList(opened, NOW))).toMatchObject({ outcome: 'allow', reason: 'no_list' });
    // Re-enabling the entry restricts again.
    expect(run(updateEntry('AC1', 'a', { enabled: true }, CTX), opened).settings.restricted).toBe(true);
    // `true` makes an account without a list refuse everyone.
    const closed = run(changeSettings('AC1', { restricted: true }), null);
    expect(decide('192.0.2.1', compileList(closed, NOW)).reason).toBe('list_empty');
  });

  it('an account that never had a list keeps its default', () => {
    const none = run(changeSettings('AC1', { mode: 'enforce' }), null);
    expect(recordListState(none, NOW)).toBe('none');
    expect(decide('192.0.2.1', compileList(none, NOW))).toMatchObject({ outcome: 'allow', reason: 'no_list' });
    expect(decide('192.0.2.1', compileList(none, NOW), 'closed')).toMatchObject({ outcome: 'deny', reason: 'ip_not_allowed' });
    expect(decide('192.0.2.1', null)).toMatchObject({ outcome: 'allow', reason: 'no_list' });
  });

  it('a deny entry still punches its hole; report-only reports, off lets through', () => {
    const emptied = record([entry('a', '10.0.0.0/24', { enabled: false }), entry('d', '10.0.0.0/28', { action: 'deny' })], { restricted: true });
    const list = compileList(emptied, NOW);
    expect(decide('10.0.0.1', list)).toMatchObject({ outcome: 'deny', reason: 'ip_denied' });
    expect(decide('10.0.0.99', list)).toMatchObject({ outcome: 'deny', reason: 'list_empty' });
    expect(decide('10.0.0.99', list, 'open', 'report-only')).toMatchObject({ outcome: 'report_only', reason: 'list_empty' });
    expect(decide('10.0.0.99', list, 'open', 'off')).toMatchObject({ outcome: 'allow', reason: 'mode_off' });
  });

  it('applies to the global list for callers without credentials', () => {
    const global = compileList({ ...record([], { restricted: true }), account: '_global' }, NOW);
    const address = parseIp('192.0.2.1')!;
    expect(decideGlobalOnly(address.family, address.words, global, { mode: 'enforce', default: 'open' })).toMatchObject({ outcome: 'deny', reason: 'list_empty' });
  });

  it('travels in compiled blobs; a blob from before reads as restricted only when it says so or holds an allow entry', () => {
    const emptied = compileList(record([], { restricted: true }), NOW);
    expect(decodeCompiledList(encodeCompiledList(emptied)).restricted).toBe(true);
    const open = compileList(record([]), NOW);
    expect(decodeCompiledList(encodeCompiledList(open)).restricted).toBe(false);
    // Strip the field from the header as an older writer would have.
    const blob = encodeCompiledList(compileList(record([entry('a', '10.0.0.0/24')]), NOW));
    const length = blob.readUInt32LE(0);
    const header = JSON.parse(blob.subarray(8, 8 + length).toString('utf8')) as Record<string, unknown>;
    delete header['restricted'];
    const text = Buffer.from(JSON.stringify(header));
    const prefix = Buffer.alloc(8);
    prefix.writeUInt32LE(text.length, 0);
    prefix.writeUInt32LE(crc32(text), 4);
    expect(decodeCompiledList(Buffer.concat([prefix, text, blob.subarray(8 + length)])).restricted).toBe(true);
  });

  it('an emptied list is stricter than the active list it replaces, an opened one is not', () => {
    const active = compileList(record([entry('a', '10.0.0.0/24')]), NOW);
    const emptied = compileList(record([], { restricted: true }, 2), NOW);
    const opened = compileList(record([], {}, 3), NOW);
    // A replica still enforcing `active` admits what `emptied` refuses: not as strict.
    expect(atLeastAsStrict(active, emptied, NOW)).toBe(false);
    expect(atLeastAsStrict(emptied, active, NOW)).toBe(true);
    expect(atLeastAsStrict(emptied, opened, NOW)).toBe(true);
    expect(atLeastAsStrict(opened, emptied, NOW)).toBe(false);
  });
});

describe('list state in the lockout guard', () => {
  const evaluator = createEvaluator(null, { mode: 'enforce', default: 'open' }, NOW);
  const recent = [{ ip: '10.0.0.5', lastSeen: NOW - 60_000 }];

  it('an emptied list locks out its callers instead of opening', () => {
    const current = run(addEntry('AC1', 'a', { ipAddress: cidr('10.0.0.0/24') }, CTX), null);
    const g = guarded(settleListState(deleteEntry('AC1', 'a')), recent, evaluator, false);
    expect(g.change(current, NO_OTHERS).ok).toBe(true);
    expect(g.warnings()).toEqual([{ reason: 'would_lock_out', ip: '10.0.0.5', last_seen: new Date(NOW - 60_000).toISOString(), decision: 'deny' }]);
  });

  it('opening is would_open, refused under strict', () => {
    const emptied = record([], { restricted: true });
    const warn = guarded(settleListState(changeSettings('AC1', { restricted: false })), recent, evaluator, false);
    expect(warn.change(emptied, NO_OTHERS).ok).toBe(true);
    expect(warn.warnings()).toMatchObject([{ reason: 'would_open' }]);
    const strict = guarded(settleListState(changeSettings('AC1', { restricted: false })), recent, evaluator, true);
    const refused = strict.change(emptied, NO_OTHERS);
    expect(refused.ok ? 'ok' : refused.refusal.reason).toBe('would_open');
  });

  it('warns when the only allow entries left in force are temporary, at the last expiry', () => {
    const g = guarded(settleListState(addEntry('AC1', 't', { ipAddress: cidr('10.0.0.0/24'), expiresAt: new Date(LATER).toISOString() }, CTX)), [], evaluator, true);
    expect(g.change(null, NO_OTHERS).ok).toBe(true);
    expect(g.warnings()).toMatchObject([{ reason: 'will_empty', at: new Date(LATER).toISOString() }]);
    // A permanent allow entry beside it: nothing to say.
    const current = run(addEntry('AC1', 'p', { ipAddress: cidr('10.1.0.0/24') }, CTX), null);
    const quiet = guarded(settleListState(addEntry('AC1', 't', { ipAddress: cidr('10.0.0.0/24'), expiresAt: new Date(LATER).toISOString() }, CTX)), [], evaluator, false);
    quiet.change(current, NO_OTHERS);
    expect(quiet.warnings()).toEqual([]);
  });
});
