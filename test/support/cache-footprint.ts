/**
 * Run as `node --expose-gc cache-footprint.ts '<json options>'`: fills a policy cache from a store
 * that keeps nothing itself (each account's list is built and encoded on request, then decoded as
 * a shared store's blob would be), forces a full garbage collection, and prints what the heap
 * grew by next to what the cache says it holds. A process of its own, so nothing else shares the
 * heap being measured.
 */
import { compileList } from '../../src/list/compile.ts';
import { decodeCompiledList, encodeCompiledList } from '../../src/list/compiled-blob.ts';
import { PolicyCache } from '../../src/policy/cache.ts';
import type { AclEntry } from '../../src/list/types.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';

interface Options {
  readonly accounts: number;
  readonly entries: number;
  readonly maxBytes: number;
  /** Every other entry temporary (the list then carries an expiry table). */
  readonly temporary?: boolean;
  readonly ipv6?: boolean;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
const later = new Date(Date.now() + 86_400_000).toISOString();

function entriesOf(n: number): AclEntry[] {
  return Array.from({ length: options.entries }, (_, k) => {
    const cidr = options.ipv6 ? `2001:db8:${k.toString(16)}:${(n & 0xffff).toString(16)}::/64` : `${10 + (k >> 8)}.${k & 255}.${(n >> 8) & 255}.${n & 255}/32`;
    return {
      id: `ipacl_${n.toString(36)}_${k}_0123456789`, ipAddress: cidr, cidrs: [cidr], action: 'allow', description: '', enabled: true,
      createdAt: 'x', updatedAt: 'x', ...(options.temporary && k % 2 === 0 ? { expiresAt: later } : {}),
    };
  });
}

/** Keeps no record: every read builds the account's list afresh and hands out a decoded copy. */
class BuildingStore extends MemoryStore {
  async readCompiled(account: string) {
    const n = Number(account.slice(2));
    return decodeCompiledList(encodeCompiledList(compileList({ account, version: 1, settings: {}, entries: entriesOf(n) }, Date.now())));
  }
}

const heap = (): number => {
  for (let i = 0; i < 4; i++) gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
};

const store = new BuildingStore();
const cache = new PolicyCache(store, Date.now, { maxEntries: 10_000_000, maxBytes: options.maxBytes });
// Warm up the code paths (and their allocations) once, outside the measurement.
await cache.get('AC999999');
const before = heap();
const beforeStats = cache.stats().bytes;
for (let i = 0; i < options.accounts; i++) await cache.get(`AC${i}`);
const grown = heap() - before;
const stats = cache.stats();
process.stdout.write(`${JSON.stringify({ grown, counted: stats.bytes - beforeStats, entries: stats.entries, evictions: stats.evictions, maxBytes: options.maxBytes })}\n`);
