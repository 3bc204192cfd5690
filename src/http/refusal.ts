/**
 * A request the gateway answers itself instead of forwarding. Every stage of the request path
 * (client IP, identity, policy) reports its refusals in this one shape, so the proxy renders
 * them uniformly as JSON `{"error", "code", "reason", "request_id"}` (the admin API as
 * `{"error", "code", "reason"}`, or in a compatible surface's own shape).
 */
export interface Refusal {
  readonly status: 400 | 401 | 403 | 404 | 405 | 408 | 409 | 412 | 413 | 415 | 421 | 428 | 429 | 431 | 500 | 502 | 503 | 504;
  /** Stable, machine-readable code (snake_case); part of the API. */
  readonly reason: string;
  /** Human-readable sentence naming the problem and, where there is one, the fix. */
  readonly message: string;
  /**
   * For the log only, never a response: the underlying error (a library's or the system's
   * message), which says nothing useful to a caller and may say too much.
   */
  readonly cause?: string;
  /** For a write whose outcome is unknown: the account's version read afterwards, when it could be. */
  readonly currentVersion?: number;
}

export function refusal(status: Refusal['status'], reason: string, message: string, cause?: string): Refusal {
  return cause === undefined ? { status, reason, message } : { status, reason, message, cause };
}

/**
 * The one result convention: a step that yields something or refuses answers `{ok: true, ...}`
 * with what it yields (`value`, when it is one thing) or `{ok: false, refusal}`, told apart by
 * `ok` alone, never by the shape of the value. A check that yields nothing answers the refusal
 * or null.
 */
export type Result<T> = { readonly ok: true; readonly value: T } | Refused;

export interface Refused {
  readonly ok: false;
  readonly refusal: Refusal;
}

export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

export function refused(why: Refusal): Refused {
  return { ok: false, refusal: why };
}
