import type { Refusal } from '../http/refusal.ts';

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
 * What an observer reads of a decision: the gateway's `Checked` is one (observers depend on this
 * shape, not on the gateway).
 */
export interface ObservedDecision {
  readonly requestId: string;
  /** The TCP peer, canonical. */
  readonly peer: string;
  /** The client the decision was about; null when it could not be determined. */
  readonly client: string | null;
  readonly account: string | null;
  /** The registered API key the request presented, when it presented one. */
  readonly keyId: string | null;
  /** allow, deny, report_only, fail_open, error, ... (the gateway's verdicts). */
  readonly verdict: string;
  readonly reason: string;
  /** The entry that decided, when one matched. */
  readonly entryId: string | null;
  /** Set when the gateway answered itself instead of forwarding. */
  readonly refusal: Refusal | null;
}

/**
 * What a listener tells the rest of the gateway about each request or upgrade: metrics, the
 * access log and the recent-caller table each observe without the request path knowing them.
 */
export interface RequestObserver {
  /** The decision is made; `overheadSeconds` is the time from arrival to decision. */
  decided(req: ObservedRequest, checked: ObservedDecision, overheadSeconds: number): void;
  /** The exchange is over (response ended, connection closed, or upgraded socket closed). */
  finished(req: ObservedRequest, checked: ObservedDecision, status: number, durationSeconds: number): void;
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
