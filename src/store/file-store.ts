import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { refusal, type Refusal } from '../http/refusal.ts';
import type { AccountRecord } from '../list/types.ts';
import { removeStaleTemps, writeFileAtomic } from './atomic-write.ts';
import { MemoryStore } from './memory-store.ts';
import { parseStoredRecord } from '../list/record-format.ts';

const FORMAT = 'allowgate-store';
const FORMAT_VERSION = 1;
/** How long the file's text is built before the event loop runs again (the proxy shares it). */
const SLICE_MS = 4;
/** Characters gathered before they are written. */
const PIECE_CHARS = 1 << 18;

/**
 * The embedded store: the memory store, persisted to one JSON file. Every change rewrites the
 * file by atomic replace before it is acknowledged, so after a crash the file holds either the
 * old or the new state and never loses an acknowledged change. The text is built account by
 * account in slices of a few milliseconds and written as it grows, so a store of thousands of
 * accounts does not hold up the proxy while an admin write saves it (changes are applied one at
 * a time, so the records do not move meanwhile).
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
    try {
      await writeFileAtomic(this.path, storeText(this.records, record));
      return null;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      return refusal(503, 'store_write_failed', `the change was not saved: writing ${this.path} failed (${code}); nothing was changed, retry once the disk is writable`);
    }
  }
}

/**
 * The store file with `changed` in place of its account's record (or added): the layout of
 * JSON.stringify(..., null, 1), produced an account at a time.
 */
async function* storeText(records: ReadonlyMap<string, AccountRecord>, changed: AccountRecord): AsyncGenerator<string> {
  let piece = `{\n "format": ${JSON.stringify(FORMAT)},\n "version": ${FORMAT_VERSION},\n "accounts": {`;
  let separator = '\n';
  let slice = performance.now();
  const add = (record: AccountRecord): void => {
    piece += `${separator}  ${JSON.stringify(record.account)}: ${JSON.stringify(record, null, 1).replaceAll('\n', '\n  ')}`;
    separator = ',\n';
  };
  for (const [account, current] of records) {
    add(account === changed.account ? changed : current);
    if (piece.length >= PIECE_CHARS) {
      yield piece;
      piece = '';
    }
    if (performance.now() - slice > SLICE_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      slice = performance.now();
    }
  }
  if (!records.has(changed.account)) add(changed);
  yield `${piece}\n }\n}\n`;
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
