import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HostPort } from '../ip/host-port.ts';

/** Listens on `at`; the error names the address (a port in use, an address not on this machine). */
export function listen(server: Server, at: HostPort): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(new Error(`cannot listen on ${at.host}:${at.port}: ${error.message}`));
    server.once('error', onError);
    server.listen(at.port, at.host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** How often a draining server closes the keep-alive connections that went idle since. */
const DRAIN_IDLE_SWEEP_MS = 50;

/**
 * Stops accepting and waits for in-flight requests; past the timeout, cuts what is left
 * (`cutDetached` cuts what the server no longer tracks: upgraded sockets).
 *
 * Node's `server.close()` leaves keep-alive connections open once their response is done, and
 * keeps serving requests that arrive on them: a busy keep-alive caller would hold the process until
 * the timeout and then have a request cut. So while draining, every response that starts goes out
 * with `Connection: close`, and connections left idle are closed as they become idle.
 */
export function drain(server: Server, timeoutMs: number, cutDetached: () => void = () => undefined): Promise<void> {
  return new Promise((resolve) => {
    server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
      res.shouldKeepAlive = false;
    });
    const sweep = setInterval(() => server.closeIdleConnections(), DRAIN_IDLE_SWEEP_MS);
    sweep.unref();
    const timer = setTimeout(() => {
      server.closeAllConnections();
      cutDetached();
    }, timeoutMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
}

type Step = () => Promise<void> | void;

/**
 * A process's listeners and what stops after them. Shutdown runs once, in three phases: the
 * `before` steps (a primary's workers drain their own connections first), then every listener
 * drains at once within the shutdown timeout, then the `after` steps in the order they were
 * added (forwarding, then management, then the store last). A failing step ends the shutdown
 * with its error.
 */
export class Lifecycle {
  readonly #timeoutMs: number;
  readonly #before: Step[] = [];
  readonly #listeners: ((timeoutMs: number) => Promise<void>)[] = [];
  readonly #after: Step[] = [];
  #shutdown: Promise<void> | null = null;

  constructor(shutdownTimeoutMs: number) {
    this.#timeoutMs = shutdownTimeoutMs;
  }

  /** Listens on `at`, and drains the server on shutdown. */
  async listen(server: Server, at: HostPort, cutDetached?: () => void): Promise<AddressInfo> {
    const address = await listen(server, at);
    this.#listeners.push((timeoutMs) => drain(server, timeoutMs, cutDetached));
    return address;
  }

  /** A server already listening that drains itself (given the timeout): the gRPC and other non-HTTP listeners. */
  drains(close: (timeoutMs: number) => Promise<void>): void {
    this.#listeners.push(close);
  }

  before(step: Step): void {
    this.#before.push(step);
  }

  after(step: Step): void {
    this.#after.push(step);
  }

  /** Stops everything; every later call gets the same promise. */
  shutdown(): Promise<void> {
    return (this.#shutdown ??= this.#run());
  }

  async #run(): Promise<void> {
    for (const step of this.#before) await step();
    await Promise.all(this.#listeners.map((close) => close(this.#timeoutMs)));
    for (const step of this.#after) await step();
  }
}
