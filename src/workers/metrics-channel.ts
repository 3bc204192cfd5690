import type { Worker } from 'node:cluster';
import type { Metrics, MetricsSnapshot } from '../observability/metrics.ts';

/**
 * Metrics over the cluster's IPC channel: at each scrape the primary asks every worker for its
 * metrics and adds its own, so one /metrics speaks for every process of the pod.
 */

const REQUEST = 'allowgate:metrics-request';
const REPLY = 'allowgate:metrics-reply';
/** A worker that does not answer in time is left out of that scrape rather than stalling it. */
const REPLY_TIMEOUT_MS = 2_000;

interface Request { readonly type: typeof REQUEST; readonly id: number }
interface Reply { readonly type: typeof REPLY; readonly id: number; readonly metrics: MetricsSnapshot }

function isRequest(message: unknown): message is Request {
  return typeof message === 'object' && message !== null && (message as Request).type === REQUEST && typeof (message as Request).id === 'number';
}

function isReply(message: unknown): message is Reply {
  return typeof message === 'object' && message !== null && (message as Reply).type === REPLY && Array.isArray((message as Reply).metrics);
}

/** In a worker: answers the primary's requests with this process's metrics. */
export function answerMetricsRequests(metrics: Metrics): void {
  process.on('message', (message: unknown) => {
    if (!isRequest(message)) return;
    metrics.snapshot().then(
      (snapshot) => process.send?.({ type: REPLY, id: message.id, metrics: snapshot } satisfies Reply),
      () => process.send?.({ type: REPLY, id: message.id, metrics: [] } satisfies Reply),
    );
  });
}

let nextId = 0;

/** In the primary: the metrics of every worker that answers within the timeout. */
export function requestWorkerMetrics(workers: readonly Worker[]): Promise<MetricsSnapshot[]> {
  return Promise.all(workers.map((worker) => new Promise<MetricsSnapshot | null>((resolve) => {
    const id = ++nextId;
    const done = (value: MetricsSnapshot | null): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('exit', onExit);
      resolve(value);
    };
    const onMessage = (message: unknown): void => {
      if (isReply(message) && message.id === id) done(message.metrics);
    };
    const onExit = (): void => done(null);
    const timer = setTimeout(() => done(null), REPLY_TIMEOUT_MS);
    worker.on('message', onMessage);
    worker.once('exit', onExit);
    try {
      worker.send({ type: REQUEST, id } satisfies Request);
    } catch {
      done(null);
    }
  }))).then((all) => all.filter((m): m is MetricsSnapshot => m !== null));
}
