import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostPort } from '../../src/ip/host-port.ts';
import { freePort, startRedis, type RedisServer } from './redis-server.ts';
import { scratchDir } from './scratch.ts';
import { pollUntil } from './wait.ts';

/** The master name every sentinel setup monitors. */
export const MASTER_NAME = 'mymaster';

/** Runs `redis-cli -h 127.0.0.1 -p <port> <args…>` and resolves with its stdout (never hangs). */
export function redisCli(port: number, args: readonly string[], timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`redis-cli -p ${port} ${args.join(' ')} failed: ${error.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

/** `INFO`-style `field:value` lines as a map. */
function infoFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) out.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return out;
}

export interface SentinelSetup {
  readonly masterName: string;
  /** The original master (killed by a failover test; then no longer the master). */
  readonly master: RedisServer;
  readonly replica: RedisServer;
  readonly sentinelPort: number;
  /** The sentinel addresses, as a `RedisTopology` of mode `sentinel` takes them. */
  readonly sentinels: readonly HostPort[];
  /** Where the sentinel says the master is now, or null if it does not know. */
  masterAddress(): Promise<HostPort | null>;
  /** Waits until the sentinel names a master on another port than `fromPort`, and returns it. */
  waitForNewMaster(fromPort: number, timeoutMs?: number): Promise<HostPort>;
  /** Kills the servers and the sentinel and removes their directories. */
  stop(): Promise<void>;
}

/**
 * Safety net for a worker that exits without running afterAll (a hook timeout, an uncaught error):
 * every process started here is sent SIGKILL (and our own directories removed) from the 'exit'
 * handler, which may only run synchronous code: `kill()` sends its signal synchronously before it
 * awaits the exit. (startRedis's own directories are not reachable from here.)
 */
const running = new Set<() => unknown>();
process.once('exit', () => {
  for (const kill of running) kill();
});

function track(kill: () => Promise<void>): () => Promise<void> {
  running.add(kill);
  return async () => {
    running.delete(kill);
    await kill();
  };
}

/** A `redis-server` child we spawned ourselves, killed with SIGKILL and awaited. */
function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/**
 * One master, one replica (`--replicaof`) and one sentinel (`redis-server <conf> --sentinel`)
 * monitoring the master with quorum 1, so a lone sentinel can fail over by itself: the master is
 * considered down after 1 s without answers. Resolves once the replica is in sync and the sentinel
 * knows both the master and the replica (a failover needs the replica to be known and healthy).
 */
export async function startSentinelSetup(): Promise<SentinelSetup> {
  const started: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of started.splice(0).reverse()) await stop().catch(() => undefined);
  };
  try {
    // The master would wait 5 s (repl-diskless-sync-delay) for more replicas before a full sync.
    const master = await startRedis(['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0']);
    started.push(() => master.stop(), track(() => master.kill()));
    const replica = await startRedis(['--replicaof', '127.0.0.1', String(master.port)]);
    started.push(() => replica.stop(), track(() => replica.kill()));
    await pollUntil('replica in sync with the master', async () => {
      const info = infoFields(await redisCli(replica.port, ['info', 'replication']));
      return info.get('master_link_status') === 'up' ? true : undefined;
    }, 10_000);

    const dir = scratchDir();
    started.push(track(async () => dir.remove()));
    const sentinelPort = await freePort();
    const conf = join(dir.path, 'sentinel.conf');
    // Sentinel rewrites its config file (state, epochs, discovered replicas): it must be writable.
    writeFileSync(conf, [
      `port ${sentinelPort}`,
      'bind 127.0.0.1',
      `dir ${dir.path}`,
      'daemonize no',
      'logfile ""',
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
      `sentinel failover-timeout ${MASTER_NAME} 5000`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`,
      '',
    ].join('\n'));
    const sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let sentinelLog = '';
    sentinel.stdout!.on('data', (d: Buffer) => { sentinelLog += d.toString(); });
    sentinel.stderr!.on('data', (d: Buffer) => { sentinelLog += d.toString(); });
    const spawnError = new Promise<never>((_, reject) => {
      sentinel.once('error', (error) => reject(new Error(`cannot run redis-server --sentinel: ${error.message}`)));
    });
    spawnError.catch(() => undefined);
    // Registered before waiting: a sentinel that never becomes ready is killed all the same.
    started.push(track(() => killChild(sentinel)));

    const masterAddress = async (): Promise<HostPort | null> => {
      const out = (await redisCli(sentinelPort, ['sentinel', 'get-master-addr-by-name', MASTER_NAME])).trim().split(/\r?\n/);
      if (out.length < 2 || out[1] === '') return null;
      return { host: out[0]!, port: Number(out[1]) };
    };

    await Promise.race([spawnError, pollUntil('sentinel knows the master and its replica', async () => {
      if (sentinel.exitCode !== null) throw new Error(`sentinel exited with ${sentinel.exitCode}: ${sentinelLog}`);
      const address = await masterAddress();
      if (address?.port !== master.port) return undefined;
      // `sentinel replicas` lists flags per replica; a usable one is plain "slave".
      const replicas = await redisCli(sentinelPort, ['sentinel', 'replicas', MASTER_NAME]);
      const lines = replicas.split(/\r?\n/);
      const portAt = lines.indexOf('port');
      const flagsAt = lines.indexOf('flags');
      if (portAt < 0 || lines[portAt + 1] !== String(replica.port) || flagsAt < 0 || lines[flagsAt + 1] !== 'slave') return undefined;
      return true;
    }, 15_000, 100).catch((error: Error) => {
      throw new Error(`${error.message}; sentinel log: ${sentinelLog}`);
    })]);

    return {
      masterName: MASTER_NAME,
      master,
      replica,
      sentinelPort,
      sentinels: [{ host: '127.0.0.1', port: sentinelPort }],
      masterAddress,
      waitForNewMaster: (fromPort, timeoutMs = 15_000) => pollUntil(`sentinel failover away from port ${fromPort}`, async () => {
        const address = await masterAddress();
        return address !== null && address.port !== fromPort ? address : undefined;
      }, timeoutMs, 25).catch((error: Error) => {
        throw new Error(`${error.message}; sentinel log: ${sentinelLog}`);
      }),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

export interface ClusterSetup {
  /**
   * The nodes, in the order of `ports`. `kill()` then `restart()` brings a node back with its
   * cluster identity and slots (its nodes-N.conf is kept) but without its data.
   */
  readonly nodes: readonly RedisServer[];
  readonly ports: readonly number[];
  /** The node addresses, as a `RedisTopology` of mode `cluster` takes them. */
  readonly startupNodes: readonly HostPort[];
  /** Kills every node and removes their directories. */
  stop(): Promise<void>;
}

/**
 * Three master nodes (no replicas) sharing the 16,384 slots, created with `redis-cli --cluster
 * create`. Each node gets its own cluster bus port (`--cluster-port`, Redis ≥ 7): the default of
 * port + 10000 may not exist for an ephemeral port. Resolves once every node reports
 * `cluster_state:ok` and sees all three nodes and all slots.
 */
export async function startCluster(size = 3): Promise<ClusterSetup> {
  const nodes: RedisServer[] = [];
  const kills: (() => Promise<void>)[] = [];
  const dir = scratchDir();
  kills.push(track(async () => dir.remove()));
  const stop = async (): Promise<void> => {
    for (const node of nodes.splice(0)) await node.stop().catch(() => undefined);
    for (const kill of kills.splice(0)) await kill().catch(() => undefined);
  };
  try {
    for (let i = 0; i < size; i++) {
      const busPort = await freePort();
      nodes.push(await startRedis([
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir.path, `nodes-${i + 1}.conf`),
        '--cluster-port', String(busPort),
        '--cluster-node-timeout', '3000',
      ]));
      const node = nodes.at(-1)!;
      kills.push(track(() => node.kill()));
    }
    const ports = nodes.map((n) => n.port);
    const create = await redisCli(ports[0]!, ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], 20_000);
    if (!create.includes('All 16384 slots covered')) throw new Error(`redis-cli --cluster create did not cover every slot:\n${create}`);
    await pollUntil('cluster_state:ok on every node', async () => {
      for (const port of ports) {
        const info = infoFields(await redisCli(port, ['cluster', 'info']));
        if (info.get('cluster_state') !== 'ok' || info.get('cluster_known_nodes') !== String(size) || info.get('cluster_slots_ok') !== '16384') return undefined;
      }
      return true;
    }, 15_000, 100);
    return { nodes: [...nodes], ports, startupNodes: ports.map((port) => ({ host: '127.0.0.1', port })), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
