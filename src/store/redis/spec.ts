import type { HostPort } from '../../ip/host-port.ts';

/** How to reach Redis; validated by the config loader, turned into ioredis clients by connection.ts. */
export type RedisTopology =
  /** A `redis://` or `rediss://` URL (user, password and database number included). */
  | { readonly mode: 'standalone'; readonly url: string }
  | { readonly mode: 'sentinel'; readonly masterName: string; readonly sentinels: readonly HostPort[]; readonly sentinelPassword?: string; readonly db: number }
  | { readonly mode: 'cluster'; readonly nodes: readonly HostPort[] };

export interface RedisStoreSpec {
  readonly kind: 'redis';
  readonly topology: RedisTopology;
  /** Overrides credentials in the URL; also used for Sentinel-managed and Cluster nodes. */
  readonly username?: string;
  readonly password?: string;
  /** TLS for every connection (implied by `rediss://`). */
  readonly tls?: { readonly caFile?: string; readonly rejectUnauthorized: boolean };
  /** Prepended to every key and the change channel, so one Redis can serve several gateways. */
  readonly keyPrefix: string;
  readonly connectTimeoutMs: number;
  /** Longest wait for any one command; the request path never waits on Redis longer than this. */
  readonly commandTimeoutMs: number;
  /** How often the change log is read for changes whose notice was missed (repair sweep). */
  readonly sweepIntervalMs: number;
  /**
   * Largest compiled list published with its change notice, so other replicas enforce it without
   * a read (0: never); a larger one is read by every replica that caches the account.
   */
  readonly noticeListMaxBytes?: number;
}

export const DEFAULT_NOTICE_LIST_MAX_BYTES = 64 * 1024;

/** The store for logs: host, port and database, never credentials. */
export function describeRedis(spec: RedisStoreSpec): string {
  const topology = spec.topology;
  switch (topology.mode) {
    case 'standalone': {
      const url = new URL(topology.url);
      return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
    }
    case 'sentinel':
      return `redis-sentinel:${topology.masterName}@${topology.sentinels.map((n) => `${n.host}:${n.port}`).join(',')}/${topology.db}`;
    case 'cluster':
      return `redis-cluster:${topology.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  }
}
