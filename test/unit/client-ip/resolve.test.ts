import { describe, it, expect } from 'vitest';
import { compileClientIpResolver, compileTrustCheck } from '../../../src/client-ip/resolve.ts';
import type { ClientIpResolver, ClientIpResult, ForwardedSource, TrustSetting } from '../../../src/client-ip/types.ts';
import { formatIp, parseIp } from '../../../src/ip/address.ts';
import { parseCidr, type Cidr } from '../../../src/ip/cidr.ts';

const PROXY = '10.0.0.1';
const CLIENT = '203.0.113.9';
const SPOOF = '198.51.100.7';
const A = '198.51.100.1';
const B = '198.51.100.2';
const C = '198.51.100.3';

function cidrs(...texts: string[]): Cidr[] {
  return texts.map((text) => {
    const parsed = parseCidr(text);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.value;
  });
}

const LIST: TrustSetting = { mode: 'list', proxies: cidrs('10.0.0.0/24', 'fd00::/8') };
const hops = (n: number): TrustSetting => ({ mode: 'hops', hops: n });

function resolver(trust: TrustSetting, source: ForwardedSource = 'x-forwarded-for', maxEntries = 32): ClientIpResolver {
  return compileClientIpResolver({ trust, source, maxEntries });
}

/** Builds node-style rawHeaders; a bare string is one X-Forwarded-For line. */
function raw(...lines: (string | [string, string])[]): string[] {
  return lines.flatMap((line) => (typeof line === 'string' ? ['X-Forwarded-For', line] : line));
}

/** One comparable string per outcome: where the client came from and who it is, or why not. */
function outcome(result: ClientIpResult): string {
  if (!result.ok) return `refused ${result.refusal.reason}`;
  return `${result.fromHeader ? 'header' : 'peer'} ${formatIp(result.ip)}`;
}

function refusalOf(result: ClientIpResult): { status: number; reason: string; message: string } {
  if (result.ok) throw new Error(`expected a refusal, got ${formatIp(result.ip)}`);
  return result.refusal;
}

describe('untrusted peers: the peer is the client and forwarding headers are ignored', () => {
  const cases: [string, TrustSetting, ForwardedSource, string[]][] = [
    ['no trust, spoofed X-Forwarded-For', { mode: 'none' }, 'x-forwarded-for', raw(CLIENT)],
    ['no trust, spoofed Forwarded', { mode: 'none' }, 'forwarded', raw(['Forwarded', `for=${CLIENT}`])],
    ['no trust, spoofed X-Real-IP', { mode: 'none' }, 'x-real-ip', raw(['X-Real-IP', CLIENT])],
    ['hops 0', hops(0), 'x-forwarded-for', raw(`${CLIENT}, 10.0.0.2`)],
    ['peer not on the list', LIST, 'x-forwarded-for', raw(CLIENT)],
    ['peer not on the list, trusted-looking chain', LIST, 'x-forwarded-for', raw(`${CLIENT}, 10.0.0.2`)],
    ['peer not on the list, X-Real-IP', LIST, 'x-real-ip', raw(['X-Real-IP', CLIENT])],
    ['peer not on the list, two X-Real-IP lines', LIST, 'x-real-ip', raw(['X-Real-IP', CLIENT], ['X-Real-IP', CLIENT])],
    ['peer not on the list, malformed header', LIST, 'x-forwarded-for', raw('127.1, , garbage')],
    ['peer not on the list, over-long chain', LIST, 'x-forwarded-for', raw(Array(100).fill(CLIENT).join(','))],
    ['empty proxy list', { mode: 'list', proxies: [] }, 'x-forwarded-for', raw(CLIENT)],
  ];
  it.each(cases)('%s', (_label, trust, source, headers) => {
    expect(outcome(resolver(trust, source)(SPOOF, headers))).toBe(`peer ${SPOOF}`);
  });
});

describe('list mode: walk from the right, skipping trusted proxies', () => {
  const cases: [string, string, string][] = [
    ['single entry', CLIENT, `header ${CLIENT}`],
    ['client-supplied entries left of the client are ignored', `${SPOOF}, ${CLIENT}`, `header ${CLIENT}`],
    ['one trusted hop in the chain', `${SPOOF}, ${CLIENT}, 10.0.0.2`, `header ${CLIENT}`],
    ['several trusted hops', `${CLIENT}, 10.0.0.5, 10.0.0.3, 10.0.0.2`, `header ${CLIENT}`],
    ['trusted IPv6 hop', `${CLIENT}, fd00::2`, `header ${CLIENT}`],
    ['trusted hop written IPv4-mapped', `${CLIENT}, ::ffff:10.0.0.2`, `header ${CLIENT}`],
    ['trusted hop with a port', `${CLIENT}, 10.0.0.2:8080`, `header ${CLIENT}`],
    ['every entry trusted: the leftmost', '10.0.0.7, 10.0.0.3, 10.0.0.2', 'header 10.0.0.7'],
    ['a single trusted entry', '10.0.0.9', 'header 10.0.0.9'],
    ['a spoofed trusted address left of the client changes nothing', `10.0.0.9, ${CLIENT}`, `header ${CLIENT}`],
    ['malformed entries left of the client are not examined', `garbage, 127.1, , ${SPOOF}:99999, ${CLIENT}`, `header ${CLIENT}`],
    ['malformed entry at the stopping point', `${SPOOF}, 127.1`, 'refused invalid_forwarded_for'],
    ['malformed entry right of the client', `${CLIENT}, 10.0.0.2:http`, 'refused invalid_forwarded_for'],
    ['malformed leftmost entry of an all-trusted chain', '0x0a.0.0.7, 10.0.0.2', 'refused invalid_forwarded_for'],
    ['empty item right of the client', `${CLIENT}, , 10.0.0.2`, 'refused invalid_forwarded_for'],
    ['doubled comma at the stopping point', `${CLIENT},,`, 'refused invalid_forwarded_for'],
    ['trailing comma', `${CLIENT},`, 'refused invalid_forwarded_for'],
    ['empty item after trusted hops', ', 10.0.0.3, 10.0.0.2', 'refused invalid_forwarded_for'],
    ['empty header value', '', 'refused invalid_forwarded_for'],
  ];
  it.each(cases)('%s: %j', (_label, xff, expected) => {
    expect(outcome(resolver(LIST)(PROXY, raw(xff)))).toBe(expected);
  });

  it('quotes the malformed entry and never answers with a proxy address', () => {
    const result = resolver(LIST)(PROXY, raw(`${CLIENT}, 10.0.0.2, 10.0.0.256 `));
    expect(refusalOf(result)).toEqual({
      status: 400,
      reason: 'invalid_forwarded_for',
      message: "the X-Forwarded-For entry '10.0.0.256' is not an IP address",
    });
  });

  it('clips a long malformed entry in the message', () => {
    const message = refusalOf(resolver(LIST)(PROXY, raw('x'.repeat(500)))).message;
    expect(message).toContain(`'${'x'.repeat(64)}…'`);
    expect(message.length).toBeLessThan(120);
  });

  it('names an empty entry as such', () => {
    expect(refusalOf(resolver(LIST)(PROXY, raw(`${CLIENT},`))).message).toBe('the X-Forwarded-For header has an empty entry');
  });
});

describe('hops mode: the peer and the hops-1 rightmost entries are proxies', () => {
  const cases: [number, string, string][] = [
    [1, `${A}, ${B}, ${C}`, `header ${C}`],
    [2, `${A}, ${B}, ${C}`, `header ${B}`],
    [3, `${A}, ${B}, ${C}`, `header ${A}`],
    [4, `${A}, ${B}, ${C}`, `header ${A}`],
    [16, `${A}, ${B}, ${C}`, `header ${A}`],
    [2, `${SPOOF}, ${A}, ${B}, ${C}`, `header ${B}`],
    [3, `${SPOOF}, ${A}, ${B}, ${C}`, `header ${A}`],
    [1, A, `header ${A}`],
    [2, A, `header ${A}`],
    [3, `${A}, ${B}`, `header ${A}`],
    // Trusted by position, not by address: private addresses are counted like any other.
    [2, `${CLIENT}, 10.0.0.2`, `header ${CLIENT}`],
    [1, `${CLIENT}, 10.0.0.2`, 'header 10.0.0.2'],
    // Entries left of the chosen one are not examined.
    [2, `junk, 127.1, ${B}, ${C}`, `header ${B}`],
    [1, `, ${C}`, `header ${C}`],
    // The proxies' own entries, right of the chosen one, must parse.
    [2, `${A}, 127.1`, 'refused invalid_forwarded_for'],
    [3, `${A}, ${B}, 10.0.0.2:http`, 'refused invalid_forwarded_for'],
    [2, `127.1, ${B}`, 'refused invalid_forwarded_for'],
    [1, `${A},`, 'refused invalid_forwarded_for'],
    [2, `${A},,${C}`, 'refused invalid_forwarded_for'],
    [1, `${A},,${C}`, `header ${C}`],
    // With fewer entries than hops the leftmost is chosen, so it is examined.
    [4, `127.1, ${B}`, 'refused invalid_forwarded_for'],
  ];
  it.each(cases)('hops %i, %j', (n, xff, expected) => {
    // The peer's own address plays no part: a public address is still the first proxy.
    expect(outcome(resolver(hops(n))(SPOOF, raw(xff)))).toBe(expected);
  });
});

describe('several header lines read as one list, in order', () => {
  const cases: [string, TrustSetting, string[], string][] = [
    ['list: client on the first line, proxy on the second', LIST, raw(CLIENT, '10.0.0.2'), `header ${CLIENT}`],
    ['list: the last line is the rightmost', LIST, raw(CLIENT, SPOOF), `header ${SPOOF}`],
    ['list: all trusted over two lines', LIST, raw('10.0.0.4, 10.0.0.3', '10.0.0.2'), 'header 10.0.0.4'],
    ['hops 1', hops(1), raw(`${A}, ${B}`, C), `header ${C}`],
    ['hops 2 crosses the line boundary', hops(2), raw(`${A}, ${B}`, C), `header ${B}`],
    ['hops 2 within the last line', hops(2), raw(A, `${B}, ${C}`), `header ${B}`],
    ['hops 3', hops(3), raw(A, B, C), `header ${A}`],
    ['lines interleaved with other headers', hops(2), ['x-forwarded-for', A, 'Host', 'example.com', 'X-Forwarded-For', B, 'Accept', '*/*'], `header ${A}`],
    ['an empty last line is an empty entry', hops(2), raw(A, ''), 'refused invalid_forwarded_for'],
    ['a malformed first line left of the client is not examined', LIST, raw('127.1', CLIENT), `header ${CLIENT}`],
  ];
  it.each(cases)('%s', (_label, trust, headers, expected) => {
    expect(outcome(resolver(trust)(PROXY, headers))).toBe(expected);
  });
});

describe('header names match in any case', () => {
  const names = ['x-forwarded-for', 'X-Forwarded-For', 'X-FORWARDED-FOR', 'x-FoRwArDeD-fOr'];
  it.each(names)('%s', (name) => {
    expect(outcome(resolver(LIST)(PROXY, [name, CLIENT]))).toBe(`header ${CLIENT}`);
  });

  const others = ['x-forwarded-for ', 'x_forwarded_for', 'x-forwarded-fo', 'x\rforwarded\rfor', 'x-forwarded-host', 'forwarded'];
  it.each(others)('but not %j', (name) => {
    expect(outcome(resolver(LIST)(PROXY, [name, CLIENT]))).toBe('refused missing_forwarded_for');
  });

  it('for Forwarded and X-Real-IP too', () => {
    expect(outcome(resolver(LIST, 'forwarded')(PROXY, ['FORWARDED', `for=${CLIENT}`]))).toBe(`header ${CLIENT}`);
    expect(outcome(resolver(LIST, 'x-real-ip')(PROXY, ['x-REAL-ip', CLIENT]))).toBe(`header ${CLIENT}`);
  });
});

describe('IPv4-mapped addresses are their IPv4 address', () => {
  it('a mapped peer is checked against IPv4 proxies', () => {
    const trust: TrustSetting = { mode: 'list', proxies: cidrs('127.0.0.1/32') };
    expect(outcome(resolver(trust)('::ffff:127.0.0.1', raw(CLIENT)))).toBe(`header ${CLIENT}`);
    expect(outcome(resolver(trust)('::ffff:127.0.0.2', raw(CLIENT)))).toBe('peer 127.0.0.2');
  });

  it('a mapped peer that is the client comes back as IPv4', () => {
    const result = resolver(LIST)(`::ffff:${SPOOF}`, raw(CLIENT));
    expect(result.ok && result.ip.family).toBe(4);
    expect(result.ok && [...result.ip.words]).toEqual([...parseIp(SPOOF)!.words]);
  });

  it('a proxy listed in mapped form trusts the IPv4 peer', () => {
    const trust: TrustSetting = { mode: 'list', proxies: cidrs('::ffff:10.0.0.0/104') };
    expect(outcome(resolver(trust)('10.1.2.3', raw(CLIENT)))).toBe(`header ${CLIENT}`);
    expect(outcome(resolver(trust)('::ffff:10.1.2.3', raw(CLIENT)))).toBe(`header ${CLIENT}`);
  });

  it('a mapped client entry comes back as IPv4', () => {
    const result = resolver(LIST)(PROXY, raw(`::ffff:${CLIENT}`));
    expect(outcome(result)).toBe(`header ${CLIENT}`);
    expect(result.ok && result.ip.words.length).toBe(1);
  });

  it('IPv6 peers and clients stay IPv6', () => {
    const result = resolver(LIST)('fd00::1', raw('2001:db8::7'));
    expect(outcome(result)).toBe('header 2001:db8::7');
    expect(result.ok && result.ip.family).toBe(6);
    expect(outcome(resolver(LIST)('fe00::1', raw(CLIENT)))).toBe('peer fe00::1');
  });
});

describe('ports, brackets and blanks in entries', () => {
  const cases: [string, string][] = [
    [`${CLIENT}:5678`, `header ${CLIENT}`],
    ['[2001:db8::1]:443', 'header 2001:db8::1'],
    ['[2001:db8::1]', 'header 2001:db8::1'],
    ['2001:db8::1', 'header 2001:db8::1'],
    [`  ${CLIENT}  ,\t10.0.0.2:80\t`, `header ${CLIENT}`],
    [`${CLIENT},[fd00::9]:443`, `header ${CLIENT}`],
    [`${CLIENT}:99999`, 'refused invalid_forwarded_for'],
    ['[10.0.0.2]', 'refused invalid_forwarded_for'],
    ['[2001:db8::1]:', 'refused invalid_forwarded_for'],
    ['fe80::1%eth0', 'refused invalid_forwarded_for'],
  ];
  it.each(cases)('%j', (xff, expected) => {
    expect(outcome(resolver(LIST)(PROXY, raw(xff)))).toBe(expected);
  });
});

describe('a trusted peer that sent no forwarding header', () => {
  it('is refused in list mode, naming the proxy and the header', () => {
    expect(refusalOf(resolver(LIST)(PROXY, ['Host', 'example.com']))).toEqual({
      status: 400,
      reason: 'missing_forwarded_for',
      message: "the trusted proxy at 10.0.0.1 sent no X-Forwarded-For header, so the client's address is unknown",
    });
  });

  it('names a mapped proxy by its IPv4 address', () => {
    expect(refusalOf(resolver(LIST)('::ffff:10.0.0.1', [])).message).toContain('proxy at 10.0.0.1 sent');
  });

  it('is refused in hops mode', () => {
    expect(outcome(resolver(hops(1))(SPOOF, []))).toBe('refused missing_forwarded_for');
    expect(outcome(resolver(hops(3))('2001:db8::9', ['Host', 'x']))).toBe('refused missing_forwarded_for');
  });

  it('names the configured header, and does not fall back to another one', () => {
    expect(refusalOf(resolver(LIST, 'forwarded')(PROXY, raw(CLIENT))).message).toContain('sent no Forwarded header');
    expect(refusalOf(resolver(LIST, 'x-real-ip')(PROXY, raw(CLIENT))).message).toContain('sent no X-Real-IP header');
    expect(outcome(resolver(LIST)(PROXY, ['X-Real-IP', CLIENT, 'Forwarded', `for=${CLIENT}`]))).toBe('refused missing_forwarded_for');
  });
});

describe('the chain length is bounded', () => {
  const chain = (n: number): string => Array.from({ length: n }, (_, i) => `198.51.100.${i + 1}`).join(', ');

  it('accepts exactly maxEntries entries and refuses one more', () => {
    expect(outcome(resolver(hops(1), 'x-forwarded-for', 3)(PROXY, raw(chain(3))))).toBe('header 198.51.100.3');
    expect(refusalOf(resolver(hops(1), 'x-forwarded-for', 3)(PROXY, raw(chain(4))))).toEqual({
      status: 400,
      reason: 'forwarded_chain_too_long',
      message: 'the X-Forwarded-For header carries more than 3 entries',
    });
  });

  it('counts across header lines', () => {
    expect(outcome(resolver(LIST, 'x-forwarded-for', 3)(PROXY, raw(chain(2), chain(1))))).toBe('header 198.51.100.1');
    expect(outcome(resolver(LIST, 'x-forwarded-for', 3)(PROXY, raw(chain(2), chain(2))))).toBe('refused forwarded_chain_too_long');
  });

  it('counts empty items', () => {
    expect(outcome(resolver(hops(1), 'x-forwarded-for', 3)(PROXY, raw(`,,,${CLIENT}`)))).toBe('refused forwarded_chain_too_long');
  });

  it('refuses even when the walk would stop at the rightmost entry', () => {
    expect(outcome(resolver(LIST, 'x-forwarded-for', 3)(PROXY, raw(`${chain(3)}, ${CLIENT}`)))).toBe('refused forwarded_chain_too_long');
  });

  it('uses the configured default of 32 like any other bound', () => {
    expect(outcome(resolver(LIST)(PROXY, raw(chain(32))))).toBe('header 198.51.100.32');
    expect(outcome(resolver(LIST)(PROXY, raw(chain(33))))).toBe('refused forwarded_chain_too_long');
  });

  it('counts Forwarded elements', () => {
    const forwarded = (n: number): string[] => ['Forwarded', Array.from({ length: n }, (_, i) => `for=198.51.100.${i + 1}`).join(', ')];
    expect(outcome(resolver(LIST, 'forwarded', 2)(PROXY, forwarded(2)))).toBe('header 198.51.100.2');
    expect(outcome(resolver(LIST, 'forwarded', 2)(PROXY, forwarded(3)))).toBe('refused forwarded_chain_too_long');
  });
});

describe('Forwarded (RFC 7239)', () => {
  const cases: [string, string, string][] = [
    ['plain for=', `for=${CLIENT}`, `header ${CLIENT}`],
    ['quoted value, upper-case name', `For="${CLIENT}"`, `header ${CLIENT}`],
    ['other parameters around it', `proto=https;FOR=${CLIENT};by=10.0.0.1`, `header ${CLIENT}`],
    ['blanks around parameters', ` for = ${CLIENT} ; proto=http `, `header ${CLIENT}`],
    ['empty parameters are allowed', `;for=${CLIENT};;proto=http;`, `header ${CLIENT}`],
    ['quoted IPv6 with port', 'for="[2001:db8:cafe::17]:4711"', 'header 2001:db8:cafe::17'],
    ['quoted IPv6 without port', 'for="[2001:db8:cafe::17]"', 'header 2001:db8:cafe::17'],
    ['quoted IPv4 with port', `for="${CLIENT}:8080"`, `header ${CLIENT}`],
    ['several elements, trusted hop skipped', `for=${SPOOF}, for=${CLIENT};proto=http, for=10.0.0.2`, `header ${CLIENT}`],
    ['separators inside a quoted value do not split', `for=${SPOOF};host="a,b;c", for=${CLIENT}`, `header ${CLIENT}`],
    ['an escaped quote does not end the quoted value', `for=${SPOOF};host="a\\",b", for=${CLIENT}`, `header ${CLIENT}`],
    ['unknown left of the client is not examined', `for=unknown, for=${CLIENT}`, `header ${CLIENT}`],
    ['unknown', 'for=unknown', 'refused invalid_forwarded_for'],
    ['obfuscated identifier', 'for=_hidden', 'refused invalid_forwarded_for'],
    ['quoted obfuscated identifier', 'for="_gazonk"', 'refused invalid_forwarded_for'],
    ['unknown written by a trusted hop', `for=${CLIENT}, for=unknown`, 'refused invalid_forwarded_for'],
    ['obfuscated port', `for="${CLIENT}:_abc"`, 'refused invalid_forwarded_for'],
    ['element without for=', 'proto=https;by=10.0.0.1', 'refused invalid_forwarded_for'],
    ['bare address without for=', CLIENT, 'refused invalid_forwarded_for'],
    ['two for= in one element', `for=${SPOOF};for=${CLIENT}`, 'refused invalid_forwarded_for'],
    ['parameter without =', `for=${CLIENT};secure`, 'refused invalid_forwarded_for'],
    ['empty element at the stopping point', `for=${CLIENT},`, 'refused invalid_forwarded_for'],
    ['empty element right of the client', `for=${CLIENT},,for=10.0.0.2`, 'refused invalid_forwarded_for'],
    ['unterminated quote', `for="${CLIENT}`, 'refused invalid_forwarded_for'],
    ['escape inside the value', `for="203.0.113.\\9"`, 'refused invalid_forwarded_for'],
    ['escape at the very end', `for="${CLIENT}\\`, 'refused invalid_forwarded_for'],
    ['empty quoted value', 'for=""', 'refused invalid_forwarded_for'],
    ['unbracketed IPv6 is still one address', 'for=2001:db8::1', 'header 2001:db8::1'],
  ];
  it.each(cases)('%s: %j', (_label, value, expected) => {
    expect(outcome(resolver(LIST, 'forwarded')(PROXY, ['Forwarded', value]))).toBe(expected);
  });

  it('counts hops by element, with quoted separators inside one element', () => {
    const value = `for=${A};host="x,y", for=${B}`;
    expect(outcome(resolver(hops(1), 'forwarded')(PROXY, ['Forwarded', value]))).toBe(`header ${B}`);
    expect(outcome(resolver(hops(2), 'forwarded')(PROXY, ['Forwarded', value]))).toBe(`header ${A}`);
  });

  it('keeps a quote left open by the client inside the client\'s own line', () => {
    const headers = ['Forwarded', `for="${SPOOF}`, 'forwarded', `for=${CLIENT}`];
    expect(outcome(resolver(LIST, 'forwarded')(PROXY, headers))).toBe(`header ${CLIENT}`);
    expect(outcome(resolver(hops(1), 'forwarded')(PROXY, headers))).toBe(`header ${CLIENT}`);
    expect(outcome(resolver(hops(2), 'forwarded')(PROXY, headers))).toBe('refused invalid_forwarded_for');
  });

  it('quotes what it could not use', () => {
    expect(refusalOf(resolver(LIST, 'forwarded')(PROXY, ['Forwarded', 'for=unknown'])).message)
      .toBe("the Forwarded for= value 'unknown' is not an IP address");
    expect(refusalOf(resolver(LIST, 'forwarded')(PROXY, ['Forwarded', ' proto=https '])).message)
      .toBe("the Forwarded element 'proto=https' does not carry exactly one well-formed for= parameter");
  });
});

describe('X-Real-IP', () => {
  const cases: [string, TrustSetting, string[], string][] = [
    ['from a listed proxy', LIST, ['X-Real-IP', CLIENT], `header ${CLIENT}`],
    ['the value is taken even when it is itself a proxy', LIST, ['X-Real-IP', '10.0.0.5'], 'header 10.0.0.5'],
    ['hops 1', hops(1), ['X-Real-IP', CLIENT], `header ${CLIENT}`],
    ['hops 3 still takes the single value', hops(3), ['X-Real-IP', CLIENT], `header ${CLIENT}`],
    ['with port and brackets', LIST, ['X-Real-IP', ' [2001:db8::1]:443 '], 'header 2001:db8::1'],
    ['mapped value', LIST, ['X-Real-IP', `::ffff:${CLIENT}`], `header ${CLIENT}`],
    ['malformed', LIST, ['X-Real-IP', '127.1'], 'refused invalid_forwarded_for'],
    ['a list is not one address', LIST, ['X-Real-IP', `${CLIENT}, 10.0.0.2`], 'refused invalid_forwarded_for'],
    ['empty', LIST, ['X-Real-IP', ''], 'refused invalid_forwarded_for'],
    ['two lines', LIST, ['X-Real-IP', CLIENT, 'x-real-ip', CLIENT], 'refused invalid_forwarded_for'],
    ['two lines, hops mode', hops(1), ['X-Real-IP', CLIENT, 'Accept', '*/*', 'X-REAL-IP', SPOOF], 'refused invalid_forwarded_for'],
    ['missing', LIST, ['X-Forwarded-For', CLIENT], 'refused missing_forwarded_for'],
  ];
  it.each(cases)('%s', (_label, trust, headers, expected) => {
    expect(outcome(resolver(trust, 'x-real-ip')(PROXY, headers))).toBe(expected);
  });

  it('explains a repeated header', () => {
    expect(refusalOf(resolver(LIST, 'x-real-ip')(PROXY, ['X-Real-IP', CLIENT, 'X-Real-IP', CLIENT])).message).toContain('more than one X-Real-IP');
  });
});

describe('an unreadable peer fails closed', () => {
  const peers: [string, string | undefined][] = [
    ['missing', undefined],
    ['empty', ''],
    ['zone id', 'fe80::1%eth0'],
    ['not an address', 'localhost'],
    ['short IPv4', '127.1'],
  ];
  const trusts: [string, TrustSetting][] = [['none', { mode: 'none' }], ['list', LIST], ['hops', hops(1)]];
  const sources: ForwardedSource[] = ['x-forwarded-for', 'forwarded', 'x-real-ip'];
  for (const [trustLabel, trust] of trusts) {
    for (const source of sources) {
      it.each(peers)(`${trustLabel}/${source}: %s`, (_label, peer) => {
        const result = resolver(trust, source)(peer, raw(CLIENT, ['Forwarded', `for=${CLIENT}`], ['X-Real-IP', CLIENT]));
        expect(refusalOf(result).reason).toBe('invalid_peer');
        expect(refusalOf(result).status).toBe(400);
      });
    }
  }

  it('quotes the peer', () => {
    expect(refusalOf(resolver(LIST)('localhost', [])).message).toBe("the connection's peer address 'localhost' is not an IP address");
    expect(refusalOf(resolver(LIST)(undefined, [])).message).toBe('the connection reports no peer address');
  });
});

describe('compiled resolvers', () => {
  it('return addresses that later calls do not overwrite', () => {
    for (const trust of [LIST, hops(1), { mode: 'none' } as const]) {
      const resolve = resolver(trust);
      const first = resolve(PROXY, raw(CLIENT));
      resolve('fd00::1', raw('2001:db8::99'));
      resolve(SPOOF, raw(A));
      expect(first.ok && formatIp(first.ip)).toBe(trust.mode === 'none' ? PROXY : CLIENT);
    }
  });

  it('do not carry entries over from one request to the next', () => {
    const resolve = resolver(hops(3), 'x-forwarded-for', 4);
    expect(outcome(resolve(PROXY, raw(`${A}, ${B}, ${C}, ${CLIENT}`)))).toBe(`header ${B}`);
    expect(outcome(resolve(PROXY, raw(C)))).toBe(`header ${C}`);
    expect(outcome(resolve(PROXY, raw(`${A}, ${B}, ${C}, ${CLIENT}`)))).toBe(`header ${B}`);
  });

  it('refuse impossible settings at compile time', () => {
    expect(() => resolver(hops(17))).toThrow(/0-16/);
    expect(() => resolver(hops(-1))).toThrow(/0-16/);
    expect(() => resolver(hops(1.5))).toThrow(/0-16/);
    expect(() => resolver(LIST, 'x-forwarded-for', 0)).toThrow(/maxEntries/);
  });
});

describe('compileTrustCheck', () => {
  const cases: [string[], string, boolean][] = [
    [['10.0.0.0/24'], '10.0.0.255', true],
    [['10.0.0.0/24'], '10.0.1.0', false],
    [['10.0.0.0/24'], '::ffff:10.0.0.1', true],
    [['192.0.2.1/32'], '192.0.2.1', true],
    [['192.0.2.1/32'], '192.0.2.2', false],
    [['0.0.0.0/0'], '255.255.255.255', true],
    [['0.0.0.0/0'], '2001:db8::1', false],
    [['::/0'], '2001:db8::1', true],
    [['::/0'], '192.0.2.1', false],
    [['2001:db8::/32'], '2001:db8:ffff::1', true],
    [['2001:db8::/32'], '2001:db9::1', false],
    [['2001:db8::1/128'], '2001:db8::1', true],
    [['2001:db8::1/128'], '2001:db8::2', false],
    [['2001:db8::/127'], '2001:db8::1', true],
    [['10.0.0.0/8', '2001:db8::/64', '172.16.0.0/12'], '172.31.255.255', true],
    [['10.0.0.0/8', '2001:db8::/64', '172.16.0.0/12'], '2001:db8::abcd', true],
    [['10.0.0.0/8', '2001:db8::/64', '172.16.0.0/12'], '2001:db8:0:1::', false],
    [[], '10.0.0.1', false],
  ];
  it.each(cases)('%j contains %s: %s', (networks, address, expected) => {
    const ip = parseIp(address)!;
    const words = new Uint32Array(4);
    words.set(ip.words);
    expect(compileTrustCheck(cidrs(...networks))(ip.family, words)).toBe(expected);
  });
});
