import { describe, expect, it } from 'vitest';
import { startPhpUpstream, startRailsUpstream, startWsgiUpstream, type CgiRequest, type CgiUpstream } from '../support/cgi-upstream.ts';
import { send } from '../support/http.ts';
import { OFFICE, STRANGER, stackBypassCases, type StackAttack } from '../support/stack-bypass.ts';

/*
 * Header-name, Connection, query-parameter, body and request-target aliases in front of real
 * upstream stacks: Python's wsgiref (WSGI), PHP's built-in server and a Rails controller on Rack. Each case first shows, straight against the
 * upstream, that the stack really reads the alias as the locked account's credential (or
 * address); then that the same request through the gateway is refused with the exact status
 * and reason, and never reaches the upstream. A forwarded control shows what the upstream reads
 * when the request goes through.
 */

const LOCKED = 'AC1';
const OPEN = 'AC2';

type Attack = StackAttack<CgiUpstream['kind'], CgiRequest>;

const includes = (value: unknown, wanted: string): boolean => (typeof value === 'string' ? value.split(',').includes(wanted) : Array.isArray(value) ? value.includes(wanted) : false);
const authId = (r: CgiRequest): boolean => includes(r.http['HTTP_X_AUTH_ID'], LOCKED);
const param = (r: CgiRequest): boolean => includes(r.get?.['account_id'], LOCKED) || includes(r.query?.['account_id'], LOCKED) || includes(r.request?.['account_id'], LOCKED) || r.params?.['account_id'] === LOCKED;
/** The path the application routes on (PHP: parse_url(REQUEST_URI, PHP_URL_PATH)). */
const routed = (r: CgiRequest): boolean => r.path === `/v1/Account/${LOCKED}/Call`;
const post = (contentType: string, body: string): Pick<Attack, 'method' | 'headers' | 'body'> => ({ method: 'POST', headers: [['Content-Type', contentType], ['Content-Length', String(Buffer.byteLength(body))]], body });
const FORM = `account_id=${LOCKED}`;
const MULTIPART = `--b\r\nContent-Disposition: form-data; name="account_id"\r\n\r\n${LOCKED}\r\n--b--\r\n`;
const address = (variable: string) => (r: CgiRequest): boolean => r.http[variable] === OFFICE;
const BOTH = ['wsgi', 'php'] as const;

const ATTACKS: readonly Attack[] = [
  { name: 'X_Auth_ID', stacks: BOTH, headers: [['X_Auth_ID', LOCKED]], read: authId, status: 400, reason: 'ambiguous_header' },
  { name: 'x_auth_id', stacks: BOTH, headers: [['x_auth_id', LOCKED]], read: authId, status: 400, reason: 'ambiguous_header' },
  { name: 'X-Auth_ID', stacks: BOTH, headers: [['X-Auth_ID', LOCKED]], read: authId, status: 400, reason: 'ambiguous_header' },
  { name: 'X.Auth.ID (PHP folds dots)', stacks: ['php'], headers: [['X.Auth.ID', LOCKED]], read: authId, status: 400, reason: 'ambiguous_header' },
  { name: 'X-Auth-ID for the open account and X_Auth_ID for the locked one', stacks: BOTH, headers: [['X-Auth-ID', OPEN], ['X_Auth_ID', LOCKED]], read: authId, status: 400, reason: 'ambiguous_header' },
  { name: 'Connection stripping the checked X-Auth-ID, with an alias left behind', stacks: BOTH, headers: [['X-Auth-ID', OPEN], ['Connection', 'close, X-Auth-ID'], ['X_Auth_ID', LOCKED]], read: authId, status: 400, reason: 'invalid_connection_header' },
  { name: 'X_Forwarded_For claiming the office', stacks: BOTH, headers: [['X-Auth-ID', LOCKED], ['X_Forwarded_For', OFFICE]], read: address('HTTP_X_FORWARDED_FOR'), status: 400, reason: 'ambiguous_header' },
  { name: 'X_Real_IP claiming the office', stacks: BOTH, headers: [['X-Auth-ID', LOCKED], ['X_Real_IP', OFFICE]], read: address('HTTP_X_REAL_IP'), status: 400, reason: 'ambiguous_header' },
  { name: 'Client_IP claiming the office', stacks: BOTH, headers: [['X-Auth-ID', LOCKED], ['Client_IP', OFFICE]], read: address('HTTP_CLIENT_IP'), status: 400, reason: 'ambiguous_header' },
  { name: 'X.Forwarded.For claiming the office (PHP)', stacks: ['php'], headers: [['X-Auth-ID', LOCKED], ['X.Forwarded.For', OFFICE]], read: address('HTTP_X_FORWARDED_FOR'), status: 400, reason: 'ambiguous_header' },
  { name: 'X_AUTH-ID', stacks: BOTH, headers: [['X_AUTH-ID', LOCKED]], read: authId, status: 400, reason: 'ambiguous_header' },
  { name: 'x_real_ip claiming the office', stacks: BOTH, headers: [['X-Auth-ID', LOCKED], ['x_real_ip', OFFICE]], read: address('HTTP_X_REAL_IP'), status: 400, reason: 'ambiguous_header' },
  { name: 'X-Forwarded_For claiming the office', stacks: BOTH, headers: [['X-Auth-ID', LOCKED], ['X-Forwarded_For', OFFICE]], read: address('HTTP_X_FORWARDED_FOR'), status: 400, reason: 'ambiguous_header' },
  { name: 'X_Allowgate_Account naming the locked account', stacks: BOTH, headers: [['X-Auth-ID', OPEN], ['X_Allowgate_Account', LOCKED]], read: (r) => r.http['HTTP_X_ALLOWGATE_ACCOUNT'] === LOCKED, status: 400, reason: 'ambiguous_header' },
  { name: '?account.id', stacks: ['php'], target: `/v1/x?account.id=${LOCKED}`, headers: [], read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: '?account id (space)', stacks: ['php'], target: `/v1/x?account%20id=${LOCKED}`, headers: [], read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: '?account[id', stacks: ['php'], target: `/v1/x?account[id=${LOCKED}`, headers: [], read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: '?account_id[]', stacks: ['php'], target: `/v1/x?account_id[]=${LOCKED}`, headers: [], read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: '?account_id[0]', stacks: ['php'], target: `/v1/x?account_id[0]=${LOCKED}`, headers: [], read: (r) => JSON.stringify(r.get?.['account_id']).includes(LOCKED), status: 400, reason: 'ambiguous_credentials' },
  { name: '? account_id (leading space)', stacks: ['php'], target: `/v1/x?%20account_id=${LOCKED}`, headers: [], read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: '?account_id%00 (NUL)', stacks: ['php'], target: `/v1/x?account_id%00x=${LOCKED}`, headers: [], read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: '?account+id (+ is a space, a space an underscore)', stacks: ['php'], target: `/v1/x?account+id=${LOCKED}`, headers: [], read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: '?account%2Eid (an escaped dot)', stacks: ['php'], target: `/v1/x?account%2Eid=${LOCKED}`, headers: [], read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: '?account_id%5B%5D (escaped brackets)', stacks: ['php'], target: `/v1/x?account_id%5B%5D=${LOCKED}`, headers: [], read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: '?account.id[]', stacks: ['php'], target: `/v1/x?account.id[]=${LOCKED}`, headers: [], read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: '?account_id[a]', stacks: ['php'], target: `/v1/x?account_id[a]=${LOCKED}`, headers: [], read: (r) => JSON.stringify(r.get?.['account_id']).includes(LOCKED), status: 400, reason: 'ambiguous_credentials' },
  // Spellings every stack decodes to the parameter itself: the gateway reads them too, so they are checked.
  { name: '?%61ccount_id (an escaped letter) is the parameter, checked', stacks: BOTH, target: `/v1/x?%61ccount_id=${LOCKED}`, headers: [], read: param, status: 403, reason: 'ip_not_allowed' },
  { name: '?account%5Fid (an escaped underscore) is the parameter, checked', stacks: BOTH, target: `/v1/x?account%5Fid=${LOCKED}`, headers: [], read: param, status: 403, reason: 'ip_not_allowed' },
  { name: 'a fragment the upstream reads as query', stacks: ['wsgi'], target: `/v1/x?y=1#&account_id=${LOCKED}`, headers: [], read: param, status: 400, reason: 'invalid_request_target' },
  { name: 'a form body merged into the request parameters', stacks: ['php', 'rails'], target: '/v1/x?y=1', method: 'POST', headers: [['Content-Type', 'application/x-www-form-urlencoded']], body: `account_id=${LOCKED}`, read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: 'X_Auth_ID (Rack folds it too)', stacks: ['rails'], headers: [['X_Auth_ID', LOCKED]], read: authId, status: 400, reason: 'ambiguous_header' },
  // Content-Type as PHP (media type up to ';', ',' or a space) and Rack (up to ';' or ',') read it.
  { name: 'form Content-Type followed by a comma', stacks: ['php', 'rails'], target: '/v1/x?y=1', ...post('application/x-www-form-urlencoded,', FORM), read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: 'form Content-Type followed by a space and text', stacks: ['php'], target: '/v1/x?y=1', ...post('application/x-www-form-urlencoded x', FORM), read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: 'multipart Content-Type with a comma before the boundary', stacks: ['php', 'rails'], target: '/v1/x?y=1', ...post('multipart/form-data, boundary=b', MULTIPART), read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: 'multipart Content-Type with a space before the boundary', stacks: ['php'], target: '/v1/x?y=1', ...post('multipart/form-data boundary=b', MULTIPART), read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: 'a JSON body merged into params', stacks: ['rails'], target: '/v1/x?y=1', ...post('application/json', `{"account_id":"${LOCKED}"}`), read: param, status: 400, reason: 'ambiguous_credentials' },
  { name: 'a text/x-json body merged into params', stacks: ['rails'], target: '/v1/x?y=1', ...post('text/x-json', `{"account_id":"${LOCKED}"}`), read: param, status: 400, reason: 'ambiguous_credentials' },
  // Query names Rack 2 reads through leading brackets, up to the next bracket.
  ...['[account_id]', 'account_id]', ']account_id', '[[account_id', '%5Baccount_id%5D', '[]account_id'].map((name): Attack => (
    { name: `?${name}`, stacks: ['rails'], target: `/v1/x?${name}=${LOCKED}`, headers: [], read: param, status: 400, reason: 'ambiguous_credentials' })),
  // Targets URL parsers read as a host name and a path.
  ...['//evil/v1/Account/AC1/Call', '//evil@x/v1/Account/AC1/Call', '//127.0.0.1:1/v1/Account/AC1/Call'].map((target): Attack => (
    { name: `target ${target}`, stacks: ['php'], target, headers: [], read: routed, status: 400, reason: 'invalid_request_target' })),
  // A format suffix: Rails routes /v1/Account/AC1.json to account AC1 (.:format).
  { name: 'path /v1/Account/AC1.json', stacks: ['rails'], target: `/v1/Account/${LOCKED}.json`, headers: [], read: param, status: 400, reason: 'ambiguous_account' },
  { name: 'path /v1/Account/AC1.xml', stacks: ['rails'], target: `/v1/Account/${LOCKED}.xml`, headers: [], read: param, status: 400, reason: 'ambiguous_account' },
];

const STACKS = [
  { kind: 'wsgi' as const, start: startWsgiUpstream },
  { kind: 'php' as const, start: startPhpUpstream },
  { kind: 'rails' as const, start: startRailsUpstream },
];

describe.each(STACKS)('CGI-style upstream: $kind', ({ kind, start }) => {
  const stack = stackBypassCases({
    kind,
    start,
    config: 'identity:\n  strategies:\n    - {type: header, header: X-Auth-ID}\n    - {type: basic}\n    - {type: query, param: account_id}\n    - {type: path, templates: ["/v1/Account/{account}/"]}\n',
    setup: async (gw) => {
      expect((await gw.admin('POST', `/v1/accounts/${LOCKED}/ip-acl`, { ip_address: `${OFFICE}/32` })).status).toBe(201);
    },
    attacks: ATTACKS,
    readsAs: "as the locked account's",
  });

  it('forwards a plain request: the upstream reads the checked account and the checked client', async () => {
    const reply = await send(stack.gw.url, { target: `/v1/x?account_id=${OPEN}`, headers: [['Host', 'api.example'], ['X-Auth-ID', OPEN], ['X-Real-IP', OFFICE], ['Client-IP', OFFICE]], localAddress: STRANGER });
    expect(reply.status).toBe(200);
    const read = reply.json<CgiRequest>();
    expect(read.http['HTTP_X_AUTH_ID']).toBe(OPEN);
    expect([read.http['HTTP_X_FORWARDED_FOR'], read.http['HTTP_X_REAL_IP'], read.http['HTTP_FORWARDED'], read.http['HTTP_CLIENT_IP']]).toEqual([STRANGER, STRANGER, `for=${STRANGER}`, undefined]);
    expect(read.query?.['account_id'] ?? read.get?.['account_id'] ?? read.params?.['account_id']).toEqual(kind === 'wsgi' ? [OPEN] : OPEN);
  });
});
