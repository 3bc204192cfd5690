import { compileClientIpResolver, compileTrustedPeerCheck } from '../client-ip/resolve.ts';
import type { ClientIpConfig } from '../client-ip/types.ts';
import type { IdentityOptions, StrategyConfig } from '../identity/types.ts';
import type { PolicyDefaults } from '../list/decide.ts';
import type { AuthzUpstreamHeaders } from '../proxy/headers.ts';
import { compileIdentityResolver, credentialHeaders } from '../identity/resolve.ts';
import { ok } from '../http/refusal.ts';
import type { AccountNaming } from '../policy/account-names.ts';
import type { PolicyResolver } from '../policy/resolve.ts';
import { compileExemptMatcher } from './exempt.ts';
import { Gatekeeper, type AnonymousPolicy, type GatekeeperParts, type StoreUnavailablePolicy } from './gatekeeper.ts';
import { compileRequestScreen, type UnderscorePolicy } from './request-screen.ts';
import { compileAddressClaims } from './address-claims.ts';
import { checkedHeaderNames } from '../proxy/headers.ts';

/** The configuration sections a Gatekeeper is compiled from. */
export interface GatekeeperSettings {
  readonly clientIp: ClientIpConfig;
  readonly identity: IdentityOptions & {
    readonly strategies: readonly StrategyConfig[];
    readonly anonymous: AnonymousPolicy;
    readonly exemptPaths: readonly string[];
  };
  readonly headers: {
    /** Header names with `_` other than the ones the gateway reads or writes (those are always refused). */
    readonly underscores: UnderscorePolicy;
  };
  readonly policy: PolicyDefaults;
  readonly onStoreUnavailable: StoreUnavailablePolicy;
  readonly authz: { readonly upstreamHeaders: AuthzUpstreamHeaders };
}

/**
 * The one Gatekeeper of a process, compiled from the configuration: the proxy listener and every
 * external-authorization protocol ask it, so they make the same decisions.
 */
export function gatekeeperFromConfig(config: GatekeeperSettings, policy: PolicyResolver, accountName: AccountNaming = ok, keys: GatekeeperParts['keys'] = null): Gatekeeper {
  return new Gatekeeper(gatekeeperParts(config, policy, accountName, keys));
}

/** The parts a Gatekeeper decides with, compiled from the configuration (at start, and on reload). */
export function gatekeeperParts(config: GatekeeperSettings, policy: PolicyResolver, accountName: AccountNaming = ok, keys: GatekeeperParts['keys'] = null): GatekeeperParts {
  // The headers that tell the upstream the checked account and address are guarded like
  // credentials: a name an upstream would fold into one of them is refused.
  const checked = checkedHeaderNames(config.authz.upstreamHeaders);
  const guarded = [...credentialHeaders(config.identity.strategies), ...[checked.account, checked.clientIp].filter((n) => n !== null)];
  return {
    screen: compileRequestScreen({ credentialHeaders: guarded, underscores: config.headers.underscores }),
    clientIp: compileClientIpResolver(config.clientIp),
    addressClaims: compileAddressClaims(config.clientIp.source, [checked.account, checked.clientIp].filter((n) => n !== null)),
    identity: compileIdentityResolver(config.identity.strategies, config.identity),
    accountName,
    isExempt: compileExemptMatcher(config.identity.exemptPaths),
    trustedCaller: compileTrustedPeerCheck(config.clientIp.trust),
    policy,
    keys,
    defaults: config.policy,
    anonymous: config.identity.anonymous,
    onStoreUnavailable: config.onStoreUnavailable,
  };
}
