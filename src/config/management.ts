import { compileRanges, DEFAULT_RESERVED, PRIVATE_RANGES } from '../acl/reserved.ts';
import type { ValidationPolicy } from '../acl/validation.ts';
import type { Credential } from '../admin/credentials.ts';
import { isValidAccountId } from '../identity/account-id.ts';
import { parseCidr } from '../ip/cidr.ts';
import { ConfigError, type Reader } from './reader.ts';

/**
 * `validation`: the rules entries must pass. `reservedRanges` is `default`, `none`, or a list of
 * CIDRs in which the word `default` stands for the built-in list (so `[default, 100.64.0.0/10]`
 * extends it).
 */
export function readValidation(reader: Reader): ValidationPolicy {
  const section = reader.object(['maxEntries', 'reservedRanges', 'refusePrivate', 'ipv4Only']);
  const rangesReader = section.get('reservedRanges');
  const items = rangesReader.present ? rangesReader.list().map((r) => r.string().trim()) : ['default'];
  const texts: string[] = [];
  for (const [i, item] of items.entries()) {
    if (item === 'default') texts.push(...DEFAULT_RESERVED);
    else if (item === 'none') continue;
    else if (!parseCidr(item).ok) rangesReader.list()[i]!.fail("a CIDR, 'default' (the built-in reserved ranges) or 'none'");
    else texts.push(item);
  }
  const refused = compileRanges(texts, 'reserved');
  if (section.get('refusePrivate').boolean(false)) refused.push(...compileRanges(PRIVATE_RANGES, 'private'));
  return {
    maxEntries: section.get('maxEntries').integer(1, 100_000, 50),
    ipv4Only: section.get('ipv4Only').boolean(false),
    refused,
  };
}

/**
 * `admin.credentials`: tokens kept as SHA-256 hex digests only (`printf %s TOKEN | sha256sum`),
 * each with a name (shown in the audit trail) and a role; `account` credentials name their account.
 */
export function readCredentials(reader: Reader): Credential[] {
  const names = new Set<string>();
  return reader.list().map((item) => {
    const entry = item.object(['name', 'role', 'account', 'tokenSha256']);
    const name = entry.get('name').string();
    if (names.has(name)) throw new ConfigError(`${entry.get('name').path} '${name}' is used twice: credential names must be unique (the audit trail shows them)`);
    names.add(name);
    const role = entry.get('role').oneOf(['admin', 'account', 'read-only'] as const, 'read-only');
    const hex = entry.get('tokenSha256').string();
    if (!/^[0-9a-fA-F]{64}$/.test(hex)) entry.get('tokenSha256').fail('the SHA-256 of the token as 64 hex digits (printf %s "$TOKEN" | sha256sum)');
    const tokenSha256 = Buffer.from(hex, 'hex');
    if (role !== 'account') {
      if (entry.has('account')) throw new ConfigError(`${entry.get('account').path} is only for role account (credential '${name}' is ${role})`);
      return { name, role, tokenSha256 };
    }
    const account = entry.get('account').string();
    if (!isValidAccountId(account)) entry.get('account').fail('an account id');
    return { name, role, account, tokenSha256 };
  });
}
