import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatIp } from '../../../src/ip/address.ts';
import { parseCidr, type Cidr } from '../../../src/ip/cidr.ts';
import { compileClientIpResolver } from '../../../src/client-ip/resolve.ts';
import type { TrustSetting } from '../../../src/client-ip/types.ts';

/**
 * Client-IP resolution over X-Forwarded-For against a small reference model, written from the
 * documented rules: an untrusted peer is the client; behind a trusted peer the walk goes right
 * to left over every entry of every line, refusing the first malformed entry it reaches, and
 * stops at the first untrusted entry (list mode) or `hops - 1` entries in (hops mode).
 */

const PROXIES: Cidr[] = [cidr('10.0.0.0/8')];
const TRUSTED = fc.tuple(fc.nat(255), fc.nat(255)).map(([a, b]) => `10.0.${a}.${b}`);
const CLIENT = fc.tuple(fc.constantFrom('198.51.100', '203.0.113', '192.0.2'), fc.nat(255)).map(([net, b]) => `${net}.${b}`);
const BROKEN = fc.constantFrom('unknown', '', '10.0.0', '0x7f.0.0.1', '127.1', '1.2.3.4:', '[10.0.0.1]', '010.0.0.1');
// Proxies may append a port: the address is what counts.
const WITH_PORT = fc.tuple(fc.oneof(TRUSTED, CLIENT), fc.integer({ min: 1, max: 65535 })).map(([ip, port]) => `${ip}:${port}`);
const ENTRY = fc.oneof({ weight: 4, arbitrary: TRUSTED }, { weight: 4, arbitrary: CLIENT }, { weight: 1, arbitrary: WITH_PORT }, { weight: 1, arbitrary: BROKEN });

function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

const address = (entry: string): string => entry.replace(/:[0-9]{1,5}$/, '');
const trusted = (entry: string): boolean => address(entry).startsWith('10.0.');
const valid = (entry: string): boolean => /^(10\.0\.[0-9]{1,3}|198\.51\.100|203\.0\.113|192\.0\.2)\.[0-9]{1,3}$/.test(address(entry));

type Outcome = { ip: string } | { reason: string };

function model(trust: TrustSetting, peer: string, entries: readonly string[]): Outcome {
  if (trust.mode === 'list' && !trusted(peer)) return { ip: peer };
  if (entries.length === 0) return { reason: 'missing_forwarded_for' };
  const stop = trust.mode === 'hops' ? Math.max(0, entries.length - trust.hops) : 0;
  for (let k = entries.length - 1; k >= stop; k--) {
    const entry = entries[k]!;
    if (!valid(entry)) return { reason: 'invalid_forwarded_for' };
    if (k === stop || (trust.mode === 'list' && !trusted(entry))) return { ip: address(entry) };
  }
  return { reason: 'unreachable' };
}

const scenario = fc.record({
  trust: fc.oneof(fc.constant<TrustSetting>({ mode: 'list', proxies: PROXIES }), fc.integer({ min: 1, max: 4 }).map((hops): TrustSetting => ({ mode: 'hops', hops }))),
  peer: fc.oneof(TRUSTED, CLIENT),
  entries: fc.array(ENTRY, { maxLength: 10 }),
  cuts: fc.array(fc.nat(10), { maxLength: 2 }),
});

describe('client IP against a reference model', () => {
  it('agrees on the client or the refusal for random peers and chains over one to three header lines', () => {
    fc.assert(fc.property(scenario, ({ trust, peer, entries, cuts }) => {
      const resolve = compileClientIpResolver({ trust, source: 'x-forwarded-for', maxEntries: 32 });
      // The same chain split over several X-Forwarded-For lines, as proxies may send it.
      const bounds = [...new Set(cuts.map((c) => Math.min(c, entries.length)))].sort((x, y) => x - y);
      const lines: string[] = [];
      let from = 0;
      for (const to of [...bounds, entries.length]) {
        if (to > from || (to === entries.length && lines.length === 0 && entries.length > 0)) lines.push(entries.slice(from, to).join(', '));
        from = Math.max(from, to);
      }
      const raw = ['Host', 'api.example', ...lines.flatMap((line) => ['X-Forwarded-For', line])];
      const expected = model(trust, peer, lines.length === 0 ? [] : lines.flatMap((line) => line.split(',').map((e) => e.trim())));
      const result = resolve(peer, raw);
      if ('ip' in expected) {
        expect(result.ok, JSON.stringify({ raw, expected })).toBe(true);
        if (result.ok) expect(formatIp(result.ip)).toBe(expected.ip);
      } else {
        expect(result.ok, JSON.stringify({ raw, expected })).toBe(false);
        if (!result.ok) expect(result.refusal.reason).toBe(expected.reason);
      }
      // Whatever else happens, an entry left of the first untrusted one is never the answer.
      if (result.ok && trust.mode === 'list' && trusted(peer)) {
        const all = lines.flatMap((line) => line.split(',').map((e) => e.trim()));
        const firstUntrusted = all.map(trusted).lastIndexOf(false);
        if (firstUntrusted >= 0) expect(formatIp(result.ip)).toBe(address(all[firstUntrusted]!));
      }
    }), { seed: 1123, numRuns: 3000 });
  });
});
