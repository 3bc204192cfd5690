import { Buffer } from 'node:buffer';
import { crc32 } from 'node:zlib';
import { CompiledTrie } from '../ip/trie.ts';
import { parseStoredRecord } from './record-format.ts';
import { nextCompilation, type CompiledKey, type CompiledList } from './compile.ts';

/**
 * A compiled list as bytes, so replicas fetch it instead of recompiling and a snapshot can keep it
 * on disk: `u32 header length | u32 CRC-32 of the header | header JSON | trie buffer`. The header
 * carries what the trie does not (account, version, settings, hasAllow, restricted, validUntil, expiries, keys) and has its
 * own checksum, since a flipped bit there (a version, a parent, an expiry) would be enforced just
 * as surely as one in the trie, which checks its own integrity.
 */
export function encodeCompiledList(list: CompiledList): Buffer {
  const header = Buffer.from(JSON.stringify({
    account: list.account,
    version: list.version,
    settings: list.settings,
    hasAllow: list.hasAllow,
    restricted: list.restricted,
    validUntil: Number.isFinite(list.validUntil) ? list.validUntil : null,
    expiries: list.expiries,
    ...(list.keys === null ? {} : { keys: [...list.keys].map(([id, k]) => [id, k.enabled, k.indexKey]) }),
  }));
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32LE(header.length, 0);
  prefix.writeUInt32LE(crc32(header), 4);
  return Buffer.concat([prefix, header, list.trie.toBuffer()]);
}

/** Throws on anything encodeCompiledList could not have written. */
export function decodeCompiledList(bytes: Uint8Array): CompiledList {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8) throw new Error('compiled list is truncated');
  const headerLength = buf.readUInt32LE(0);
  if (8 + headerLength > buf.length) throw new Error('compiled list header is truncated');
  const headerBytes = buf.subarray(8, 8 + headerLength);
  if (crc32(headerBytes) !== buf.readUInt32LE(4)) throw new Error('compiled list header checksum mismatch');
  const header = JSON.parse(headerBytes.toString('utf8')) as Record<string, unknown>;
  const { account, version, hasAllow, validUntil } = header;
  if (typeof account !== 'string' || typeof version !== 'number' || typeof hasAllow !== 'boolean' || (validUntil !== null && typeof validUntil !== 'number')) {
    throw new Error('compiled list header is malformed');
  }
  // Absent from blobs written before expiries were carried: then unknown (null).
  const expiries = header['expiries'] ?? null;
  if (expiries !== null && (typeof expiries !== 'object' || Array.isArray(expiries) || !Object.values(expiries).every((v) => typeof v === 'number'))) {
    throw new Error('compiled list header is malformed');
  }
  const keys = decodeKeys(header['keys']);
  // Settings are validated the same way as a stored record's.
  const { settings } = parseStoredRecord({ account, version, settings: header['settings'], entries: [] }, account, 'compiled list');
  // Absent from blobs written before the list state was carried: what they knew (an allow entry
  // in force, or the setting) is restricted; an expired allow entry they did not say.
  const restricted = header['restricted'] ?? (settings.restricted === true || hasAllow);
  if (typeof restricted !== 'boolean') throw new Error('compiled list header is malformed');
  return {
    account,
    version,
    settings,
    hasAllow,
    restricted,
    validUntil: validUntil ?? Number.POSITIVE_INFINITY,
    expiries: expiries as Record<string, number> | null,
    keys,
    trie: CompiledTrie.fromBuffer(buf.subarray(8 + headerLength)),
    compilation: nextCompilation(),
  };
}

/** The keys as the header holds them, `[[id, enabled, indexKey], ...]` (absent: none). */
function decodeKeys(raw: unknown): ReadonlyMap<string, CompiledKey> | null {
  if (raw === undefined) return null;
  if (!Array.isArray(raw)) throw new Error('compiled list header is malformed');
  const keys = new Map<string, CompiledKey>();
  for (const item of raw as unknown[]) {
    if (!Array.isArray(item) || typeof item[0] !== 'string' || typeof item[1] !== 'boolean' || typeof item[2] !== 'string') throw new Error('compiled list header is malformed');
    keys.set(item[0], { enabled: item[1], indexKey: item[2] });
  }
  return keys.size === 0 ? null : keys;
}
