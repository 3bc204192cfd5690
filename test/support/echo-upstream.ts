import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  /** The header lines as they arrived: order, case and repeats kept. */
  readonly rawHeaders: readonly string[];
  readonly body: string;
}

export interface EchoUpstream {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

/**
 * A real HTTP upstream on loopback that answers every request with a JSON echo of what it
 * received (method, path, headers, body), so tests can assert what the gateway forwarded.
 * Also usable by hand: `npm run upstream:demo`.
 */
export async function startEchoUpstream(port = 0, host = '127.0.0.1'): Promise<EchoUpstream> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const record = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(record);
      // Misbehaviour on request, for the gateway's failure paths: /reset drops the connection,
      // /slow?ms=N answers after N milliseconds.
      if (record.url.startsWith('/reset')) {
        req.socket.destroy();
        return;
      }
      const delay = record.url.startsWith('/slow') ? Number(new URL(record.url, 'http://x').searchParams.get('ms') ?? 1000) : 0;
      const body = JSON.stringify({ upstream: 'echo', ...record });
      const answer = (): void => {
        res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
        res.end(body);
      };
      if (delay > 0) setTimeout(answer, delay);
      else answer();
    });
  });
  const upgraded = new Set<import('node:stream').Duplex>();
  server.on('upgrade', (req, socket, head: Buffer) => {
    upgraded.add(socket);
    socket.on('close', () => upgraded.delete(socket));
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: '' });
    // /no-upgrade answers 400 and keeps reading: anything more that arrives is recorded, so a test
    // can tell whether bytes sent after a refused handshake reached the upstream.
    if ((req.url ?? '').startsWith('/no-upgrade')) {
      const record = (data: Buffer): void => {
        seen.push({ method: 'DATA', url: '/after-refused-upgrade', headers: {}, rawHeaders: [], body: data.toString('latin1') });
      };
      if (head.length > 0) record(head);
      socket.on('data', record);
      socket.write('HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 11\r\n\r\nno upgrade\n');
      return;
    }
    // A minimal WebSocket-style handshake: enough to prove an upgrade was forwarded.
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n');
    if (head.length > 0) socket.write(head);
    socket.on('data', (data: Buffer) => socket.write(data));
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const actual = (server.address() as AddressInfo).port;
  return {
    server,
    port: actual,
    url: `http://${host}:${actual}`,
    seen,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      for (const socket of upgraded) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env['PORT'] ?? 3000);
  const upstream = await startEchoUpstream(port);
  process.stdout.write(`echo upstream listening on ${upstream.url}\n`);
}
