import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { refusal, type Refusal } from '../http/refusal.ts';
import type { AccountRecord } from '../list/types.ts';
import { removeStaleTemps, writeFileAtomic } from './atomic-write.ts';
import { MemoryStore } from './memory-store.ts';
import { parseStoredRecord } from '../list/record-format.ts';

const FORMAT = 'allowgate-store';
const FORMAT_VERSION = 1;

/**
 * The embedded store: the memory store, persisted to one JSON file. Every change rewrites the
 * file by atomic replace before it is acknowledged, so after a crash the file holds either the
 * old or the new state and never loses an acknowledged change.
 */
export class FileStore extends MemoryStore {
  override readonly kind = 'file' as const;
  readonly path: string;

  constructor(path: string) {
    super();
    this.path = path;
  }

  override async open(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true });
    removeStaleTemps(this.path);
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new Error(`cannot read the store file ${this.path}: ${(error as Error).message}`);
    }
    for (const record of parseStoreFile(text, this.path).values()) this.load(record);
  }

  protected override async persist(record: AccountRecord): Promise<Refusal | null> {
    const accounts: Record<string, AccountRecord> = {};
    for (const [account, current] of this.records) accounts[account] = current;
    accounts[record.account] = record;
    const text = `${JSON.stringify({ format: FORMAT, version: FORMAT_VERSION, accounts }, null, 1)}\n`;
    try {
      await writeFileAtomic(this.path, text);
      return null;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      return refusal(503, 'store_write_failed', `the change was not saved: writing ${this.path} failed (${code}); nothing was changed, retry once the disk is writable`);
    }
  }
}

function parseStoreFile(text: string, path: string): Map<string, AccountRecord> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new Error(`the store file ${path} is not valid JSON (${(error as Error).message}); restore it from a backup or move it away to start empty`);
  }
  const root = doc as { format?: unknown; version?: unknown; accounts?: unknown } | null;
  if (root === null || typeof root !== 'object' || root.format !== FORMAT || root.version !== FORMAT_VERSION
    || typeof root.accounts !== 'object' || root.accounts === null || Array.isArray(root.accounts)) {
    throw new Error(`the store file ${path} is not an allowgate store (expected {"format": "${FORMAT}", "version": ${FORMAT_VERSION}, "accounts": {...}})`);
  }
  const records = new Map<string, AccountRecord>();
  for (const [account, raw] of Object.entries(root.accounts as Record<string, unknown>)) {
    records.set(account, parseStoredRecord(raw, account, path));
  }
  return records;
}
