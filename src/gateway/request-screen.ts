import { quoteUntrusted } from '../identity/account-id.ts';
import { FoldedNameSet, hasFoldableSeparator, isHeaderName } from '../http/header-name.ts';
import { CLIENT_ADDRESS_SOURCES, FORWARDING_HEADERS, FORWARDING_PREFIX, isClientAddressName, UNCHECKED_ADDRESS_HEADERS } from '../http/forwarding-names.ts';
import { refusal, type Refusal } from '../http/refusal.ts';

/** What happens to a header whose name holds `_` and is none of the names the gateway reads or writes. */
export type UnderscorePolicy = 'pass' | 'drop' | 'refuse';

export interface RequestScreenConfig {
  /** Lower-case names the identity strategies read credentials from (Authorization included when read). */
  readonly credentialHeaders: readonly string[];
  readonly underscores: UnderscorePolicy;
}

/** Null when the request can be forwarded as the gateway reads it, else why not. */
export type RequestScreen = (url: string, rawHeaders: readonly string[]) => Refusal | null;

/**
 * The request-level refusals that keep the gateway and the upstream reading the same request,
 * whatever the identity and policy say:
 *
 * - A target with a fragment (`/v1/x?a=1#&account_id=AC1`) is 400 `invalid_request_target`:
 *   clients never send one, the gateway reads the query up to `#`, and CGI-style servers take
 *   the rest as part of the query.
 * - A target whose path starts with `//`, `/\` or `\` (also after the authority of the absolute
 *   form) is 400 `invalid_request_target`: URL parsers read it as
 *   a network-path reference (`//evil/v1/Account/AC1` is host `evil`, path `/v1/Account/AC1`
 *   to Node's `new URL(req.url, base)`, PHP's parse_url and Python's urlsplit), so the path the
 *   upstream routes is not the one the gateway matched.
 * - A name that upstreams fold into one the gateway reads or writes (`X_Auth_ID`, `x.real.ip`:
 *   CGI, WSGI, Rack and PHP turn `-`, `_` and PHP also `.` into `_`), or into a client-address
 *   header (`HTTP_CLIENT_IP`, `Fly_Client_IP`), is 400 `ambiguous_header`: the gateway would pass
 *   it on unread while the upstream takes it for the real one.
 * - A Connection header naming one of those headers (or Host) is 400 `invalid_connection_header`:
 *   the gateway would check the header and then strip it as hop-by-hop, so the upstream would act
 *   on something else than what was checked.
 * - Two Host headers are 400 `invalid_host`: which one an upstream routes on is anyone's guess.
 * - `headers.underscores: refuse` refuses every other name with `_` (nginx's view of them).
 *
 * One pass over the raw headers; a name is only looked at closely when it holds `_` or `.`, or
 * has the length of Host or Connection.
 */
export function compileRequestScreen(config: RequestScreenConfig): RequestScreen {
  const guarded = new FoldedNameSet([...config.credentialHeaders, ...CLIENT_ADDRESS_SOURCES, ...FORWARDING_HEADERS, ...UNCHECKED_ADDRESS_HEADERS], [FORWARDING_PREFIX]);
  const connectable = new FoldedNameSet([...config.credentialHeaders, ...CLIENT_ADDRESS_SOURCES, ...FORWARDING_HEADERS, ...UNCHECKED_ADDRESS_HEADERS, 'host'], [FORWARDING_PREFIX]);
  const refuseUnderscores = config.underscores === 'refuse';
  return (url, raw) => {
    if (url.indexOf('#') >= 0) return FRAGMENT;
    if (isNetworkPath(url)) return NETWORK_PATH;
    let hosts = 0;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!;
      if (hasFoldableSeparator(name)) {
        const meant = guarded.folded(name) ?? (isClientAddressName(name, true) ? 'a client-address header' : null);
        if (meant !== null) return ambiguousHeader(name, meant);
        if (refuseUnderscores && name.indexOf('_') >= 0) return underscoreHeader(name);
        continue;
      }
      const length = name.length;
      if (length === 4) {
        if (isHeaderName(name, 'host') && ++hosts > 1) return TWO_HOSTS;
      } else if (length === 10 && isHeaderName(name, 'connection')) {
        const named = connectionNames(raw[i + 1]!, connectable);
        if (named !== null) return named;
      }
    }
    return null;
  };
}

/**
 * Whether the target's path starts with `//`, `/\\` or `\\` (in the origin form, or after the
 * authority of the absolute form): URL parsers take what follows for a host name.
 */
function isNetworkPath(url: string): boolean {
  let at = 0;
  const first = url.charCodeAt(0);
  if (first === 92 /* \\ */) return true;
  if (first !== 47 /* / */) {
    // The absolute form, `scheme://authority/path`: the path starts at the first /, \\, ? after the authority.
    const scheme = url.indexOf('://');
    if (scheme < 0) return false;
    at = scheme + 3;
    while (at < url.length) {
      const c = url.charCodeAt(at);
      if (c === 47 || c === 92 || c === 63 /* ? */) break;
      at++;
    }
    if (url.charCodeAt(at) === 92) return true;
  }
  if (url.charCodeAt(at) !== 47) return false;
  const next = url.charCodeAt(at + 1);
  return next === 47 || next === 92;
}

const FRAGMENT = refusal(400, 'invalid_request_target', 'the request target carries a fragment (#...), which is never sent to a server; upstreams disagree on where the query ends');
const NETWORK_PATH = refusal(400, 'invalid_request_target', 'the request target\'s path starts with //, /\\ or \\, which URL parsers read as a host name followed by a path (//host/path); send a path with a single leading /');
const TWO_HOSTS = refusal(400, 'invalid_host', 'the request carries more than one Host header; send exactly one');

function ambiguousHeader(name: string, meant: string): Refusal {
  const family = meant.endsWith('-') ? `an ${meant}* header` : meant;
  return refusal(400, 'ambiguous_header', `the header name ${quoteUntrusted(name)} is read as ${family} by upstreams that fold '_' and '.' into '-' (CGI, WSGI, Rack, PHP); spell it with dashes, or leave it out`);
}

function underscoreHeader(name: string): Refusal {
  return refusal(400, 'invalid_header_name', `the header name ${quoteUntrusted(name)} contains '_', which this gateway refuses (headers.underscores: refuse); spell it with dashes`);
}

/** A refusal when the Connection value lists a guarded name; tokens are scanned in place. */
function connectionNames(value: string, connectable: FoldedNameSet): Refusal | null {
  let start = 0;
  const length = value.length;
  while (start <= length) {
    let end = value.indexOf(',', start);
    if (end < 0) end = length;
    let s = start;
    let e = end;
    while (s < e && isBlank(value.charCodeAt(s))) s++;
    while (e > s && isBlank(value.charCodeAt(e - 1))) e--;
    if (e > s && connectable.folded(value, s, e) !== null) {
      return refusal(400, 'invalid_connection_header', `the Connection header names ${quoteUntrusted(value.slice(s, e))}, a header the gateway reads or writes: it cannot be dropped as hop-by-hop; list only hop-by-hop headers in Connection`);
    }
    start = end + 1;
  }
  return null;
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
