import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  json<T = Record<string, unknown>>(): T;
}

export interface SendOptions {
  readonly method?: string;
  /** Headers as pairs, so a test can repeat a header or choose its case. */
  readonly headers?: OutgoingHttpHeaders | readonly (readonly [string, string])[];
  readonly body?: string;
  /** The source address: any 127.0.0.0/8 address works on loopback, so tests can play many clients. */
  readonly localAddress?: string;
  readonly timeoutMs?: number;
  /** The request target exactly as written (a URL would drop a fragment, for one); default: the URL's. */
  readonly target?: string;
}

/** One HTTP/1.1 request over a fresh real socket (no keep-alive), bounded in time. */
export function send(url: string, options: SendOptions = {}): Promise<Reply> {
  const target = new URL(url);
  const headers = Array.isArray(options.headers) ? options.headers.flat() : options.headers;
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: target.hostname.replace(/^\[|\]$/g, ''),
      port: target.port,
      path: options.target ?? `${target.pathname}${target.search}`,
      method: options.method ?? 'GET',
      headers: headers as OutgoingHttpHeaders,
      agent: false,
      timeout: options.timeoutMs ?? 5_000,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: <T>() => JSON.parse(body) as T });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}
