import { readFileSync } from 'node:fs';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisStoreSpec } from './spec.ts';

export type RedisClient = Redis | Cluster;

// ioredis's constructor overloads are generic over a reply mapping; plain options fit them once
// the mapping is left at its default.
type ConstructorOptions = RedisOptions & { replyMapping?: 'legacy' };

/** Reconnect backoff: quick at first, capped so an outage is retried every two seconds at most. */
export function reconnectDelay(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 6), 2_000);
}

/**
 * ioredis options shared by every connection. Commands fail fast while disconnected (no offline
 * queue: a request must not wait for Redis to come back) and after `commandTimeoutMs`.
 */
export function baseOptions(spec: RedisStoreSpec): RedisOptions {
  const tls = spec.tls
    ? { rejectUnauthorized: spec.tls.rejectUnauthorized, ...(spec.tls.caFile ? { ca: readFileSync(spec.tls.caFile) } : {}) }
    : undefined;
  return {
    connectTimeout: spec.connectTimeoutMs,
    commandTimeout: spec.commandTimeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: true,
    retryStrategy: reconnectDelay,
    lazyConnect: true,
    ...(spec.username !== undefined ? { username: spec.username } : {}),
    ...(spec.password !== undefined ? { password: spec.password } : {}),
    ...(tls ? { tls } : {}),
  };
}

/** The command connection, built but not yet connected (`lazyConnect`). */
export function createClient(spec: RedisStoreSpec): RedisClient {
  const options = baseOptions(spec);
  const topology = spec.topology;
  switch (topology.mode) {
    case 'standalone':
      return new Redis(topology.url, options as ConstructorOptions);
    case 'sentinel':
      return new Redis({
        ...options,
        name: topology.masterName,
        sentinels: topology.sentinels.map(({ host, port }) => ({ host, port })),
        db: topology.db,
        ...(topology.sentinelPassword !== undefined ? { sentinelPassword: topology.sentinelPassword } : {}),
        sentinelRetryStrategy: reconnectDelay,
        // Reconnect on Sentinel's +switch-master at once: staying on a demoted master until
        // Sentinel reconfigures it (seconds) acknowledges writes that the new master never sees.
        failoverDetector: true,
      } as ConstructorOptions);
    case 'cluster': {
      const clusterOptions = {
        redisOptions: options,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        // Re-learn the slot map periodically: an auto-pipelined batch spanning several slots that
        // meets a restarted node gets a different MOVED per slot, which ioredis neither retries nor
        // uses to refresh the map, so without this the batch would fail for good.
        slotsRefreshInterval: 2_000,
        // Fail fast like the standalone client instead of retrying up to 16 times, 100 ms apart.
        retryDelayOnFailover: 0,
        retryDelayOnClusterDown: 0,
        clusterRetryStrategy: reconnectDelay,
        lazyConnect: true,
      } as ClusterOptions as ConstructorParameters<typeof Cluster>[1];
      return new Cluster(topology.nodes.map(({ host, port }) => ({ host, port })), clusterOptions);
    }
  }
}

/**
 * The subscriber: pub/sub needs a connection of its own. Unlike the command connection it keeps
 * its SUBSCRIBE queued until connected, and ioredis re-subscribes after every reconnect.
 */
export function createSubscriber(client: RedisClient): RedisClient {
  if (client instanceof Cluster) return client.duplicate(undefined, { enableOfflineQueue: true });
  return client.duplicate({ enableOfflineQueue: true });
}
