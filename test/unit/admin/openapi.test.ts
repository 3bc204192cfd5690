import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileRanges, DEFAULT_RESERVED } from '../../../src/acl/reserved.ts';
import type { AclService } from '../../../src/acl/service.ts';
import { AuthLimiter } from '../../../src/admin/auth-limiter.ts';
import { compileCredentials } from '../../../src/admin/credentials.ts';
import { createAdminHandler } from '../../../src/admin/handler.ts';
import { nativeSurface } from '../../../src/admin/native.ts';
import { openApiDocument } from '../../../src/admin/openapi.ts';
import { credential, OWNER_TOKEN, startAdminApi, type AdminApi } from '../../support/admin-api.ts';
import { collectRefs, deref, documentValidator, resolvePointer, type JsonObject } from '../../support/openapi-doc.ts';

/*
 * The OpenAPI document against the real management API: a realistic session (and its error
 * answers) runs through startAdminApi, and every answer is validated against the schema the
 * document declares for its path, method, status and media type, looked up through the document
 * itself, so an undocumented route, status or media type fails the test.
 */

const doc = openApiDocument();
const paths = doc['paths'] as Record<string, JsonObject>;
const validator = documentValidator(doc);
const checkSchema = (value: unknown, schema: unknown): string[] => validator.errors(value, schema);
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

const ADMIN = 'openapi-admin-token-1';
const READER = 'openapi-reader-token-1';
const AC1_KEY = 'openapi-ac1-token-123';
const AC5_KEY = 'openapi-ac5-token-123';
const POLICY = { maxEntries: 50, ipv4Only: false, refused: compileRanges(DEFAULT_RESERVED, 'reserved') };

const asObject = (value: unknown): JsonObject => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`expected an object, got ${JSON.stringify(value)}`);
  return value as JsonObject;
};

/** The document path a request path falls under: concrete segments win over templated ones (OpenAPI's rule). */
function templateOf(path: string): string | null {
  const segments = path.split('/');
  let best: string | null = null;
  let bestLiterals = -1;
  for (const template of Object.keys(paths)) {
    const parts = template.split('/');
    if (parts.length !== segments.length) continue;
    let literals = 0;
    const fits = parts.every((part, i) => {
      if (/^\{[^}]+\}$/.test(part)) return segments[i] !== '';
      literals++;
      return part === segments[i];
    });
    if (fits && literals > bestLiterals) {
      best = template;
      bestLiterals = literals;
    }
  }
  return best;
}

/** Operations the document declares on a path, as HTTP methods. */
const methodsOf = (template: string): string[] => METHODS.filter((m) => m in paths[template]!).map((m) => m.toUpperCase());

/** Which (method, template, status, media type) answers were validated; checked for coverage at the end. */
const validated = new Set<string>();

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
  readonly template: string | null;
}

interface Send {
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  /** A token for `Authorization: Bearer`; null sends none. */
  readonly token?: string | null;
}

/** Checks the answer's headers against the response object's required headers and their schemas. */
function checkHeaders(response: JsonObject, headers: Headers, where: string): void {
  for (const [name, raw] of Object.entries(asObject(response['headers'] ?? {}))) {
    const header = asObject(deref(doc, raw));
    const value = headers.get(name);
    if (value === null) {
      expect(header['required'] === true, `${where}: required header ${name} missing`).toBe(false);
      continue;
    }
    const schema = asObject(header['schema']);
    const typed = schema['type'] === 'integer' ? Number(value) : value;
    expect(checkSchema(typed, schema), `${where}: header ${name}: ${value}`).toEqual([]);
  }
}

function validateAgainst(response: JsonObject, answer: { status: number; headers: Headers; body: unknown }, mediaType: string, where: string): void {
  const content = asObject(response['content'] ?? {});
  expect(Object.keys(content), `${where}: media type ${mediaType} not declared`).toContain(mediaType);
  const schema = asObject(content[mediaType])['schema'];
  expect(checkSchema(answer.body, schema), `${where}: ${JSON.stringify(answer.body).slice(0, 400)}`).toEqual([]);
  checkHeaders(response, answer.headers, where);
}

/**
 * Sends a request and validates the answer against the document: the operation's response for
 * the status (and its media type and headers); for a path the document does not have, or a
 * method it does not declare there, the dispatcher's 404 / 405 answers (or 401 / 429, which come
 * before routing). A JSON request body of a successful call must match the declared request body.
 */
async function exchange(base: string, method: string, path: string, send: Send = {}): Promise<Answer> {
  const { body, token = OWNER_TOKEN } = send;
  const requestType = send.headers?.['content-type'] ?? (body === undefined ? undefined : 'application/json');
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(requestType === undefined ? {} : { 'content-type': requestType }),
      ...send.headers,
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  const parsed: unknown = mediaType === 'application/json' ? JSON.parse(text) : text;
  const answer = { status: res.status, headers: res.headers, body: parsed };
  const bare = path.split('?')[0]!;
  const template = templateOf(bare);
  const where = `${method} ${path} → ${res.status}`;
  const dispatcher = (name: string): void => {
    validateAgainst(asObject(resolvePointer(doc, `#/components/responses/${name}`)), answer, mediaType, where);
    validated.add(`${method} ${template ?? bare} ${res.status} ${mediaType} (dispatcher)`);
  };
  if (template === null || !(method.toLowerCase() in paths[template]!) && !(method === 'HEAD' && 'get' in paths[template]!)) {
    if (res.status === 401) dispatcher('Unauthorized');
    else if (res.status === 429) dispatcher('TooManyRequests');
    else if (template === null) {
      expect(res.status, `${where}: no document path, so the server must not route it`).toBe(404);
      dispatcher('NotFound');
    } else {
      expect(res.status, `${where}: ${method} is not declared on ${template}`).toBe(405);
      dispatcher('MethodNotAllowed');
      expect(res.headers.get('allow')?.split(/,\s*/).sort(), `${where}: Allow`).toEqual(methodsOf(template).sort());
    }
    return { ...answer, template };
  }
  const operation = asObject(paths[template]![method.toLowerCase()]);
  const responses = asObject(operation['responses']);
  expect(Object.keys(responses), `${where}: status ${res.status} is not declared for ${method} ${template}`).toContain(String(res.status));
  validateAgainst(asObject(deref(doc, responses[String(res.status)])), answer, mediaType, where);
  validated.add(`${method} ${template} ${res.status} ${mediaType}`);

  if (res.status < 300 && body !== undefined) {
    const request = asObject(operation['requestBody']);
    const content = asObject(request['content']);
    const type = requestType!.split(';')[0]!.trim();
    expect(Object.keys(content), `${where}: request media type ${type} not declared`).toContain(type);
    if (type === 'application/json') {
      const value = typeof body === 'string' ? JSON.parse(body) as unknown : body;
      expect(checkSchema(value, asObject(content[type])['schema']), `${where}: the accepted request body does not match the declared one`).toEqual([]);
    }
  }
  return { ...answer, template };
}

/** Whether the document's request body schema for the operation accepts `body`. */
function requestAccepts(method: string, template: string, body: unknown): boolean {
  const request = asObject(asObject(paths[template]![method.toLowerCase()])['requestBody']);
  return checkSchema(body, asObject(asObject(request['content'])['application/json'])['schema']).length === 0;
}

/** Every schema of the document: components.schemas and each `schema` of a parameter, header or media type. */
function collectSchemas(node: unknown, path = '#'): { path: string; schema: unknown }[] {
  if (typeof node !== 'object' || node === null) return [];
  if (path === '#/components/schemas') return Object.entries(node).map(([name, schema]) => ({ path: `${path}/${name}`, schema }));
  return Object.entries(node).flatMap(([key, value]) => (key === 'schema' ? [{ path: `${path}/schema`, schema: value }] : collectSchemas(value, `${path}/${key}`)));
}

const reasonOf = (answer: Answer): unknown => asObject(answer.body)['reason'];
const field = (answer: Answer, key: string): unknown => asObject(answer.body)[key];

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1 with bearer security, resolvable references and unique operation ids', () => {
    expect(doc['openapi']).toBe('3.1.0');
    expect(asObject(doc['info'])).toMatchObject({ title: 'allowgate management API', version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect(asObject(asObject(doc['components'])['securitySchemes'])).toMatchObject({ bearer: { type: 'http', scheme: 'bearer' } });
    const refs = collectRefs(doc);
    expect(refs.length).toBeGreaterThan(50);
    expect(refs.filter(({ ref }) => resolvePointer(doc, ref) === undefined)).toEqual([]);
    const ids = Object.values(paths).flatMap((item) => METHODS.filter((m) => m in item).map((m) => asObject(item[m])['operationId']));
    expect(ids.every((id) => typeof id === 'string')).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    // Every schema in the document (components and inline) compiles under ajv's strict mode: no
    // keyword it would skip, no unknown format.
    const schemas = collectSchemas(doc);
    expect(schemas.length).toBeGreaterThan(30);
    expect(schemas.flatMap(({ path, schema }) => {
      try {
        validator.compile(schema);
        return [];
      } catch (error) {
        return [`${path}: ${(error as Error).message}`];
      }
    })).toEqual([]);
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
  });

  it('describes exactly the native route table, with every path parameter declared', () => {
    const surface = nativeSurface({ service: { store: {} } as unknown as AclService, audit: null, check: () => Promise.reject(new Error('not called')) });
    const routes = surface.routes.map((r) => `${r.method} ${r.template}`);
    expect(routes.length).toBeGreaterThan(20);
    const documented = Object.entries(paths)
      .filter(([path]) => path.startsWith('/v1/') && path !== '/v1/openapi.json')
      .flatMap(([path, item]) => METHODS.filter((m) => m in item).map((m) => `${m.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual([...routes].sort());
    for (const [path, item] of Object.entries(paths)) {
      const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const method of METHODS.filter((m) => m in item)) {
        const operation = asObject(item[method]);
        const params = [...(item['parameters'] as unknown[] ?? []), ...(operation['parameters'] as unknown[] ?? [])].map((p) => asObject(deref(doc, p)));
        const inPath = params.filter((p) => p['in'] === 'path');
        expect(inPath.map((p) => p['name']).sort(), `${method} ${path}`).toEqual([...names].sort());
        expect(inPath.every((p) => p['required'] === true)).toBe(true);
        const responses = Object.keys(asObject(operation['responses']));
        expect(responses.some((s) => s.startsWith('2')), `${method} ${path} has a success response`).toBe(true);
        const open = Array.isArray(operation['security']) && operation['security'].length === 0;
        if (!open) expect(responses, `${method} ${path}`).toEqual(expect.arrayContaining(['401', '429', '500', '503']));
      }
    }
  });

  it('has a request schema as strict as the server: bodies the server refuses as unknown_field are refused', () => {
    expect(requestAccepts('POST', '/v1/accounts/{account}/ip-acl', { ip_address: '11.0.0.0/24', name: 'x', action: 'deny', enabled: false, expires_at: null })).toBe(true);
    expect(requestAccepts('POST', '/v1/accounts/{account}/ip-acl', { ip_address: '11.0.0.0/24', comment: 'x' })).toBe(false);
    expect(requestAccepts('POST', '/v1/accounts/{account}/ip-acl', { description: 'no address' })).toBe(false);
    expect(requestAccepts('PATCH', '/v1/accounts/{account}/ip-acl/{id}', { enabled: false })).toBe(true);
    expect(requestAccepts('PUT', '/v1/accounts/{account}', { mode: null, guard: 'strict', max_entries: 3 })).toBe(true);
    expect(requestAccepts('PUT', '/v1/accounts/{account}', { modes: 'off' })).toBe(false);
    expect(requestAccepts('PUT', '/v1/accounts/{account}', { mode: 'sometimes' })).toBe(false);
    expect(requestAccepts('POST', '/v1/accounts/{account}/keys', { key: 'sk_live_0123456789', name: 'ci' })).toBe(true);
    expect(requestAccepts('POST', '/v1/accounts/{account}/keys', { key: 'sk_live_0123456789', label: 'ci' })).toBe(false);
    expect(requestAccepts('PATCH', '/v1/accounts/{account}/keys/{key}', { enabled: false })).toBe(true);
    expect(requestAccepts('PATCH', '/v1/accounts/{account}/keys/{key}', { restricted: false })).toBe(true);
  });
});

describe('the management API answers as documented', () => {
  let a: AdminApi;
  let base: string;
  let ready = true;
  const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>, token?: string | null): Promise<Answer> =>
    exchange(base, method, path, { body, ...(headers === undefined ? {} : { headers }), ...(token === undefined ? {} : { token }) });

  beforeAll(async () => {
    a = await startAdminApi({
      policy: POLICY,
      credentials: [credential('ops', 'admin', ADMIN), credential('auditor', 'read-only', READER), credential('ac1-key', 'account', AC1_KEY, 'AC1'), credential('ac5-key', 'account', AC5_KEY, 'AC5')],
      ready: () => ready,
    });
    base = a.base;
  });
  afterAll(async () => {
    await a.close();
  });

  it('health and readiness', async () => {
    expect((await call('GET', '/healthz', undefined, undefined, null)).status).toBe(200);
    expect((await call('GET', '/readyz', undefined, undefined, null)).status).toBe(200);
    ready = false;
    const down = await call('GET', '/readyz', undefined, undefined, null);
    ready = true;
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ status: 'unavailable' });
  });

  it('an account\'s entries: add (allow, deny, expiring), page, filter, get, patch, export, replace, import, delete', async () => {
    const office = await call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '92.255.220.0/24', description: 'Office network range' });
    expect(office.status).toBe(201);
    const officeId = String(field(office, 'id'));
    expect(office.headers.get('location')).toBe(`/v1/accounts/AC1/ip-acl/${officeId}`);
    expect(office.headers.get('etag')).toBe('"1"');
    const hole = await call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '92.255.220.13', action: 'deny', name: 'kiosk' });
    expect(hole.status).toBe(201);
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    const temp = await call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '81.2.69.0 - 81.2.69.40', description: 'contractor', expires_at: expiresAt }, undefined, AC1_KEY);
    expect(temp.status).toBe(201);
    expect(field(temp, 'expires_at')).toBe(expiresAt);
    expect(field(temp, 'cidrs')).toEqual(['81.2.69.0/27', '81.2.69.32/29', '81.2.69.40/32']);
    const off = await call('POST', '/v1/accounts/AC1/ip-acl?replace=false&guard=warn', { ip_address: '10.20.0.0/16', enabled: false }, { 'if-match': '"3"' });
    expect(off.status).toBe(201);

    const first = await call('GET', '/v1/accounts/AC1/ip-acl?limit=3');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ account: 'AC1', version: 4, total: 4, next: expect.any(String) });
    const second = await call('GET', `/v1/accounts/AC1/ip-acl?limit=3&cursor=${String(field(first, 'next'))}`);
    expect(second.body).toMatchObject({ total: 4, next: null, entries: [{ ip_address: '10.20.0.0/16' }] });
    expect(field(await call('GET', '/v1/accounts/AC1/ip-acl?action=deny'), 'total')).toBe(1);
    expect(field(await call('GET', '/v1/accounts/AC1/ip-acl?enabled=false'), 'total')).toBe(1);
    expect(field(await call('GET', '/v1/accounts/AC1/ip-acl?q=OFFICE', undefined, undefined, READER), 'total')).toBe(1);

    const one = await call('GET', `/v1/accounts/AC1/ip-acl/${officeId}`, undefined, undefined, AC1_KEY);
    expect(one.status).toBe(200);
    expect(one.headers.get('etag')).toBe('"4"');
    const patched = await call('PATCH', `/v1/accounts/AC1/ip-acl/${String(field(temp, 'id'))}`, { expires_at: null, description: 'contractor, permanent' }, { 'if-match': '"4"' });
    expect(patched.status).toBe(200);
    expect(field(patched, 'expires_at')).toBeNull();
    expect((await call('PATCH', `/v1/accounts/AC1/ip-acl/${String(field(off, 'id'))}`, { enabled: true, expires_at: expiresAt })).status).toBe(200);

    const exported = await call('GET', '/v1/accounts/AC1/ip-acl/export');
    expect(exported.status).toBe(200);
    expect(field(exported, 'entries')).toHaveLength(4);
    const csv = await call('GET', '/v1/accounts/AC1/ip-acl/export?format=csv', undefined, undefined, READER);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(String(csv.body).split('\r\n')[0]).toBe('ip_address,action,description,enabled,expires_at');

    // The export goes back as it came out: read-only fields are accepted and ignored.
    const replaced = await call('PUT', '/v1/accounts/AC1/ip-acl', { entries: field(exported, 'entries') });
    expect(replaced.status).toBe(200);
    expect(field(replaced, 'entries')).toHaveLength(4);
    // A dry run answers per row and stores nothing; the version it names goes back in If-Match.
    const dry = await call('POST', '/v1/accounts/AC1/ip-acl/import?dry_run=true', 'ip_address,description,action\n92.255.220.0/24,x,deny\n45.10.0.0/16,partner,allow\n10.0.0.1/8,typo\n', { 'content-type': 'text/csv' });
    expect(dry.body).toMatchObject({ dry_run: true, would_store: false, rows: [{ line: 2, outcome: 'skip' }, { line: 3, outcome: 'add', entry: { ip_address: '45.10.0.0/16', description: 'partner', action: 'allow' } }, { line: 4, outcome: 'refused', reason: 'invalid_format', entry: null }] });
    const dryOk = await call('PUT', '/v1/accounts/AC1/ip-acl?dry_run=true', { entries: [{ ip_address: '45.10.0.0/16' }] });
    expect(dryOk.body).toMatchObject({ dry_run: true, would_store: true, rows: [{ line: 1, outcome: 'add' }], entries: [{ ip_address: '45.10.0.0/16' }] });
    expect((await call('GET', '/v1/accounts/AC1/ip-acl')).body).toMatchObject({ total: 4, version: field(dry, 'version') });
    const merged = await call('POST', '/v1/accounts/AC1/ip-acl/import', { entries: [{ ip_address: '92.255.220.0/24' }, { ip_address: '45.10.0.0/16', description: 'partner' }] }, { 'if-match': `"${String(field(dry, 'version'))}"` });
    expect(merged.body).toMatchObject({ mode: 'merge', received: 2 });
    expect(field(merged, 'entries')).toHaveLength(5);
    const fromCsv = await call('POST', '/v1/accounts/AC1/ip-acl/import?mode=replace', String(csv.body), { 'content-type': 'text/csv' });
    expect(fromCsv.status).toBe(200);
    expect(fromCsv.body).toMatchObject({ mode: 'replace', received: 4 });

    const entries = field(fromCsv, 'entries') as { id: string; ip_address: string }[];
    const gone = await call('DELETE', `/v1/accounts/AC1/ip-acl/${entries.find((e) => e.ip_address === '10.20.0.0/16')!.id}`, undefined, undefined, AC1_KEY);
    expect(gone.status).toBe(200);
    expect(gone.body).toMatchObject({ warnings: [] });
  });

  it('settings, check, recent callers with lockout warnings, accounts and the audit trail', async () => {
    const settings = await call('GET', '/v1/accounts/AC1', undefined, undefined, READER);
    expect(settings.body).toMatchObject({ account: 'AC1', parent: null, mode: null, entry_count: 3 });
    expect(field(await call('GET', '/v1/accounts/NEW1'), 'version')).toBe(0);
    const put = await call('PUT', '/v1/accounts/AC1', { mode: 'enforce', default: 'closed', max_entries: 20, ipv4_only: false, guard: 'warn' }, { 'if-match': settings.headers.get('etag')! });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ mode: 'enforce', default: 'closed', max_entries: 20, guard: 'warn' });
    expect(field(await call('PUT', '/v1/accounts/AC1', { mode: null, ipv4_only: null }), 'mode')).toBeNull();

    expect(await call('GET', '/v1/accounts/AC1/check?ip=92.255.220.7', undefined, undefined, AC1_KEY)).toMatchObject({ status: 200, body: { decision: 'allow', reason: 'ip_allowed', matched: { cidr: '92.255.220.0/24', action: 'allow', list: 'account' } } });
    expect((await call('GET', '/v1/accounts/AC1/check?ip=92.255.220.13')).body).toMatchObject({ decision: 'deny', reason: 'ip_denied' });
    expect((await call('GET', '/v1/accounts/AC1/check?ip=8.8.8.8')).body).toMatchObject({ decision: 'deny', reason: 'ip_not_allowed', matched: null });
    expect((await call('GET', '/v1/accounts/AC9/check?ip=2a00:1450::1')).body).toMatchObject({ decision: 'allow', reason: 'no_list', matched: null });

    expect((await call('GET', '/v1/whoami', undefined, undefined, AC1_KEY)).body).toMatchObject({ role: 'account', account: 'AC1' });
    expect((await call('GET', '/v1/whoami', undefined, undefined, READER)).body).toMatchObject({ role: 'read-only', account: null });

    const now = Date.now();
    await a.store.recordCallers(new Map([['AC1', new Map([['92.255.220.7', now - 1000], ['77.88.55.1', now - 2000]])]]));
    const recent = await call('GET', '/v1/accounts/AC1/recent-ips?limit=10', undefined, undefined, AC1_KEY);
    expect(recent.body).toMatchObject({ account: 'AC1', ips: [{ ip: '92.255.220.7', decision: 'allow', reason: 'ip_allowed' }, { ip: '77.88.55.1', decision: 'deny' }] });
    const strict = await call('POST', '/v1/accounts/AC1/ip-acl?guard=strict', { ip_address: '92.255.220.7', action: 'deny' });
    expect(strict.status).toBe(409);
    expect(reasonOf(strict)).toBe('would_lock_out');
    const warned = await call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '92.255.220.7', action: 'deny' });
    expect(warned.status).toBe(201);
    expect(field(warned, 'warnings')).toEqual([{ reason: 'would_lock_out', ip: '92.255.220.7', last_seen: new Date(now - 1000).toISOString(), decision: 'deny' }]);
    const lifted = await call('PATCH', `/v1/accounts/AC1/ip-acl/${String(field(warned, 'id'))}`, { enabled: false });
    expect(field(lifted, 'warnings')).toBeUndefined();
    const strictSettings = await call('PUT', '/v1/accounts/AC1', { guard: 'strict' });
    expect(strictSettings.body).toMatchObject({ guard: 'strict' });
    expect(reasonOf(await call('PATCH', `/v1/accounts/AC1/ip-acl/${String(field(warned, 'id'))}`, { enabled: true }))).toBe('would_lock_out');
    expect(reasonOf(await call('PUT', '/v1/accounts/AC1/ip-acl', { entries: [{ ip_address: '81.2.69.0/27' }] }))).toBe('would_lock_out');
    expect(reasonOf(await call('DELETE', `/v1/accounts/AC1/ip-acl/${String(firstEntry(await call('GET', '/v1/accounts/AC1/ip-acl?q=office'))['id'])}`))).toBe('would_lock_out');
    const removed = await call('DELETE', `/v1/accounts/AC1/ip-acl/${String(field(warned, 'id'))}?guard=warn`);
    expect(removed.body).toMatchObject({ warnings: [] });

    const sub = await call('PUT', '/v1/accounts/AC2', { parent: 'AC1' });
    expect(sub.body).toMatchObject({ parent: 'AC1' });
    const inherited = await call('POST', '/v1/accounts/AC2/ip-acl', { ip_address: '31.13.64.0/18' });
    expect([inherited.status, reasonOf(inherited)]).toEqual([409, 'inherited_list']);
    expect((await call('GET', '/v1/accounts/AC2/check?ip=92.255.220.9')).body).toMatchObject({ decision: 'allow', matched: null });

    const page = await call('GET', '/v1/accounts?limit=1', undefined, undefined, READER);
    expect(page.body).toMatchObject({ accounts: ['AC1'], total: 2, next: expect.any(String) });
    expect((await call('GET', `/v1/accounts?limit=1&cursor=${String(field(page, 'next'))}`)).body).toMatchObject({ accounts: ['AC2'], next: null });
    expect((await call('GET', '/v1/accounts', undefined, undefined, AC1_KEY)).body).toMatchObject({ accounts: ['AC1'], total: 1 });

    const audit = await call('GET', '/v1/audit?limit=3');
    expect(audit.status).toBe(200);
    expect(field(audit, 'events')).toHaveLength(3);
    const older = await call('GET', `/v1/audit?limit=100&cursor=${encodeURIComponent(String(field(audit, 'next')))}`, undefined, undefined, READER);
    expect(older.status).toBe(200);
    const actions = new Set((field(older, 'events') as { action: string }[]).map((e) => e.action));
    expect([...actions]).toEqual(expect.arrayContaining(['entry.create', 'entry.update', 'entry.delete', 'list.replace', 'list.import', 'settings.update']));
    expect((await call('GET', '/v1/audit?account=AC1&limit=1', undefined, undefined, AC1_KEY)).status).toBe(200);
    expect(reasonOf(await call('GET', '/v1/audit', undefined, undefined, AC1_KEY))).toBe('forbidden');
    // A cursor the log did not hand out.
    const cursor = await call('GET', '/v1/audit?cursor=bogus');
    expect([cursor.status, reasonOf(cursor)]).toEqual([400, 'invalid_field']);
  });

  it('API keys: register by value and by hash, page, get, rename, disable, a key\'s own list, check, callers, the report, delete', async () => {
    const ci = await call('POST', '/v1/accounts/AC5/keys', { key: 'sk_live_ci_0123456789abcdef', name: 'CI runner' });
    expect(ci.status).toBe(201);
    const ciId = String(field(ci, 'id'));
    expect(ci.headers.get('location')).toBe(`/v1/accounts/AC5/keys/${ciId}`);
    expect(ci.body).toMatchObject({ account: 'AC5', name: 'CI runner', hash: 'hmac-sha256', enabled: true, last_used_at: null, last_used_ip: null });
    expect(JSON.stringify(ci.body)).not.toContain('sk_live_ci_0123456789abcdef');
    const sha = createHash('sha256').update('sk_live_office_fedcba9876543210').digest('hex');
    const office = await call('POST', '/v1/accounts/AC5/keys', { key_sha256: sha.toUpperCase(), name: 'office' }, { 'if-match': '"1"' }, AC5_KEY);
    expect(office.status).toBe(201);
    expect(office.body).toMatchObject({ hash: 'sha256', fingerprint: sha.slice(0, 12) });
    const officeId = String(field(office, 'id'));

    const page = await call('GET', '/v1/accounts/AC5/keys?limit=1', undefined, undefined, READER);
    expect(page.body).toMatchObject({ account: 'AC5', version: 2, total: 2, keys: [{ id: ciId }], next: expect.any(String) });
    expect((await call('GET', `/v1/accounts/AC5/keys?cursor=${String(field(page, 'next'))}`)).body).toMatchObject({ keys: [{ id: officeId }], next: null });
    expect((await call('GET', `/v1/accounts/AC5/keys/${ciId}`, undefined, undefined, AC5_KEY)).body).toMatchObject({ id: ciId, name: 'CI runner' });
    const renamed = await call('PATCH', `/v1/accounts/AC5/keys/${ciId}`, { name: 'CI runners' });
    expect(renamed.body).toMatchObject({ name: 'CI runners', enabled: true });

    // The CI key only from the runners' range; the office key follows the account's list alone.
    const entry = await call('POST', `/v1/accounts/AC5/keys/${ciId}/ip-acl`, { ip_address: '34.74.90.0/24', description: 'CI runners' });
    expect(entry.status).toBe(201);
    expect(entry.headers.get('location')).toBe(`/v1/accounts/AC5/keys/${ciId}/ip-acl/${String(field(entry, 'id'))}`);
    const keyList = await call('GET', `/v1/accounts/AC5/keys/${ciId}/ip-acl`, undefined, undefined, AC5_KEY);
    expect(keyList.body).toMatchObject({ account: 'AC5', key: ciId, version: 1, total: 1 });
    const entryId = String(field(entry, 'id'));
    expect((await call('GET', `/v1/accounts/AC5/keys/${ciId}/ip-acl/${entryId}`)).status).toBe(200);
    expect((await call('PATCH', `/v1/accounts/AC5/keys/${ciId}/ip-acl/${entryId}`, { description: 'CI' })).status).toBe(200);
    const keyExport = await call('GET', `/v1/accounts/AC5/keys/${ciId}/ip-acl/export`);
    expect(keyExport.body).toMatchObject({ key: ciId, entries: [{ ip_address: '34.74.90.0/24' }] });
    expect((await call('GET', `/v1/accounts/AC5/keys/${ciId}/ip-acl/export?format=csv`)).headers.get('content-disposition')).toBe(`attachment; filename="AC5-${ciId}-ip-acl.csv"`);
    expect((await call('PUT', `/v1/accounts/AC5/keys/${ciId}/ip-acl`, { entries: field(keyExport, 'entries') })).status).toBe(200);
    const keyImport = await call('POST', `/v1/accounts/AC5/keys/${ciId}/ip-acl/import`, { entries: [{ ip_address: '34.74.91.0/24', action: 'allow' }] });
    expect(keyImport.body).toMatchObject({ key: ciId, mode: 'merge', received: 1 });
    expect((await call('GET', `/v1/accounts/AC5/keys/${ciId}/check?ip=34.74.90.7`)).body).toMatchObject({ account: 'AC5', key: ciId, decision: 'allow' });
    expect((await call('GET', `/v1/accounts/AC5/keys/${ciId}/check?ip=92.255.220.7`, undefined, undefined, AC5_KEY)).body).toMatchObject({ decision: 'deny', reason: 'ip_not_allowed_for_key', matched: null });
    expect((await call('GET', `/v1/accounts/AC5/keys/${officeId}/check?ip=92.255.220.7`)).body).toMatchObject({ decision: 'allow', reason: 'no_list' });

    // The key's own recent callers, and the lockout guard on its list.
    await a.store.recordCallers(new Map([[`AC5/key:${ciId}`, new Map([['34.74.91.9', Date.now() - 1000]])]]));
    const recent = await call('GET', `/v1/accounts/AC5/keys/${ciId}/recent-ips`);
    expect(recent.body).toMatchObject({ account: 'AC5', key: ciId, ips: [{ ip: '34.74.91.9', decision: 'allow' }] });
    const second = (field(await call('GET', `/v1/accounts/AC5/keys/${ciId}/ip-acl?q=34.74.91`), 'entries') as { id: string }[])[0]!.id;
    expect(reasonOf(await call('DELETE', `/v1/accounts/AC5/keys/${ciId}/ip-acl/${second}?guard=strict`))).toBe('would_lock_out');
    expect((await call('DELETE', `/v1/accounts/AC5/keys/${ciId}/ip-acl/${second}`)).body).toMatchObject({ warnings: [{ reason: 'would_lock_out', ip: '34.74.91.9' }] });

    const report = await call('GET', '/v1/keys?unrestricted=true', undefined, undefined, READER);
    expect(report.body).toMatchObject({ total: 1, next: null, keys: [{ id: officeId, account: 'AC5', unrestricted: true, account_restricts: false, key_restricts: false }] });
    const all = await call('GET', '/v1/keys?limit=1');
    expect(all.body).toMatchObject({ total: 2, keys: [{ id: ciId, unrestricted: false, key_restricts: true }], next: expect.any(String) });
    expect((await call('GET', '/v1/keys?unrestricted=false', undefined, undefined, AC5_KEY)).body).toMatchObject({ total: 1, keys: [{ id: ciId }] });

    expect(reasonOf(await call('POST', '/v1/accounts/AC6/keys', { key: 'sk_live_ci_0123456789abcdef' }))).toBe('duplicate');
    expect(reasonOf(await call('POST', '/v1/accounts/AC6/keys', { key_sha256: sha }))).toBe('duplicate');
    const disabled = await call('PATCH', `/v1/accounts/AC5/keys/${officeId}`, { enabled: false }, undefined, AC5_KEY);
    expect(disabled.body).toMatchObject({ enabled: false });
    // A key's list is closed or opened by PATCH restricted, alone, and not by an account credential.
    expect(reasonOf(await call('PATCH', `/v1/accounts/AC5/keys/${officeId}`, { restricted: true }, undefined, AC5_KEY))).toBe('forbidden');
    expect(reasonOf(await call('PATCH', `/v1/accounts/AC5/keys/${officeId}`, { restricted: true, name: 'x' }))).toBe('invalid_format');
    expect((await call('PATCH', `/v1/accounts/AC5/keys/${officeId}`, { restricted: true })).body).toMatchObject({ id: officeId, list_state: 'empty' });
    expect((await call('GET', `/v1/accounts/AC5/keys/${officeId}/check?ip=92.255.220.7`)).body).toMatchObject({ decision: 'deny', reason: 'list_empty_for_key', list_state: 'empty' });
    expect((await call('GET', `/v1/accounts/AC5/keys/${officeId}/ip-acl`)).body).toMatchObject({ key: officeId, list_state: 'empty' });
    const reopened = await call('PATCH', `/v1/accounts/AC5/keys/${officeId}`, { restricted: false });
    expect(reopened.body).toMatchObject({ list_state: 'none', warnings: [{ reason: 'would_open' }] });
    const gone = await call('DELETE', `/v1/accounts/AC5/keys/${ciId}`);
    expect(gone.body).toEqual({ deleted: ciId });
    expect(reasonOf(await call('GET', `/v1/accounts/AC5/keys/${ciId}`))).toBe('key_not_found');
    expect(reasonOf(await call('GET', `/v1/accounts/AC5/keys/${ciId}/ip-acl`))).toBe('key_not_found');
    expect(reasonOf(await call('POST', `/v1/accounts/AC5/keys/${ciId}/ip-acl`, { ip_address: '34.74.92.0/24' }))).toBe('key_not_found');
    // Registered again, it is a new key (a new id), for any account.
    expect((await call('POST', '/v1/accounts/AC6/keys', { key: 'sk_live_ci_0123456789abcdef', name: 'moved' })).status).toBe(201);

    const events = field(await call('GET', '/v1/audit?account=AC5&limit=100'), 'events') as { action: string; key?: string }[];
    expect(events.filter((e) => e.action.startsWith('key.')).map((e) => [e.action, e.key])).toEqual([
      ['key.delete', ciId], ['key.update', officeId], ['key.update', ciId], ['key.create', officeId], ['key.create', ciId],
    ]);
    expect(events.some((e) => e.action === 'entry.create' && e.key === ciId)).toBe(true);
    expect(reasonOf(await call('POST', '/v1/accounts/AC5/keys', { key: 'short' }))).toBe('invalid_format');
    expect(reasonOf(await call('POST', '/v1/accounts/AC5/keys', { key: 'sk_live_x_0123456789', key_sha256: sha }))).toBe('invalid_format');
    expect(reasonOf(await call('POST', '/v1/accounts/AC5/keys', { key_sha256: 'abc' }))).toBe('invalid_format');
    expect(reasonOf(await call('POST', '/v1/accounts/AC5/keys', { key: 'sk live with spaces' }))).toBe('invalid_format');
    expect(reasonOf(await call('POST', '/v1/accounts/AC5/keys', { key: 'sk_live_0123456789', secret: true }))).toBe('unknown_field');
    expect(reasonOf(await call('PATCH', `/v1/accounts/AC5/keys/${officeId}`, { enabled: 'no' }))).toBe('invalid_field');
    expect(reasonOf(await call('GET', '/v1/keys?unrestricted=maybe'))).toBe('invalid_field');
    expect(reasonOf(await call('POST', '/v1/accounts/AC5/keys', { key: 'sk_live_0123456789' }, undefined, READER))).toBe('forbidden');
    expect(reasonOf(await call('GET', '/v1/accounts/AC6/keys', undefined, undefined, AC5_KEY))).toBe('forbidden');
    expect(reasonOf(await call('PATCH', '/v1/accounts/AC5/keys/key_none', { name: 'x' }))).toBe('key_not_found');
    expect(reasonOf(await call('DELETE', '/v1/accounts/AC5/keys/key_none'))).toBe('key_not_found');
    expect(reasonOf(await call('GET', '/v1/accounts/AC5/keys/key_none/check?ip=1.1.1.1'))).toBe('key_not_found');
    expect(reasonOf(await call('GET', '/v1/accounts/AC5/keys/key_none/recent-ips'))).toBe('key_not_found');
  });

  it('the global list', async () => {
    const created = await call('POST', '/v1/global/ip-acl', { ip_address: '45.0.0.0/8', action: 'deny', description: 'blocked everywhere' }, undefined, ADMIN);
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/v1/global/ip-acl/${String(field(created, 'id'))}`);
    const id = String(field(created, 'id'));
    expect((await call('GET', '/v1/global/ip-acl', undefined, undefined, READER)).body).toMatchObject({ account: '_global', total: 1 });
    expect((await call('GET', '/v1/global', undefined, undefined, READER)).body).toMatchObject({ account: '_global', restricted: false, list_state: 'none' });
    expect((await call('PUT', '/v1/global', { default: 'open' }, undefined, ADMIN)).body).toMatchObject({ default: 'open', list_state: 'none' });
    expect((await call('GET', `/v1/global/ip-acl/${id}`)).status).toBe(200);
    expect((await call('PATCH', `/v1/global/ip-acl/${id}`, { description: 'blocked' })).status).toBe(200);
    expect((await call('GET', '/v1/global/ip-acl/export?format=csv')).status).toBe(200);
    const exported = await call('GET', '/v1/global/ip-acl/export?format=json');
    expect((await call('PUT', '/v1/global/ip-acl', { entries: [...(field(exported, 'entries') as unknown[]), { ip_address: '46.0.0.0/8' }] })).status).toBe(200);
    const imported = await call('POST', '/v1/global/ip-acl/import?mode=merge', { entries: [{ ip_address: '46.0.0.0/8' }, { ip_address: '2a03:2880::/32', action: 'deny' }] });
    expect(imported.body).toMatchObject({ received: 2 });
    expect(field(imported, 'entries')).toHaveLength(3);
    const after = (field(imported, 'entries') as { id: string }[])[0]!.id;
    expect((await call('DELETE', `/v1/global/ip-acl/${after}`)).status).toBe(200);
    expect(reasonOf(await call('POST', '/v1/global/ip-acl', { ip_address: '47.0.0.0/8' }, undefined, AC1_KEY))).toBe('forbidden');
    expect(reasonOf(await call('GET', '/v1/global/ip-acl/nope'))).toBe('entry_not_found');
  });

  it('refusals: 400, 401, 403, 404, 405, 409, 412, 413, 415', async () => {
    const bad = async (method: string, path: string, body: unknown, reason: string, headers?: Record<string, string>): Promise<Answer> => {
      const answer = await call(method, path, body, headers);
      expect([answer.status, reasonOf(answer)], `${method} ${path}`).toEqual([400, reason]);
      return answer;
    };
    await bad('GET', '/v1/accounts/AC1/ip-acl?limit=0', undefined, 'invalid_field');
    await bad('GET', '/v1/accounts/AC1/ip-acl?cursor=!!', undefined, 'invalid_field');
    await bad('GET', '/v1/accounts/AC1/ip-acl?action=maybe', undefined, 'invalid_field');
    await bad('GET', '/v1/accounts/AC1/ip-acl?enabled=yes', undefined, 'invalid_field');
    await bad('GET', '/v1/accounts?limit=1001', undefined, 'invalid_field');
    await bad('GET', '/v1/accounts/-bad/ip-acl', undefined, 'invalid_account');
    await bad('GET', '/v1/accounts/bad%20id', undefined, 'invalid_account');
    await bad('GET', '/v1/accounts/AC1/recent-ips?limit=x', undefined, 'invalid_field');
    await bad('GET', '/v1/audit?limit=-1', undefined, 'invalid_field');
    await bad('GET', '/v1/accounts/AC1/ip-acl/export?format=xml', undefined, 'invalid_field');
    await bad('GET', '/v1/accounts/AC1/check?ip=300.1.1.1', undefined, 'invalid_format');
    await bad('GET', '/v1/accounts/AC1/check', undefined, 'invalid_format');
    const unknown = { ip_address: '31.13.24.0/21', comment: 'no such field' };
    expect(requestAccepts('POST', '/v1/accounts/{account}/ip-acl', unknown)).toBe(false);
    await bad('POST', '/v1/accounts/AC3/ip-acl', unknown, 'unknown_field');
    await bad('POST', '/v1/accounts/AC3/ip-acl', '{"ip_address": ', 'invalid_json');
    await bad('POST', '/v1/accounts/AC3/ip-acl', { ip_address: '31.13.24.0/20.5' }, 'invalid_format');
    await bad('POST', '/v1/accounts/AC3/ip-acl', { ip_address: '31.13.24.1/21' }, 'invalid_format');
    await bad('POST', '/v1/accounts/AC3/ip-acl', { ip_address: '31.13.24.0/21', expires_at: '2001-01-01T00:00:00Z' }, 'invalid_field');
    await bad('POST', '/v1/accounts/AC3/ip-acl', { ip_address: '127.0.0.1' }, 'reserved_range');
    await bad('POST', '/v1/accounts/AC3/ip-acl?guard=always', { ip_address: '31.13.24.0/21' }, 'invalid_field');
    await bad('POST', '/v1/accounts/AC3/ip-acl?replace=yes', { ip_address: '31.13.24.0/21' }, 'invalid_field');
    await bad('POST', '/v1/accounts/AC3/ip-acl', { ip_address: '31.13.24.0/21' }, 'invalid_if_match', { 'if-match': 'yesterday' });
    await bad('PATCH', '/v1/accounts/AC3/ip-acl/x', { enabled: 'no' }, 'invalid_field');
    await bad('PUT', '/v1/accounts/AC3/ip-acl', { list: [] }, 'invalid_field');
    await bad('POST', '/v1/accounts/AC3/ip-acl/import?mode=append', { entries: [] }, 'invalid_field');
    await bad('POST', '/v1/accounts/AC3/ip-acl/import', 'address\r\n31.13.24.0/21\r\n', 'invalid_csv', { 'content-type': 'text/csv' });
    await bad('PUT', '/v1/accounts/AC3', { modes: 'off' }, 'unknown_field');
    await bad('PUT', '/v1/accounts/AC3', { mode: 'sometimes' }, 'invalid_field');
    await bad('PUT', '/v1/accounts/AC3', { parent: 'AC3' }, 'invalid_parent');
    expect((await call('PUT', '/v1/accounts/AC3', { ipv4_only: true })).status).toBe(200);
    await bad('POST', '/v1/accounts/AC3/ip-acl', { ip_address: '2a00:1450:4001::/48' }, 'ipv6_not_allowed');

    const missing = await call('GET', '/v1/accounts', undefined, undefined, null);
    expect([missing.status, reasonOf(missing), missing.headers.get('www-authenticate')]).toEqual([401, 'missing_token', 'Bearer']);
    expect(reasonOf(await call('GET', '/v1/accounts/AC1/ip-acl', undefined, undefined, 'not-a-token'))).toBe('invalid_token');
    expect(reasonOf(await call('GET', '/v1/accounts/AC1/ip-acl', undefined, { authorization: 'Basic eDp5' }, null))).toBe('invalid_token');
    expect((await call('GET', '/v1/nowhere', undefined, undefined, null)).status).toBe(401);

    expect(reasonOf(await call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '31.13.24.0/21' }, undefined, READER))).toBe('forbidden');
    expect(reasonOf(await call('GET', '/v1/accounts/AC2/ip-acl', undefined, undefined, AC1_KEY))).toBe('forbidden');
    expect(reasonOf(await call('PUT', '/v1/accounts/AC1', { mode: 'off' }, undefined, AC1_KEY))).toBe('forbidden');
    expect(reasonOf(await call('GET', '/v1/accounts/AC2/check?ip=1.1.1.1', undefined, undefined, AC1_KEY))).toBe('forbidden');
    expect(reasonOf(await call('GET', '/v1/accounts/AC2/recent-ips', undefined, undefined, AC1_KEY))).toBe('forbidden');
    expect(reasonOf(await call('GET', '/v1/accounts/AC2', undefined, undefined, AC1_KEY))).toBe('forbidden');

    expect(reasonOf(await call('GET', '/v1/accounts/AC1/ip-acl/ipacl_none'))).toBe('entry_not_found');
    expect(reasonOf(await call('PATCH', '/v1/accounts/AC1/ip-acl/ipacl_none', { enabled: false }))).toBe('entry_not_found');
    expect(reasonOf(await call('DELETE', '/v1/accounts/AC1/ip-acl/ipacl_none'))).toBe('entry_not_found');
    expect(reasonOf(await call('GET', '/v1/nowhere'))).toBe('not_found');
    expect(reasonOf(await call('GET', '/v1/accounts/AC1/ip-acl/x/y'))).toBe('not_found');

    expect(reasonOf(await call('DELETE', '/v1/accounts'))).toBe('method_not_allowed');
    expect(reasonOf(await call('POST', '/v1/accounts/AC1/check?ip=1.1.1.1'))).toBe('method_not_allowed');
    expect(reasonOf(await call('PATCH', '/v1/accounts/AC1/ip-acl', { enabled: false }))).toBe('method_not_allowed');

    await call('PUT', '/v1/accounts/AC4', { max_entries: 2 });
    const allow = await call('POST', '/v1/accounts/AC4/ip-acl', { ip_address: '31.13.24.0/24' });
    expect(allow.status).toBe(201);
    expect(reasonOf(await call('POST', '/v1/accounts/AC4/ip-acl', { ip_address: '31.13.24.0/255.255.255.0' }))).toBe('duplicate');
    expect(reasonOf(await call('POST', '/v1/accounts/AC4/ip-acl', { ip_address: '31.13.24.9' }))).toBe('subset_exists');
    expect(reasonOf(await call('POST', '/v1/accounts/AC4/ip-acl', { ip_address: '31.13.0.0/16' }))).toBe('superset_conflict');
    expect((await call('POST', '/v1/accounts/AC4/ip-acl?replace=true', { ip_address: '31.13.0.0/16' })).status).toBe(201);
    expect((await call('POST', '/v1/accounts/AC4/ip-acl', { ip_address: '31.14.0.0/16' })).status).toBe(201);
    expect(reasonOf(await call('POST', '/v1/accounts/AC4/ip-acl', { ip_address: '31.15.0.0/16' }))).toBe('limit_reached');
    expect(reasonOf(await call('POST', '/v1/accounts/AC4/ip-acl/import', { entries: [{ ip_address: '31.15.0.0/16' }] }))).toBe('limit_reached');

    const stale = { 'if-match': '"1"' };
    const live = String((field(await call('GET', '/v1/accounts/AC4/ip-acl'), 'entries') as { id: string }[])[0]!.id);
    expect(reasonOf(await call('POST', '/v1/accounts/AC4/ip-acl', { ip_address: '31.16.0.0/16' }, stale))).toBe('version_conflict');
    expect(reasonOf(await call('PATCH', `/v1/accounts/AC4/ip-acl/${live}`, { enabled: false }, stale))).toBe('version_conflict');
    expect(reasonOf(await call('PUT', '/v1/accounts/AC4', { guard: 'strict' }, stale))).toBe('version_conflict');
    expect(reasonOf(await call('PUT', '/v1/accounts/AC4/ip-acl', { entries: [] }, stale))).toBe('version_conflict');
    expect(reasonOf(await call('POST', '/v1/accounts/AC4/ip-acl/import', { entries: [] }, { 'if-match': 'W/"2"' }))).toBe('version_conflict');
    expect(reasonOf(await call('DELETE', `/v1/accounts/AC4/ip-acl/${live}`, undefined, stale))).toBe('version_conflict');

    expect(reasonOf(await call('POST', '/v1/accounts/AC4/ip-acl', { ip_address: '31.16.0.0/16', description: 'x'.repeat(70_000) }))).toBe('body_too_large');
    expect(reasonOf(await call('PUT', '/v1/accounts/AC4', { mode: 'off', x: 'y'.repeat(70_000) }))).toBe('body_too_large');
    expect(reasonOf(await call('POST', '/v1/accounts/AC4/ip-acl/import', `ip_address\r\n${'31.16.0.0/16\r\n'.repeat(90_000)}`, { 'content-type': 'text/csv' }))).toBe('body_too_large');

    expect(reasonOf(await call('POST', '/v1/accounts/AC4/ip-acl', 'ip_address=31.16.0.0/16', { 'content-type': 'text/plain' }))).toBe('unsupported_media_type');
    expect(reasonOf(await call('PATCH', `/v1/accounts/AC4/ip-acl/${live}`, 'enabled=false', { 'content-type': 'application/x-www-form-urlencoded' }))).toBe('unsupported_media_type');
    expect(reasonOf(await call('PUT', '/v1/accounts/AC4', 'mode: off', { 'content-type': 'application/yaml' }))).toBe('unsupported_media_type');
    expect(reasonOf(await call('PUT', '/v1/accounts/AC4/ip-acl', 'entries', { 'content-type': 'text/plain' }))).toBe('unsupported_media_type');
    expect(reasonOf(await call('POST', '/v1/accounts/AC4/ip-acl/import', '<entries/>', { 'content-type': 'application/xml' }))).toBe('unsupported_media_type');
  });
});

/** The first entry of a list answer. */
function firstEntry(answer: Answer): JsonObject {
  return asObject((field(answer, 'entries') as unknown[])[0]);
}

describe('answers outside the shared session', () => {
  it('429 after repeated failed authentications', async () => {
    const a = await startAdminApi({ limiter: new AuthLimiter({ maxFailures: 2, windowMs: 60_000 }) });
    try {
      for (let i = 0; i < 2; i++) expect((await exchange(a.base, 'GET', '/v1/accounts', { token: `wrong-${i}` })).status).toBe(401);
      const blocked = await exchange(a.base, 'GET', '/v1/accounts/AC1/ip-acl', { token: 'wrong-2' });
      expect([blocked.status, reasonOf(blocked), blocked.headers.get('retry-after')]).toEqual([429, 'too_many_attempts', '60']);
      expect((await exchange(a.base, 'GET', '/v1/nowhere', { token: 'wrong-3' })).status).toBe(429);
      // A valid credential is served all the same.
      expect((await exchange(a.base, 'GET', '/v1/nowhere')).status).toBe(404);
    } finally {
      await a.close();
    }
  });

  it('GET /v1/openapi.json through the dispatcher with the openapi dependency, without credentials', async () => {
    const a = await startAdminApi();
    const handler = createAdminHandler({
      store: a.store,
      surfaces: [nativeSurface({ service: a.service, audit: a.audit, check: () => Promise.reject(new Error('not called')) })],
      authenticate: compileCredentials([credential('owner', 'owner', OWNER_TOKEN)]),
      limiter: new AuthLimiter(),
      health: () => ({ live: true, ready: true }),
      openapi: openApiDocument,
    });
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const served = await exchange(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'GET', '/v1/openapi.json', { token: null });
      expect(served.status).toBe(200);
      expect(served.body).toEqual(openApiDocument());
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await a.close();
    }
  });

  it('validated an answer of every documented operation, for each success media type, and the error statuses', () => {
    const expected: string[] = [];
    for (const [path, item] of Object.entries(paths)) {
      for (const method of METHODS.filter((m) => m in item)) {
        for (const [status, raw] of Object.entries(asObject(asObject(item[method])['responses']))) {
          if (!status.startsWith('2')) continue;
          for (const mediaType of Object.keys(asObject(asObject(deref(doc, raw))['content'] ?? {}))) expected.push(`${method.toUpperCase()} ${path} ${status} ${mediaType}`);
        }
      }
    }
    expect(expected.filter((key) => !validated.has(key))).toEqual([]);
    const statuses = new Set([...validated].map((key) => Number(key.split(' ')[2])));
    for (const status of [200, 201, 400, 401, 403, 404, 405, 409, 412, 413, 415, 429, 503]) expect(statuses, String(status)).toContain(status);
  });
});
