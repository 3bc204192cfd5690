import type { ClientIpResult } from '../client-ip/types.ts';
import type { AnonymousPolicy, StoreUnavailablePolicy } from '../config/types.ts';
import { refusal, type Refusal } from '../http/refusal.ts';
import type { IdentityResult, RequestView } from '../identity/types.ts';
import { formatIp, parseIp, type IpAddress } from '../ip/address.ts';
import type { CompiledList } from '../policy/compile.ts';
import { decideForAccount, decideGlobalOnly, type Decision, type PolicyDefaults } from '../policy/decide.ts';
import { isRefusal, type PolicyLookup, type PolicyResolver } from '../policy/resolve.ts';
import { requestIdFrom } from './request-id.ts';

/**
 * What happened to a request, for the response, the forwarder and the access log. `fail_open`:
 * forwarded unchecked because the store was unreachable and `onStoreUnavailable` is `open`.
 */
export type Verdict = 'allow' | 'deny' | 'report_only' | 'anonymous' | 'exempt' | 'fail_open' | 'error';

export interface Checked {
  readonly requestId: string;
  /** The TCP peer, canonical (an IPv4-mapped peer is its IPv4 address). */
  readonly peer: string;
  readonly peerTrusted: boolean;
  /** The client the decision was about; null when it could not be determined. */
  readonly client: string | null;
  readonly account: string | null;
  readonly verdict: Verdict;
  readonly reason: string;
  /** The entry that decided, when one matched. */
  readonly entryId: string | null;
  /** Set when the gateway answers itself instead of forwarding. */
  readonly refusal: Refusal | null;
}

export interface GatekeeperParts {
  readonly clientIp: (peer: string | undefined, rawHeaders: readonly string[]) => ClientIpResult;
  readonly identity: (req: RequestView) => IdentityResult;
  readonly isExempt: (url: string) => boolean;
  readonly policy: PolicyResolver;
  readonly defaults: PolicyDefaults;
  readonly anonymous: AnonymousPolicy;
  readonly onStoreUnavailable: StoreUnavailablePolicy;
}

export interface IncomingView extends RequestView {
  readonly remoteAddress: string | undefined;
}

type Global = CompiledList | null;

/**
 * The request path's decision, in order: client IP → exemption → identity → policy. Pure apart
 * from reading the policy cache; synchronous whenever the lists involved are cached.
 */
export class Gatekeeper {
  readonly #parts: GatekeeperParts;

  constructor(parts: GatekeeperParts) {
    this.#parts = parts;
  }

  check(req: IncomingView): Checked | Promise<Checked> {
    const parts = this.#parts;
    const requestId = requestIdFrom(req.rawHeaders);
    const remote = socketAddress(req.remoteAddress);
    const peerIp = remote === undefined ? null : parseIp(remote);
    const peer = peerIp === null ? String(remote) : formatIp(peerIp);
    const exempt = parts.isExempt(req.url);
    const client = parts.clientIp(remote, req.rawHeaders);
    // A trusted peer whose chain was refused is not vouched for: its headers are not passed on.
    const base = { requestId, peer, peerTrusted: client.ok && client.fromHeader };

    if (exempt) return { ...base, client: client.ok ? formatIp(client.ip) : null, account: null, verdict: 'exempt', reason: 'exempt_path', entryId: null, refusal: null };
    if (!client.ok) return { ...base, client: null, account: null, verdict: 'deny', reason: client.refusal.reason, entryId: null, refusal: client.refusal };

    const ip = client.ip;
    const clientText = formatIp(ip);
    const facts = { ...base, client: clientText };
    const identity = parts.identity(req);
    if (identity.kind === 'refused') {
      return { ...facts, account: null, verdict: 'deny', reason: identity.refusal.reason, entryId: null, refusal: identity.refusal };
    }
    if (identity.kind === 'anonymous') {
      switch (parts.anonymous) {
        case 'pass':
          return { ...facts, account: null, verdict: 'anonymous', reason: 'no_credentials', entryId: null, refusal: null };
        case 'deny':
          return { ...facts, account: null, verdict: 'deny', reason: 'missing_credentials', entryId: null, refusal: refusal(401, 'missing_credentials', 'the request carries no credentials the gateway recognizes; send the account\'s credentials') };
        case 'global': {
          const global = parts.policy.global();
          const finish = (g: Global): Checked => conclude(facts, null, ip, decideGlobalOnly(ip.family, ip.words, g, parts.defaults));
          return global instanceof Promise ? global.then(finish, (error: unknown) => unavailable(facts, null, error, parts.onStoreUnavailable)) : finish(global);
        }
      }
    }

    const account = identity.account;
    const global = parts.policy.global();
    const lookup = parts.policy.resolve(account);
    const finish = (g: Global, l: PolicyLookup): Checked => {
      if (isRefusal(l)) return { ...facts, account, verdict: 'error', reason: l.reason, entryId: null, refusal: l };
      return conclude(facts, account, ip, decideForAccount(ip.family, ip.words, g, l));
    };
    if (global instanceof Promise || lookup instanceof Promise) {
      return Promise.all([global, lookup]).then(([g, l]) => finish(g, l), (error: unknown) => unavailable(facts, account, error, parts.onStoreUnavailable));
    }
    return finish(global, lookup);
  }
}

/**
 * A link-local peer's address comes from the kernel with its zone (`fe80::1%eth0`). The zone names
 * our own interface, not the caller, so it is dropped here; in header values and rules, where a
 * zone could only be a client's decoration, the address parser refuses it.
 */
function socketAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const zone = address.indexOf('%');
  return zone < 0 ? address : address.slice(0, zone);
}

type Facts = Pick<Checked, 'requestId' | 'peer' | 'peerTrusted' | 'client'>;

function conclude(facts: Facts, account: string | null, ip: IpAddress, decision: Decision): Checked {
  const entryId = decision.source !== null && decision.slot >= 0 ? decision.source.trie.idOf(decision.slot) : null;
  const verdict: Verdict = decision.outcome;
  if (decision.outcome !== 'deny') return { ...facts, account, verdict, reason: decision.reason, entryId, refusal: null };
  return { ...facts, account, verdict, reason: decision.reason, entryId, refusal: refusal(403, decision.reason, denialMessage(formatIp(ip), account, decision, entryId)) };
}

function denialMessage(ip: string, account: string | null, decision: Decision, entryId: string | null): string {
  if (decision.list === 'global' && decision.reason === 'ip_denied') return `IP address ${ip} is denied by the gateway's global list (entry ${entryId})`;
  if (account === null) return `IP address ${ip} is not allowed to call without credentials`;
  if (decision.reason === 'ip_denied') return `IP address ${ip} is denied for account ${account} (entry ${entryId})`;
  return `IP address ${ip} is not allowed for account ${account}`;
}

/**
 * A list the request needs is neither cached (not even a last-known-good copy) nor readable from
 * the store. Closed (the default) refuses rather than forward unchecked; open forwards, and says
 * so in the access log.
 */
function unavailable(facts: Facts, account: string | null, error: unknown, policy: StoreUnavailablePolicy): Checked {
  if (policy === 'open') return { ...facts, account, verdict: 'fail_open', reason: 'store_unavailable', entryId: null, refusal: null };
  const detail = error instanceof Error ? error.message : String(error);
  return {
    ...facts,
    account,
    verdict: 'error',
    reason: 'store_unavailable',
    entryId: null,
    refusal: refusal(503, 'store_unavailable', `the access list for this request could not be loaded: the store is unavailable (${detail}); retry shortly`),
  };
}
