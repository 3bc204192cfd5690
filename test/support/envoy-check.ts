import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { credentials, loadPackageDefinition, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadSync, type MethodDefinition } from '@grpc/proto-loader';

/**
 * Envoy's side of ext_authz gRPC for the tests and benchmarks: the messages as Envoy encodes them
 * (protobufjs, from the .proto files the check service is held to, every field included) and a
 * grpc-js client calling `envoy.service.auth.v3.Authorization/Check` the way Envoy does.
 */

const PROTO_ROOT = fileURLToPath(new URL('../../src/authz/grpc/proto/', import.meta.url));

export const ENVOY_PROTOS = loadSync('envoy/service/auth/v3/external_auth.proto', {
  includeDirs: [PROTO_ROOT],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
});

const check = (ENVOY_PROTOS['envoy.service.auth.v3.Authorization'] as Record<string, MethodDefinition<object, object>>)['Check']!;

/** CheckRequest bytes as Envoy writes them. */
export const encodeEnvoyCheckRequest = (request: EnvoyCheckRequest): Buffer => check.requestSerialize(request);
/** A CheckResponse as Envoy reads it (enums as their names, e.g. status.code "Forbidden"). */
export const decodeEnvoyCheckResponse = (bytes: Buffer): EnvoyCheckResponse => check.responseDeserialize(bytes) as EnvoyCheckResponse;

export interface EnvoyCheckRequest {
  readonly attributes: Record<string, unknown>;
}

export interface EnvoyHeaderValueOption {
  readonly header: { readonly key: string; readonly value?: string };
  readonly append_action?: string;
}

export interface EnvoyCheckResponse {
  readonly status?: { readonly code?: number; readonly message?: string };
  readonly http_response?: 'ok_response' | 'denied_response';
  readonly ok_response?: { readonly headers?: readonly EnvoyHeaderValueOption[]; readonly headers_to_remove?: readonly string[] };
  readonly denied_response?: { readonly status?: { readonly code?: string }; readonly headers?: readonly EnvoyHeaderValueOption[]; readonly body?: string };
  /** google.protobuf.Struct: protobufjs's own definition, whose fields are camelCase. */
  readonly dynamic_metadata?: { readonly fields?: Record<string, { readonly kind?: string; readonly stringValue?: string; readonly nullValue?: string }> };
}

export interface CheckOptions {
  /** attributes.source: an IP socket address (the default, port 51234), a pipe path, or nothing. */
  readonly source?: { readonly ip: string } | { readonly pipe: string } | null;
  readonly method?: string;
  readonly host?: string;
  /** Sent as the `headers` map (merged as Envoy merges: repeated names joined with ","). */
  readonly headers?: readonly (readonly [string, string])[];
  /** Sent as `header_map` with raw values instead (Envoy's encode_raw_headers: true). */
  readonly rawHeaders?: boolean;
  /** Leave out attributes.request.http (as Envoy's network filter does). */
  readonly noHttp?: boolean;
}

/**
 * A CheckRequest with what Envoy's HTTP filter fills in: source and destination peers, the
 * request time, the HTTP attributes with pseudo-headers and Envoy's own headers, context
 * extensions and metadata.
 */
export function envoyCheckRequest(path: string, options: CheckOptions = {}): EnvoyCheckRequest {
  const method = options.method ?? 'GET';
  const host = options.host ?? 'api.example.com';
  const requestId = randomUUID();
  const pairs: [string, string][] = [
    [':authority', host], [':path', path], [':method', method], [':scheme', 'http'],
    ['user-agent', 'curl/8.5.0'], ['accept', '*/*'], ['x-forwarded-proto', 'http'], ['x-request-id', requestId],
    ...(options.headers ?? []).map(([k, v]): [string, string] => [k.toLowerCase(), v]),
  ];
  const merged = new Map<string, string>();
  for (const [k, v] of pairs) merged.set(k, merged.has(k) ? `${merged.get(k)},${v}` : v);
  const source = options.source === undefined ? { ip: '127.0.0.2' } : options.source;
  const http = {
    id: '14276135651452315421',
    method,
    path,
    host,
    scheme: 'http',
    size: '0',
    protocol: 'HTTP/1.1',
    ...(options.rawHeaders
      ? { header_map: { headers: pairs.map(([key, value]) => ({ key, raw_value: Buffer.from(value, 'latin1') })) } }
      : { headers: Object.fromEntries(merged) }),
  };
  return {
    attributes: {
      ...(source === null ? {} : {
        source: {
          address: 'ip' in source
            ? { socket_address: { address: source.ip, port_value: 51234 } }
            : { pipe: { path: source.pipe } },
        },
      }),
      destination: { address: { socket_address: { address: '10.1.2.3', port_value: 8080 } }, labels: { app: 'api' } },
      request: { time: { seconds: '1767225600', nanos: 123000000 }, ...(options.noHttp ? {} : { http }) },
      context_extensions: { virtual_host: 'api' },
      metadata_context: { filter_metadata: { 'envoy.filters.http.jwt_authn': { fields: { sub: { stringValue: 'someone' } } } } },
      route_metadata_context: {},
      tls_session: { sni: host },
    },
  };
}

type CheckClient = Client & { Check(request: EnvoyCheckRequest, callback: (error: ServiceError | null, response: EnvoyCheckResponse) => void): void };

/** A grpc-js client of the check service, as Envoy's ext_authz filter calls it. */
export class EnvoyCheckClient {
  readonly #client: CheckClient;

  constructor(address: string) {
    const proto = loadPackageDefinition(ENVOY_PROTOS) as unknown as { envoy: { service: { auth: { v3: { Authorization: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => CheckClient } } } } };
    this.#client = new proto.envoy.service.auth.v3.Authorization(address, credentials.createInsecure());
  }

  check(request: EnvoyCheckRequest): Promise<EnvoyCheckResponse> {
    return new Promise((resolve, reject) => {
      this.#client.Check(request, (error, response) => (error === null ? resolve(response) : reject(error)));
    });
  }

  close(): void {
    this.#client.close();
  }
}
