import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCheckRequest, encodeCheckResponse, type CheckAnswer } from '../../../src/authz/grpc/codec.ts';
import { WireError } from '../../../src/authz/grpc/wire.ts';
import { decodeEnvoyCheckResponse, encodeEnvoyCheckRequest, envoyCheckRequest } from '../../support/envoy-check.ts';

/**
 * The hand-written codec against the .proto files it implements: requests are encoded by
 * protobufjs from those files, every field Envoy fills in included, and decoded by the codec;
 * the codec's responses are decoded by protobufjs.
 */

describe('CheckRequest, as Envoy encodes it', () => {
  it('reads the source address, method, target and headers, and steps over everything else', () => {
    const bytes = encodeEnvoyCheckRequest(envoyCheckRequest('/v1/Account/AC1/Calls?limit=5', {
      source: { ip: '198.51.100.7' },
      method: 'POST',
      headers: [['X-Auth-ID', 'AC1'], ['authorization', 'Bearer abc'], ['x-forwarded-for', '203.0.113.1']],
    }));
    const view = decodeCheckRequest(bytes);
    expect(view.source).toBe('198.51.100.7');
    expect(view.method).toBe('POST');
    expect(view.path).toBe('/v1/Account/AC1/Calls?limit=5');
    expect(view.id).toBe('14276135651452315421');
    const headers = pairs(view.headers);
    expect(headers).toContainEqual(['x-auth-id', 'AC1']);
    expect(headers).toContainEqual(['authorization', 'Bearer abc']);
    expect(headers).toContainEqual(['x-forwarded-for', '203.0.113.1']);
    // Pseudo-headers are the request line's, already in method and path.
    expect(headers.some(([k]) => k.startsWith(':'))).toBe(false);
  });

  it('keeps every line of raw headers (encode_raw_headers), repeats and Latin-1 bytes included', () => {
    const bytes = encodeEnvoyCheckRequest(envoyCheckRequest('/v1/x', {
      rawHeaders: true,
      headers: [['x-auth-id', 'AC1'], ['x-auth-id', 'AC2'], ['x-note', 'caf\u00e9']],
    }));
    const headers = pairs(decodeCheckRequest(bytes).headers);
    expect(headers.filter(([k]) => k === 'x-auth-id')).toEqual([['x-auth-id', 'AC1'], ['x-auth-id', 'AC2']]);
    expect(headers).toContainEqual(['x-note', 'caf\u00e9']);
  });

  it('has no source for a pipe or a missing peer, and no target without HTTP attributes', () => {
    expect(decodeCheckRequest(encodeEnvoyCheckRequest(envoyCheckRequest('/x', { source: { pipe: '/run/envoy.sock' } }))).source).toBeNull();
    expect(decodeCheckRequest(encodeEnvoyCheckRequest(envoyCheckRequest('/x', { source: null }))).source).toBeNull();
    const tcp = decodeCheckRequest(encodeEnvoyCheckRequest(envoyCheckRequest('/x', { noHttp: true })));
    expect(tcp).toMatchObject({ source: '127.0.0.2', path: '', method: '', headers: [] });
    expect(decodeCheckRequest(Buffer.alloc(0))).toMatchObject({ source: null, path: '', headers: [] });
  });

  it('round-trips any header names and values, paths and addresses', () => {
    const token = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
    const value = fc.string({ maxLength: 40 });
    fc.assert(fc.property(
      fc.array(fc.tuple(token, value), { maxLength: 12 }),
      fc.stringMatching(/^\/[!-~]{0,60}$/),
      fc.oneof(fc.ipV4(), fc.ipV6()),
      fc.boolean(),
      (headers, path, ip, raw) => {
        const view = decodeCheckRequest(encodeEnvoyCheckRequest(envoyCheckRequest(path, { source: { ip }, headers, rawHeaders: raw })));
        expect(view.source).toBe(ip);
        expect(view.path).toBe(path);
        const got = pairs(view.headers).filter(([k]) => headers.some(([h]) => h === k));
        if (raw) {
          // Raw values are bytes: read back one character per byte, as Node reads HTTP headers.
          expect(got).toEqual(headers.map(([k, v]) => [k, Buffer.from(v, 'latin1').toString('latin1')]));
        } else {
          const merged = new Map<string, string>();
          for (const [k, v] of headers) merged.set(k, merged.has(k) ? `${merged.get(k)},${v}` : v);
          expect(new Map(got)).toEqual(merged);
        }
      },
    ), { numRuns: 300 });
  });

  it('refuses bytes that are not a CheckRequest with a WireError, whatever they are', () => {
    const good = encodeEnvoyCheckRequest(envoyCheckRequest('/v1/x', { headers: [['x-auth-id', 'AC1']] }));
    for (let cut = 1; cut < good.length; cut += 7) {
      try {
        decodeCheckRequest(good.subarray(0, cut));
      } catch (error) {
        expect(error).toBeInstanceOf(WireError);
      }
    }
    expect(() => decodeCheckRequest(Buffer.from([0x0a, 0x05, 0x01]))).toThrow(WireError);
    expect(() => decodeCheckRequest(Buffer.from([0x0b]))).toThrow(/wire type 3/);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      try {
        decodeCheckRequest(Buffer.from(bytes));
      } catch (error) {
        expect(error).toBeInstanceOf(WireError);
      }
    }), { numRuns: 500 });
  });
});

describe('CheckResponse, as Envoy decodes it', () => {
  it('allows with headers that overwrite the request\'s, removals, and dynamic metadata', () => {
    const answer: CheckAnswer = {
      code: 0,
      message: '',
      ok: { headers: [['x-allowgate-account', 'AC1'], ['x-allowgate-client-ip', '2001:db8::1']], remove: ['x-other'] },
      denied: null,
      metadata: [['account', 'AC1'], ['client_ip', null]],
    };
    const decoded = decodeEnvoyCheckResponse(encodeCheckResponse(answer));
    expect(decoded.status?.code ?? 0).toBe(0);
    expect(decoded.http_response).toBe('ok_response');
    expect(decoded.ok_response?.headers).toEqual([
      { header: { key: 'x-allowgate-account', value: 'AC1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-allowgate-client-ip', value: '2001:db8::1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ]);
    expect(decoded.ok_response?.headers_to_remove).toEqual(['x-other']);
    expect(decoded.dynamic_metadata?.fields?.['account']).toMatchObject({ kind: 'stringValue', stringValue: 'AC1' });
    expect(decoded.dynamic_metadata?.fields?.['client_ip']).toMatchObject({ kind: 'nullValue', nullValue: 'NULL_VALUE' });
  });

  it('denies with the gRPC code, the HTTP status, headers and a body, non-ASCII intact', () => {
    const body = JSON.stringify({ error: 'the account id (“Ünïcode”) is not valid', code: 400, reason: 'invalid_account', request_id: 'r1' });
    const decoded = decodeEnvoyCheckResponse(encodeCheckResponse({
      code: 3,
      message: 'the account id is not valid',
      ok: null,
      denied: { status: 400, headers: [['content-type', 'application/json']], body },
      metadata: [],
    }));
    expect(decoded.status).toEqual({ code: 3, message: 'the account id is not valid' });
    expect(decoded.http_response).toBe('denied_response');
    expect(decoded.denied_response?.status?.code).toBe('BadRequest');
    expect(decoded.denied_response?.headers).toEqual([{ header: { key: 'content-type', value: 'application/json' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
    expect(decoded.denied_response?.body).toBe(body);
    expect(decoded.dynamic_metadata).toBeUndefined();
  });

  it('encodes every status the gateway refuses with as the HttpStatus enum value of the same number', () => {
    const codes: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 429: 'TooManyRequests', 431: 'RequestHeaderFieldsTooLarge', 500: 'InternalServerError', 503: 'ServiceUnavailable' };
    for (const [status, name] of Object.entries(codes)) {
      const decoded = decodeEnvoyCheckResponse(encodeCheckResponse({ code: 7, message: 'x', ok: null, denied: { status: Number(status), headers: [], body: 'x'.repeat(300) }, metadata: [] }));
      expect(decoded.denied_response?.status?.code).toBe(name);
      // A body over 127 bytes takes a two-byte length.
      expect(decoded.denied_response?.body).toHaveLength(300);
    }
  });
});

function pairs(flat: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}
