import { FileStore } from './file-store.ts';
import { MemoryStore } from './memory-store.ts';
import type { RedisStore, RedisStoreOptions } from './redis/redis-store.ts';
import type { RedisStoreSpec } from './redis/spec.ts';
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

/** The Redis store's connection, for the parts that share it (the audit stream); null for other stores. */
export function redisConnectionOf(store: AclStore): { readonly client: RedisStore['client']; readonly keyPrefix: string } | null {
  if (store.kind !== 'redis') return null;
  const redis = store as RedisStore;
  return { client: redis.client, keyPrefix: redis.keys.prefix };
}
