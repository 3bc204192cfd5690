import type { StoreSpec } from '../config/types.ts';
import { FileStore } from './file-store.ts';
import { MemoryStore } from './memory-store.ts';
import { RedisStore } from './redis/redis-store.ts';
import type { AclStore } from './store.ts';

/** The store the configuration names; the request path only ever sees the AclStore interface. */
export function createStore(spec: StoreSpec, options: { readonly onCompile?: (seconds: number) => void } = {}): AclStore {
  switch (spec.kind) {
    case 'memory':
      return new MemoryStore();
    case 'file':
      return new FileStore(spec.path);
    case 'redis':
      return new RedisStore(spec, options.onCompile === undefined ? {} : { onCompile: options.onCompile });
  }
}
