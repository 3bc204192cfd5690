import type { PolicyDefaults } from './decide.ts';
import { MAX_PARENT_DEPTH } from './limits.ts';
import type { AccountSettings, DefaultPolicy, Mode } from './types.ts';

export { MAX_PARENT_DEPTH };

/**
 * Mode and default along a parent chain (the account first): the nearest one that sets each
 * wins, then the gateway's defaults. The request path and the lockout guard both use this.
 */
export function inheritedSettings(chain: readonly ({ readonly settings: AccountSettings } | null)[], defaults: PolicyDefaults): PolicyDefaults {
  let mode: Mode | undefined;
  let fallback: DefaultPolicy | undefined;
  for (const item of chain) {
    mode ??= item?.settings.mode;
    fallback ??= item?.settings.default;
  }
  return { mode: mode ?? defaults.mode, default: fallback ?? defaults.default };
}
