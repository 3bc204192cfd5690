import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from './echo-upstream.ts';
import { startGateway, type GatewayProcess } from './gateway-process.ts';
import { scratchDir } from './scratch.ts';

/** An upstream the gateway forwards to. */
export interface Upstream {
  readonly url: string;
  close(): Promise<void>;
}

export interface AroundOptions<U extends Upstream> {
  readonly start: () => Promise<U>;
  /** The gateway's configuration file (none: the defaults); made in `dir`, the suite's scratch directory, when it needs files of its own. */
  readonly config?: string | ((dir: string) => string);
  /** Admin calls made before the first test (lists, keys). */
  readonly setup?: (gw: GatewayProcess) => Promise<void>;
}

/** The running pair, readable once the enclosing describe's (or file's) tests have begun. */
export interface Around<U extends Upstream> {
  readonly gw: GatewayProcess;
  readonly upstream: U;
  /**
   * Another gateway in front of the same upstream, with a configuration of its own, started and
   * stopped around the describe this is called in.
   */
  also(config: string, setup?: (gw: GatewayProcess) => Promise<void>): { readonly gw: GatewayProcess };
}

/**
 * An upstream and a real gateway process in front of it, started before the tests of the
 * enclosing describe (or file) and stopped after them, with the scratch directory the
 * configuration lives in.
 */
export function gatewayAround<U extends Upstream>(options: AroundOptions<U>): Around<U> {
  let upstream: U;
  let gw: GatewayProcess;
  const dir = scratchDir();
  let configs = 0;
  /** A gateway in front of the upstream, with `config` (none: the defaults) written beside the others. */
  const gatewayWith = async (config: string | undefined): Promise<GatewayProcess> => {
    const env: Record<string, string> = { ALLOWGATE_UPSTREAM_URL: upstream.url };
    if (config !== undefined) {
      env['ALLOWGATE_CONFIG'] = join(dir.path, `allowgate-${configs++}.yaml`);
      writeFileSync(env['ALLOWGATE_CONFIG'], config);
    }
    return startGateway({ env });
  };

  beforeAll(async () => {
    upstream = await options.start();
    gw = await gatewayWith(typeof options.config === 'function' ? options.config(dir.path) : options.config);
    await options.setup?.(gw);
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
    dir.remove();
  });

  return {
    get gw() {
      return gw;
    },
    get upstream() {
      return upstream;
    },
    also(config, setup) {
      let other: GatewayProcess;
      beforeAll(async () => {
        other = await gatewayWith(config);
        await setup?.(other);
      });
      afterAll(async () => other?.stop());
      return {
        get gw() {
          return other;
        },
      };
    },
  };
}

/** gatewayAround an echo upstream, which records every request it is sent. */
export function echoGatewayAround(options: Omit<AroundOptions<EchoUpstream>, 'start'>): Around<EchoUpstream> {
  return gatewayAround({ start: startEchoUpstream, ...options });
}
