import { compileClientIpResolver, compileTrustedPeerCheck } from '../client-ip/resolve.ts';
import type { Config } from '../config/types.ts';
import { compileIdentityResolver, credentialHeaders } from '../identity/resolve.ts';
import type { AccountNaming } from '../policy/account-names.ts';
import type { PolicyResolver } from '../policy/resolve.ts';
import { compileExemptMatcher } from './exempt.ts';
import { Gatekeeper, type GatekeeperParts } from './gatekeeper.ts';
import { compileRequestScreen } from './request-screen.ts';

type GatekeeperConfig = Pick<Config, 'clientIp' | 'identity' | 'headers' | 'policy' | 'onStoreUnavailable'>;

/**
 * The one Gatekeeper of a process, compiled from the configuration: the proxy listener and every
 * external-authorization protocol ask it, so they make the same decisions.
 */
export function gatekeeperFromConfig(config: GatekeeperConfig, policy: PolicyResolver, accountName: AccountNaming = (account) => account): Gatekeeper {
  return new Gatekeeper(gatekeeperParts(config, policy, accountName));
}

/** The parts a Gatekeeper decides with, compiled from the configuration (at start, and on reload). */
export function gatekeeperParts(config: GatekeeperConfig, policy: PolicyResolver, accountName: AccountNaming = (account) => account): GatekeeperParts {
  return {
    screen: compileRequestScreen({ credentialHeaders: credentialHeaders(config.identity.strategies), underscores: config.headers.underscores }),
    clientIp: compileClientIpResolver(config.clientIp),
    identity: compileIdentityResolver(config.identity.strategies, config.identity),
    accountName,
    isExempt: compileExemptMatcher(config.identity.exemptPaths),
    trustedCaller: compileTrustedPeerCheck(config.clientIp.trust),
    policy,
    defaults: config.policy,
    anonymous: config.identity.anonymous,
    onStoreUnavailable: config.onStoreUnavailable,
  };
}
