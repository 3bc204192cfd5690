import { quoteUntrusted } from '../identity/account-id.ts';
import { FoldedNameSet, hasFoldableSeparator, isHeaderName } from '../http/header-name.ts';
import { CLIENT_ADDRESS_SOURCES, FORWARDING_HEADERS, FORWARDING_PREFIX, UNCHECKED_ADDRESS_HEADERS } from '../http/forwarding-names.ts';
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
 * - A name that upstreams fold into one the gateway reads or writes (`X_Auth_ID`, `x.real.ip`:
 *   CGI, WSGI, Rack and PHP turn `-`, `_` and PHP also `.` into `_`) is 400 `ambiguous_header`:
 *   the gateway would pass it on unread while the upstream takes it for the real one.
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
    let hosts = 0;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!;
      if (hasFoldableSeparator(name)) {
        const meant = guarded.folded(name);
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

const FRAGMENT = refusal(400, 'invalid_request_target', 'the request target carries a fragment (#...), which is never sent to a server; upstreams disagree on where the query ends');
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
