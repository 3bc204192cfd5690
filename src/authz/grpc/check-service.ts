/**
 * Envoy ext_authz over gRPC (`envoy.service.auth.v3.Authorization/Check`), served with grpc-js:
 * the CheckRequest is read into the Gatekeeper's view and the Checked written back as a
 * CheckResponse. The client address is the source Envoy reports (its downstream peer), run through
 * the same client-IP rules as a proxied request from that peer; the gRPC caller (Envoy itself)
 * must be a trusted proxy.
 */

import { Server, ServerCredentials, status as GrpcStatus, type ServerUnaryCall, type sendUnaryData, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { HostPort } from '../../ip/host-port.ts';
import type { AuthzUpstreamHeaders } from '../../proxy/headers.ts';
import type { Checked, Gatekeeper, IncomingView } from '../../gateway/gatekeeper.ts';
import type { RequestObserver } from '../../observability/observer.ts';
import { randomUUID } from 'node:crypto';
import { refusalBody } from '../../http/raw-response.ts';
import { refusal, type Refusal } from '../../http/refusal.ts';
import type { Logger } from '../../observability/logger.ts';
import { decodeCheckRequest, encodeCheckResponse, type CheckAnswer, type CheckRequestView, type HeaderPair } from './codec.ts';

export const CHECK_METHOD = '/envoy.service.auth.v3.Authorization/Check';

/** grpc-js service definition with the hand-written codec as (de)serializers. */
export const AUTHORIZATION_SERVICE: ServiceDefinition = {
  Check: {
    path: CHECK_METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: () => {
      throw new Error('the check service only reads CheckRequests');
    },
    requestDeserialize: decodeCheckRequest,
    responseSerialize: encodeCheckResponse,
    responseDeserialize: () => {
      throw new Error('the check service only writes CheckResponses');
    },
  },
};

/** The original request a CheckRequest describes; the gRPC peer is the caller to trust. */
export function viewOfCheck(request: CheckRequestView, grpcPeer: string): IncomingView {
  return { url: request.path, rawHeaders: request.headers, remoteAddress: request.source ?? undefined, caller: peerAddress(grpcPeer), method: request.method };
}

/** grpc-js reports its peer as `address:port` (IPv6 unbracketed), or `unknown`. */
export function peerAddress(peer: string): string | undefined {
  const colon = peer.lastIndexOf(':');
  if (colon <= 0 || peer === 'unknown') return undefined;
  const host = peer.slice(0, colon);
  return host.charCodeAt(0) === 91 /* [ */ ? host.slice(1, -1) : host;
}

/** google.rpc.Code for each refusal status; a denial Envoy does not recognize would still deny. */
const GRPC_CODES: Readonly<Record<number, number>> = {
  400: GrpcStatus.INVALID_ARGUMENT,
  401: GrpcStatus.UNAUTHENTICATED,
  403: GrpcStatus.PERMISSION_DENIED,
  404: GrpcStatus.NOT_FOUND,
  408: GrpcStatus.DEADLINE_EXCEEDED,
  429: GrpcStatus.RESOURCE_EXHAUSTED,
  431: GrpcStatus.INVALID_ARGUMENT,
  500: GrpcStatus.INTERNAL,
  503: GrpcStatus.UNAVAILABLE,
  504: GrpcStatus.DEADLINE_EXCEEDED,
};

/** The CheckResponse for a decision. Header names are lower case, as HTTP/2 and Envoy want them. */
export function answerOfCheck(checked: Checked, names: AuthzUpstreamHeaders): CheckAnswer {
  const metadata = [
    ['account', checked.account],
    ['client_ip', checked.client],
    ['decision', checked.verdict],
    ['reason', checked.reason],
    ['request_id', checked.requestId],
  ] as const;
  if (checked.refusal !== null) return refusalAnswer(checked.refusal, checked.requestId, metadata);
  const headers: HeaderPair[] = [];
  const remove: string[] = [];
  // A header with nothing to say is removed, so a client's own copy never reaches the upstream.
  if (names.account !== null) {
    if (checked.account !== null) headers.push([names.account.toLowerCase(), checked.account]);
    else remove.push(names.account.toLowerCase());
  }
  if (names.clientIp !== null) {
    if (checked.client !== null) headers.push([names.clientIp.toLowerCase(), checked.client]);
    else remove.push(names.clientIp.toLowerCase());
  }
  return { code: GrpcStatus.OK, message: '', ok: { headers, remove }, denied: null, metadata };
}

function refusalAnswer(refused: Refusal, requestId: string, metadata: CheckAnswer['metadata']): CheckAnswer {
  return {
    code: GRPC_CODES[refused.status] ?? GrpcStatus.PERMISSION_DENIED,
    message: refused.message,
    ok: null,
    denied: {
      status: refused.status,
      headers: [['content-type', 'application/json'], ['cache-control', 'no-store'], ['x-request-id', requestId]],
      body: refusalBody(refused, requestId),
    },
    metadata,
  };
}

/**
 * A check without an HTTP request (Envoy's network filter sends only addresses) cannot be decided
 * the way the proxy decides: it is refused rather than judged on half of the request.
 */
const NOT_HTTP = refusal(400, 'invalid_check_request', 'the CheckRequest describes no HTTP request (attributes.request.http.path is not a path): allowgate checks HTTP requests, from the ext_authz HTTP filter');

export interface CheckServiceParts {
  readonly gatekeeper: Gatekeeper;
  readonly upstreamHeaders: AuthzUpstreamHeaders;
  readonly observer: RequestObserver;
  readonly logger: Logger;
}

export interface CheckServer {
  readonly port: number;
  /** Stops taking calls, lets those in flight finish for up to `timeoutMs`, then cancels the rest. */
  close(timeoutMs: number): Promise<void>;
}

export async function startCheckServer(at: HostPort, parts: CheckServiceParts): Promise<CheckServer> {
  const { gatekeeper, upstreamHeaders, observer, logger } = parts;
  const server = new Server();

  const answer = (request: CheckRequestView, checked: Checked, start: number, callback: sendUnaryData<CheckAnswer>): void => {
    const original = { method: request.method, url: request.path };
    observer.decided(original, checked, (performance.now() - start) / 1000);
    callback(null, answerOfCheck(checked, upstreamHeaders));
    observer.finished(original, checked, checked.refusal?.status ?? 200, (performance.now() - start) / 1000);
  };

  const implementation: UntypedServiceImplementation = {
    Check: (call: ServerUnaryCall<CheckRequestView, CheckAnswer>, callback: sendUnaryData<CheckAnswer>) => {
      const start = performance.now();
      const request = call.request;
      if (request.path.charCodeAt(0) !== 47 /* / */) {
        logger.warn({ peer: call.getPeer(), reason: NOT_HTTP.reason }, `authorization check refused: ${NOT_HTTP.message}`);
        callback(null, refusalAnswer(NOT_HTTP, request.id || randomUUID(), []));
        return;
      }
      const checked = gatekeeper.check(viewOfCheck(request, call.getPeer()));
      if (checked instanceof Promise) {
        checked.then((c) => answer(request, c, start, callback), (error: unknown) => {
          logger.error({ err: error, url: request.path }, 'authorization check failed');
          callback({ code: GrpcStatus.INTERNAL, details: 'the gateway failed to check this request' });
        });
      } else {
        answer(request, checked, start, callback);
      }
    },
  };
  server.addService(AUTHORIZATION_SERVICE, implementation);

  const host = at.host.includes(':') ? `[${at.host}]` : at.host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${at.port}`, ServerCredentials.createInsecure(), (error, bound) => {
      if (error !== null) reject(new Error(`cannot listen on ${at.host}:${at.port} (gRPC): ${error.message}`));
      else resolve(bound);
    });
  });

  return {
    port,
    close: (timeoutMs) => new Promise((resolve) => {
      const timer = setTimeout(() => server.forceShutdown(), timeoutMs);
      timer.unref();
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    }),
  };
}
