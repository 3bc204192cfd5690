import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseIp, type IpAddress } from '../../../src/ip/address.ts';
import { compileList, withoutExpired, type CompiledList } from '../../../src/list/compile.ts';
import { decideForAccount, decideGlobalOnly, type AccountPolicy } from '../../../src/list/decide.ts';
import { atLeastAsStrict } from '../../../src/list/strictness.ts';
import type { AccountRecord, AccountSettings, AclEntry, DefaultPolicy, Mode } from '../../../src/list/types.ts';

/**
 * atLeastAsStrict against the decision function itself: "old is at least as strict as new" means
 * that at every address, at every moment (entries expire), under every gateway default the unset
 * settings could inherit, the request path admits with the old list only callers it would admit
 * with the new one. Lists live in two small blocks (10.0.0.0/28, 2001:db8::/124), so every address
 * that matters can be tried, plus a few outside them.
 */

const NOW = Date.parse('2026-06-01T00:00:00Z');
const T1 = NOW + 60_000;
const T2 = NOW + 120_000;
const TIMES = [NOW, T1, T2, T2 + 1];
const MODES: readonly Mode[] = ['enforce', 'report-only', 'off'];
const DEFAULTS: readonly DefaultPolicy[] = ['open', 'closed'];

const ADDRESSES: readonly IpAddress[] = [
  ...Array.from({ length: 16 }, (_, i) => `10.0.0.${i}`),
  ...Array.from({ length: 16 }, (_, i) => `2001:db8::${i.toString(16)}`),
  '9.255.255.255', '10.0.0.16', '11.0.0.0', '2001:db8::10', '::', '2001:db7::',
].map((text) => parseIp(text)!);

const cidrs4 = [...[28, 29, 30, 31, 32].flatMap((p) => Array.from({ length: 2 ** (p - 28) }, (_, i) => `10.0.0.${i * 2 ** (32 - p)}/${p}`))];
const cidrs6 = [...[124, 125, 126, 127, 128].flatMap((p) => Array.from({ length: 2 ** (p - 124) }, (_, i) => `2001:db8::${(i * 2 ** (128 - p)).toString(16)}/${p}`))];

const entryArb = fc.record({
  cidr: fc.constantFrom(...cidrs4, ...cidrs6),
  action: fc.constantFrom('allow', 'deny') as fc.Arbitrary<'allow' | 'deny'>,
  enabled: fc.constantFrom(true, true, true, false),
  expires: fc.constantFrom(undefined, undefined, undefined, T1, T2),
});

const settingsArb = fc.record({
  mode: fc.constantFrom(undefined, undefined, ...MODES),
  default: fc.constantFrom(undefined, undefined, ...DEFAULTS),
}).map((s): AccountSettings => ({ ...(s.mode === undefined ? {} : { mode: s.mode }), ...(s.default === undefined ? {} : { default: s.default }) }));

const recordArb = (account: string, version: number, parent?: string): fc.Arbitrary<AccountRecord | null> => fc.option(
  fc.record({ entries: fc.array(entryArb, { maxLength: 6 }), settings: settingsArb }).map(({ entries, settings }) => ({
    account,
    version,
    settings: parent === undefined ? settings : { ...settings, parent },
    entries: entries.map((e, i): AclEntry => ({
      id: `e${i}`, ipAddress: e.cidr, cidrs: [e.cidr], action: e.action, description: '', enabled: e.enabled,
      createdAt: 'x', updatedAt: 'x', ...(e.expires === undefined ? {} : { expiresAt: new Date(e.expires).toISOString() }),
    })),
  })),
  { freq: 6 },
);

/** The old list as a replica would serve it at `t` (its expired entries dropped), the new one compiled at `t`. */
function at(old: AccountRecord | null, next: AccountRecord | null, t: number): [CompiledList | null, CompiledList | null] {
  return [old === null ? null : withoutExpired(compileList(old, NOW), t), next === null ? null : compileList(next, t)];
}

function admitted(list: CompiledList | null, root: CompiledList | null, mode: Mode, fallback: DefaultPolicy, ip: IpAddress): boolean {
  const sub = list?.settings.parent !== undefined;
  const policy: AccountPolicy = {
    own: list,
    list: sub ? root : list,
    listKind: sub ? 'parent' : 'account',
    mode: list?.settings.mode ?? (sub ? root?.settings.mode : undefined) ?? mode,
    default: list?.settings.default ?? (sub ? root?.settings.default : undefined) ?? fallback,
  };
  return decideForAccount(ip.family, ip.words, null, policy).outcome !== 'deny';
}

/** The model: does the old list admit, anywhere and any time, someone the new one refuses? */
function modelAsStrict(old: AccountRecord | null, next: AccountRecord | null, roots: readonly (CompiledList | null)[]): boolean {
  for (const t of TIMES) {
    const [o, n] = at(old, next, t);
    for (const root of roots) for (const mode of MODES) for (const fallback of DEFAULTS) for (const ip of ADDRESSES) {
      if (admitted(o, root, mode, fallback, ip) && !admitted(n, root, mode, fallback, ip)) return false;
    }
  }
  return true;
}

function modelGlobalAsStrict(old: AccountRecord | null, next: AccountRecord | null): boolean {
  const open = compileList({ account: 'P', version: 1, settings: { default: 'open' }, entries: [] }, NOW);
  const closed = compileList({ account: 'P', version: 1, settings: { default: 'closed' }, entries: [] }, NOW);
  for (const t of TIMES) {
    const [o, n] = at(old, next, t);
    for (const fallback of DEFAULTS) for (const ip of ADDRESSES) {
      for (const account of [open, closed]) {
        const policy: AccountPolicy = { own: account, list: account, listKind: 'account', mode: 'enforce', default: account.settings.default! };
        const a = decideForAccount(ip.family, ip.words, o, policy).outcome !== 'deny';
        const b = decideForAccount(ip.family, ip.words, n, policy).outcome !== 'deny';
        if (a && !b) return false;
      }
      const defaults = { mode: 'enforce' as const, default: fallback };
      if (decideGlobalOnly(ip.family, ip.words, o, defaults).outcome !== 'deny' && decideGlobalOnly(ip.family, ip.words, n, defaults).outcome === 'deny') return false;
    }
  }
  return true;
}

const compiled = (r: AccountRecord | null): CompiledList | null => (r === null ? null : compileList(r, NOW));

describe('atLeastAsStrict', () => {
  it('agrees with the decision function on every address, moment and inherited default (accounts)', () => {
    fc.assert(fc.property(recordArb('A', 1), recordArb('A', 2), (old, next) => {
      expect(atLeastAsStrict(compiled(old), compiled(next), NOW)).toBe(modelAsStrict(old, next, [null]));
    }), { numRuns: 600 });
  });

  it('never says a subaccount change is safe when some parent list would make it unsafe', () => {
    const roots = [
      null,
      compileList({ account: 'R', version: 1, settings: {}, entries: [{ id: 'r', ipAddress: '10.0.0.0/30', cidrs: ['10.0.0.0/30'], action: 'allow', description: '', enabled: true, createdAt: 'x', updatedAt: 'x' }] }, NOW),
      compileList({ account: 'R', version: 1, settings: { mode: 'off' }, entries: [] }, NOW),
    ];
    fc.assert(fc.property(recordArb('S', 1, 'R'), recordArb('S', 2, 'R'), (old, next) => {
      if (old === null || next === null) return;
      if (atLeastAsStrict(compiled(old), compiled(next), NOW)) expect(modelAsStrict(old, next, roots)).toBe(true);
    }), { numRuns: 300 });
  });

  it('agrees with the decision function for the global list, with and without credentials', () => {
    fc.assert(fc.property(recordArb('_global', 1), recordArb('_global', 2), (old, next) => {
      expect(atLeastAsStrict(compiled(old), compiled(next), NOW, true)).toBe(modelGlobalAsStrict(old, next));
    }), { numRuns: 400 });
  });

  it('answers the cases an operator would name', () => {
    const list = (entries: [string, 'allow' | 'deny'][], settings: AccountSettings = {}): CompiledList => compileList({
      account: 'A', version: 1, settings,
      entries: entries.map(([cidr, action], i) => ({ id: `e${i}`, ipAddress: cidr, cidrs: [cidr], action, description: '', enabled: true, createdAt: 'x', updatedAt: 'x' })),
    }, NOW);
    const office = list([['10.0.0.0/30', 'allow']]);
    const officeAndHome = list([['10.0.0.0/30', 'allow'], ['10.0.0.8/32', 'allow']]);
    expect(atLeastAsStrict(office, officeAndHome, NOW)).toBe(true); // an allow added
    expect(atLeastAsStrict(officeAndHome, office, NOW)).toBe(false); // an allow revoked
    expect(atLeastAsStrict(office, list([['10.0.0.0/30', 'allow'], ['10.0.0.1/32', 'deny']]), NOW)).toBe(false); // a deny added
    expect(atLeastAsStrict(null, office, NOW)).toBe(false); // no list (open) to a list
    expect(atLeastAsStrict(office, null, NOW)).toBe(false); // no record: closed under a closed gateway default
    expect(atLeastAsStrict(office, list([], { default: 'open' }), NOW)).toBe(true); // opened explicitly
    expect(atLeastAsStrict(office, list([['10.0.0.0/30', 'allow']], { mode: 'off' }), NOW)).toBe(true);
    expect(atLeastAsStrict(list([['10.0.0.0/30', 'allow']], { mode: 'off' }), office, NOW)).toBe(false);
    expect(atLeastAsStrict(office, list([['10.0.0.0/30', 'allow']], { parent: 'P' }), NOW)).toBe(false); // a parent set
  });
});
