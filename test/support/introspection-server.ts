import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the server answers for a token: an RFC 7662 introspection response. */
export type TokenInfo = Record<string, unknown> & { readonly active: boolean };

export interface IntrospectionServer {
  readonly url: string;
  /** Every call, with what it carried (the token from the form body, the client's Authorization). */
  readonly calls: { readonly token: string | null; readonly authorization: string | undefined; readonly contentType: string | undefined }[];
  /** Tokens it knows; any other is `{active: false}`. */
  readonly tokens: Map<string, TokenInfo>;
  /** Milliseconds to wait before answering (0: at once). */
  delayMs: number;
  /** A status to answer every call with instead (e.g. 500), or null. */
  failWith: number | null;
  close(): Promise<void>;
}

/**
 * A real OAuth 2.0 token introspection endpoint (RFC 7662) on loopback: POST with an
 * application/x-www-form-urlencoded body `token=...`, HTTP Basic client authentication, answering
 * `{"active": ...}` and the token's members. Calls without the expected client credentials get 401.
 */
export async function startIntrospectionServer(clientId: string, clientSecret: string): Promise<IntrospectionServer> {
  const expected = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
  const state = { delayMs: 0, failWith: null as number | null };
  const calls: IntrospectionServer['calls'] = [];
  const tokens = new Map<string, TokenInfo>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const token = form.get('token');
      calls.push({ token, authorization: req.headers.authorization, contentType: req.headers['content-type'] });
      const answer = (status: number, body: unknown): void => {
        const text = JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      setTimeout(() => {
        if (state.failWith !== null) return answer(state.failWith, { error: 'server_error' });
        if (req.method !== 'POST' || req.headers.authorization !== expected) return answer(401, { error: 'invalid_client' });
        if (token === null) return answer(400, { error: 'invalid_request' });
        answer(200, tokens.get(token) ?? { active: false });
      }, state.delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/oauth2/introspect`,
    calls,
    tokens,
    get delayMs() { return state.delayMs; },
    set delayMs(ms: number) { state.delayMs = ms; },
    get failWith() { return state.failWith; },
    set failWith(status: number | null) { state.failWith = status; },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
