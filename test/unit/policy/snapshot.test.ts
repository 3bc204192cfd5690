import { Buffer } from 'node:buffer';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseIp } from '../../../src/ip/address.ts';
import { compileList, withoutExpired, type CompiledList } from '../../../src/list/compile.ts';
import { decodeCompiledList, encodeCompiledList } from '../../../src/list/compiled-blob.ts';
import { loadSnapshot, saveSnapshot } from '../../../src/policy/snapshot.ts';
import type { AccountRecord, AclEntry } from '../../../src/list/types.ts';
import { scratchPerTest } from '../../support/scratch.ts';
import { entry } from '../../support/store-contract.ts';

const scratch = scratchPerTest();
const NOW = Date.parse('2026-06-01T00:00:00Z');
const PROBES = ['192.0.2.1', '192.0.2.200', '2001:db8::1', '198.51.100.9', '203.0.113.5', '2001:db9::1'];

function record(account: string, version: number, entries: AclEntry[]): AccountRecord {
  return { account, version, settings: { mode: 'report-only', default: 'closed' }, entries };
}

/** AC1: allow and deny, both families, one entry expiring (so validUntil is finite). */
function ac1(): CompiledList {
  return compileList(record('AC1', 4, [
    entry('allow-net', '192.0.2.0/24'),
    { ...entry('deny-half', '192.0.2.128/25'), action: 'deny' },
    entry('allow-v6', '2001:db8::/32'),
    { ...entry('temp', '198.51.100.0/24'), expiresAt: '2026-06-02T00:00:00.000Z' },
  ]), NOW);
}

/** What the list decides for each probe address: the deciding entry and its action, or none. */
function decisions(list: CompiledList): (string | null)[] {
  return PROBES.map((text) => {
    const slot = list.trie.lookupIp(parseIp(text)!);
    return slot < 0 ? null : `${list.trie.actionOf(slot)} ${list.trie.idOf(slot)}`;
  });
}

/** A good snapshot of AC1 and a negative AC2, to damage. */
async function savedFile(): Promise<string> {
  const path = join(scratch(), 'snapshot.json');
  await saveSnapshot(path, new Map<string, CompiledList | null>([['AC1', ac1()], ['AC2', null]]), NOW);
  return path;
}

function rewrite(path: string, edit: (doc: { accounts: Record<string, string | null> }) => void): void {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as { accounts: Record<string, string | null> };
  edit(doc);
  writeFileSync(path, JSON.stringify(doc));
}

function expectDamaged(path: string): void {
  expect(() => loadSnapshot(path)).toThrow(path);
  expect(() => loadSnapshot(path)).toThrow(/damaged/);
}

describe('last-known-good snapshot', () => {
  it('round-trips compiled lists and negative entries with the same decisions and versions', async () => {
    const original = ac1();
    const plain = compileList(record('AC3', 1, [entry('only', '203.0.113.0/24')]), NOW);
    const path = join(scratch(), 'snapshot.json');
    await saveSnapshot(path, new Map<string, CompiledList | null>([['AC1', original], ['AC2', null], ['AC3', plain]]), NOW);

    const { lists, savedAt } = loadSnapshot(path);
    expect(savedAt).toBe('2026-06-01T00:00:00.000Z');
    expect([...lists.keys()]).toEqual(['AC1', 'AC2', 'AC3']);
    expect(lists.get('AC2')).toBeNull();

    const loaded = lists.get('AC1') as CompiledList;
    expect(decisions(original)).toEqual(['allow allow-net', 'deny deny-half', 'allow allow-v6', 'allow temp', null, null]);
    expect(decisions(loaded)).toEqual(decisions(original));
    expect(loaded).toMatchObject({ account: 'AC1', version: 4, hasAllow: true, settings: { mode: 'report-only', default: 'closed' } });
    expect(loaded.validUntil).toBe(Date.parse('2026-06-02T00:00:00.000Z'));
    expect(loaded.expiries).toEqual({ temp: Date.parse('2026-06-02T00:00:00.000Z') });
    const plainLoaded = lists.get('AC3') as CompiledList;
    expect(plainLoaded.validUntil).toBe(Number.POSITIVE_INFINITY);
    expect(plainLoaded.expiries).toBeNull();
    expect(decisions(plainLoaded)).toEqual([null, null, null, null, 'allow only', null]);
  });

  it('reads a compiled list written without expiries (before they were carried) as unknown, and trims only what it knows', () => {
    const old = decodeCompiledList(encodeCompiledList({ ...ac1(), expiries: undefined as never }));
    expect(old.expiries).toBeNull();
    const day = 24 * 3600 * 1000;
    // Unknown expiries: served as it is (the record will be read again once the store answers).
    expect(withoutExpired(old, NOW + 2 * day)).toBe(old);
    const trimmed = withoutExpired(ac1(), NOW + 2 * day);
    expect(decisions(trimmed)).toEqual(['allow allow-net', 'deny deny-half', 'allow allow-v6', null, null, null]);
    expect(withoutExpired(ac1(), NOW).expiries).toEqual({ temp: Date.parse('2026-06-02T00:00:00.000Z') });
  });

  it('reads a missing file as an empty snapshot', () => {
    const { lists, savedAt } = loadSnapshot(join(scratch(), 'absent.json'));
    expect(lists.size).toBe(0);
    expect(savedAt).toBeNull();
  });

  it('creates missing directories and leaves no temporary files behind', async () => {
    const dir = scratch();
    const path = join(dir, 'nested', 'lkg.json');
    await saveSnapshot(path, new Map([['AC2', null]]), NOW);
    await saveSnapshot(path, new Map<string, CompiledList | null>([['AC1', ac1()]]), NOW + 1);
    expect(readdirSync(dir)).toEqual(['nested']);
    expect(readdirSync(join(dir, 'nested'))).toEqual(['lkg.json']);
    expect([...loadSnapshot(path).lists.keys()]).toEqual(['AC1']);
  });

  it('refuses a file that is not JSON', async () => {
    const path = await savedFile();
    writeFileSync(path, readFileSync(path, 'utf8').slice(0, 40));
    expectDamaged(path);
  });

  it('refuses a file of another format or version', async () => {
    const path = join(scratch(), 'snapshot.json');
    writeFileSync(path, JSON.stringify({ format: 'something-else', version: 1, accounts: {} }));
    expectDamaged(path);
    writeFileSync(path, JSON.stringify({ format: 'allowgate-lkg-snapshot', version: 3, accounts: {} }));
    expectDamaged(path);
    writeFileSync(path, JSON.stringify({ format: 'allowgate-lkg-snapshot', version: 1 }));
    expectDamaged(path);
    // 'superseded' exists from version 2 on.
    writeFileSync(path, JSON.stringify({ format: 'allowgate-lkg-snapshot', version: 1, accounts: { A: 'superseded' } }));
    expectDamaged(path);
  });

  it('keeps an account refused (superseded) across a save and load, and reads version 1 files', async () => {
    const path = join(scratch(), 'snapshot.json');
    await saveSnapshot(path, new Map([['A', 'superseded'], ['B', null]]), NOW);
    expect(loadSnapshot(path).lists).toEqual(new Map([['A', 'superseded'], ['B', null]]));
    writeFileSync(path, JSON.stringify({ format: 'allowgate-lkg-snapshot', version: 1, accounts: { B: null } }));
    expect(loadSnapshot(path).lists).toEqual(new Map([['B', null]]));
  });

  it('refuses a blob with one byte flipped', async () => {
    const path = await savedFile();
    rewrite(path, (doc) => {
      const bytes = Buffer.from(doc.accounts['AC1']!, 'base64');
      bytes[bytes.length - 1]! ^= 0x01; // in the trie, under its checksum
      doc.accounts['AC1'] = bytes.toString('base64');
    });
    expectDamaged(path);
  });

  it('refuses a blob whose header (version, settings, expiry) has one bit flipped', async () => {
    for (const target of ['"version":4', '"report-only"', '"validUntil":1']) {
      const path = await savedFile();
      rewrite(path, (doc) => {
        const bytes = Buffer.from(doc.accounts['AC1']!, 'base64');
        const at = bytes.indexOf(target) + target.length - 1;
        expect(at).toBeGreaterThan(8);
        bytes[at]! ^= 0x01; // 4 → 5, t → u, 1 → 0: still valid JSON, a different list
        doc.accounts['AC1'] = bytes.toString('base64');
      });
      expectDamaged(path);
    }
  });

  it('refuses a blob filed under another account, or a value that is neither null nor a blob', async () => {
    const path = await savedFile();
    rewrite(path, (doc) => {
      doc.accounts['AC9'] = doc.accounts['AC1']!;
    });
    expect(() => loadSnapshot(path)).toThrow(/AC9 holds the list of AC1/);
    expectDamaged(path);

    const other = join(scratch(), 'snapshot.json');
    writeFileSync(other, JSON.stringify({ format: 'allowgate-lkg-snapshot', version: 1, accounts: { AC1: 42 } }));
    expect(() => loadSnapshot(other)).toThrow(/AC1 is neither null nor a base64 blob/);
    expectDamaged(other);
  });

  it('names the file when it cannot be read at all', () => {
    const dir = scratch();
    expect(() => loadSnapshot(dir)).toThrow(`cannot read the last-known-good snapshot ${dir}`);
  });
});
