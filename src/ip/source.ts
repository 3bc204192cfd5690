import { formatCidr, networkOf } from './cidr.ts';
import { formatIp, parseIp } from './address.ts';

/**
 * The IPv4 address, or the IPv6 /64, a socket address counts under for per-client budgets: one
 * host usually holds a whole /64, so counting its addresses apart would give it 2^64 budgets.
 */
export function sourceOf(address: string): string {
  const ip = parseIp(address);
  if (ip === null) return address;
  return ip.family === 4 ? formatIp(ip) : formatCidr(networkOf(ip, 64));
}
