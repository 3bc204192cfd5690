import { FileStore } from './file-store.ts';
import { MemoryStore } from './memory-store.ts';
import type { RedisStoreOptions } from './redis/redis-store.ts';
import { describeRedis, type RedisStoreSpec } from './redis/spec.ts';
import type { AclStore } from './store.ts';

/** Which store holds the lists: `memory`, `file:PATH` or Redis. */
export type StoreSpec = { readonly kind: 'memory' } | { readonly kind: 'file'; readonly path: string } | RedisStoreSpec;

/**
 * The store the configuration names; the request path only ever sees the AclStore interface.
 * The Redis store (and its client library, several MB of heap) is loaded only when named.
 */
export async function createStore(spec: StoreSpec, options: RedisStoreOptions = {}): Promise<AclStore> {
  switch (spec.kind) {
    case 'memory':
      return new MemoryStore();
    case 'file':
      return new FileStore(spec.path);
    case 'redis': {
      const { RedisStore } = await import('./redis/redis-store.ts');
      return new RedisStore(spec, options);
    }
  }
}

/** The store for the start-up log line (a Redis password never appears). */
export function describeStore(spec: StoreSpec): string {
  switch (spec.kind) {
    case 'memory':
      return 'memory';
    case 'file':
      return `file:${spec.path}`;
    case 'redis':
      return describeRedis(spec);
  }
}
