import type { IncomingMessage } from 'node:http';
import type { Config } from '../config/types.ts';
import type { Gatekeeper } from '../gateway/gatekeeper.ts';
import { createGatewayServer, sendRefusal, type GatewayServer } from '../gateway/server.ts';
import type { Refusal } from '../http/refusal.ts';
import type { HostPort } from '../ip/host-port.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { RequestObserver } from '../observability/observer.ts';
import { redactUrl } from '../observability/redact-url.ts';
import type { RefusalDigest } from '../observability/refusal-digest.ts';
import { checkedHeaderNames } from '../proxy/headers.ts';
import { HttpForwarder, type UpstreamFailure } from '../proxy/http-forwarder.ts';
import { WsForwarder } from '../proxy/ws-forwarder.ts';

export interface Proxy {
  readonly at: HostPort;
  readonly gateway: GatewayServer;
  readonly forwarder: HttpForwarder;
  /** Closes the upstream connections (after the listener has drained). */
  close(): Promise<void>;
}

export interface ProxyParts {
  readonly gatekeeper: Gatekeeper;
  readonly observer: RequestObserver;
  readonly metrics: Metrics;
  readonly refusals: RefusalDigest;
  readonly logger: Logger;
}

/** The proxy listener and its forwarding to the upstream, with upstream failures counted and logged. */
export function createProxy(config: Config, at: HostPort, { gatekeeper, observer, metrics, refusals, logger }: ProxyParts): Proxy {
  const upstreamFailed = (req: IncomingMessage, failure: UpstreamFailure, refused: Refusal | null): void => {
    metrics.upstreamError(failure.kind);
    const { facts } = failure;
    const entry = {
      request_id: facts.requestId, url: redactUrl(req.url ?? ''), client_ip: facts.client, account: facts.account,
      kind: failure.kind, cause: describeCause(failure.cause), ...(refused === null ? {} : { reason: refused.reason, status: refused.status }),
    };
    refusals.note(facts.account, facts.client ?? facts.peer, refused?.reason ?? `upstream_${failure.kind}_mid_response`, entry, refused === null ? 'upstream failed mid-response' : 'upstream failed');
  };
  const dropUnderscores = config.headers.underscores === 'drop';
  // The upstream behind allowgate's own proxy reads the same account and address headers an
  // external proxy gets from a check.
  const checkedHeaders = checkedHeaderNames(config.authz.upstreamHeaders);
  const forwarder = new HttpForwarder(config.upstream, {
    responded: (status) => metrics.upstreamResponse(status),
    refuse: (req, res, refused, failure) => {
      upstreamFailed(req, failure, refused);
      sendRefusal(res, refused, failure.facts.requestId);
    },
    aborted: (req, failure) => upstreamFailed(req, failure, null),
    shed: (req, res, refused, facts) => {
      metrics.shed(refused.reason);
      refusals.note(facts.account, facts.client ?? facts.peer, refused.reason, {
        request_id: facts.requestId, url: redactUrl(req.url ?? ''), client_ip: facts.client, account: facts.account, reason: refused.reason, status: refused.status,
      }, 'request shed: upstream capacity');
      sendRefusal(res, refused, facts.requestId);
    },
  }, { bodyIdleTimeoutMs: config.limits.bodyIdleTimeoutMs, dropUnderscores, checkedHeaders });
  const wsForwarder = new WsForwarder(config.upstream, { dropUnderscores, checkedHeaders }, (req, kind, requestId) => {
    metrics.upstreamError(kind);
    logger.warn({ request_id: requestId, url: redactUrl(req.url ?? ''), kind }, 'websocket upstream failed');
  });
  const gateway = createGatewayServer({ gatekeeper, http: forwarder, ws: wsForwarder, logger, limits: config.limits, observer });
  return {
    at,
    gateway,
    forwarder,
    close: async () => {
      wsForwarder.close();
      await forwarder.close();
    },
  };
}

/** An upstream error's message with its causes (undici wraps the socket's error). */
function describeCause(error: Error): string {
  const parts: string[] = [];
  for (let current: unknown = error; current instanceof Error && parts.length < 4; current = current.cause) {
    const code = (current as NodeJS.ErrnoException).code;
    parts.push(code === undefined ? current.message : `${current.message} (${code})`);
  }
  return parts.join(': ');
}
