import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { prepareEntries, replaceEntries, type ChangeContext, type ListItem } from '../../../src/acl/changes.ts';
import { cidrCovers } from '../../../src/acl/reserved.ts';
import { formatCidr, parseCidr, type Cidr } from '../../../src/ip/cidr.ts';
import type { AccountRecord, AclEntry } from '../../../src/list/types.ts';
import { NO_OTHERS } from '../../support/store-view.ts';

/*
 * The indexed validation (src/acl/list-index.ts) decides exactly as the rules read when written
 * out plainly, one entry against every other: duplicates, coverage by an allow entry, narrower
 * allow entries (refused, or replaced with replace=true), the entry limit. Random lists of
 * overlapping IPv4 and IPv6 networks, replaced and merged, compared item by item.
 */

const NOW = '2026-06-01T12:00:00.000Z';

function plainCheck(candidate: AclEntry, others: readonly AclEntry[], replace: boolean): { ok: true; superseded: AclEntry[] } | { ok: false; reason: string } {
  const nets = (e: AclEntry): Cidr[] => e.cidrs.map((c) => (parseCidr(c) as { ok: true; value: Cidr }).value);
  const covers = (outer: Cidr[], inner: Cidr[]): boolean => inner.every((i) => outer.some((o) => cidrCovers(o, i)));
  const mine = nets(candidate);
  const rest = others.filter((e) => e.id !== candidate.id);
  if (rest.some((e) => e.cidrs.length === candidate.cidrs.length && e.cidrs.every((c) => candidate.cidrs.includes(c)))) return { ok: false, reason: 'duplicate' };
  if (candidate.action === 'deny') return { ok: true, superseded: [] };
  const allows = rest.filter((e) => e.action === 'allow');
  if (allows.some((e) => covers(nets(e), mine))) return { ok: false, reason: 'subset_exists' };
  const narrower = allows.filter((e) => covers(mine, nets(e)));
  if (narrower.length > 0 && !replace) return { ok: false, reason: 'superset_conflict' };
  return { ok: true, superseded: narrower };
}

/** The list a replace or merge gives by the plain rules, or the first refusal's reason and item. */
function plainReplace(start: readonly AclEntry[], items: readonly AclEntry[], mode: 'replace' | 'merge', replace: boolean, limit: number): { entries: string[] } | { refused: string; item: number } {
  let list: AclEntry[] = mode === 'merge' ? [...start] : [];
  for (const [i, entry] of items.entries()) {
    if (mode === 'merge' && list.some((e) => e.cidrs.length === entry.cidrs.length && e.cidrs.every((c) => entry.cidrs.includes(c)))) continue;
    const verdict = plainCheck(entry, list, replace);
    if (!verdict.ok) return { refused: verdict.reason, item: i + 1 };
    const gone = new Set(verdict.superseded.map((e) => e.id));
    list = list.filter((e) => !gone.has(e.id));
    if (list.length + 1 > limit) return { refused: 'limit_reached', item: i + 1 };
    list.push(entry);
  }
  return { entries: list.map((e) => e.id) };
}

/** Networks drawn from a small space, so that they often nest and repeat. */
const network = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 4, max: 8 })).map(([n, prefix]) => {
    const base = (10 << 24) | ((n << 4) << 16);
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    const word = (base & (mask | 0xff000000)) >>> 0;
    return `${word >>> 24}.${(word >>> 16) & 255}.0.0/${Math.max(8, prefix + 8)}`;
  }),
  fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 32, max: 36 })).map(([n, prefix]) => `2001:db8:${(n << 12).toString(16)}::/${prefix}`),
).map((text) => {
  const parsed = parseCidr(text);
  if (parsed.ok) return formatCidr(parsed.value);
  // Host bits under the prefix: the network itself.
  const [addr, prefix] = text.split('/');
  const wide = parseCidr(`${addr}/${addr!.includes(':') ? 128 : 32}`) as { ok: true; value: Cidr };
  const p = Number(prefix);
  const words = wide.value.words.map((w, i) => {
    const bits = p - i * 32;
    return bits >= 32 ? w : bits <= 0 ? 0 : (w & ((0xffffffff << (32 - bits)) >>> 0)) >>> 0;
  });
  return formatCidr({ family: wide.value.family, words: Uint32Array.from(words), prefix: p });
});

/** An entry's networks are disjoint, as every rule's minimal CIDR list is. */
const disjoint = (cidrs: string[]): string[] => {
  const nets = cidrs.map((c) => (parseCidr(c) as { ok: true; value: Cidr }).value);
  return cidrs.filter((_, i) => !nets.some((o, j) => j !== i && cidrCovers(o, nets[i]!) && (o.prefix < nets[i]!.prefix || j < i)));
};
const entryArb = fc.tuple(fc.uniqueArray(network, { minLength: 1, maxLength: 2 }).map(disjoint), fc.constantFrom<'allow' | 'deny'>('allow', 'allow', 'deny'));

function entryOf(id: string, cidrs: string[], action: 'allow' | 'deny'): AclEntry {
  return { id, ipAddress: cidrs.join(' '), cidrs: [...cidrs].sort(), action, description: '', enabled: true, createdAt: NOW, updatedAt: NOW };
}

describe('indexed list validation', () => {
  it('replaces and merges exactly as the plain rules, refusing the same item for the same reason', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(entryArb, { maxLength: 12 }), fc.array(entryArb, { maxLength: 16 }), fc.constantFrom<'replace' | 'merge'>('replace', 'merge'), fc.boolean(), fc.integer({ min: 3, max: 20 }),
      async (startRaw, itemsRaw, mode, replace, limit) => {
        // The starting list is itself valid: built by the plain rules from its raw entries.
        let start: AclEntry[] = [];
        for (const [i, [cidrs, action]] of startRaw.entries()) {
          const entry = entryOf(`s${i}`, cidrs, action);
          if (plainCheck(entry, start, false).ok && start.length < limit) start = [...start, entry];
        }
        const items = itemsRaw.map(([cidrs, action], i) => entryOf(`n${i}`, cidrs, action));
        const ctx: ChangeContext = { policy: { maxEntries: limit, ipv4Only: false, refused: [] }, now: NOW, replace };
        const listItems: ListItem[] = items.map((e) => ({ id: e.id, fields: { ipAddress: { input: e.ipAddress, cidrs: e.cidrs }, action: e.action } }));
        const current: AccountRecord = { account: 'AC1', version: 1, settings: {}, entries: start };
        const expected = plainReplace(start, items, mode, replace, limit);
        for (const result of [replaceEntries('AC1', listItems, ctx, mode)(current, NO_OTHERS), await prepareEntries('AC1', listItems, ctx, mode, current)]) {
          if ('refused' in expected) {
            expect(result).toMatchObject({ ok: false, refusal: { reason: expected.refused, message: expect.stringMatching(new RegExp(`^item ${expected.item} `)) } });
          } else {
            expect(result.ok).toBe(true);
            if (result.ok) expect(result.draft.entries.map((e) => e.id)).toEqual(expected.entries);
          }
        }
      },
    ), { numRuns: 300 });
  });
});
