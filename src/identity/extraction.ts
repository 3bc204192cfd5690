import { refusal, type Refusal } from '../http/refusal.ts';
import { ACCOUNT_ID_DESCRIPTION, isValidAccountId, quoteUntrusted } from './account-id.ts';
import type { Extraction } from './types.ts';

/** Shared so that the common case, a strategy finding nothing, allocates nothing. */
export const NOTHING: Extraction = { kind: 'none' };

/** A candidate account, accepted only in the form every part of the gateway agrees on. */
export function accountFrom(value: string, source: string, suffixed = false): Extraction {
  if (isValidAccountId(value)) return suffixed ? { kind: 'account', account: value, suffixed: true } : { kind: 'account', account: value };
  return refused(400, 'invalid_account', `the account id in ${source} (${quoteUntrusted(value)}) is not valid: expected ${ACCOUNT_ID_DESCRIPTION}`);
}

export function refused(status: Refusal['status'], reason: string, message: string): Extraction {
  return { kind: 'refused', refusal: refusal(status, reason, message) };
}
