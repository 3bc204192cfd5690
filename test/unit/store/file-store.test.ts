import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratchPerTest } from '../../support/scratch.ts';
import type { AccountDraft, AccountRecord, AclEntry } from '../../../src/policy/types.ts';
import { FileStore } from '../../../src/store/file-store.ts';
import { MemoryStore } from '../../../src/store/memory-store.ts';
import type { AccountChange } from '../../../src/store/store.ts';

const scratch = scratchPerTest();

function entry(id: string, cidr: string): AclEntry {
  return { id, ipAddress: cidr, cidrs: [cidr], action: 'allow', description: id, enabled: true, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z' };
}

function draftOf(current: AccountRecord | null, account: string): AccountDraft {
  return { account, settings: current?.settings ?? {}, entries: current?.entries ?? [] };
}

const addEntry = (account: string, e: AclEntry): AccountChange => (current) => {
  const draft = draftOf(current, account);
  return { ok: true, draft: { ...draft, entries: [...draft.entries, e] } };
};

describe.each([
  ['memory', () => new MemoryStore()],
  ['file', () => new FileStore(join(scratch(), 'store.json'))],
] as const)('%s store', (_kind, make) => {
  it('assigns growing versions and tells subscribers after the commit', async () => {
    const store = make();
    await store.open();
    const seen: [string, number][] = [];
    store.subscribe((account, version) => seen.push([account, version]));
    const first = await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    const second = await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')));
    expect(first.ok && first.record.version).toBe(1);
    expect(second.ok && second.record.version).toBe(2);
    expect(second.ok && second.previous?.version).toBe(1);
    expect(seen).toEqual([['AC1', 1], ['AC1', 2]]);
    expect((await store.read('AC1'))?.entries.map((e) => e.id)).toEqual(['e1', 'e2']);
    expect(await store.read('nobody')).toBeNull();
    expect(await store.accounts()).toEqual(['AC1']);
    await store.close();
  });

  it('refuses a stale expected version with 412 and changes nothing', async () => {
    const store = make();
    await store.open();
    await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    const stale = await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')), 0);
    expect(stale).toMatchObject({ ok: false, refusal: { status: 412, reason: 'version_conflict' } });
    const fresh = await store.update('AC2', addEntry('AC2', entry('e3', '198.51.100.0/24')), 0);
    expect(fresh.ok).toBe(true);
    expect((await store.read('AC1'))?.entries).toHaveLength(1);
  });

  it('passes a change function\'s refusal through with nothing written', async () => {
    const store = make();
    await store.open();
    const seen: string[] = [];
    store.subscribe((a) => seen.push(a));
    const out = await store.update('AC1', () => ({ ok: false, refusal: { status: 409, reason: 'duplicate', message: 'dup' } }));
    expect(out).toEqual({ ok: false, refusal: { status: 409, reason: 'duplicate', message: 'dup' } });
    expect(await store.read('AC1')).toBeNull();
    expect(seen).toEqual([]);
  });

  it('serializes concurrent updates so none is lost', async () => {
    const store = make();
    await store.open();
    const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => store.update('AC1', addEntry('AC1', entry(`e${i}`, `10.0.${i}.0/24`)))));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    const record = await store.read('AC1');
    expect(record?.entries).toHaveLength(50);
    expect(record?.version).toBe(50);
  });
});

describe('FileStore durability', () => {
  it('persists every acknowledged change and reloads it, leaving no temporary files', async () => {
    const dir = scratch();
    const path = join(dir, 'nested', 'store.json');
    const store = new FileStore(path);
    await store.open();
    await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    await store.update('AC1', (c) => ({ ok: true, draft: { ...draftOf(c, 'AC1'), settings: { parent: 'AC0', mode: 'report-only', default: 'closed' } } }));
    await store.close();
    expect(readdirSync(join(dir, 'nested'))).toEqual(['store.json']);
    const reopened = new FileStore(path);
    await reopened.open();
    expect(await reopened.read('AC1')).toEqual({
      account: 'AC1', version: 2, settings: { parent: 'AC0', mode: 'report-only', default: 'closed' }, entries: [entry('e1', '192.0.2.0/24')],
    });
  });

  it('refuses to open a corrupt or foreign file, naming the path', async () => {
    const dir = scratch();
    const path = join(dir, 'store.json');
    writeFileSync(path, '{"format": "allowgate-store", "version": 1, "accounts": {');
    await expect(new FileStore(path).open()).rejects.toThrow(new RegExp(`${path}.*not valid JSON`));
    writeFileSync(path, '{"accounts": {}}');
    await expect(new FileStore(path).open()).rejects.toThrow(/not an allowgate store/);
    writeFileSync(path, JSON.stringify({ format: 'allowgate-store', version: 1, accounts: { AC1: { account: 'AC1', version: 1, settings: {}, entries: [{ id: 'x' }] } } }));
    await expect(new FileStore(path).open()).rejects.toThrow(/account "AC1": entry 0 "ipAddress" must be a string/);
  });

  it('refuses a write that cannot be saved and keeps the old state', async () => {
    const dir = scratch();
    const path = join(dir, 'data', 'store.json');
    const store = new FileStore(path);
    await store.open();
    await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    const before = readFileSync(path, 'utf8');
    // Replace the directory with a file: no write can succeed there, even as root.
    rmSync(join(dir, 'data'), { recursive: true });
    writeFileSync(join(dir, 'data'), 'not a directory');
    const seen: string[] = [];
    store.subscribe((a) => seen.push(a));
    const out = await store.update('AC1', addEntry('AC1', entry('e2', '198.51.100.0/24')));
    expect(out).toMatchObject({ ok: false, refusal: { status: 503, reason: 'store_write_failed' } });
    expect(!out.ok && out.refusal.message).toContain(path);
    expect((await store.read('AC1'))?.entries.map((e) => e.id)).toEqual(['e1']);
    expect(seen).toEqual([]);
    // Once the disk is back, writes go through again.
    rmSync(join(dir, 'data'));
    mkdirSync(join(dir, 'data'));
    writeFileSync(path, before);
    expect((await store.update('AC1', addEntry('AC1', entry('e3', '203.0.113.0/24')))).ok).toBe(true);
  });
});
