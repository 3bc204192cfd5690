import type { ClientIpResult } from '../client-ip/types.ts';
import { refusal, type Refusal, type Refused } from '../http/refusal.ts';
import type { IdentityResult, RequestView } from '../identity/types.ts';
import { keyTextRefused } from '../identity/api-key.ts';
import { formatIp, parseIp, type IpAddress } from '../ip/address.ts';
import type { AccountNaming } from '../policy/account-names.ts';
import { SupersededList } from '../policy/cache.ts';
import type { CompiledList } from '../list/compile.ts';
import { keyListId } from '../list/key-list-id.ts';
import { decideForAccount, decideForKey, decideGlobalDenyOnly, decideGlobalOnly, type Decision, type PolicyDefaults } from '../list/decide.ts';
import type { PolicyLookup, PolicyResolver } from '../policy/resolve.ts';
import type { KeyLookup, KeyResolver } from '../keys/resolver.ts';
import { requestIdFrom } from './request-id.ts';
import type { AddressClaims } from './address-claims.ts';
import type { RequestScreen } from './request-screen.ts';

/** What a request gets when its account's list is not cached and the store cannot be read. */
export type StoreUnavailablePolicy = 'closed' | 'open';

/** What a request with no recognizable credentials gets. */
export type AnonymousPolicy = 'pass' | 'deny' | 'global';

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
  /** The trusted proxies between the client and the peer (canonical, comma-separated); null for none. */
  readonly via: string | null;
  readonly account: string | null;
  /** The registered API key the request presented, when it presented one. */
  readonly keyId: string | null;
  readonly verdict: Verdict;
  readonly reason: string;
  /** The entry that decided, when one matched. */
  readonly entryId: string | null;
  /** Set when the gateway answers itself instead of forwarding. */
  readonly refusal: Refusal | null;
}

export interface GatekeeperParts {
  /** Request-level refusals: names and targets the upstream could read otherwise than the gateway. */
  readonly screen: RequestScreen;
  readonly clientIp: (peer: string | undefined, rawHeaders: readonly string[]) => ClientIpResult;
  /** On a check (the proxy forwards, not the gateway): client-address headers naming another client. */
  readonly addressClaims: AddressClaims;
  readonly identity: (req: RequestView) => IdentityResult;
  /** The stored account an id names (identity.accountIdCase), or why it cannot be told. */
  readonly accountName: AccountNaming;
  readonly isExempt: (url: string) => boolean;
  /** Whether a proxy asking for a check (`IncomingView.caller`) is one the gateway believes. */
  readonly trustedCaller: (address: string | undefined) => boolean;
  readonly policy: PolicyResolver;
  /** Whose an API key is (null: no api-key strategy, every key unknown). */
  readonly keys: Pick<KeyResolver, 'resolve'> | null;
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

/** What the lists conclude for a caller of a named account: the decision, or why there is none (a parent chain too deep). */
export type Conclusion = Decision | Refused;

/**
 * The request path's decision, in order: client IP → screen → exemption → (on a check) address
 * claims → identity → policy. Pure
 * apart from reading the policy cache; synchronous whenever the lists involved are cached. Every
 * listener that forwards requests (the proxy, and any other front asking for a decision) calls
 * this, so each refuses the same requests.
 */
export class Gatekeeper {
  #parts: GatekeeperParts;

  constructor(parts: GatekeeperParts) {
    this.#parts = parts;
  }

  /** Swaps in parts compiled from a reloaded configuration; requests already being checked finish with the old ones. */
  reconfigure(parts: GatekeeperParts): void {
    this.#parts = parts;
  }

  check(req: IncomingView): Checked | Promise<Checked> {
    const parts = this.#parts;
    const remote = socketAddress(req.remoteAddress);
    const peer = peerText(remote);
    const requestId = requestIdFrom(req.rawHeaders);
    if (req.caller !== undefined) {
      const caller = socketAddress(req.caller);
      if (!parts.trustedCaller(caller)) return checked({ requestId, peer, peerTrusted: false, client: null, via: null }, null, 'deny', 'untrusted_caller', null, untrustedCaller(peerText(caller)));
    }
    const client = parts.clientIp(remote, req.rawHeaders);
    const who: Who = client.ok
      // A trusted peer whose chain was refused is not vouched for: its headers are not passed on.
      ? { requestId, peer, peerTrusted: client.fromHeader, client: client.fromHeader ? formatIp(client.ip) : peer, via: client.via }
      : { requestId, peer, peerTrusted: false, client: null, via: null };
    const screened = parts.screen(req.url, req.rawHeaders);
    if (screened !== null) return checked(who, null, 'deny', screened.reason, null, screened);

    if (parts.isExempt(req.url)) return checked(who, null, 'exempt', 'exempt_path', null, null);
    if (!client.ok) return checked(who, null, 'deny', client.refusal.reason, null, client.refusal);
    if (req.caller !== undefined) {
      const claimed = parts.addressClaims(req.rawHeaders, who.client!);
      if (claimed !== null) return checked(who, null, 'deny', claimed.reason, null, claimed);
    }

    const ip = client.ip;
    const identity = parts.identity(req);
    if (identity.kind === 'refused') return checked(who, null, 'deny', identity.refusal.reason, null, identity.refusal);
    if (identity.kind === 'anonymous') return anonymous(parts, who, ip);
    if (identity.kind === 'account') return forAccount(parts, who, ip, identity.account, identity.suffixed);
    const found = parts.keys === null ? unregistered(identity) : parts.keys.resolve(identity.key, who.client ?? undefined, identity.source);
    if (!(found instanceof Promise)) return forKey(parts, who, ip, identity, found);
    return found.then((lookup) => forKey(parts, who, ip, identity, lookup), (error: unknown) => unavailable(who, identity.account, error, parts.onStoreUnavailable));
  }

  /**
   * What the lists conclude for a caller of `account` (a stored account's id) at `ip`: the lookup
   * and decision a request makes once it is identified, so the admin API's check explains exactly
   * what the request path enforces; with it, the list enforced for the account (for a key, the
   * key's own). Rejects when the store cannot be read.
   */
  async conclude(account: string, ip: IpAddress, keyId?: string): Promise<{ readonly ok: true; readonly decision: Decision; readonly enforced: CompiledList | null } | Refused> {
    const policy = this.#parts.policy;
    if (keyId !== undefined) {
      // A caller presenting the account's key `keyId`: the account's lists, then the key's own (the list it enforces).
      const [global, lookup, keyList] = await Promise.all([policy.global(), policy.resolve(account), policy.keyList(keyListId(account, keyId))]);
      if (!lookup.ok) return lookup;
      return { ok: true, decision: decideForKey(ip.family, ip.words, global, lookup, keyList), enforced: keyList };
    }
    // The account's chain again, for the list it enforces (the decision does not carry it); read
    // after the decision, both from the cache the decision just filled.
    const decision = await concludeFor(policy, account, ip);
    if (!decision.ok) return decision;
    const lookup = await policy.resolve(account);
    return { ok: true, decision, enforced: lookup.ok ? lookup.list : null };
  }
}

/** The global list and the account's chain, then the decision; synchronous when every list involved is cached. */
function concludeFor(policy: PolicyResolver, account: string, ip: IpAddress): Conclusion | Promise<Conclusion> {
  const global = policy.global();
  const lookup = policy.resolve(account);
  if (!(global instanceof Promise) && !(lookup instanceof Promise)) return lookup.ok ? decideForAccount(ip.family, ip.words, global, lookup) : lookup;
  return Promise.all([global, lookup]).then(([g, l]) => (l.ok ? decideForAccount(ip.family, ip.words, g, l) : l));
}

function settle(who: Who, account: string, concluded: Conclusion): Checked {
  return concluded.ok ? conclude(who, account, concluded) : checked(who, account, 'error', concluded.refusal.reason, null, concluded.refusal);
}

type Address = Extract<ClientIpResult, { ok: true }>['ip'];

/**
 * No credentials: anonymous.pass forwards, deny refuses, global checks the global list alone.
 * `reason` says why a pass is anonymous (a key introspection could not check, configured to pass).
 */
function anonymous(parts: GatekeeperParts, who: Who, ip: Address, reason = 'no_credentials'): Checked | Promise<Checked> {
  switch (parts.anonymous) {
    case 'pass': {
      // Anonymous callers are not the accounts' business, but the operator's deny entries
      // hold for everyone.
      const global = parts.policy.global();
      const finish = (g: Global): Checked => {
        const denied = decideGlobalDenyOnly(ip.family, ip.words, g);
        return denied === null ? checked(who, null, 'anonymous', reason, null, null) : conclude(who, null, denied);
      };
      return global instanceof Promise
        ? global.then(finish, (error: unknown) => unavailable(who, null, error, parts.onStoreUnavailable))
        : finish(global);
    }
    case 'deny':
      return checked(who, null, 'deny', 'missing_credentials', null, MISSING_CREDENTIALS);
    case 'global': {
      const global = parts.policy.global();
      const finish = (g: Global): Checked => conclude(who, null, decideGlobalOnly(ip.family, ip.words, g, parts.defaults));
      return global instanceof Promise
        ? global.then(finish, (error: unknown) => unavailable(who, null, error, parts.onStoreUnavailable))
        : finish(global);
    }
  }
}

/** An account named by the credentials: its list (the parent's for a subaccount) after the global one. */
function forAccount(parts: GatekeeperParts, who: Who, ip: Address, id: string, suffixed?: true): Checked | Promise<Checked> {
  const named = parts.accountName(id, suffixed);
  if (!named.ok) return checked(who, id, 'deny', named.refusal.reason, null, named.refusal);
  const account = named.value;
  const concluded = concludeFor(parts.policy, account, ip);
  if (!(concluded instanceof Promise)) return settle(who, account, concluded);
  // Not cached: the only path that waits (on the store).
  return concluded.then((c) => settle(who, account, c), (error: unknown) => unavailable(who, account, error, parts.onStoreUnavailable));
}

/**
 * A request with an API key. A registered key names its account and adds its own list; an
 * introspected one names its account only. Another credential naming a different account is
 * ambiguous (the upstream might serve either). An unknown key is refused (401 unknown_key) or, as
 * configured, ignored: the request goes on with what the other credentials say, or as anonymous.
 */
function forKey(parts: GatekeeperParts, who: Who, ip: Address, identity: Extract<IdentityResult, { kind: 'key' }>, lookup: KeyLookup): Checked | Promise<Checked> {
  switch (lookup.kind) {
    case 'refused':
      return checked(who, identity.account, 'deny', lookup.refusal.reason, null, lookup.refusal);
    case 'unknown':
    case 'unchecked':
      if (lookup.kind === 'unknown' && identity.unknown === 'refuse') return checked(who, identity.account, 'deny', 'unknown_key', null, UNKNOWN_KEY);
      return identity.account === null ? anonymous(parts, who, ip, lookup.kind === 'unchecked' ? lookup.refusal.reason : 'no_credentials') : forAccount(parts, who, ip, identity.account);
    case 'introspected':
    case 'registered':
      break;
  }
  if (identity.account !== null) {
    const named = parts.accountName(identity.account);
    if (!named.ok) return checked(who, identity.account, 'deny', named.refusal.reason, null, named.refusal);
    if (named.value !== lookup.account) return checked(who, named.value, 'deny', 'ambiguous_credentials', null, keyForAnother(identity.source));
  }
  if (identity.basicUser !== undefined && identity.basicUser !== lookup.account) {
    const other = otherAccount(parts, identity.basicUser);
    const go = (named: Refusal | null): Checked | Promise<Checked> => (named !== null
      ? checked(who, lookup.account, 'deny', named.reason, null, named)
      : forKnownKey(parts, who, ip, lookup));
    return other instanceof Promise ? other.then(go, (error: unknown) => unavailable(who, lookup.account, error, parts.onStoreUnavailable)) : go(other);
  }
  return forKnownKey(parts, who, ip, lookup);
}

/**
 * The refusal for a Basic user name sent beside a key that names an account the gateway knows (one
 * with a list or settings), or is a spelling the account rules refuse: either way an upstream
 * reading it as the account would serve someone the key's lists were not checked for. A name no
 * account has ("api", as Mailgun-style APIs ask) passes (null).
 */
function otherAccount(parts: GatekeeperParts, user: string): Refusal | null | Promise<Refusal | null> {
  const named = parts.accountName(user);
  // Not yet known (the account index still loading, 503): that refusal, not a verdict on the name.
  if (!named.ok) return named.refusal.status >= 500 ? named.refusal : BASIC_USER_OF_ANOTHER;
  const list = parts.policy.list(named.value);
  return list instanceof Promise ? list.then((l) => (l !== null ? BASIC_USER_OF_ANOTHER : null)) : list !== null ? BASIC_USER_OF_ANOTHER : null;
}

/** A key that names its account (registered or introspected): the lists, the key's own last. */
function forKnownKey(parts: GatekeeperParts, who: Who, ip: Address, lookup: Extract<KeyLookup, { kind: 'registered' | 'introspected' }>): Checked | Promise<Checked> {
  if (lookup.kind === 'introspected') return forAccount(parts, who, ip, lookup.account);
  const { account, keyId } = lookup;
  const global = parts.policy.global();
  const policy = parts.policy.resolve(account);
  const keyList = parts.policy.keyList(lookup.listId);
  if (!(global instanceof Promise) && !(policy instanceof Promise) && !(keyList instanceof Promise)) return keyDecision(who, ip, account, keyId, global, policy, keyList);
  return Promise.all([global, policy, keyList]).then(
    ([g, l, k]) => keyDecision(who, ip, account, keyId, g, l, k),
    (error: unknown) => unavailable(who, account, error, parts.onStoreUnavailable, keyId),
  );
}

/** The decision for a registered key once every list is at hand (no closure on the cached path). */
function keyDecision(who: Who, ip: Address, account: string, keyId: string, global: Global, policy: PolicyLookup, keyList: CompiledList | null): Checked {
  return policy.ok
    ? conclude(who, account, decideForKey(ip.family, ip.words, global, policy, keyList), keyId)
    : checked(who, account, 'error', policy.refusal.reason, null, policy.refusal, keyId);
}

/** Who asked, as far as the connection and the forwarding headers tell: the same for every outcome. */
interface Who {
  readonly requestId: string;
  readonly peer: string;
  readonly peerTrusted: boolean;
  readonly client: string | null;
  readonly via: string | null;
}

const MISSING_CREDENTIALS = refusal(401, 'missing_credentials', 'the request carries no credentials the gateway recognizes; send the account\'s credentials');
const UNKNOWN_KEY = refusal(401, 'unknown_key', 'the API key is not one the gateway knows; send a key registered for your account');
const UNREGISTERED: KeyLookup = { kind: 'unknown' };

/** A key with no registry to look it up in: unknown, once its text is one a key can be (as the registry would judge it). */
function unregistered(identity: Extract<IdentityResult, { kind: 'key' }>): KeyLookup {
  return keyTextRefused(identity.key, identity.source) ?? UNREGISTERED;
}

const BASIC_USER_OF_ANOTHER = refusal(400, 'ambiguous_credentials', 'the Basic user name is another account than the one the API key in the Basic password belongs to; send the key\'s own account id as the user name, or a name no account has');

function keyForAnother(source: string): Refusal {
  return refusal(400, 'ambiguous_credentials', `the API key in ${source} belongs to another account than the other credentials name; send credentials for one account`);
}

function untrustedCaller(caller: string): Refusal {
  return refusal(403, 'untrusted_caller', `the authorization check comes from ${caller}, which is not a trusted proxy: add the calling proxy's address to clientIp.trustedProxies (ALLOWGATE_TRUSTED_PROXIES)`);
}

/** Every Checked is built here, so they all share one shape (the request path stays monomorphic). */
function checked(who: Who, account: string | null, verdict: Verdict, reason: string, entryId: string | null, refused: Refusal | null, keyId: string | null = null): Checked {
  return { requestId: who.requestId, peer: who.peer, peerTrusted: who.peerTrusted, client: who.client, via: who.via, account, keyId, verdict, reason, entryId, refusal: refused };
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

function conclude(who: Who, account: string | null, decision: Decision, keyId: string | null = null): Checked {
  const entryId = decision.source !== null && decision.slot >= 0 ? decision.source.trie.idOf(decision.slot) : null;
  if (decision.outcome !== 'deny') return checked(who, account, decision.outcome, decision.reason, entryId, null, keyId);
  const refused = refusal(403, decision.reason, denialMessage(who.client!, account, decision, entryId, keyId));
  return checked(who, account, 'deny', decision.reason, entryId, refused, keyId);
}

function denialMessage(ip: string, account: string | null, decision: Decision, entryId: string | null, keyId: string | null): string {
  if (decision.list === 'global' && decision.reason === 'ip_denied') return `IP address ${ip} is denied by the gateway's global list (entry ${entryId})`;
  if (account === null) return `IP address ${ip} is not allowed to call without credentials`;
  if (decision.reason === 'ip_denied_for_key') return `IP address ${ip} is denied for key ${keyId} of account ${account} (entry ${entryId})`;
  if (decision.reason === 'ip_not_allowed_for_key') return `IP address ${ip} is not allowed for key ${keyId} of account ${account}`;
  if (decision.reason === 'list_empty_for_key') return `IP address ${ip} is not allowed for key ${keyId} of account ${account}: the key's list has no allow entry in force any more, so it refuses every caller until one is added or the list is opened`;
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
function unavailable(who: Who, account: string | null, error: unknown, policy: StoreUnavailablePolicy, keyId: string | null = null): Checked {
  const superseded = error instanceof SupersededList;
  if (policy === 'open' && !superseded) return checked(who, account, 'fail_open', 'store_unavailable', null, null, keyId);
  const detail = error instanceof Error ? error.message : String(error);
  const refused = superseded
    ? refusal(503, 'store_unavailable', `the access list of account ${error.account} changed and the new one could not be loaded yet: the store is unavailable; refused rather than enforce the list it replaced; retry shortly`, detail)
    : refusal(503, 'store_unavailable', 'the access list for this request could not be loaded: the store is unavailable; retry shortly', detail);
  return checked(who, account, 'error', 'store_unavailable', null, refused, keyId);
}
