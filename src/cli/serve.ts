import cluster from 'node:cluster';
import { startAllowgate, type Allowgate, type Role } from '../app.ts';
import type { Config } from '../config/types.ts';
import type { Logger } from '../observability/logger.ts';
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
  // SIGHUP reloads the configuration file (the environment of a running process cannot change).
  process.on('SIGHUP', () => {
    reload(argv, logger, gateway);
    // The primary's workers reload their own copy.
    if (role.kind === 'primary') for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
  });
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

/**
 * Validates the configuration file again and applies what can change in place. An invalid file
 * changes nothing: the running configuration stays, and the log says why.
 */
function reload(argv: readonly string[], logger: Logger, gateway: Allowgate): void {
  let next: Config;
  try {
    next = loadConfig({ argv, env: process.env });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    logger.error({ error: error.message }, 'configuration not reloaded: it is invalid; the running configuration stays');
    return;
  }
  const { applied, restart } = gateway.reload(next);
  const msg = restart.length > 0 ? 'configuration reloaded; some changes take effect only after a restart' : 'configuration reloaded';
  logger[restart.length > 0 ? 'warn' : 'info']({ applied, needs_restart: restart }, msg);
}
