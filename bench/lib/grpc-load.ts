/**
 * Load on a gRPC check service as Envoy puts it: one HTTP/2 connection, the same pre-encoded
 * CheckRequest every time, either as many calls in flight as `concurrency` allows (closed loop:
 * the most checks/s) or at a fixed rate (open loop: latency at a given load, the way the
 * published ext_authz figures are measured).
 *
 * The client speaks gRPC's framing directly over node:http2 (a 5-byte length prefix, the status
 * in the trailers) rather than through grpc-js: Envoy's client is C++ and nearly free, and a
 * grpc-js client on the same two cores would cost as much as the server being measured.
 */
import { connect, constants, type ClientHttp2Session } from 'node:http2';
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

const HEADERS = {
  [constants.HTTP2_HEADER_METHOD]: 'POST',
  [constants.HTTP2_HEADER_PATH]: CHECK_PATH,
  [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
  te: 'trailers',
};

export class GrpcLoad {
  readonly #session: ClientHttp2Session;
  #framed: { request: Buffer; bytes: Buffer } | null = null;

  constructor(address: string) {
    this.#session = connect(`http://${address}`);
    this.#session.on('error', () => undefined);
  }

  /** One call; the raw CheckResponse bytes, or a rejection with the gRPC status when it is not OK. */
  call(request: Buffer): Promise<Buffer> {
    const bytes = this.#frame(request);
    return new Promise((resolve, reject) => {
      const stream = this.#session.request(HEADERS);
      const chunks: Buffer[] = [];
      let status: string | undefined;
      stream.on('response', (headers) => { status = headers['grpc-status'] as string | undefined; });
      stream.on('trailers', (trailers) => { status = trailers['grpc-status'] as string | undefined; });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', reject);
      stream.on('end', () => {
        const body = Buffer.concat(chunks);
        if (status !== '0' || body.length < 5) reject(new Error(`grpc-status ${status ?? 'missing'}`));
        else resolve(body.subarray(5, 5 + body.readUInt32BE(1)));
      });
      stream.end(bytes);
    });
  }

  /** The request with gRPC's message prefix (uncompressed, length), made once. */
  #frame(request: Buffer): Buffer {
    if (this.#framed?.request !== request) {
      const bytes = Buffer.alloc(5 + request.length);
      bytes.writeUInt32BE(request.length, 1);
      request.copy(bytes, 5);
      this.#framed = { request, bytes };
    }
    return this.#framed.bytes;
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
    this.#session.close();
  }
}

function summarize(latencies: number[], errors: number, seconds: number): GrpcLoadResult {
  const sorted = Float64Array.from(latencies).sort();
  const at = (q: number): number => (sorted.length === 0 ? 0 : Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(3)));
  return { checks: sorted.length, rate: sorted.length / seconds, p50Ms: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99), maxMs: at(1), errors };
}
