import type { Checked } from './gatekeeper.ts';

/**
 * Where a decision was asked for: the proxy listener, or one of the external-authorization
 * protocols (a metrics label and an access-log field, so the two kinds of traffic can be told apart).
 */
export type Surface = 'proxy' | 'forward-auth' | 'auth-request' | 'envoy-http' | 'envoy-grpc';

export const SURFACES: readonly Surface[] = ['proxy', 'forward-auth', 'auth-request', 'envoy-http', 'envoy-grpc'];

/** The request a decision was about, as the caller sent it (the original request, for a check). */
export interface ObservedRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
}

/**
 * What a listener tells the rest of the gateway about each request or upgrade: metrics, the
 * access log and the recent-caller table each observe without the request path knowing them.
 */
export interface RequestObserver {
  /** The decision is made; `overheadSeconds` is the time from arrival to decision. */
  decided(req: ObservedRequest, checked: Checked, overheadSeconds: number): void;
  /** The exchange is over (response ended, connection closed, or upgraded socket closed). */
  finished(req: ObservedRequest, checked: Checked, status: number, durationSeconds: number): void;
}

export function combineObservers(observers: readonly RequestObserver[]): RequestObserver {
  return {
    decided: (req, checked, overhead) => {
      for (const o of observers) o.decided(req, checked, overhead);
    },
    finished: (req, checked, status, duration) => {
      for (const o of observers) o.finished(req, checked, status, duration);
    },
  };
}
