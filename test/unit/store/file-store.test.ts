import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratchPerTest } from '../../support/scratch.ts';
import { FileStore } from '../../../src/store/file-store.ts';
import { MemoryStore } from '../../../src/store/memory-store.ts';
import { addEntry, describeStoreContract, draftOf, entry } from '../../support/store-contract.ts';

const scratch = scratchPerTest();

describeStoreContract('memory', () => new MemoryStore());
describeStoreContract('file', () => new FileStore(join(scratch(), 'store.json')));

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

  it('removes the temporary files a killed process left, and only those', async () => {
    const dir = scratch();
    const path = join(dir, 'store.json');
    // A process that has exited: its pid names no live process (spawnSync waits for the exit).
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    const left = [`.store.json.${dead}.7.tmp`, `.store.json.${dead}.8.tmp`];
    const kept = [
      `.store.json.${process.pid}.1.tmp`, // a live process's write in progress (this one's)
      `.other.json.${dead}.1.tmp`, // another file's
      `.store.json.${dead}.x.tmp`, // not a name the store writes
      'store.json.bak',
    ];
    for (const name of [...left, ...kept]) writeFileSync(join(dir, name), '{');
    const store = new FileStore(path);
    await store.open();
    expect(readdirSync(dir).sort()).toEqual([...kept].sort());
    await store.update('AC1', addEntry('AC1', entry('e1', '192.0.2.0/24')));
    expect(readdirSync(dir).sort()).toEqual([...kept, 'store.json'].sort());
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
