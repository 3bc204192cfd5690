import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

/** A scratch directory removed by the returned function. */
export function scratchDir(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'allowgate-test-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Scratch directories removed after each test of the calling file. */
export function scratchPerTest(): () => string {
  const made: (() => void)[] = [];
  afterEach(() => {
    for (const remove of made.splice(0)) remove();
  });
  return () => {
    const dir = scratchDir();
    made.push(dir.remove);
    return dir.path;
  };
}
