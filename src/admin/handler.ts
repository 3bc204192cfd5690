import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { callerRequestId } from '../gateway/request-id.ts';
import { refusal, type Refusal } from '../http/refusal.ts';
import { LogLimiter } from '../observability/log-limiter.ts';
import type { EventLog } from '../observability/logger.ts';
import { serveMetrics, type MetricsEndpoint } from '../observability/metrics-endpoint.ts';
import type { AclStore } from '../store/store.ts';
import type { AuthLimiter } from './auth-limiter.ts';
import { DEFAULT_BODY_LIMITS } from './body.ts';
import type { ConsoleHandler } from './console.ts';
import type { BodyLimits, Handler, Surface } from './context.ts';
import type { Actor } from './credentials.ts';
import { Health } from './api-schemas.ts';
import { refusedReason, sendBody, sendError, sendJson } from './respond.ts';
import { compileRoutes, type Match } from './router.ts';
import { WriteGate } from './write-gate.ts';


export interface AdminDeps {
  readonly store: AclStore;
  /** Native first; compatible surfaces after it. A request belongs to the first whose prefix it has. */
  readonly surfaces: readonly Surface[];
  /** Resolves a presented token to its credential (constant-time), or null. */
  readonly authenticate: (token: string) => Actor | null;
  readonly limiter: AuthLimiter;
  health(): { readonly live: boolean; readonly ready: boolean; readonly detail?: Record<string, unknown> };
  /** Served without credentials: the API description holds no secrets. */
  readonly openapi?: () => unknown;
  /** /metrics on this listener (null when metrics have a listener of their own). */
  readonly metrics?: MetricsEndpoint | null;
  /** Told of every answered request by route template (not the raw path: bounded labels). */
  readonly observeRequest?: (route: string, method: string, status: number) => void;
  /**
   * Told of a list change refused before it reached the change itself: input the API could not
   * read (invalid_format and the like). Refusals of the change (validation, lockout guard, store)
   * are counted where it runs.
   */
  readonly observeInputRefusal?: (reason: string) => void;
  readonly logger?: EventLog;
  readonly bodyLimits?: BodyLimits;
  /** The admin console's static files (/console/); absent: no console. */
  readonly console?: ConsoleHandler;
  /** Admission of writes (rate and concurrency per credential, concurrency in all); absent: the defaults. */
  readonly writes?: WriteGate;
  /** Refuses a Host this listener does not answer to (compileHostCheck); absent: any Host. */
  readonly checkHost?: (host: string | undefined) => Refusal | null;
}

/**
 * The management listener: health, then per surface authentication (with failed attempts
 * rate-limited and logged), routing, and one place that turns unexpected failures into answers.
 */
export function createAdminHandler(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { store, logger, limiter } = deps;
  const bodyLimits = deps.bodyLimits ?? DEFAULT_BODY_LIMITS;
  const writes = deps.writes ?? new WriteGate();
  const surfaces = deps.surfaces.map((surface) => ({ surface, route: compileRoutes<Handler>(surface.routes) }));
  const storeDownLines = new LogLimiter();
  // Refusals a client can repeat at will: one line per kind now and then, not one per request.
  const refusalLines = new LogLimiter();

  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';
    // Before anything is served, probes and the console included: a rebound DNS name reaches nothing.
    const misdirected = deps.checkHost?.(req.headers.host) ?? null;
    if (misdirected !== null) {
      req.resume();
      const line = refusalLines.take(`host ${req.socket.remoteAddress ?? ''}`);
      if (line !== null) logger?.warn({ host: (req.headers.host ?? '').slice(0, 128), source: req.socket.remoteAddress, path: path.slice(0, 128), ...line }, 'admin request refused: unknown Host');
      return sendError(res, misdirected);
    }
    if ((path === '/healthz' || path === '/readyz') && (method === 'GET' || method === 'HEAD')) {
      const state = deps.health();
      const ok = path === '/healthz' ? state.live : state.ready;
      return sendBody(res, ok ? 200 : 503, Health, { status: ok ? 'ok' : 'unavailable', ...state.detail });
    }
    if (path === '/v1/openapi.json' && deps.openapi && (method === 'GET' || method === 'HEAD')) return sendJson(res, 200, deps.openapi());
    if (path === '/metrics' && deps.metrics && (method === 'GET' || method === 'HEAD')) return serveMetrics(req, res, deps.metrics);
    if (deps.console?.(req, res, path)) return;

    // The gateway's own id, on every answer and in the audit trail beside the caller's.
    const gatewayRequestId = randomUUID();
    res.setHeader('x-gateway-request-id', gatewayRequestId);
    // Labelled by route template once routed; refusals before that share one label.
    let route = 'unmatched';
    const observe = deps.observeRequest;
    if (observe) res.once('finish', () => observe(route, method, res.statusCode));
    if (deps.observeInputRefusal !== undefined && method !== 'GET' && method !== 'HEAD') {
      const observeInput = deps.observeInputRefusal;
      res.once('finish', () => {
        const reason = refusedReason(res);
        if (reason !== undefined && route !== 'unmatched' && INPUT_REASONS.has(reason)) observeInput(reason);
      });
    }
    const chosen = surfaces.find(({ surface }) => path.startsWith(surface.prefix)) ?? surfaces[0]!;
    const { surface } = chosen;
    const fail = (status: Parameters<typeof refusal>[0], reason: string, message: string, headers: Record<string, string> = {}): void => {
      req.resume();
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      surface.sendError(res, refusal(status, reason, message));
    };
    // An answer given before the body arrived whole (refused early: too large, too many rows)
    // ends the connection, so a body that never ends cannot keep it.
    res.once('finish', () => {
      if (req.complete) return;
      // A moment for the client to read the answer, then the connection goes with what is left of the body.
      setTimeout(() => req.socket.destroy(), 1_000).unref();
    });
    // No token, or none that can be read (a browser's /favicon.ico): refused, but no guess either.
    const token = surface.tokenOf(req);
    if (!token.ok) return fail(token.refusal.status, token.refusal.reason, token.refusal.message);
    // Always checked, whatever the limiter says: a valid credential is served even from an address
    // that is sending wrong ones (a shared 127.0.0.1, a NAT); only failed guesses are held back.
    const actor = deps.authenticate(token.value);
    if (actor === null) {
      const source = req.socket.remoteAddress ?? 'unknown';
      const wait = limiter.blockedFor(source);
      if (wait > 0) {
        const line = refusalLines.take(`auth ${source}`);
        if (line !== null) logger?.warn({ source, path: path.slice(0, 128), method, ...line }, 'admin authentication failed: too many attempts');
        return fail(429, 'too_many_attempts', `too many failed authentications from ${source}; retry in ${wait} s (a valid credential is still accepted)`, { 'retry-after': String(wait) });
      }
      // At most maxFailures lines per source and window: the 429s after them share the line above.
      const failures = limiter.fail(source);
      logger?.warn({ source, path: path.slice(0, 128), method, failures }, 'admin authentication failed');
      return fail(401, 'invalid_token', 'the credentials are not valid');
    }

    const match: Match<Handler> = chosen.route(method, path);
    if (match.ok) route = match.template;
    if (!match.ok) return fail(match.refusal.status, match.refusal.reason, match.refusal.message, match.allow ? { allow: match.allow } : {});
    if (match.writes) {
      const slot = writes.enter(actor.name);
      if (!slot.ok) {
        const line = refusalLines.take(`${slot.refusal.reason} ${actor.name}`);
        if (line !== null) logger?.warn({ actor: actor.name, path: path.slice(0, 128), method, reason: slot.refusal.reason, ...line }, 'admin write refused: over its limits');
        return fail(slot.refusal.status, slot.refusal.reason, slot.refusal.message, { 'retry-after': String(slot.retryAfter) });
      }
      res.once('close', slot.release);
    }
    const ctx = { req, res, params: match.params, query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)), actor, requestId: callerRequestId(req.rawHeaders) ?? gatewayRequestId, gatewayRequestId, bodyLimits };
    match.handler(ctx).catch((error: unknown) => {
      // A command that got no answer in time (a frozen or overloaded Redis, its connection still
      // open) is the store being unavailable too, not a fault of the gateway's.
      const down = store.state() === 'down' || storeTimedOut(error);
      if (!down) {
        logger?.error({ err: error, method, path, store_state: store.state() }, 'admin request failed');
      } else {
        // Every request fails the same way during an outage: one line with the cause now and then.
        const line = storeDownLines.take(`${route} ${method}`);
        if (line !== null) logger?.warn({ method, route, store_state: store.state(), cause: error instanceof Error ? error.message : String(error), ...line }, 'admin request failed: the store is unavailable');
      }
      if (res.headersSent) return res.destroy();
      surface.sendError(res, down
        ? refusal(503, 'store_unavailable', `the store (${store.kind}) is unreachable, so nothing was read or changed; retry once it is back (see /readyz)`)
        : refusal(500, 'internal_error', 'the admin API failed to handle this request; see the gateway log'));
    });
  };
}

/** Refusals of a change's input, given by the API before the change runs (never by the change). */
const INPUT_REASONS = new Set(['invalid_format', 'missing_field', 'invalid_field', 'unknown_field', 'invalid_json', 'invalid_csv', 'invalid_body']);

function storeTimedOut(error: unknown): boolean {
  return error instanceof Error && /timed? ?out/i.test(error.message);
}
