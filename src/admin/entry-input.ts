import { refusal, refused, type Refused, type Result } from '../http/refusal.ts';
import { formatCidr } from '../ip/cidr.ts';
import { parseRule } from '../ip/rule.ts';
import type { EntryFields } from '../acl/changes.ts';
import type { AclEntry } from '../list/types.ts';
import { EntryPatch, MAX_DESCRIPTION_LENGTH, type EntryBody } from './api-schemas.ts';
import { fieldRefusal } from './field-check.ts';

export { MAX_DESCRIPTION_LENGTH };

/** The longest address text accepted (the longest range of two full IPv6 addresses is 81). */
export const MAX_ADDRESS_LENGTH = 100;
/**
 * Networks one entry may expand into: every IPv4 range fits (at most 62); a wide IPv6 range,
 * which can need 254, must be split, so no single row can cost a list hundreds of rules.
 */
export const MAX_NETWORKS_PER_ENTRY = 64;

/** An entry as the API shows it: snake_case, `expires_at` null when unset. */
export function toApiEntry(entry: AclEntry): EntryBody {
  return {
    id: entry.id,
    ip_address: entry.ipAddress,
    cidrs: [...entry.cidrs],
    action: entry.action,
    description: entry.description,
    enabled: entry.enabled,
    created_at: entry.createdAt,
    updated_at: entry.updatedAt,
    expires_at: entry.expiresAt ?? null,
  };
}

// A POST body's fields are a PATCH body's, with ip_address required.
const PROPERTIES = EntryPatch.properties;
const FIELDS = new Set(Object.keys(PROPERTIES));

function invalid(field: string, expected: string): Refused {
  return refused(refusal(400, 'invalid_field', `${field} must be ${expected}`));
}

/**
 * Validates a POST or PATCH body. `name` is accepted as another word for `description` (the
 * consoles we mirror call it that); sending both with different values is an error.
 */
export function parseEntryFields(body: unknown, nowMs: number, requireAddress: boolean): Result<EntryFields> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return invalid('the request body', 'a JSON object');
  const input = body as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!FIELDS.has(key)) return { ok: false, refusal: refusal(400, 'unknown_field', `unknown field '${key.slice(0, 64)}': expected ${[...FIELDS].join(', ')}`) };
  }
  const fields: { -readonly [K in keyof EntryFields]: EntryFields[K] } = {};

  const address = input['ip_address'];
  if (address === undefined) {
    if (requireAddress) return { ok: false, refusal: refusal(400, 'invalid_format', 'ip_address is required, e.g. "203.0.113.0/24"') };
  } else {
    if (typeof address !== 'string') return fieldRefusal('ip_address', PROPERTIES.ip_address, address)!;
    if (address.length > MAX_ADDRESS_LENGTH) return { ok: false, refusal: refusal(400, 'invalid_format', `ip_address is ${address.length} characters long; an address, network or range is at most ${MAX_ADDRESS_LENGTH}`) };
    const rule = parseRule(address);
    if (!rule.ok) return { ok: false, refusal: refusal(400, 'invalid_format', rule.error) };
    if (rule.value.cidrs.length > MAX_NETWORKS_PER_ENTRY) {
      return { ok: false, refusal: refusal(400, 'too_many_networks', `${rule.value.input} expands into ${rule.value.cidrs.length} networks; an entry may hold at most ${MAX_NETWORKS_PER_ENTRY}: split the range into several entries`) };
    }
    fields.ipAddress = { input: rule.value.input, cidrs: rule.value.cidrs.map(formatCidr) };
  }

  const description = input['description'];
  const name = input['name'];
  for (const [field, value] of [['description', description], ['name', name]] as const) {
    const wrong = value === undefined ? null : fieldRefusal(field, PROPERTIES[field], value);
    if (wrong !== null) return wrong;
  }
  if (description !== undefined && name !== undefined && description !== name) return invalid('name', 'the same as description when both are given');
  const text = (description ?? name) as string | undefined;
  if (text !== undefined) fields.description = text;

  const action = input['action'];
  if (action !== undefined) {
    const wrong = fieldRefusal('action', PROPERTIES.action, action);
    if (wrong !== null) return wrong;
    fields.action = action as 'allow' | 'deny';
  }
  const enabled = input['enabled'];
  if (enabled !== undefined) {
    const wrong = fieldRefusal('enabled', PROPERTIES.enabled, enabled);
    if (wrong !== null) return wrong;
    fields.enabled = enabled as boolean;
  }
  const expires = input['expires_at'];
  if (expires === null) {
    fields.expiresAt = null;
  } else if (expires !== undefined) {
    // A zone is required: a local time would mean whatever the gateway host's zone says.
    const at = typeof expires === 'string' && /^\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:\d{2})$/i.test(expires) ? Date.parse(expires) : Number.NaN;
    if (Number.isNaN(at)) return invalid('expires_at', 'an ISO 8601 date-time with a zone, such as "2026-12-31T23:59:59Z", or null');
    if (at <= nowMs) return invalid('expires_at', 'in the future');
    fields.expiresAt = new Date(at).toISOString();
  }
  return { ok: true, value: fields };
}
