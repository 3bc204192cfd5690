import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Actor } from './credentials.ts';
import type { Refusal, Result } from '../http/refusal.ts';
import type { Params, Route } from './router.ts';

/** One admin request as a route handler sees it: already authenticated. */
export interface Context {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly params: Params;
  readonly query: URLSearchParams;
  readonly actor: Actor;
  /** The caller's X-Request-Id when it sent a usable one, else the gateway's own. */
  readonly requestId: string;
  /** The gateway's own id of this request, whatever the caller sent (X-Gateway-Request-Id). */
  readonly gatewayRequestId: string;
  /** Largest request bodies this listener reads: a JSON change, and a list replace or import. */
  readonly bodyLimits: BodyLimits;
}

export interface BodyLimits {
  readonly json: number;
  readonly bulk: number;
}

export type Handler = (ctx: Context) => Promise<void>;

/**
 * One API surface of the management listener: the native API, or an endpoint set compatible with
 * a provider's. Each authenticates and renders errors in its own shape; all of them go through
 * the same core (AclService) for semantics.
 */
export interface Surface {
  /** Requests whose path starts with this are this surface's (e.g. `/api/v1/Account/`). */
  readonly prefix: string;
  readonly routes: readonly Route<Handler>[];
  /**
   * The token this surface's clients present (e.g. `Authorization: Bearer`, `X-Auth-Token`),
   * or a refusal when it is missing or malformed. The dispatcher checks it against the
   * credentials, rate-limits failures, and answers 401 itself.
   */
  readonly tokenOf: (req: IncomingMessage) => Result<string>;
  /** Renders any refusal (401, 403, 404, validation…) in this surface's error shape. */
  readonly sendError: (res: ServerResponse, refused: Refusal) => void;
}

/** The ids of a request as the audit trail records them. */
export function requestIds(ctx: Context): { readonly requestId: string; readonly gatewayRequestId: string } {
  return { requestId: ctx.requestId, gatewayRequestId: ctx.gatewayRequestId };
}
