import { refusal } from '../http/refusal.ts';
import { fingerprintOf } from '../list/key-digest.ts';
import { isKeyText, KEY_MAX_LENGTH } from '../identity/key-text.ts';
import { KEY_MIN_LENGTH } from './api-schemas.ts';
import { MAX_KEY_NAME_LENGTH, type KeyBody } from './api-schemas.ts';
import { type KeyFields } from '../acl/key-changes.ts';
import type { ListState } from '../list/list-state.ts';
import type { ApiKeyRecord } from '../list/types.ts';
import type { KeyUse } from '../store/store.ts';
import type { Result } from '../http/refusal.ts';

/**
 * The key registry's request bodies and answers (the routes are in keys.ts): validation in one
 * place, as the entry bodies' is in entry-input.ts.
 */

/** A key to register: as clients send it, or the SHA-256 the team computed of it. */
export type NewKey = { readonly name: string; readonly enabled: boolean } & ({ readonly key: string } | { readonly sha256: string });

const CREATE_FIELDS = new Set(['key', 'key_sha256', 'name', 'enabled']);
const PATCH_FIELDS = new Set(['name', 'enabled', 'restricted']);

function unknownField(key: string, allowed: ReadonlySet<string>): Result<never> {
  return { ok: false, refusal: refusal(400, 'unknown_field', `unknown field '${key.slice(0, 64)}': expected ${[...allowed].join(', ')}`) };
}

function invalid(field: string, expected: string): Result<never> {
  return { ok: false, refusal: refusal(400, 'invalid_field', `${field} must be ${expected}`) };
}

function objectOf(body: unknown): Record<string, unknown> | null {
  return typeof body === 'object' && body !== null && !Array.isArray(body) ? body as Record<string, unknown> : null;
}

/** A POST body: exactly one of `key` and `key_sha256`, an optional name and enabled flag. The key is never echoed. */
export function parseNewKey(body: unknown): Result<NewKey> {
  const input = objectOf(body);
  if (input === null) return invalid('the request body', 'a JSON object');
  for (const key of Object.keys(input)) if (!CREATE_FIELDS.has(key)) return unknownField(key, CREATE_FIELDS);
  const fields = parseKeyFields(input);
  if (!fields.ok) return fields;
  const base = { name: fields.value.name ?? '', enabled: fields.value.enabled ?? true };
  const { key, key_sha256: sha256 } = input;
  if ((key === undefined) === (sha256 === undefined)) {
    return { ok: false, refusal: refusal(400, 'invalid_format', 'send the key as clients send it in "key", or its SHA-256 (hex) in "key_sha256": exactly one of them') };
  }
  if (key !== undefined) {
    if (typeof key !== 'string' || !isKeyText(key) || key.length < KEY_MIN_LENGTH) {
      return { ok: false, refusal: refusal(400, 'invalid_format', `key must be ${KEY_MIN_LENGTH}-${KEY_MAX_LENGTH} visible ASCII characters, without spaces, as clients send it`) };
    }
    return { ok: true, value: { ...base, key } };
  }
  if (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256)) {
    return { ok: false, refusal: refusal(400, 'invalid_format', 'key_sha256 must be the 64 hex digits of the SHA-256 of the key (printf %s "$KEY" | sha256sum)') };
  }
  return { ok: true, value: { ...base, sha256: sha256.toLowerCase() } };
}

/** What a PATCH changes: the key itself (its account's record), or its own list's state. */
export type KeyPatch = { readonly kind: 'key'; readonly fields: KeyFields } | { readonly kind: 'list'; readonly restricted: boolean };

/**
 * A PATCH body: a new name, or enabled (false disables the key), or both; or, on its own,
 * `restricted` (false opens the key's emptied list), which changes another record (the key's
 * list) and so is never mixed with the others.
 */
export function parseKeyPatch(body: unknown): Result<KeyPatch> {
  const input = objectOf(body);
  if (input === null) return invalid('the request body', 'a JSON object');
  for (const key of Object.keys(input)) if (!PATCH_FIELDS.has(key)) return unknownField(key, PATCH_FIELDS);
  if ('restricted' in input) {
    if (Object.keys(input).length > 1) return { ok: false, refusal: refusal(400, 'invalid_format', 'restricted changes the key\'s own list: send it on its own, not with name or enabled') };
    if (typeof input['restricted'] !== 'boolean') return invalid('restricted', 'true or false (false opens the key\'s list, so the account\'s list alone applies)');
    return { ok: true, value: { kind: 'list', restricted: input['restricted'] } };
  }
  const fields = parseKeyFields(input);
  return fields.ok ? { ok: true, value: { kind: 'key', fields: fields.value } } : fields;
}

function parseKeyFields(input: Record<string, unknown>): Result<KeyFields> {
  const { name, enabled } = input;
  if (name !== undefined && (typeof name !== 'string' || name.length > MAX_KEY_NAME_LENGTH)) return invalid('name', `a string of at most ${MAX_KEY_NAME_LENGTH} characters`);
  if (enabled !== undefined && typeof enabled !== 'boolean') return invalid('enabled', 'true or false');
  return { ok: true, value: { ...(name === undefined ? {} : { name }), ...(enabled === undefined ? {} : { enabled }) } };
}

/** A key as the API shows it: never the key, nor its digest; a fingerprint to tell keys apart; the state of its own list. */
export function toApiKey(account: string, key: ApiKeyRecord, use: KeyUse | undefined, listState: ListState): KeyBody {
  return {
    id: key.id,
    account,
    name: key.name,
    fingerprint: fingerprintOf(key),
    hash: key.hash,
    enabled: key.enabled,
    created_at: key.createdAt,
    updated_at: key.updatedAt,
    last_used_at: use === undefined ? null : new Date(use.at).toISOString(),
    last_used_ip: use?.ip ?? null,
    list_state: listState,
  };
}

/** What the audit trail keeps of a key: what the API shows, without its use. */
export function keySnapshot(key: ApiKeyRecord | undefined): unknown {
  if (key === undefined) return null;
  return { id: key.id, name: key.name, fingerprint: fingerprintOf(key), hash: key.hash, enabled: key.enabled };
}
