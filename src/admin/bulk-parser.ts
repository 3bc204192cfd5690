import { Worker } from 'node:worker_threads';
import { refusal } from '../http/refusal.ts';
import type { BulkFormat, BulkLimits, BulkParsed } from './bulk-input.ts';

/** Longest a body may take to parse before the worker is stopped and the request refused. */
const PARSE_TIMEOUT_MS = 5_000;

interface Pending {
  readonly worker: Worker;
  readonly resolve: (parsed: BulkParsed) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Parses list bodies on a worker thread, off the loop that serves the proxy: JSON.parse of a
 * large body, the CSV reader and the expansion of ranges cannot be cut into slices, and one
 * request's worst case must not show in another tenant's latency. The worker's heap is capped,
 * so a body built to exhaust memory costs the worker (restarted on the next body), not the
 * gateway; one that takes longer than PARSE_TIMEOUT_MS is refused the same way.
 */
export class BulkParser {
  readonly #heapMb: number;
  #worker: Worker | null = null;
  readonly #pending = new Map<number, Pending>();
  #next = 0;

  /** `heapMb`: the worker's old-generation limit. */
  constructor(heapMb: number) {
    this.#heapMb = heapMb;
  }

  parse(format: BulkFormat, body: Buffer, nowMs: number, limits: BulkLimits): Promise<BulkParsed> {
    const worker = this.#worker ?? this.#start();
    const id = ++this.#next;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#fail(worker, 'took too long to read'), PARSE_TIMEOUT_MS);
      this.#pending.set(id, { worker, resolve, timer });
      // A copy the worker owns: the request's buffer may be a slice of a shared pool.
      const copy = new Uint8Array(body);
      worker.postMessage({ id, format, body: copy, nowMs, limits }, [copy.buffer]);
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = null;
    if (worker !== null) await worker.terminate();
  }

  #start(): Worker {
    const worker = new Worker(new URL('./bulk-worker.ts', import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: this.#heapMb, maxYoungGenerationSizeMb: 8 } });
    worker.unref();
    worker.on('message', (message: { id: number; result: BulkParsed }) => {
      const pending = this.#pending.get(message.id);
      if (pending === undefined) return;
      this.#pending.delete(message.id);
      clearTimeout(pending.timer);
      pending.resolve(message.result);
    });
    worker.on('error', () => this.#fail(worker, 'needed more memory than a list body may use'));
    worker.on('exit', () => this.#fail(worker, 'could not be read'));
    this.#worker = worker;
    return worker;
  }

  /** Refuses every body the worker holds and lets the next body start a fresh one. */
  #fail(worker: Worker, why: string): void {
    if (this.#worker === worker) this.#worker = null;
    void worker.terminate();
    const refused = { ok: false as const, refusal: refusal(413, 'body_too_complex', `the body ${why}: send fewer rows, or split it into several imports`) };
    for (const [id, pending] of this.#pending) {
      if (pending.worker !== worker) continue;
      clearTimeout(pending.timer);
      this.#pending.delete(id);
      pending.resolve(refused);
    }
  }
}
