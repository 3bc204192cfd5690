import { Buffer } from 'node:buffer';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../store/atomic-write.ts';
import type { CompiledList } from '../list/compile.ts';
import { decodeCompiledList, encodeCompiledList } from '../list/compiled-blob.ts';

const FORMAT = 'allowgate-lkg-snapshot';
/** 2 added 'superseded'; version 1 files are read as well. */
const FORMAT_VERSION = 2;

/**
 * Account → compiled list, null for "has no list" (a negative entry is knowledge too), or
 * 'superseded' for an account whose list changed and was not loaded again: refused, not opened,
 * by a replica restarted before the store is back.
 */
export type Snapshot = ReadonlyMap<string, CompiledList | null | 'superseded'>;

/**
 * Writes the last-known-good lists so a replica restarted while the shared store is unreachable
 * can still enforce them. Atomic replace: a crash leaves the previous snapshot whole.
 */
export async function saveSnapshot(path: string, lists: Snapshot, savedAt: number): Promise<void> {
  const accounts: Record<string, string | null> = {};
  for (const [account, list] of lists) accounts[account] = list === null || list === 'superseded' ? list : encodeCompiledList(list).toString('base64');
  const text = JSON.stringify({ format: FORMAT, version: FORMAT_VERSION, savedAt: new Date(savedAt).toISOString(), accounts });
  mkdirSync(dirname(path), { recursive: true });
  await writeFileAtomic(path, text);
}

/**
 * Reads a snapshot; a missing file is an empty snapshot. A damaged one throws, naming the file:
 * every blob carries a checksum, so nothing half-written is ever enforced.
 */
export function loadSnapshot(path: string): { readonly lists: Snapshot; readonly savedAt: string | null } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { lists: new Map(), savedAt: null };
    throw new Error(`cannot read the last-known-good snapshot ${path}: ${(error as Error).message}`);
  }
  try {
    const doc = JSON.parse(text) as { format?: unknown; version?: unknown; savedAt?: unknown; accounts?: unknown };
    if (doc.format !== FORMAT || (doc.version !== 1 && doc.version !== FORMAT_VERSION) || typeof doc.accounts !== 'object' || doc.accounts === null) {
      throw new Error(`expected {"format": "${FORMAT}", "version": ${FORMAT_VERSION}, ...}`);
    }
    const lists = new Map<string, CompiledList | null | 'superseded'>();
    for (const [account, blob] of Object.entries(doc.accounts as Record<string, unknown>)) {
      if (blob === null || (blob === 'superseded' && doc.version === FORMAT_VERSION)) {
        lists.set(account, blob);
        continue;
      }
      if (typeof blob !== 'string') throw new Error(`account ${account} is neither null nor a base64 blob`);
      const list = decodeCompiledList(Buffer.from(blob, 'base64'));
      if (list.account !== account) throw new Error(`account ${account} holds the list of ${list.account}`);
      lists.set(account, list);
    }
    return { lists, savedAt: typeof doc.savedAt === 'string' ? doc.savedAt : null };
  } catch (error) {
    throw new Error(`the last-known-good snapshot ${path} is damaged (${(error as Error).message}); delete it to start without one`);
  }
}
