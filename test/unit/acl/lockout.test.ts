import { describe, expect, it } from 'vitest';
import { addEntry, deleteEntry, updateEntry, type ChangeContext } from '../../../src/acl/changes.ts';
import { createEvaluator } from '../../../src/acl/evaluator.ts';
import { guarded } from '../../../src/acl/lockout.ts';
import type { ValidationPolicy } from '../../../src/acl/validation.ts';
import type { AccountRecord, AclEntry } from '../../../src/list/types.ts';
import { NO_OTHERS } from '../../support/store-view.ts';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const POLICY: ValidationPolicy = { maxEntries: 50, ipv4Only: false, refused: [] };
const CTX: ChangeContext = { policy: POLICY, now: new Date(NOW).toISOString() };
const evaluate = createEvaluator(null, { mode: 'enforce', default: 'open' }, NOW);
const recent = [{ ip: '10.0.0.5', lastSeen: NOW - 60_000 }, { ip: '20.0.0.9', lastSeen: NOW - 5_000 }];

function entry(id: string, cidr: string, extra: Partial<AclEntry> = {}): AclEntry {
  return { id, ipAddress: cidr, cidrs: [cidr], action: 'allow', description: '', enabled: true, createdAt: CTX.now, updatedAt: CTX.now, ...extra };
}
const withEntries = (entries: AclEntry[], guard?: 'strict'): AccountRecord => ({ account: 'AC1', version: 1, settings: guard ? { guard } : {}, entries });
const cidr = (text: string) => ({ input: text, cidrs: [text] });

describe('lockout guard', () => {
  it('warns about recent callers a first allow entry would shut out', () => {
    const g = guarded(addEntry('AC1', 'n', { ipAddress: cidr('10.0.0.0/24') }, CTX), recent, evaluate, false);
    expect(g.change(null, NO_OTHERS).ok).toBe(true);
    expect(g.warnings()).toEqual([{ reason: 'would_lock_out', ip: '20.0.0.9', last_seen: new Date(NOW - 5_000).toISOString(), decision: 'deny' }]);
  });

  it('warns on delete, disable and deny entries, and says nothing when no caller loses access', () => {
    const current = withEntries([entry('a', '10.0.0.0/24'), entry('b', '20.0.0.0/24')]);
    for (const change of [deleteEntry('AC1', 'b'), updateEntry('AC1', 'b', { enabled: false }, CTX), addEntry('AC1', 'd', { ipAddress: cidr('20.0.0.8/29'), action: 'deny' }, CTX)]) {
      const g = guarded(change, recent, evaluate, false);
      expect(g.change(current, NO_OTHERS).ok).toBe(true);
      expect(g.warnings().map((w) => ('ip' in w ? w.ip : w.reason))).toEqual(['20.0.0.9']);
    }
    const harmless = guarded(addEntry('AC1', 'c', { ipAddress: cidr('30.0.0.0/24') }, CTX), recent, evaluate, false);
    harmless.change(current, NO_OTHERS);
    expect(harmless.warnings()).toEqual([]);
  });

  it('refuses in strict mode (asked for, or set on the account) with the callers named', () => {
    const current = withEntries([entry('a', '10.0.0.0/24'), entry('b', '20.0.0.0/24')]);
    const asked = guarded(deleteEntry('AC1', 'a'), recent, evaluate, true).change(current, NO_OTHERS);
    expect(asked).toMatchObject({ ok: false, refusal: { status: 409, reason: 'would_lock_out', message: expect.stringContaining('10.0.0.5') } });
    const byAccount = guarded(deleteEntry('AC1', 'a'), recent, evaluate, false).change(withEntries(current.entries as AclEntry[], 'strict'), NO_OTHERS);
    expect(byAccount).toMatchObject({ ok: false, refusal: { reason: 'would_lock_out' } });
  });

  it('passes refusals of the change through untouched', () => {
    const g = guarded(deleteEntry('AC1', 'nope'), recent, evaluate, true);
    expect(g.change(null, NO_OTHERS)).toMatchObject({ ok: false, refusal: { reason: 'entry_not_found' } });
    expect(g.warnings()).toEqual([]);
  });
});
