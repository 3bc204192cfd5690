/**
 * The baselines of the authorization benchmark, each in a process of its own
 * (`node bench/lib/authz-servers.ts <kind> <port>`), so they pay the same process and event-loop
 * costs as allowgate:
 *
 * - `http`: a bare Node HTTP server answering every check with allowgate's allow answer (200, the
 *   same headers, no body) without looking at the request;
 * - `grpc`: a bare grpc-js server of `envoy.service.auth.v3.Authorization/Check`, written the usual
 *   way (@grpc/proto-loader from the same .proto files), answering OK with the same headers.
 */
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { ENVOY_PROTOS } from '../../test/support/envoy-check.ts';
import { freePort, start, waitForPort } from './processes.ts';

export type AuthzBaseline = 'http' | 'grpc';

function http(port: number): void {
  const headers = { 'cache-control': 'no-store', 'x-request-id': 'bench', 'content-length': 0, 'X-Allowgate-Account': 'AC1', 'X-Allowgate-Client-IP': '20.0.1.5' };
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, headers);
    res.end();
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, '127.0.0.1');
}

function grpc(port: number): void {
  const proto = loadPackageDefinition(ENVOY_PROTOS) as unknown as { envoy: { service: { auth: { v3: { Authorization: { service: ServiceDefinition } } } } } };
  const answer = {
    status: { code: 0 },
    ok_response: {
      headers: [
        { header: { key: 'x-allowgate-account', value: 'AC1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
        { header: { key: 'x-allowgate-client-ip', value: '20.0.1.5' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      ],
    },
  };
  const server = new Server();
  const implementation: UntypedServiceImplementation = { Check: (_call: unknown, callback: (error: null, value: unknown) => void) => callback(null, answer) };
  server.addService(proto.envoy.service.auth.v3.Authorization.service, implementation);
  server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (error) => {
    if (error !== null) throw error;
  });
}

const SELF = fileURLToPath(import.meta.url);

/** Starts a baseline in a process of its own on a free loopback port and waits for it. */
export async function startAuthzBaseline(kind: AuthzBaseline): Promise<{ port: number; url: string }> {
  const port = await freePort();
  start(process.execPath, [SELF, kind, String(port)]);
  await waitForPort(port);
  return { port, url: `http://127.0.0.1:${port}` };
}

if (process.argv[1] === SELF) {
  const [kind, port] = process.argv.slice(2) as [AuthzBaseline, string];
  if (kind === 'http') http(Number(port));
  else if (kind === 'grpc') grpc(Number(port));
  else throw new Error(`unknown baseline '${String(kind)}': http or grpc`);
  process.on('SIGTERM', () => process.exit(0));
}
