import type { AccountRecord, AccountSettings, AclEntry, ApiKeyRecord } from './types.ts';

/**
 * Checks a record read back from storage. Stores write only valid records, so anything else means
 * the data was damaged or edited by hand: it is refused whole, naming where, rather than enforced
 * with a piece missing.
 */
export function parseStoredRecord(raw: unknown, account: string, origin: string): AccountRecord {
  const where = `${origin}: account ${JSON.stringify(account)}`;
  const bad = (what: string): never => {
    throw new Error(`${where}: ${what}`);
  };
  if (!isObject(raw)) return bad('is not an object');
  if (raw['account'] !== account) bad('has a different "account" inside');
  const version = raw['version'];
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) bad('"version" must be a positive integer');
  const settings = parseSettings(raw['settings'], bad);
  const entries = raw['entries'];
  if (!Array.isArray(entries)) return bad('"entries" must be an array');
  const keys = raw['keys'];
  if (keys !== undefined && !Array.isArray(keys)) return bad('"keys" must be an array');
  return {
    account,
    version: version as number,
    settings,
    entries: entries.map((e, i) => parseEntry(e, (what) => bad(`entry ${i} ${what}`))),
    ...(keys === undefined ? {} : { keys: keys.map((k, i) => parseKey(k, (what) => bad(`key ${i} ${what}`))) }),
  };
}

const KEY_STRING_FIELDS = ['id', 'name', 'createdAt', 'updatedAt'] as const;

function parseKey(raw: unknown, bad: (what: string) => never): ApiKeyRecord {
  if (!isObject(raw)) return bad('is not an object');
  for (const field of KEY_STRING_FIELDS) if (typeof raw[field] !== 'string') bad(`"${field}" must be a string`);
  if (raw['hash'] !== 'hmac-sha256' && raw['hash'] !== 'sha256') bad('"hash" must be hmac-sha256 or sha256');
  if (typeof raw['digest'] !== 'string' || !/^[0-9a-f]{64}$/.test(raw['digest'])) bad('"digest" must be 64 lower-case hex digits');
  if (typeof raw['enabled'] !== 'boolean') bad('"enabled" must be a boolean');
  const claim = raw['claim'];
  if (claim !== undefined && (typeof claim !== 'string' || !/^[0-9a-f]{64}$/.test(claim))) bad('"claim" must be 64 lower-case hex digits');
  return {
    id: raw['id'] as string,
    name: raw['name'] as string,
    hash: raw['hash'],
    digest: raw['digest'] as string,
    ...(claim === undefined ? {} : { claim: claim as string }),
    enabled: raw['enabled'],
    createdAt: raw['createdAt'] as string,
    updatedAt: raw['updatedAt'] as string,
  };
}

function parseSettings(raw: unknown, bad: (what: string) => never): AccountSettings {
  if (!isObject(raw)) return bad('"settings" must be an object');
  const { parent, mode, default: fallback, maxEntries, ipv4Only, guard, restricted } = raw;
  if (parent !== undefined && typeof parent !== 'string') bad('settings.parent must be a string');
  if (mode !== undefined && mode !== 'enforce' && mode !== 'report-only' && mode !== 'off') bad('settings.mode is not a mode');
  if (fallback !== undefined && fallback !== 'open' && fallback !== 'closed') bad('settings.default must be open or closed');
  if (maxEntries !== undefined && (typeof maxEntries !== 'number' || !Number.isSafeInteger(maxEntries) || maxEntries < 0)) bad('settings.maxEntries must be a non-negative integer');
  if (ipv4Only !== undefined && typeof ipv4Only !== 'boolean') bad('settings.ipv4Only must be a boolean');
  if (guard !== undefined && guard !== 'warn' && guard !== 'strict') bad('settings.guard must be warn or strict');
  if (restricted !== undefined && typeof restricted !== 'boolean') bad('settings.restricted must be a boolean');
  return {
    ...(parent === undefined ? {} : { parent: parent as string }),
    ...(mode === undefined ? {} : { mode: mode as AccountSettings['mode'] & string }),
    ...(fallback === undefined ? {} : { default: fallback as 'open' | 'closed' }),
    ...(maxEntries === undefined ? {} : { maxEntries: maxEntries as number }),
    ...(ipv4Only === undefined ? {} : { ipv4Only: ipv4Only as boolean }),
    ...(guard === undefined ? {} : { guard: guard as 'warn' | 'strict' }),
    ...(restricted === undefined ? {} : { restricted: restricted as boolean }),
  };
}

const STRING_FIELDS = ['id', 'ipAddress', 'description', 'createdAt', 'updatedAt'] as const;

function parseEntry(raw: unknown, bad: (what: string) => never): AclEntry {
  if (!isObject(raw)) return bad('is not an object');
  for (const field of STRING_FIELDS) if (typeof raw[field] !== 'string') bad(`"${field}" must be a string`);
  const cidrs = raw['cidrs'];
  if (!Array.isArray(cidrs) || cidrs.length === 0 || !cidrs.every((c) => typeof c === 'string')) bad('"cidrs" must be a non-empty array of strings');
  if (raw['action'] !== 'allow' && raw['action'] !== 'deny') bad('"action" must be allow or deny');
  if (typeof raw['enabled'] !== 'boolean') bad('"enabled" must be a boolean');
  const expiresAt = raw['expiresAt'];
  if (expiresAt !== undefined && typeof expiresAt !== 'string') bad('"expiresAt" must be a string');
  return {
    id: raw['id'] as string,
    ipAddress: raw['ipAddress'] as string,
    cidrs: cidrs as string[],
    action: raw['action'],
    description: raw['description'] as string,
    enabled: raw['enabled'],
    createdAt: raw['createdAt'] as string,
    updatedAt: raw['updatedAt'] as string,
    ...(expiresAt === undefined ? {} : { expiresAt: expiresAt as string }),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
