import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import type { MetricsSnapshot } from '../observability/metrics.ts';
import type { Logger } from '../observability/logger.ts';
import { requestWorkerMetrics } from './metrics-channel.ts';

/**
 * The primary's side of `workers: N`: N processes (node:cluster) serve the proxy port, which the
 * primary holds and hands connections out from; the primary itself serves the admin listener.
 * A worker that dies is replaced (sooner the first time, later if it keeps dying); a stop asks
 * every worker to drain and waits for them.
 */
export interface WorkerPool {
  /** The proxy address once every worker listens; rejects if one fails before that. */
  readonly listening: Promise<AddressInfo>;
  /** Started, not stopping, and at least one worker listening (one being replaced leaves the others serving). */
  ready(): boolean;
  /** Workers listening now. */
  listeningCount(): number;
  metrics(): Promise<MetricsSnapshot[]>;
  /** SIGTERM to every worker, then waits (SIGKILL past `timeoutMs`); true if all exited cleanly. */
  stop(timeoutMs: number): Promise<boolean>;
}

/** Restart delays: a worker that keeps dying is restarted less and less often, up to this. */
const RESTART_MIN_MS = 250;
const RESTART_MAX_MS = 30_000;
/** A worker that ran this long is taken to have been healthy: its replacement starts at once-ish. */
const HEALTHY_AFTER_MS = 60_000;
/** Beyond the shutdown timeout workers get to exit after draining, before they are killed. */
const EXIT_GRACE_MS = 5_000;

export function startWorkerPool(count: number, logger: Logger): WorkerPool {
  const listeningIds = new Set<number>();
  const startedAt = new Map<number, number>();
  let address: AddressInfo | null = null;
  let started = false;
  let stopping = false;
  let restartDelay = RESTART_MIN_MS;
  let resolveListening!: (address: AddressInfo) => void;
  let rejectListening!: (error: Error) => void;
  const listening = new Promise<AddressInfo>((resolve, reject) => {
    resolveListening = resolve;
    rejectListening = reject;
  });
  // The caller may never await it if start-up fails elsewhere first.
  listening.catch(() => undefined);

  const live = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());

  const fork = (): void => {
    const worker = cluster.fork();
    startedAt.set(worker.id, Date.now());
  };

  cluster.on('listening', (worker, at) => {
    listeningIds.add(worker.id);
    address ??= { address: at.address ?? '0.0.0.0', family: at.addressType === 6 ? 'IPv6' : 'IPv4', port: at.port };
    if (!started && listeningIds.size === count) {
      started = true;
      resolveListening(address);
    }
  });

  cluster.on('exit', (worker, code, signal) => {
    listeningIds.delete(worker.id);
    const ranMs = Date.now() - (startedAt.get(worker.id) ?? Date.now());
    startedAt.delete(worker.id);
    if (stopping) return;
    if (!started) {
      // A worker that cannot start (port taken, store unreachable at start) would fail again.
      rejectListening(new Error(`worker ${worker.process.pid} exited during start-up (${signal ?? `code ${code}`}): see its log lines above`));
      return;
    }
    restartDelay = ranMs >= HEALTHY_AFTER_MS ? RESTART_MIN_MS : Math.min(RESTART_MAX_MS, restartDelay * 2);
    logger.error({ worker_pid: worker.process.pid, code, signal, ran_ms: ranMs, restart_in_ms: restartDelay }, 'worker exited; starting a replacement');
    setTimeout(() => {
      if (!stopping) fork();
    }, restartDelay).unref();
  });

  for (let i = 0; i < count; i++) fork();

  return {
    listening,
    ready: () => started && !stopping && listeningIds.size > 0,
    listeningCount: () => listeningIds.size,
    metrics: () => requestWorkerMetrics(live()),
    stop: (timeoutMs) => {
      stopping = true;
      const workers = live();
      return Promise.all(workers.map((worker) => new Promise<boolean>((resolve) => {
        if (worker.isDead()) return resolve(worker.process.exitCode === 0);
        const kill = setTimeout(() => worker.process.kill('SIGKILL'), timeoutMs + EXIT_GRACE_MS);
        worker.once('exit', (code, signal) => {
          clearTimeout(kill);
          if (code !== 0) logger.error({ worker_pid: worker.process.pid, code, signal }, 'worker did not stop cleanly');
          resolve(code === 0);
        });
        worker.process.kill('SIGTERM');
      }))).then((clean) => clean.every(Boolean));
    },
  };
}
