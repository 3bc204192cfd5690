import type { Action } from '../policy/types.ts';

/** What the proxy would decide for a caller of an account at an IP, from the same policy code. */
export interface CheckResult {
  readonly decision: string;
  readonly reason: string;
  readonly matched: null | { readonly id: string; readonly cidr: string; readonly action: Action; readonly list: 'account' | 'parent' | 'global' };
}
