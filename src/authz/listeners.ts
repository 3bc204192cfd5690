import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenerLimits } from '../gateway/server.ts';
import type { HostPort } from '../ip/host-port.ts';
import type { AuthzUpstreamHeaders } from '../proxy/headers.ts';
import type { Gatekeeper } from '../gateway/gatekeeper.ts';
import type { RequestObserver, Surface } from '../observability/observer.ts';
import type { Logger } from '../observability/logger.ts';
import { startCheckServer, type CheckServer } from './grpc/check-service.ts';
import { createAuthzHttpServer } from './http-server.ts';

export interface AuthzParts {
  readonly gatekeeper: Gatekeeper;
  /** The observers of one surface (metrics label, access-log field). */
  readonly observe: (surface: Surface) => RequestObserver;
  readonly logger: Logger;
  /** Listens as the rest of the gateway does (same errors, same address reporting). */
  readonly listen: (server: Server, at: HostPort) => Promise<AddressInfo>;
  /** Drains an HTTP server as the rest of the gateway does. */
  readonly drain: (server: Server, timeoutMs: number) => Promise<void>;
}

/** What the external-authorization listeners are started from. */
export interface AuthzSettings {
  readonly authz: {
    /** forward-auth, auth_request and Envoy HTTP checks; null: off. */
    readonly listen: HostPort | null;
    /** Envoy ext_authz gRPC; null: off. */
    readonly grpcListen: HostPort | null;
    readonly upstreamHeaders: AuthzUpstreamHeaders;
  };
  readonly limits: ListenerLimits;
}

export interface AuthzListeners {
  readonly http: AddressInfo | null;
  readonly grpc: { readonly address: string; readonly port: number } | null;
  close(timeoutMs: number): Promise<void>;
}

/** Starts the external-authorization listeners the configuration asks for (none by default). */
export async function startAuthzListeners(config: AuthzSettings, parts: AuthzParts): Promise<AuthzListeners> {
  const { gatekeeper, observe, logger } = parts;
  const upstreamHeaders = config.authz.upstreamHeaders;
  let httpServer: Server | null = null;
  let http: AddressInfo | null = null;
  if (config.authz.listen !== null) {
    httpServer = createAuthzHttpServer({
      gatekeeper, upstreamHeaders, limits: config.limits, logger,
      observers: { 'forward-auth': observe('forward-auth'), 'auth-request': observe('auth-request'), 'envoy-http': observe('envoy-http') },
    });
    http = await parts.listen(httpServer, config.authz.listen);
  }
  let grpcServer: CheckServer | null = null;
  try {
    if (config.authz.grpcListen !== null) {
      grpcServer = await startCheckServer(config.authz.grpcListen, { gatekeeper, upstreamHeaders, observer: observe('envoy-grpc'), logger });
    }
  } catch (error) {
    if (httpServer !== null) await parts.drain(httpServer, 0);
    throw error;
  }
  const grpcListen = config.authz.grpcListen;
  return {
    http,
    grpc: grpcServer === null || grpcListen === null ? null : { address: grpcListen.host, port: grpcServer.port },
    close: async (timeoutMs) => {
      await Promise.all([
        httpServer === null ? undefined : parts.drain(httpServer, timeoutMs),
        grpcServer?.close(timeoutMs),
      ]);
    },
  };
}
