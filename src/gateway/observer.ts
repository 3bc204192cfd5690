import type { IncomingMessage } from 'node:http';
import type { Checked } from './gatekeeper.ts';

/**
 * What the proxy listener tells the rest of the gateway about each request or upgrade: metrics,
 * the access log and the recent-caller table each observe without the request path knowing them.
 */
export interface RequestObserver {
  /** The decision is made; `overheadSeconds` is the time from arrival to decision. */
  decided(req: IncomingMessage, checked: Checked, overheadSeconds: number): void;
  /** The exchange is over (response ended, connection closed, or upgraded socket closed). */
  finished(req: IncomingMessage, checked: Checked, status: number, durationSeconds: number): void;
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
