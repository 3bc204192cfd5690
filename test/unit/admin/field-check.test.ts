import { describe, expect, it } from 'vitest';
import { EntryPatch, Path, SettingsInput } from '../../../src/admin/api-schemas.ts';
import { parseEntryFields } from '../../../src/admin/entry-input.ts';
import { fieldRefusal, pathValue } from '../../../src/admin/field-check.ts';
import { listBodyItems } from '../../../src/admin/list-body.ts';
import { refusal } from '../../../src/http/refusal.ts';
import { isValidAccountId } from '../../../src/identity/account-id.ts';

const refusalOf = (field: string, schema: Parameters<typeof fieldRefusal>[1], value: unknown) => {
  const wrong = fieldRefusal(field, schema, value);
  return wrong === null ? null : { reason: wrong.refusal.reason, message: wrong.refusal.message };
};

describe('request fields are checked against their schema, refused in the words the API has always used', () => {
  it('entry fields', () => {
    const p = EntryPatch.properties;
    expect(refusalOf('ip_address', p.ip_address, 7)).toEqual({ reason: 'invalid_field', message: 'ip_address must be a string' });
    expect(refusalOf('description', p.description, 'x'.repeat(256))).toEqual({ reason: 'invalid_field', message: 'description must be a string of at most 255 characters' });
    expect(refusalOf('description', p.description, 'x'.repeat(255))).toBeNull();
    expect(refusalOf('name', p.name, false)).toEqual({ reason: 'invalid_field', message: 'name must be a string of at most 255 characters' });
    expect(refusalOf('action', p.action, 'block')).toEqual({ reason: 'invalid_field', message: 'action must be "allow" or "deny"' });
    expect(refusalOf('enabled', p.enabled, 'yes')).toEqual({ reason: 'invalid_field', message: 'enabled must be true or false' });
    expect(refusalOf('enabled', p.enabled, true)).toBeNull();
  });

  it('settings fields', () => {
    const p = SettingsInput.properties;
    expect(refusalOf('mode', p.mode, 'sometimes')).toEqual({ reason: 'invalid_field', message: 'mode must be "enforce", "report-only", "off" or null' });
    expect(refusalOf('mode', p.mode, null)).toBeNull();
    expect(refusalOf('default', p.default, 'ajar')).toEqual({ reason: 'invalid_field', message: 'default must be "open", "closed" or null' });
    expect(refusalOf('guard', p.guard, 1)).toEqual({ reason: 'invalid_field', message: 'guard must be "warn", "strict" or null' });
    expect(refusalOf('max_entries', p.max_entries, 100_001)).toEqual({ reason: 'invalid_field', message: 'max_entries must be an integer 0-100000 or null' });
    expect(refusalOf('max_entries', p.max_entries, 1.5)).toEqual({ reason: 'invalid_field', message: 'max_entries must be an integer 0-100000 or null' });
    expect(refusalOf('max_entries', p.max_entries, 100_000)).toBeNull();
    expect(refusalOf('ipv4_only', p.ipv4_only, 'no')).toEqual({ reason: 'invalid_field', message: 'ipv4_only must be true, false or null' });
  });

  it('a POST body: unknown fields named with the schema\'s field list, the fields in order', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const refused = (body: unknown) => {
      const parsed = parseEntryFields(body, now, true);
      return parsed.ok ? null : parsed.refusal.message;
    };
    expect(refused({ ip_address: '11.0.0.0/24', comment: 'x' })).toBe('unknown field \'comment\': expected ip_address, description, name, action, enabled, expires_at');
    expect(refused({ ip_address: '11.0.0.0/24', action: 'block', enabled: 'yes' })).toBe('action must be "allow" or "deny"');
    expect(refused({ ip_address: '11.0.0.0/24', name: 'a', description: 'b' })).toBe('name must be the same as description when both are given');
    expect(refused({ ip_address: '11.0.0.0/24', description: 'office', action: 'deny', enabled: false })).toBeNull();
  });

  it('a list body\'s wrapper: entries an array, no field the schema does not define (items left to the rows)', () => {
    const read = (body: unknown) => {
      const items = listBodyItems(body);
      return items.ok ? items.value : { reason: items.refusal.reason, message: items.refusal.message };
    };
    const notAList = { reason: 'invalid_field', message: 'the body must be {"entries": [{"ip_address": ...}, ...]}' };
    expect(read([{ ip_address: '11.0.0.1' }])).toEqual(notAList);
    expect(read(null)).toEqual(notAList);
    expect(read({ entries: { ip_address: '11.0.0.1' } })).toEqual(notAList);
    expect(read({ account: 'AC1' })).toEqual(notAList);
    expect(read({ entries: [], extra: 1 })).toEqual({ reason: 'unknown_field', message: 'unknown field \'extra\': expected entries (account and version are ignored)' });
    // An export imports as it is; its items are not judged here (a row is refused on its own).
    expect(read({ account: 'AC1', version: 7, entries: [{ ip_address: 'x' }, 5] })).toEqual([{ ip_address: 'x' }, 5]);
  });

  it('path parameters: the account id\'s schema accepts what the request path\'s check accepts', () => {
    const account = (id: string) => {
      const value = pathValue(Path.account, id, (bad) => refusal(400, 'invalid_account', `'${bad}' is not a valid account id`));
      return value.ok ? value.value : value.refusal.reason;
    };
    for (const id of ['AC1', 'a', 'acme.eu_1@x-y', 'x'.repeat(128), '', '-ac', '.ac', 'a b', 'a/b', 'x'.repeat(129), 'ac\n', 'äc', 'ac$']) {
      expect(account(id)).toBe(isValidAccountId(id) ? id : 'invalid_account');
    }
    expect(account('AC1')).toBe('AC1');
    expect(account('../x')).toBe('invalid_account');
  });
});
