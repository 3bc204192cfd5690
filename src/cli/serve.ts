import { startAllowgate } from '../app.ts';
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

  const logger = createLogger(config.log.level);
  const gateway = await startAllowgate(config, logger).catch((error: unknown) => {
    logger.fatal({ err: error }, 'allowgate failed to start');
    return null;
  });
  if (gateway === null) return new Promise<number>((resolve) => logger.flush(() => resolve(1)));
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
