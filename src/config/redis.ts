import { DEFAULT_NOTICE_LIST_MAX_BYTES, type RedisStoreSpec, type RedisTopology } from '../store/redis/spec.ts';
import { ConfigError, type Reader } from './reader.ts';
import type { HostPort } from '../ip/host-port.ts';

export const REDIS_SECTION_KEYS = [
  'url', 'sentinel', 'cluster', 'username', 'password', 'tls', 'keyPrefix', 'connectTimeoutMs', 'commandTimeoutMs', 'sweepIntervalMs',
  'noticeListMaxBytes',
] as const;

const KEY_PREFIX = /^[A-Za-z0-9:._-]{0,64}$/;

/**
 * The Redis store from `store: redis://…` (standalone, URL given directly) or `store: redis` with
 * the `redis:` section naming a URL, Sentinel or Cluster. Exactly one topology must be given.
 */
export function readRedisSpec(storeUrl: Reader | null, section: Reader): RedisStoreSpec {
  const redis = section.object(REDIS_SECTION_KEYS);
  const given = [storeUrl !== null || redis.has('url'), redis.has('sentinel'), redis.has('cluster')].filter(Boolean).length;
  if (given !== 1) {
    throw new ConfigError(given === 0
      ? 'store is redis but no server is named: set store to redis://host:6379/0 (ALLOWGATE_STORE), or redis.url, redis.sentinel or redis.cluster'
      : 'name Redis one way only: a redis:// URL (store or redis.url), redis.sentinel, or redis.cluster');
  }
  const topology: RedisTopology = redis.has('sentinel')
    ? readSentinel(redis.get('sentinel'))
    : redis.has('cluster')
      ? readCluster(redis.get('cluster'))
      : { mode: 'standalone', url: readRedisUrl(storeUrl ?? redis.get('url')) };
  const username = redis.get('username').optionalString();
  const password = redis.get('password').optionalString();
  const tlsSection = redis.get('tls');
  const tls = tlsSection.present ? readTls(tlsSection) : undefined;
  const keyPrefix = redis.get('keyPrefix').present ? redis.get('keyPrefix').value : 'allowgate:';
  if (typeof keyPrefix !== 'string' || !KEY_PREFIX.test(keyPrefix)) {
    redis.get('keyPrefix').fail('up to 64 characters from A-Z a-z 0-9 : . _ - (e.g. allowgate:prod:)');
  }
  return {
    kind: 'redis',
    topology,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(tls === undefined ? {} : { tls }),
    keyPrefix: keyPrefix as string,
    connectTimeoutMs: redis.get('connectTimeoutMs').integer(100, 60_000, 2_000),
    commandTimeoutMs: redis.get('commandTimeoutMs').integer(10, 60_000, 500),
    sweepIntervalMs: redis.get('sweepIntervalMs').integer(100, 3_600_000, 5_000),
    noticeListMaxBytes: redis.get('noticeListMaxBytes').integer(0, 16 * 1024 * 1024, DEFAULT_NOTICE_LIST_MAX_BYTES),
  };
}

/** redis://[user:password@]host[:port][/db] or rediss://… for TLS. */
function readRedisUrl(reader: Reader): string {
  const text = reader.string();
  const expected = 'a redis:// or rediss:// URL such as redis://127.0.0.1:6379/0 (user, password and database number optional)';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return reader.fail(expected);
  }
  if ((url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '' || url.search || url.hash) reader.fail(expected);
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^[0-9]{1,4}$/.test(db)) reader.fail(`${expected}; the path is the database number`);
  return text;
}

function readSentinel(reader: Reader): RedisTopology {
  const section = reader.object(['masterName', 'nodes', 'password', 'db']);
  const masterName = section.get('masterName').string();
  const nodes = readNodes(section.get('nodes'), 26379);
  const sentinelPassword = section.get('password').optionalString();
  return {
    mode: 'sentinel',
    masterName,
    sentinels: nodes,
    db: section.get('db').integer(0, 1023, 0),
    ...(sentinelPassword === undefined ? {} : { sentinelPassword }),
  };
}

function readCluster(reader: Reader): RedisTopology {
  const section = reader.object(['nodes']);
  return { mode: 'cluster', nodes: readNodes(section.get('nodes'), 6379) };
}

function readTls(reader: Reader): NonNullable<RedisStoreSpec['tls']> {
  const section = reader.object(['caFile', 'rejectUnauthorized']);
  const caFile = section.get('caFile').optionalString();
  return { rejectUnauthorized: section.get('rejectUnauthorized').boolean(true), ...(caFile === undefined ? {} : { caFile }) };
}

/** Seed nodes as `host:port` (port optional); at least one. */
function readNodes(reader: Reader, defaultPort: number): HostPort[] {
  const items = reader.list();
  if (items.length === 0) reader.fail(`a list of host:port seed nodes, e.g. [10.0.0.5:${defaultPort}]`);
  return items.map((item) => {
    const text = item.string();
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+))(?::([0-9]{1,5}))?$/.exec(text);
    const port = match?.[3] === undefined ? defaultPort : Number(match[3]);
    const host = match?.[1] ?? match?.[2];
    if (!match || host === undefined || port < 1 || port > 65535) return item.fail(`host:port, e.g. redis-0.redis:${defaultPort}`);
    return { host, port };
  });
}
