import { appendFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../../src/audit/audit-log.ts';
import { FileAuditLog } from '../../../src/audit/file-audit.ts';
import { MemoryAuditLog } from '../../../src/audit/memory-audit.ts';
import { createAuditLog } from '../../../src/store/open-audit.ts';
import type { EventLog } from '../../../src/observability/logger.ts';
import { auditEvent, describeAuditContract, listAll } from '../../support/audit-contract.ts';
import { scratchPerTest } from '../../support/scratch.ts';

const scratch = scratchPerTest();

describeAuditContract('memory', async (caps) => new MemoryAuditLog(caps), { retention: 'fair' });
describeAuditContract('file', (caps) => FileAuditLog.open(join(scratch(), 'audit.jsonl'), caps), { retention: 'fair' });

/** Logs opened by one test, closed after it (a failing test must not leak file handles). */
function logs(): <T extends AuditLog>(log: T | Promise<T>) => Promise<T> {
  const opened: AuditLog[] = [];
  afterEach(async () => {
    for (const log of opened.splice(0)) await log.close();
  });
  return async (log) => {
    const ready = await log;
    opened.push(ready);
    return ready;
  };
}

function recorder(): EventLog & { warnings: object[] } {
  const warnings: object[] = [];
  return { warnings, info: () => undefined, warn: (obj) => warnings.push(obj), error: () => undefined };
}

const versionsOf = async (log: AuditLog, account?: string): Promise<number[]> =>
  (await listAll(log, { limit: 7, ...(account === undefined ? {} : { account }) })).events.map((e) => e.version);

describe('MemoryAuditLog', () => {
  const track = logs();

  it('keeps 10,000 events unless told otherwise', async () => {
    const log = await track(new MemoryAuditLog());
    for (let n = 1; n <= 10_050; n++) await log.append(auditEvent('AC1', n));
    const { events } = await listAll(log, { limit: 1000 });
    expect(events).toHaveLength(10_000);
    expect(events.at(-1)?.version).toBe(51);
  });

  it('holds at most maxBytes of events, the largest account giving way first', async () => {
    const log = await track(new MemoryAuditLog({ maxBytes: 200_000 }));
    const big = { blob: 'x'.repeat(2_000) };
    for (let n = 1; n <= 5; n++) await log.append(auditEvent('SMALL', n));
    for (let n = 6; n <= 200; n++) await log.append(auditEvent('BIG', n, { after: big }));
    const { events } = await listAll(log, { limit: 1000 });
    const bytes = events.reduce((sum, e) => sum + JSON.stringify(e).length * 2, 0);
    expect(bytes).toBeLessThanOrEqual(200_000 + 10_000);
    expect(events.filter((e) => e.account === 'SMALL')).toHaveLength(5);
    expect(events.filter((e) => e.account === 'BIG').length).toBeLessThan(60);
  });

  it('refuses a cap that is not a positive integer', () => {
    for (const cap of [0, -5, 2.5]) expect(() => new MemoryAuditLog({ cap })).toThrow(/memory audit log cap must be a positive integer/);
  });
});

describe('FileAuditLog', () => {
  const track = logs();

  it('lists after a restart what it listed before: the same retention, rebuilt from the file', async () => {
    const path = join(scratch(), 'audit.jsonl');
    const first = await FileAuditLog.open(path, { cap: 50 });
    for (let n = 1; n <= 5; n++) await first.append(auditEvent('QUIET', n));
    for (let n = 6; n <= 300; n++) await first.append(auditEvent('FLOOD', n));
    const before = await listAll(first, { limit: 20 });
    await first.close();
    const again = await track(FileAuditLog.open(path, { cap: 50 }));
    expect(await listAll(again, { limit: 20 })).toEqual(before);
    expect(before.events.filter((e) => e.account === 'QUIET')).toHaveLength(5);
  });

  it('writes one JSON event per line, creating the file and its directory', async () => {
    const path = join(scratch(), 'nested', 'dir', 'audit.jsonl');
    const log = await track(FileAuditLog.open(path));
    for (let n = 1; n <= 3; n++) await log.append(auditEvent(`AC${n}`, n, { requestId: `r${n}`, via: 'native' }));
    const text = readFileSync(path, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.slice(0, -1).split('\n');
    expect(lines).toHaveLength(3);
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed.map((e) => e['account'])).toEqual(['AC1', 'AC2', 'AC3']);
    expect(parsed[0]).toEqual({ id: parsed[0]!['id'], ...auditEvent('AC1', 1, { requestId: 'r1', via: 'native' }) });
    expect((await log.list({ limit: 10 })).events).toEqual([...parsed].reverse());
    // Audit events name people and networks: not for other local users.
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('survives reopening: the same events, and ids still increasing', async () => {
    const path = join(scratch(), 'audit.jsonl');
    const first = await FileAuditLog.open(path);
    for (let n = 1; n <= 5; n++) await first.append(auditEvent(n % 2 === 0 ? 'AC1' : 'AC2', n));
    const before = (await first.list({ limit: 10 })).events;
    await first.close();

    const second = await track(FileAuditLog.open(path));
    expect((await second.list({ limit: 10 })).events).toEqual(before);
    expect(await versionsOf(second, 'AC1')).toEqual([4, 2]);
    await second.append(auditEvent('AC1', 6));
    const after = (await second.list({ limit: 10 })).events;
    expect(after.map((e) => e.version)).toEqual([6, 5, 4, 3, 2, 1]);
    // Increasing in append order, as numbers and as text.
    const ids = after.map((e) => e.id).reverse();
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(6);
    expect(ids[5]! > before[0]!.id).toBe(true);
  });

  it('lists only the newest cap events after reopening, and keeps counting ids from the file', async () => {
    const path = join(scratch(), 'audit.jsonl');
    const first = await FileAuditLog.open(path, { cap: 100 });
    for (let n = 1; n <= 12; n++) await first.append(auditEvent('AC1', n));
    const lastId = (await first.list({ limit: 1 })).events[0]!.id;
    await first.close();
    const second = await track(FileAuditLog.open(path, { cap: 5 }));
    expect(await versionsOf(second)).toEqual([12, 11, 10, 9, 8]);
    await second.append(auditEvent('AC1', 13));
    expect(await versionsOf(second)).toEqual([13, 12, 11, 10, 9]);
    expect((await second.list({ limit: 1 })).events[0]!.id > lastId).toBe(true);
    // The file is never rewritten: older events stay on disk.
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(13);
  });

  it('ignores a truncated last line and starts the next append on a line of its own', async () => {
    const path = join(scratch(), 'audit.jsonl');
    const first = await FileAuditLog.open(path);
    for (let n = 1; n <= 3; n++) await first.append(auditEvent('AC1', n));
    await first.close();
    // A crash mid-write: part of a line, cut inside a multi-byte character.
    const whole = `${JSON.stringify({ id: '000000000004', ...auditEvent('AC1', 4, { after: { note: 'é' } }) })}\n`;
    const bytes = Buffer.from(whole, 'utf8');
    appendFileSync(path, bytes.subarray(0, bytes.indexOf(Buffer.from('é', 'utf8')) + 1));

    const logger = recorder();
    const second = await FileAuditLog.open(path, { logger });
    expect(logger.warnings).toEqual([{ path, skipped: 1 }]);
    expect(await versionsOf(second)).toEqual([3, 2, 1]);
    await second.append(auditEvent('AC2', 5));
    expect(await versionsOf(second)).toEqual([5, 3, 2, 1]);
    expect((await second.list({ limit: 1, account: 'AC2' })).events[0]?.account).toBe('AC2');
    await second.append(auditEvent('AC2', 6));
    await second.close();

    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines.at(-1)).toBe('');
    // Every line but the fragment is a whole event; the fragment stays on a line of its own.
    const bad = lines.slice(0, -1).filter((line) => {
      try {
        JSON.parse(line);
        return false;
      } catch {
        return true;
      }
    });
    expect(bad).toHaveLength(1);
    expect(bad[0]!.startsWith('{"id":"000000000004"')).toBe(true);
    const third = await track(FileAuditLog.open(path));
    expect(await versionsOf(third)).toEqual([6, 5, 3, 2, 1]);
  });

  it('skips lines that are not events, wherever they are, and never reuses an id', async () => {
    const path = join(scratch(), 'audit.jsonl');
    const good = (id: string, n: number): string => `${JSON.stringify({ id, ...auditEvent('AC1', n) })}\n`;
    writeFileSync(path, [
      good('000000000001', 1),
      'not json\n',
      '\n',
      '{"id":"000000000002"}\n',
      good('000000000007', 7),
      '[1,2]\n',
      good('000000000003', 3), // out of sequence (edited by hand): not listed, but its id stays taken
      '\0\0\0\0\n',
      good('000000000009', 9),
    ].join(''));
    const logger = recorder();
    const log = await track(FileAuditLog.open(path, { logger }));
    expect(logger.warnings).toEqual([{ path, skipped: 5 }]);
    expect(await versionsOf(log)).toEqual([9, 7, 1]);
    await log.append(auditEvent('AC1', 10));
    const [newest] = (await log.list({ limit: 1 })).events;
    expect(newest).toMatchObject({ id: '000000000010', version: 10 });
  });

  it('never interleaves lines, even for large concurrent appends', async () => {
    const path = join(scratch(), 'audit.jsonl');
    const log = await track(FileAuditLog.open(path));
    // Just under the 16 KiB an event may have (a larger one's snapshots are summarised).
    const big = (n: number): unknown => ({ entries: Array.from({ length: 150 }, (_, i) => ({ id: `e${n}-${i}`, ipAddress: `10.${n}.${i >> 8}.${i & 255}/32`, description: 'x'.repeat(40) })) });
    await Promise.all(Array.from({ length: 20 }, (_, n) => log.append(auditEvent(`AC${n % 3}`, n + 1, { before: big(n), after: null }))));
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(20);
    const parsed = lines.map((line) => JSON.parse(line) as { id: string; version: number; before: { entries: { id: string }[] } });
    for (const event of parsed) expect(event.before.entries[149]?.id).toBe(`e${event.version - 1}-149`);
    expect(Math.min(...lines.map((l) => l.length))).toBeGreaterThan(12_000);
    // File order is id order.
    expect(parsed.map((e) => e.id)).toEqual(parsed.map((e) => e.id).sort());
    expect((await listAll(log, { limit: 6 })).events.map((e) => e.id)).toEqual(parsed.map((e) => e.id).reverse());
  });

  it('names the path when the file cannot be opened', async () => {
    const dir = scratch();
    const blocker = join(dir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    await expect(FileAuditLog.open(join(blocker, 'audit.jsonl'))).rejects.toThrow(new RegExp(`cannot open the audit file ${join(blocker, 'audit.jsonl')} \\(\\w+\\)`));
    mkdirSync(join(dir, 'a-dir.jsonl'));
    await expect(FileAuditLog.open(join(dir, 'a-dir.jsonl'))).rejects.toThrow(/audit file .*a-dir\.jsonl/);
  });

  it('refuses an append whose line cannot be written, and keeps the log usable', async () => {
    const path = join(scratch(), 'audit.jsonl');
    const log = await track(FileAuditLog.open(path));
    await log.append(auditEvent('AC1', 1));
    await expect(log.append(auditEvent('AC1', 2, { after: { n: 10n } }))).rejects.toThrow(/not JSON-serialisable/);
    await log.append(auditEvent('AC1', 3));
    expect(await versionsOf(log)).toEqual([3, 1]);
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(2);
  });
});

describe('createAuditLog', () => {
  const track = logs();

  it('builds the kind the spec names, with its cap', async () => {
    const memory = await track(createAuditLog({ kind: 'memory', cap: 2 }));
    expect(memory.kind).toBe('memory');
    for (let n = 1; n <= 3; n++) await memory.append(auditEvent('AC1', n));
    expect(await versionsOf(memory)).toEqual([3, 2]);

    const path = join(scratch(), 'audit.jsonl');
    const file = await track(createAuditLog({ kind: 'file', path, cap: 2 }));
    expect(file.kind).toBe('file');
    for (let n = 1; n <= 3; n++) await file.append(auditEvent('AC1', n));
    expect(await versionsOf(file)).toEqual([3, 2]);
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(3);
  });

  it('passes the logger on', async () => {
    const path = join(scratch(), 'audit.jsonl');
    writeFileSync(path, 'garbage\n');
    const logger = recorder();
    await track(createAuditLog({ kind: 'file', path }, { logger }));
    expect(logger.warnings).toEqual([{ path, skipped: 1 }]);
  });
});
