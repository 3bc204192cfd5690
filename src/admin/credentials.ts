import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Who may use the management API. `owner` and `admin` act on every account (owner is the
 * gateway's own token); `account` only on its own account's list (the compatible endpoints are
 * built for these); `read-only` reads everything and changes nothing.
 */
export type Role = 'owner' | 'admin' | 'account' | 'read-only';

export type Credential =
  | { readonly name: string; readonly role: 'owner' | 'admin' | 'read-only'; readonly tokenSha256: Buffer }
  | { readonly name: string; readonly role: 'account'; readonly account: string; readonly tokenSha256: Buffer };

/** The authenticated caller of the management API. */
export type Actor =
  | { readonly name: string; readonly role: 'owner' | 'admin' | 'read-only' }
  | { readonly name: string; readonly role: 'account'; readonly account: string };

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Finds the credential a token belongs to. Tokens are kept only as SHA-256 digests, and every
 * digest is compared in constant time, so neither the store of secrets nor the timing of a
 * refusal says anything about a valid token.
 */
export function compileCredentials(credentials: readonly Credential[]): (token: string) => Actor | null {
  return (token) => {
    const given = sha256(token);
    let found: Credential | null = null;
    for (const credential of credentials) {
      if (timingSafeEqual(given, credential.tokenSha256) && found === null) found = credential;
    }
    if (found === null) return null;
    return found.role === 'account' ? { name: found.name, role: 'account', account: found.account } : { name: found.name, role: found.role };
  };
}

/** Whether `actor` may read (or, with `write`, change) `account`'s list; null account: gateway-wide data. */
export function allows(actor: Actor, account: string | null, write: boolean): boolean {
  switch (actor.role) {
    case 'owner':
    case 'admin':
      return true;
    case 'read-only':
      return !write;
    case 'account':
      return account !== null && account === actor.account;
  }
}
