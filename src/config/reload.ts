import type { Config } from './types.ts';

/**
 * Settings a running gateway takes over from a reloaded configuration (SIGHUP) without dropping a
 * connection; a setting is named by its path, and a prefix ending in `.` covers the section.
 * Everything else (listeners, upstream, store, cache, policy defaults, workers...) is read once
 * at start: a change to it is reported as needing a restart, and the running value stays.
 */
const IN_PLACE = [
  'clientIp.', 'trustAll', 'identity.', 'log.level', 'admin.token', 'admin.tokenSource', 'admin.credentials',
  'limits.headersTimeoutMs', 'limits.requestTimeoutMs', 'limits.keepAliveTimeoutMs', 'limits.maxConnections', 'limits.bodyIdleTimeoutMs',
];

/** Read once at start although their section is taken over in place. */
const AT_START = ['identity.introspection'];

export interface ReloadPlan {
  /** Changed settings applied in place. */
  readonly applied: readonly string[];
  /** Changed settings that take effect only after a restart (kept at their running values). */
  readonly restart: readonly string[];
}

/** What differs between the running configuration and the reloaded one, and where each change goes. */
export function planReload(running: Config, next: Config): ReloadPlan {
  const before = flatten(running);
  const after = flatten(next);
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter((path) => before.get(path) !== after.get(path)).sort();
  const inPlace = (path: string): boolean => !AT_START.includes(path) && IN_PLACE.some((p) => (p.endsWith('.') ? path.startsWith(p) : path === p));
  return { applied: changed.filter(inPlace), restart: changed.filter((path) => !inPlace(path)) };
}

/** Every setting by its dotted path, down to the second level, as comparable text. */
function flatten(config: Config): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, value] of Object.entries(config)) {
    if (isSection(value)) {
      for (const [sub, inner] of Object.entries(value)) out.set(`${key}.${sub}`, text(inner));
    } else {
      out.set(key, text(value));
    }
  }
  // Where the key secret came from is no setting (a secret generated beside the file store is
  // read back from its file); and the memory store's, generated for the life of the process, is
  // generated anew by every read of the configuration: the running one stays, unchanged.
  out.delete('keys.secretSource');
  if (config.keys.secretSource === 'generated' && config.store.kind === 'memory') out.set('keys.secret', 'generated for this process');
  return out;
}

function isSection(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof URL);
}

function text(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Uint32Array) : v instanceof URL ? v.href : v)) ?? 'undefined';
}
