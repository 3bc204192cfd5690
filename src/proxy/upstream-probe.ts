import { connect } from 'node:net';

/**
 * Whether the upstream accepts connections, for readiness (readiness.upstream): a TCP connect
 * every `intervalMs`, nothing sent. A pod is then not Ready before its API listens, and stops
 * being Ready when the API stops listening, so traffic goes to pods that can serve it.
 */
export class UpstreamProbe {
  readonly #host: string;
  readonly #port: number;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | null = null;
  #reachable = false;
  #error: string | null = 'not probed yet';

  constructor(url: URL, intervalMs = 2_000) {
    this.#host = url.hostname.replace(/^\[|\]$/g, '');
    this.#port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    this.#intervalMs = intervalMs;
  }

  /** Probes once now, then every interval. Resolves after the first probe. */
  start(): Promise<void> {
    this.#timer = setInterval(() => void this.probe(), this.#intervalMs);
    this.#timer.unref();
    return this.probe();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  get reachable(): boolean {
    return this.#reachable;
  }

  /** Why the last probe failed, or null after a success. */
  get error(): string | null {
    return this.#error;
  }

  probe(): Promise<void> {
    return new Promise((resolve) => {
      const socket = connect({ host: this.#host, port: this.#port });
      const done = (error: string | null): void => {
        socket.destroy();
        this.#reachable = error === null;
        this.#error = error;
        resolve();
      };
      socket.setTimeout(Math.min(1_000, this.#intervalMs), () => done('no answer to a connection attempt within 1 s'));
      socket.once('connect', () => done(null));
      socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
    });
  }
}
