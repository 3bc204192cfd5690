import type { IpAddress } from '../ip/address.ts';
import type { Action } from '../policy/types.ts';
import type { EventLog } from '../observability/logger.ts';
import type { AclStore } from '../store/store.ts';

export interface CheckResult {
  readonly decision: string;
  readonly reason: string;
  readonly matched: null | { readonly id: string; readonly cidr: string; readonly action: Action; readonly list: 'account' | 'parent' | 'global' };
}

export interface AdminDeps {
  readonly store: AclStore;
  /** Required on every /v1 route as `Authorization: Bearer <token>`. */
  readonly adminToken: string;
  /** What the proxy would decide for a caller of `account` at `ip`, from the same policy code. */
  check(account: string, ip: IpAddress): Promise<CheckResult>;
  health(): { readonly live: boolean; readonly ready: boolean; readonly detail?: Record<string, unknown> };
  readonly now?: () => Date;
  readonly logger?: EventLog;
}
