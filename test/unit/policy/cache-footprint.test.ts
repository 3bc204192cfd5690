import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../../support/cache-footprint.ts', import.meta.url));

interface Footprint {
  readonly grown: number;
  readonly counted: number;
  readonly entries: number;
  readonly evictions: number;
}

async function footprint(options: Record<string, unknown>): Promise<Footprint> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', SCRIPT, JSON.stringify(options)], { timeout: 60_000 });
  return JSON.parse(stdout) as Footprint;
}

/*
 * cache.maxBytes must bound the memory the cached lists really keep alive, not a part of it: the
 * cache's own count is compared with the heap's growth after a forced full GC, in a process of
 * its own.
 */
describe('PolicyCache memory, measured with a forced GC', () => {
  for (const shape of [
    { name: '5 IPv4 entries', entries: 5 },
    { name: '50 IPv4 entries', entries: 50 },
    { name: '5 IPv6 entries', entries: 5, ipv6: true },
    { name: '20 entries, half temporary', entries: 20, temporary: true },
    { name: 'no entries', entries: 0 },
  ]) {
    it(`counts what a cached list retains, within 25%: ${shape.name}`, async () => {
      const { grown, counted, entries } = await footprint({ accounts: 4_000, maxBytes: 1e12, ...shape });
      expect(entries).toBe(4_001);
      const ratio = grown / counted;
      expect(ratio, `heap grew ${grown} bytes for ${counted} counted`).toBeGreaterThan(0.75);
      expect(ratio, `heap grew ${grown} bytes for ${counted} counted`).toBeLessThan(1.25);
    });
  }

  it('keeps the heap within maxBytes however many accounts pass through', async () => {
    const maxBytes = 4 * 1024 * 1024;
    const { grown, counted, entries, evictions } = await footprint({ accounts: 30_000, entries: 5, maxBytes });
    expect(evictions).toBeGreaterThan(20_000);
    expect(counted).toBeLessThanOrEqual(maxBytes);
    // The lists held, and nothing else the cache keeps, stay under the bound (+ a margin for the
    // cache's bookkeeping maps, which are sized by entry count).
    expect(grown, `${entries} lists held`).toBeLessThan(maxBytes * 1.25);
  });
});
