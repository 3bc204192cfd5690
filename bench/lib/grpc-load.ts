/**
 * Load on a gRPC check service as Envoy puts it: one HTTP/2 connection, the same pre-encoded
 * CheckRequest every time (so the client spends nothing on encoding), either as many calls in
 * flight as `concurrency` allows (closed loop: the most checks/s) or at a fixed rate (open loop:
 * latency at a given load, the way the published ext_authz figures are measured).
 */
import { Client, credentials } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';

export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

export interface GrpcLoadResult {
  readonly checks: number;
  readonly rate: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly errors: number;
}

const identity = (b: Buffer): Buffer => b;

export class GrpcLoad {
  readonly #client: Client;

  constructor(address: string) {
    this.#client = new Client(address, credentials.createInsecure());
  }

  /** One call; the raw CheckResponse bytes. */
  call(request: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(CHECK_PATH, identity, identity, request, (error, response) => {
        if (error !== null || response === undefined) reject(error ?? new Error('no response'));
        else resolve(response);
      });
    });
  }

  async closedLoop(request: Buffer, concurrency: number, seconds: number): Promise<GrpcLoadResult> {
    const latencies: number[] = [];
    let errors = 0;
    const deadline = performance.now() + seconds * 1000;
    const worker = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const sent = performance.now();
        try {
          await this.call(request);
          latencies.push(performance.now() - sent);
        } catch {
          errors++;
        }
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    return summarize(latencies, errors, (performance.now() - started) / 1000);
  }

  /** `rate` calls per second for `seconds`; latency from each call's actual send to its answer. */
  async openLoop(request: Buffer, rate: number, seconds: number): Promise<GrpcLoadResult> {
    const latencies: number[] = [];
    let errors = 0;
    const total = Math.round(rate * seconds);
    const started = performance.now();
    const pending: Promise<void>[] = [];
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
      for (; sent < due; sent++) {
        const at = performance.now();
        pending.push(this.call(request).then(() => { latencies.push(performance.now() - at); }, () => { errors++; }));
      }
      await sleep(1);
    }
    await Promise.all(pending);
    return summarize(latencies, errors, (performance.now() - started) / 1000);
  }

  close(): void {
    this.#client.close();
  }
}

function summarize(latencies: number[], errors: number, seconds: number): GrpcLoadResult {
  const sorted = Float64Array.from(latencies).sort();
  const at = (q: number): number => (sorted.length === 0 ? 0 : Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(3)));
  return { checks: sorted.length, rate: sorted.length / seconds, p50Ms: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99), maxMs: at(1), errors };
}
