import { compileClientIpResolver, compileTrustedPeerCheck } from '../client-ip/resolve.ts';
import type { Config } from '../config/types.ts';
import { compileIdentityResolver } from '../identity/resolve.ts';
import type { PolicyResolver } from '../policy/resolve.ts';
import { compileExemptMatcher } from './exempt.ts';
import { Gatekeeper } from './gatekeeper.ts';

/**
 * The one Gatekeeper of a process, compiled from the configuration: the proxy listener and every
 * external-authorization protocol ask it, so they make the same decisions.
 */
export function gatekeeperFromConfig(config: Pick<Config, 'clientIp' | 'identity' | 'policy' | 'onStoreUnavailable'>, policy: PolicyResolver): Gatekeeper {
  return new Gatekeeper({
    clientIp: compileClientIpResolver(config.clientIp),
    identity: compileIdentityResolver(config.identity.strategies),
    isExempt: compileExemptMatcher(config.identity.exemptPaths),
    trustedCaller: compileTrustedPeerCheck(config.clientIp.trust),
    policy,
    defaults: config.policy,
    anonymous: config.identity.anonymous,
    onStoreUnavailable: config.onStoreUnavailable,
  });
}
