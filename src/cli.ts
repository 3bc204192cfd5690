#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { startAllowgate } from './app.ts';
import { ConfigError, loadConfig } from './config/load.ts';
import { createLogger } from './observability/logger.ts';

const USAGE = `Usage: allowgate [--config PATH]

Runs the gateway: the proxy listener (ALLOWGATE_LISTEN, default 0.0.0.0:8080) in front of
ALLOWGATE_UPSTREAM_URL, and the admin API (ALLOWGATE_ADMIN_LISTEN, default 127.0.0.1:9090).
Configuration: config/allowgate.yaml, or --config PATH / ALLOWGATE_CONFIG; see config/ for
every setting and its environment variable.

Options:
  --config PATH   YAML configuration file
  --help          this text
  --version       the version
`;

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (argv.includes('--version')) {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`allowgate ${pkg.version}\n`);
    return 0;
  }
  const unknown = argv.filter((arg, i) => arg.startsWith('-') && arg !== '--config' && argv[i - 1] !== '--config');
  if (unknown.length > 0) {
    process.stderr.write(`allowgate: unknown option ${unknown[0]}\n\n${USAGE}`);
    return 2;
  }

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

// Exit explicitly once done: the log is flushed and the store closed by then, and a keep-alive
// timer left in a dependency must not hold a stopped gateway open.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`allowgate: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
