import { afterEach } from 'vitest';
import { RedisStore, type RedisStoreOptions } from '../../src/store/redis/redis-store.ts';
import type { RedisStoreSpec } from '../../src/store/redis/spec.ts';

/** Opens Redis stores for the tests of the calling describe block, and closes them after each test. */
export function openedRedisStores(): (spec: RedisStoreSpec, options?: RedisStoreOptions) => Promise<RedisStore> {
  const opened: RedisStore[] = [];
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });
  return async (spec, options = {}) => {
    const store = new RedisStore(spec, options);
    opened.push(store);
    await store.open();
    return store;
  };
}
