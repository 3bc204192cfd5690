import { parentPort } from 'node:worker_threads';
import { parseBulk, type BulkFormat, type BulkLimits } from './bulk-input.ts';

/** The worker side of bulk-parser.ts: one body at a time, answered by job id. */
interface Job {
  readonly id: number;
  readonly format: BulkFormat;
  readonly body: Uint8Array;
  readonly nowMs: number;
  readonly limits: BulkLimits;
}

parentPort!.on('message', (job: Job) => {
  const text = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength).toString('utf8');
  parentPort!.postMessage({ id: job.id, result: parseBulk(job.format, text, job.nowMs, job.limits) });
});
