import type { ClientIpResult } from '../client-ip/types.ts';
import type { AnonymousPolicy, StoreUnavailablePolicy } from '../config/types.ts';
import { refusal, type Refusal } from '../http/refusal.ts';
import type { IdentityResult, RequestView } from '../identity/types.ts';
import { formatIp, parseIp, type IpAddress } from '../ip/address.ts';
import { SupersededList } from '../policy/cache.ts';
import type { CompiledList } from '../policy/compile.ts';
import { decideForAccount, decideGlobalOnly, type Decision, type PolicyDefaults } from '../policy/decide.ts';
import { isRefusal, type PolicyResolver } from '../policy/resolve.ts';
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
  /** Whether a proxy asking for a check (`IncomingView.caller`) is one the gateway believes. */
  readonly trustedCaller: (address: string | undefined) => boolean;
  readonly policy: PolicyResolver;
  readonly defaults: PolicyDefaults;
  readonly anonymous: AnonymousPolicy;
  readonly onStoreUnavailable: StoreUnavailablePolicy;
}

export interface IncomingView extends RequestView {
  /** The original request's peer: the TCP peer on the proxy listener; what the calling proxy reports for a check. */
  readonly remoteAddress: string | undefined;
  /**
   * Set on the external-authorization surfaces: the proxy that asks for the check. It must be
   * trusted, or the request is refused before anything else is read from it.
   */
  readonly caller?: string | undefined;
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
    const peer = peerText(remote);
    if (req.caller !== undefined) {
      const caller = socketAddress(req.caller);
      if (!parts.trustedCaller(caller)) return checked(requestId, peer, false, null, null, 'deny', 'untrusted_caller', null, untrustedCaller(peerText(caller)));
    }
    const exempt = parts.isExempt(req.url);
    const client = parts.clientIp(remote, req.rawHeaders);
    // A trusted peer whose chain was refused is not vouched for: its headers are not passed on.
    const peerTrusted = client.ok && client.fromHeader;

    if (exempt) return checked(requestId, peer, peerTrusted, client.ok ? clientText(client.ip, client.fromHeader, peer) : null, null, 'exempt', 'exempt_path', null, null);
    if (!client.ok) return checked(requestId, peer, peerTrusted, null, null, 'deny', client.refusal.reason, null, client.refusal);

    const ip = client.ip;
    const text = clientText(ip, client.fromHeader, peer);
    const identity = parts.identity(req);
    if (identity.kind === 'refused') {
      return checked(requestId, peer, peerTrusted, text, null, 'deny', identity.refusal.reason, null, identity.refusal);
    }
    if (identity.kind === 'anonymous') {
      switch (parts.anonymous) {
        case 'pass':
          return checked(requestId, peer, peerTrusted, text, null, 'anonymous', 'no_credentials', null, null);
        case 'deny':
          return checked(requestId, peer, peerTrusted, text, null, 'deny', 'missing_credentials', null, MISSING_CREDENTIALS);
        case 'global': {
          const global = parts.policy.global();
          const finish = (g: Global): Checked => conclude(requestId, peer, peerTrusted, text, null, decideGlobalOnly(ip.family, ip.words, g, parts.defaults));
          return global instanceof Promise
            ? global.then(finish, (error: unknown) => unavailable(requestId, peer, peerTrusted, text, null, error, parts.onStoreUnavailable))
            : finish(global);
        }
      }
    }

    const account = identity.account;
    const global = parts.policy.global();
    const lookup = parts.policy.resolve(account);
    if (!(global instanceof Promise) && !(lookup instanceof Promise)) {
      if (isRefusal(lookup)) return checked(requestId, peer, peerTrusted, text, account, 'error', lookup.reason, null, lookup);
      return conclude(requestId, peer, peerTrusted, text, account, decideForAccount(ip.family, ip.words, global, lookup));
    }
    // Not cached: the only path that waits (on the store).
    return Promise.all([global, lookup]).then(
      ([g, l]) => isRefusal(l)
        ? checked(requestId, peer, peerTrusted, text, account, 'error', l.reason, null, l)
        : conclude(requestId, peer, peerTrusted, text, account, decideForAccount(ip.family, ip.words, g, l)),
      (error: unknown) => unavailable(requestId, peer, peerTrusted, text, account, error, parts.onStoreUnavailable),
    );
  }
}

const MISSING_CREDENTIALS = refusal(401, 'missing_credentials', 'the request carries no credentials the gateway recognizes; send the account\'s credentials');

function untrustedCaller(caller: string): Refusal {
  return refusal(403, 'untrusted_caller', `the authorization check comes from ${caller}, which is not a trusted proxy: add the calling proxy's address to clientIp.trustedProxies (ALLOWGATE_TRUSTED_PROXIES)`);
}

/** Every Checked is built here, so they all share one shape (the request path stays monomorphic). */
function checked(
  requestId: string, peer: string, peerTrusted: boolean, client: string | null, account: string | null,
  verdict: Verdict, reason: string, entryId: string | null, refused: Refusal | null,
): Checked {
  return { requestId, peer, peerTrusted, client, account, verdict, reason, entryId, refusal: refused };
}

/**
 * The peer in canonical text. The kernel already writes IPv4 peers canonically, so the common
 * case returns the string it was given; IPv4-mapped and IPv6 peers are parsed and rewritten.
 */
function peerText(remote: string | undefined): string {
  if (remote === undefined) return 'undefined';
  if (remote.indexOf(':') < 0) return remote;
  if (remote.startsWith('::ffff:') && remote.indexOf(':', 7) < 0) return remote.slice(7);
  const ip = parseIp(remote);
  return ip === null ? remote : formatIp(ip);
}

/** A client that is the peer has the peer's text already. */
function clientText(ip: IpAddress, fromHeader: boolean, peer: string): string {
  return fromHeader ? formatIp(ip) : peer;
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

function conclude(requestId: string, peer: string, peerTrusted: boolean, client: string, account: string | null, decision: Decision): Checked {
  const entryId = decision.source !== null && decision.slot >= 0 ? decision.source.trie.idOf(decision.slot) : null;
  if (decision.outcome !== 'deny') return checked(requestId, peer, peerTrusted, client, account, decision.outcome, decision.reason, entryId, null);
  const refused = refusal(403, decision.reason, denialMessage(client, account, decision, entryId));
  return checked(requestId, peer, peerTrusted, client, account, 'deny', decision.reason, entryId, refused);
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
 * so in the access log. An account whose list is known to have changed into one that may refuse
 * more than the list it had is refused either way: `open` is for accounts the gateway knows
 * nothing of, never a way for a change to be undone.
 */
function unavailable(requestId: string, peer: string, peerTrusted: boolean, client: string, account: string | null, error: unknown, policy: StoreUnavailablePolicy): Checked {
  const superseded = error instanceof SupersededList;
  if (policy === 'open' && !superseded) return checked(requestId, peer, peerTrusted, client, account, 'fail_open', 'store_unavailable', null, null);
  const detail = error instanceof Error ? error.message : String(error);
  const refused = superseded
    ? refusal(503, 'store_unavailable', `the access list of account ${error.account} changed and the new one could not be loaded yet: the store is unavailable; refused rather than enforce the list it replaced; retry shortly`, detail)
    : refusal(503, 'store_unavailable', 'the access list for this request could not be loaded: the store is unavailable; retry shortly', detail);
  return checked(requestId, peer, peerTrusted, client, account, 'error', 'store_unavailable', null, refused);
}
