import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from './echo-upstream.ts';
import { join } from 'node:path';
import { startGateway, type GatewayProcess } from './gateway-process.ts';
import { startRedis, type RedisServer } from './redis-server.ts';
import { scratchDir } from './scratch.ts';

export type StoreKind = 'memory' | 'file' | 'redis';
export const STORE_KINDS: readonly StoreKind[] = ['memory', 'file', 'redis'];

/** The `admin.writes` line of a config that does not test the write limits. */
export const UNLIMITED_WRITES = 'writes: {perSecond: 100000, burst: 100000, concurrent: 1024, concurrentPerCredential: 1024}';

/** Real gateway processes sharing one store: one for memory and file, two replicas on Redis. */
export interface Fleet {
  readonly kind: StoreKind;
  /** Every gateway; writers alternate over them, so two writers on Redis are two replicas. */
  readonly gateways: readonly GatewayProcess[];
  /** The gateway the i-th writer uses. */
  at(i: number): GatewayProcess;
  readonly dir: string;
  stop(): Promise<void>;
}

export interface FleetOptions {
  readonly env?: Record<string, string>;
  /** The config file (YAML); default: write limits raised out of the way. */
  readonly config?: string;
  /** How many gateways on Redis (default 2). */
  readonly replicas?: number;
}

export async function startFleet(kind: StoreKind, options: FleetOptions = {}): Promise<Fleet> {
  const dir = scratchDir();
  let redis: RedisServer | null = null;
  const gateways: GatewayProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(gateways.map((g) => g.stop()));
    await redis?.stop();
    dir.remove();
  };
  try {
    let store: string = kind;
    if (kind === 'file') store = `file:${join(dir.path, 'data', 'store.json')}`;
    if (kind === 'redis') {
      redis = await startRedis();
      store = redis.url;
    }
    // Many writers at once is what these tests do: the write limits are not what they test.
    const config = join(dir.path, 'allowgate.yaml');
    writeFileSync(config, options.config ?? `admin:\n  ${UNLIMITED_WRITES}\n`);
    const count = kind === 'redis' ? options.replicas ?? 2 : 1;
    for (let i = 0; i < count; i++) {
      gateways.push(await startGateway({ env: { ALLOWGATE_STORE: store, ALLOWGATE_CONFIG: config, ALLOWGATE_LOG_LEVEL: 'info', ALLOWGATE_LOG_ALLOW_SAMPLE: '0', ...options.env }, timeoutMs: 20_000 }));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { kind, gateways, at: (i) => gateways[i % gateways.length]!, dir: dir.path, stop };
}

/**
 * A fleet for the calling `describe`: an echo upstream and the gateways, started before its
 * tests and stopped after them. Returns the running fleet (call it inside a test).
 */
export function useFleet(kind: StoreKind, options: Omit<FleetOptions, 'env'> & { readonly env?: Record<string, string> } = {}): () => Fleet {
  let upstream: EchoUpstream | null = null;
  let fleet: Fleet | null = null;
  beforeAll(async () => {
    upstream = await startEchoUpstream();
    fleet = await startFleet(kind, { ...options, env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ...options.env } });
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop();
    await upstream?.close();
  });
  return () => {
    if (fleet === null) throw new Error('the fleet is not running (useFleet is for a describe block)');
    return fleet;
  };
}
