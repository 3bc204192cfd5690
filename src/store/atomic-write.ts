import { readdirSync, unlinkSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let sequence = 0;

const tempName = (path: string, pid: number, n: number): string => `.${basename(path)}.${pid}.${n}.tmp`;

/**
 * Replaces `path` with `text` (or the pieces it is produced in, written as they come) so that a
 * crash leaves either the old or the new content, never a mix: write a temporary file in the same
 * directory, fsync it, rename it over, fsync the directory (a rename is durable only once the
 * directory entry is).
 */
export async function writeFileAtomic(path: string, text: string | AsyncIterable<string>): Promise<void> {
  const temp = join(dirname(path), tempName(path, process.pid, ++sequence));
  try {
    const file = await open(temp, 'w', 0o600);
    try {
      if (typeof text === 'string') await file.writeFile(text, 'utf8');
      else for await (const piece of text) await file.write(piece, null, 'utf8');
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * Removes the temporary files of writes that a dead process left behind (a kill between the
 * write and the rename); a live process's, including this one's, are left alone. Returns how many.
 */
export function removeStaleTemps(path: string): number {
  const prefix = `.${basename(path)}.`;
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const [pid, n] = name.slice(prefix.length, -'.tmp'.length).split('.').map(Number);
    if (pid === undefined || n === undefined || !(pid > 0) || name !== tempName(path, pid, n) || isAlive(pid)) continue;
    try {
      unlinkSync(join(dirname(path), name));
      removed++;
    } catch {
      // Gone already, or not ours to remove: either way nothing to do.
    }
  }
  return removed;
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
