/**
 * A key's own IP access list is stored like an account's (a record with entries and settings,
 * compiled, cached, propagated, audited and swept the same way) under an id no account can have:
 * `<account>/key:<key id>` (account ids never hold `/`). The account's record keeps the keys
 * themselves (see ApiKeyRecord); this id only ever names a key's list.
 */

const SEPARATOR = '/key:';

export function keyListId(account: string, keyId: string): string {
  return `${account}${SEPARATOR}${keyId}`;
}

/** Whether `id` names a key's list rather than an account. */
export function isKeyListId(id: string): boolean {
  return id.indexOf(SEPARATOR) > 0;
}

/** The account and key a key-list id names; null for an account id. */
export function parseKeyListId(id: string): { readonly account: string; readonly keyId: string } | null {
  const at = id.indexOf(SEPARATOR);
  return at > 0 ? { account: id.slice(0, at), keyId: id.slice(at + SEPARATOR.length) } : null;
}

/** The account a record id belongs to: the id itself, or the owner of a key's list. */
export function ownerOf(id: string): string {
  const at = id.indexOf(SEPARATOR);
  return at > 0 ? id.slice(0, at) : id;
}

/** How messages name the list an id stands for: `account AC1`, or `key key_… of account AC1`. */
export function describeList(id: string): string {
  const key = parseKeyListId(id);
  return key === null ? `account ${id}` : `key ${key.keyId} of account ${key.account}`;
}
