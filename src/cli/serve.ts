import cluster from 'node:cluster';
import { startAllowgate, type Role } from '../app.ts';
import { startWorkerPool } from '../workers/pool.ts';
import { ConfigError, loadConfig } from '../config/load.ts';
import { createLogger } from '../observability/logger.ts';

/**
 * `allowgate serve`: runs the gateway until SIGTERM or SIGINT, then lets in-flight requests
 * finish. `argv` holds only serve's own options (`--config PATH`), already checked. Resolves to
 * the exit code.
 */
export async function serve(argv: readonly string[]): Promise<number> {
  let config;
  try {
    config = loadConfig({ argv, env: process.env });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`allowgate: configuration error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }

  const base = createLogger(config.log.level);
  const logger = config.workers > 1 && cluster.isWorker ? base.child({ worker: cluster.worker?.id }) : base;
  // With workers, this same command runs in each worker process too (node:cluster forks it).
  const role: Role = config.workers === 1 ? { kind: 'single' }
    : cluster.isWorker ? { kind: 'worker' }
    : { kind: 'primary', pool: startWorkerPool(config.workers, logger) };
  const gateway = await startAllowgate(config, logger, role).catch((error: unknown) => {
    logger.fatal({ err: error }, 'allowgate failed to start');
    return null;
  });
  if (gateway === null) return new Promise<number>((resolve) => logger.flush(() => resolve(1)));
  if (role.kind === 'worker') {
    // The primary decides when to stop: it sends SIGTERM. SIGINT (a terminal's Ctrl-C reaches the
    // whole process group) is left to the primary too, which then stops the workers in order.
    return new Promise<number>((resolve) => {
      process.on('SIGINT', () => undefined);
      // Sent by the primary, and by whoever signalled the whole process group: once is enough.
      process.on('SIGTERM', () => {
        gateway.close().then(() => logger.flush(() => resolve(0)), (error: unknown) => {
          logger.error({ err: error }, 'worker shutdown failed');
          logger.flush(() => resolve(1));
        });
      });
    });
  }
  if (config.admin.tokenSource === 'generated' && config.store.kind === 'memory') {
    process.stderr.write(`allowgate: generated admin token (memory store, not kept): ${config.admin.token}\n`);
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down: finishing in-flight requests');
      gateway.close().then(
        () => {
          logger.info('stopped');
          logger.flush(() => resolve(0));
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          logger.flush(() => resolve(1));
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
