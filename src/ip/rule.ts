import { formatIp, formatIpv4, parseIp, type IpAddress } from './address.ts';
import { clip, formatCidr, hostCidr, parseCidr, type Cidr, type Parsed } from './cidr.ts';
import { compareWords, rangeToCidrs } from './range.ts';

/**
 * Access-list rules as people type them, normalized to CIDRs.
 *
 * Every accepted form becomes the minimal exact list of CIDRs it denotes, so what is stored and
 * enforced never depends on which spelling was used. Anything ambiguous is refused with a message
 * that says what would have been accepted, because a guessed rule is a hole or an outage.
 */

export interface Rule {
  /** The rule as entered, without surrounding whitespace. */
  readonly input: string;
  /** The networks it denotes, ascending, minimal and exact. */
  readonly cidrs: readonly Cidr[];
}

/** The accepted forms, for error messages and help text. */
export const RULE_FORMS =
  'an address (203.0.113.7, 2001:db8::1), a CIDR (203.0.113.0/24, 2001:db8::/48), ' +
  'an IPv4 address/netmask (203.0.113.0/255.255.255.0), a range (203.0.113.10 - 203.0.113.20, ' +
  '2001:db8::1 - 2001:db8::ff) or an IPv4 last-octet range (203.0.113.10-20)';

const DECIMAL = /^(0|[1-9][0-9]{0,2})$/;
const MAPPED_FIRST = Uint32Array.of(0, 0, 0xffff, 0);

export function parseRule(text: string): Parsed<Rule> {
  const input = text.trim();
  if (input === '') return fail(`the rule is empty: expected ${RULE_FORMS}`);
  if (input.includes('-')) return parseRange(input);
  if (input.includes('/')) return parsePrefixed(input);
  const ip = parseIp(input);
  if (!ip) return fail(`'${clip(input)}' is not a valid IPv4 or IPv6 address: expected ${RULE_FORMS}`);
  return ok(input, [hostCidr(ip)]);
}

/** Canonical text of a rule's CIDRs, as stored and shown back. */
export function formatRuleCidrs(cidrs: readonly Cidr[]): string[] {
  return cidrs.map(formatCidr);
}

function parseRange(input: string): Parsed<Rule> {
  const dash = input.indexOf('-');
  if (input.indexOf('-', dash + 1) >= 0) {
    return fail(`'${clip(input)}' has more than one '-': a range is start - end, e.g. 203.0.113.10 - 203.0.113.20`);
  }
  const startText = input.slice(0, dash).trim();
  const endText = input.slice(dash + 1).trim();
  if (startText === '' || endText === '') {
    return fail(`'${clip(input)}' is missing a range ${startText === '' ? 'start' : 'end'}: expected ${RULE_FORMS}`);
  }
  const first = parseIp(startText);
  if (!first) {
    return fail(`range start '${clip(startText)}' is not a valid IPv4 or IPv6 address: expected a range such as 203.0.113.10 - 203.0.113.20 or 203.0.113.10-20`);
  }
  if (/^[0-9]+$/.test(endText)) return parseShortRange(input, startText, first, endText);
  const last = parseIp(endText);
  if (!last) {
    return fail(`range end '${clip(endText)}' is not a valid IPv4 or IPv6 address: expected a range such as 203.0.113.10 - 203.0.113.20 or 203.0.113.10-20`);
  }
  if (first.family !== last.family) {
    return fail(`range '${clip(input)}' mixes IPv${first.family} and IPv${last.family}: both ends must be the same family`);
  }
  if (compareWords(first.words, last.words, first.words.length) > 0) {
    return fail(`range '${clip(input)}' runs backwards: write it as ${formatIp(last)} - ${formatIp(first)}`);
  }
  // Neither end can lie inside ::ffff:0:0/96 (such an address parses as IPv4), so an IPv6 range
  // that reaches it covers all of it: every IPv4 address. Stored as ::ffff:0:0/96 it would be read
  // back as 0.0.0.0/0, so one odd IPv6 range would quietly open (or close) the whole IPv4 space.
  if (first.family === 6 && compareWords(first.words, MAPPED_FIRST, 4) < 0 && compareWords(last.words, MAPPED_FIRST, 4) > 0) {
    return fail(`range '${clip(input)}' spans the IPv4-mapped block ::ffff:0:0/96, which is every IPv4 address: ` +
      'split it into IPv6 ranges below ::ffff:0:0 and above ::ffff:ffff:ffff, and write IPv4 addresses as IPv4 rules');
  }
  return ok(input, rangeToCidrs(first, last));
}

/** `203.0.113.10-20`: the end replaces the last octet of the start. */
function parseShortRange(input: string, startText: string, first: IpAddress, endText: string): Parsed<Rule> {
  // A mapped start (::ffff:…) parses as IPv4, but "last octet" of a colon form is not obvious to a reader.
  if (first.family !== 4 || startText.includes(':')) {
    return fail(`'${clip(input)}': a short range (203.0.113.10-20) needs a dotted IPv4 start; for IPv6 write both ends, e.g. 2001:db8::1 - 2001:db8::ff`);
  }
  const octet = DECIMAL.test(endText) ? Number(endText) : 256;
  if (octet > 255) {
    return fail(`short range end '${clip(endText)}' must be a last octet 0-255 without leading zeros, e.g. 203.0.113.10-20`);
  }
  const start = first.words[0]!;
  const startOctet = start & 0xff;
  if (octet < startOctet) {
    return fail(`range '${clip(input)}' runs backwards: the end octet ${octet} is below the start's ${startOctet}`);
  }
  const last: IpAddress = { family: 4, words: Uint32Array.of(((start & 0xffffff00) | octet) >>> 0) };
  return ok(input, rangeToCidrs(first, last));
}

/** `address/prefix`, or for IPv4 `address/netmask`. */
function parsePrefixed(input: string): Parsed<Rule> {
  const slash = input.indexOf('/');
  const addrText = input.slice(0, slash);
  const maskText = input.slice(slash + 1);
  const ip = parseIp(addrText);
  if (!ip) return fail(`'${clip(addrText)}' is not a valid IPv4 or IPv6 address: expected ${RULE_FORMS}`);
  if (maskText.includes('.') || maskText.includes(':')) return parseNetmask(input, addrText, ip, maskText);
  if (!DECIMAL.test(maskText)) {
    return fail(`prefix length '${clip(maskText)}' must be a decimal number (203.0.113.0/24) or an IPv4 netmask (203.0.113.0/255.255.255.0)`);
  }
  const cidr = parseCidr(input);
  if (!cidr.ok) return cidr;
  return ok(input, [cidr.value]);
}

function parseNetmask(input: string, addrText: string, ip: IpAddress, maskText: string): Parsed<Rule> {
  if (ip.family !== 4 || addrText.includes(':')) {
    return fail(`'${clip(input)}': a netmask only applies to a dotted IPv4 address; for IPv6 write a prefix length, e.g. 2001:db8::/48`);
  }
  const maskIp = maskText.includes(':') ? null : parseIp(maskText);
  if (!maskIp) {
    return fail(`netmask '${clip(maskText)}' is not a dotted IPv4 netmask: expected e.g. 203.0.113.0/255.255.255.0 or a prefix length, 203.0.113.0/24`);
  }
  const mask = maskIp.words[0]!;
  const inverse = ~mask >>> 0;
  // A netmask is ones then zeros: its inverse plus one is then a power of two.
  if ((inverse & (inverse + 1)) !== 0) {
    return fail(`netmask ${maskText} is not contiguous (its one bits must all come first, like 255.255.255.0): ` +
      'a network with a mask like this is not one CIDR; write a prefix length such as /24, or one rule per network');
  }
  const prefix = Math.clz32(inverse);
  const address = ip.words[0]!;
  const network = (address & mask) >>> 0;
  if (network !== address) {
    const net = formatIpv4(network);
    return fail(`'${clip(input)}' has host bits set: the network is ${net}/${maskText} (${net}/${prefix}), or use ${formatIpv4(address)} for the single address`);
  }
  return ok(input, [{ family: 4, words: ip.words, prefix }]);
}

function ok(input: string, cidrs: readonly Cidr[]): Parsed<Rule> {
  return { ok: true, value: { input, cidrs } };
}

function fail(error: string): Parsed<Rule> {
  return { ok: false, error };
}
