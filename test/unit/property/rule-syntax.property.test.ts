import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatIp, formatIpv4, type Family } from '../../../src/ip/address.ts';
import { formatCidr } from '../../../src/ip/cidr.ts';
import { formatRuleCidrs, parseRule } from '../../../src/ip/rule.ts';
import { address, bits, cidrOfBig, maskBig, toBig } from '../ip/helpers.ts';

/** Every accepted spelling of a rule, printed as CIDRs and parsed again, denotes the same networks. */

const family = fc.constantFrom<Family>(4, 6);
const value = (f: Family) => fc.bigInt({ min: 0n, max: (1n << BigInt(bits(f))) - 1n });

const roundTrip = (text: string): void => {
  const parsed = parseRule(text);
  expect(parsed.ok, text).toBe(true);
  if (!parsed.ok) return;
  const printed = formatRuleCidrs(parsed.value.cidrs);
  const again = printed.flatMap((cidr) => {
    const back = parseRule(cidr);
    expect(back.ok, cidr).toBe(true);
    return back.ok ? back.value.cidrs.map(formatCidr) : [];
  });
  expect(again).toEqual(parsed.value.cidrs.map(formatCidr));
};

describe('rule syntax: parse, print, parse', () => {
  it('round-trips addresses, CIDRs and dash ranges in both families, and IPv4 netmasks', () => {
    fc.assert(fc.property(family.chain((f) => fc.tuple(fc.constant(f), value(f), value(f), fc.integer({ min: 0, max: bits(f) }), fc.integer({ min: 0, max: 3 }))), ([f, x, y, prefix, form]) => {
      const [low, high] = x <= y ? [x, y] : [y, x];
      const network = cidrOfBig(f, x & maskBig(f, prefix), prefix);
      switch (form) {
        case 0: return roundTrip(formatIp(address(f, x)));
        case 1: return roundTrip(formatCidr(network));
        case 2: return roundTrip(`${formatIp(address(f, low))} - ${formatIp(address(f, high))}`);
        default: {
          if (f === 6) return roundTrip(formatCidr(network));
          const mask = Number(maskBig(4, prefix));
          const text = `${formatIp(address(4, toBig(network.words, 4)))}/${formatIpv4(mask)}`;
          const parsed = parseRule(text);
          expect(parsed.ok && parsed.value.cidrs.map(formatCidr)).toEqual([formatCidr(network)]);
          return roundTrip(text);
        }
      }
    }), { seed: 42, numRuns: 1000 });
  });
});
