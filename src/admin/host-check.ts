import { networkInterfaces } from 'node:os';
import { refusal, type Refusal } from '../http/refusal.ts';
import { formatIp, parseIp } from '../ip/address.ts';

/** How long the machine's own addresses are taken as read before they are looked up again. */
const OWN_ADDRESSES_TTL_MS = 10_000;

/**
 * Which `Host` the admin listener answers to: the names configured (`admin.allowedHosts`, exact or
 * `*.suffix`), loopback (`localhost`, `*.localhost`, 127.0.0.0/8, ::1) and the machine's own
 * addresses (a pod's IP, which kubelet probes and Prometheus use). A browser page on another
 * origin whose name an attacker re-points at the gateway's address (DNS rebinding) sends its own
 * name as Host, so it reaches nothing: 421 `unknown_host`.
 */
export function compileHostCheck(allowed: readonly string[], ownAddresses: () => readonly string[] = machineAddresses): (host: string | undefined) => Refusal | null {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const name of allowed) {
    const lower = name.toLowerCase().replace(/\.$/, '');
    if (lower.startsWith('*.')) suffixes.push(lower.slice(1));
    else exact.add(lower);
  }
  let own: { at: number; addresses: Set<string> } | null = null;
  const isOwn = (address: string): boolean => {
    const now = performance.now();
    if (own === null || now - own.at > OWN_ADDRESSES_TTL_MS) own = { at: now, addresses: new Set(ownAddresses()) };
    return own.addresses.has(address);
  };
  return (header) => {
    if (header === undefined || header === '') return refusal(400, 'missing_host', 'the admin API needs a Host header naming this gateway');
    const name = hostName(header);
    if (name === null) return misdirected(header);
    const ip = parseIp(name);
    if (ip !== null) {
      const canonical = formatIp(ip);
      return (ip.family === 4 && ip.words[0]! >>> 24 === 127) || canonical === '::1' || isOwn(canonical) ? null : misdirected(header);
    }
    if (name === 'localhost' || name.endsWith('.localhost') || exact.has(name) || suffixes.some((s) => name.endsWith(s) && name.length > s.length)) return null;
    return misdirected(header);
  };
}

/** The name of a Host header without its port, lower case, without a trailing dot; null if malformed. */
function hostName(header: string): string | null {
  const text = header.trim().toLowerCase();
  const port = (p: string): boolean => /^[0-9]{1,5}$/.test(p) && Number(p) <= 65_535;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0 || (end + 1 < text.length && !(text[end + 1] === ':' && port(text.slice(end + 2))))) return null;
    return text.slice(1, end);
  }
  const colon = text.lastIndexOf(':');
  if (colon >= 0 && !port(text.slice(colon + 1))) return null;
  const name = colon >= 0 ? text.slice(0, colon) : text;
  if (!/^[a-z0-9._-]{1,253}$/.test(name)) return null;
  return name.replace(/\.$/, '');
}

function misdirected(header: string): Refusal {
  const shown = header.length > 64 ? `${header.slice(0, 64)}…` : header;
  return refusal(421, 'unknown_host', `this admin listener does not answer to Host ${JSON.stringify(shown)}: use its address, localhost, or a name listed in admin.allowedHosts`);
}

/** Every address of the machine's interfaces, canonical. */
function machineAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const item of list ?? []) {
      const ip = parseIp(item.address.replace(/%.*$/, ''));
      if (ip !== null) out.push(formatIp(ip));
    }
  }
  return out;
}
