import { describe, expect, it } from 'vitest';
import { SCHEMAS } from '../../../src/admin/api-schemas.ts';
import type { AclService } from '../../../src/acl/service.ts';
import { nativeSurface } from '../../../src/admin/native.ts';
import { NATIVE_ROUTES, pathParameters } from '../../../src/admin/native-routes.ts';
import { openApiDocument } from '../../../src/admin/openapi.ts';

/*
 * The route table is the one declaration of the native API: the router serves exactly its routes
 * and the document describes exactly its operations, with the answer's status and schema it names.
 */

type Json = Record<string, unknown>;
const doc = openApiDocument();
const paths = doc['paths'] as Record<string, Json>;
const nameOf = new Map(Object.entries(SCHEMAS).map(([name, schema]) => [schema, name]));

describe('the native route table', () => {
  it('is what the router serves, route for route', () => {
    const surface = nativeSurface({ service: { store: {} } as unknown as AclService, audit: null, check: () => Promise.reject(new Error('not called')) });
    expect(surface.routes.map((r) => `${r.method} ${r.template}`)).toEqual(NATIVE_ROUTES.map((r) => `${r.method} ${r.path}`));
    expect(new Set(NATIVE_ROUTES.map((r) => `${r.method} ${r.path}`)).size).toBe(NATIVE_ROUTES.length);
  });

  it('is what the document describes: operation id, answer status and schema, refusal statuses', () => {
    for (const route of NATIVE_ROUTES) {
      const operation = paths[route.path]?.[route.method.toLowerCase()] as Json | undefined;
      expect(operation, `${route.method} ${route.path}`).toBeDefined();
      expect(operation!['operationId']).toBe(route.operationId);
      const responses = operation!['responses'] as Record<string, Json>;
      const answer = responses[String(route.answer.status)]!;
      const json = route.answer.content['application/json'];
      expect((answer['content'] as Record<string, { schema: unknown }>)['application/json']!.schema).toEqual({ $ref: `#/components/schemas/${nameOf.get(json as never)}` });
      for (const refusal of route.refusals) expect(Object.keys(responses)).toContain(String(typeof refusal === 'number' ? refusal : refusal[0]));
      expect('requestBody' in operation!).toBe(route.body !== undefined);
    }
  });

  it('names only path parameters api-schemas.ts defines', () => {
    expect(pathParameters('/v1/accounts/{account}/ip-acl/{id}')).toEqual(['account', 'id']);
    expect(() => pathParameters('/v1/accounts/{tenant}')).toThrow(/names path parameter \{tenant\}, which api-schemas.ts Path does not define/);
  });
});
