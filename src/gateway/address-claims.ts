import { createSpans, splitForwarded, splitXForwardedFor, type Spans } from '../client-ip/chain.ts';
import { parseEntryInto } from '../client-ip/entry.ts';
import type { ForwardedSource } from '../client-ip/types.ts';
import { HeaderNameSet } from '../http/header-name.ts';
import { isClientAddressName, UNCHECKED_ADDRESS_HEADERS } from '../http/forwarding-names.ts';
import { refusal, type Refusal } from '../http/refusal.ts';
import { quoteUntrusted } from '../identity/account-id.ts';
import { formatIp } from '../ip/address.ts';

/** A refusal when a check's request carries a client address other than the checked one. */
export type AddressClaims = (rawHeaders: readonly string[], client: string) => Refusal | null;

/** More entries than this in one claim are not looked at one by one: the claim is refused. */
const MAX_CLAIMED = 16;

/**
 * On the external-authorization surfaces the proxy, not the gateway, forwards the request, with
 * the client's headers as the client sent them unless the proxy's configuration replaces them. A
 * header an upstream reads a client address from (Forwarded, X-Real-IP, True-Client-IP,
 * CF-Connecting-IP, any name the client-address pattern matches) that names another address than
 * the client the gateway checked would reach the upstream as a claim nobody checked: such a
 * request is refused (400 `ambiguous_client_address`). A claim naming exactly the checked client
 * passes (a CDN's True-Client-IP behind a proxy that resolves it).
 *
 * Not looked at: the header the client address is read from (`clientIp.header`, already walked),
 * X-Forwarded-For (every proxy configuration sets it for the upstream), and the headers that
 * carry the checked account and address to the upstream (replaced from the answer).
 */
export function compileAddressClaims(source: ForwardedSource, checkedHeaders: readonly string[]): AddressClaims {
  const skipped = new HeaderNameSet([source, 'x-forwarded-for', ...checkedHeaders.map((h) => h.toLowerCase())]);
  const listed = new HeaderNameSet([...UNCHECKED_ADDRESS_HEADERS, 'x-real-ip', 'forwarded'].filter((name) => skipped.match(name) === null));
  const spans = createSpans(MAX_CLAIMED);
  const words = new Uint32Array(4);
  return (raw, client) => {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!;
      if (skipped.match(name) !== null) continue;
      const known = listed.match(name);
      if (known === null && !isClientAddressName(name)) continue;
      const value = raw[i + 1]!;
      if (!namesOnly(value, known === 'forwarded', client, spans, words)) {
        return refusal(400, 'ambiguous_client_address', `the request carries ${name}: ${quoteUntrusted(value)}, which names another client address than the one checked (${client}), and the proxy in front passes it to the upstream: configure the proxy to remove or replace it (docs/external-authorization.md), or leave it out`);
      }
    }
    return null;
  };
}

/** Whether every entry of the value is the address `client` (canonical text). */
function namesOnly(value: string, forwarded: boolean, client: string, spans: Spans, words: Uint32Array): boolean {
  spans.count = 0;
  if (!(forwarded ? splitForwarded : splitXForwardedFor)(value, 0, spans)) return false;
  for (let k = 0; k < spans.count; k++) {
    if (spans.broken[k] === 1) return false;
    const family = parseEntryInto(value, spans.start[k]!, spans.end[k]!, words);
    if (family === 0) return false;
    if (formatIp({ family, words: family === 4 ? words.subarray(0, 1) : words }) !== client) return false;
  }
  return true;
}
