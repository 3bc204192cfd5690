import { describe, expect, it } from 'vitest';
import { startPhpUpstream, startRailsUpstream, startWsgiUpstream, type CgiRequest } from '../support/cgi-upstream.ts';
import { startEchoUpstream } from '../support/echo-upstream.ts';
import { send } from '../support/http.ts';
import { OFFICE, STRANGER, stackBypassCases, type RecordingUpstream, type StackAttack } from '../support/stack-bypass.ts';

/*
 * API keys in places an upstream reads and the gateway must read too, in front of real upstream
 * stacks: Python's wsgiref, PHP's built-in server, a Rails controller on Rack, and Node's own
 * http server. Each case first shows, straight against the upstream, that the stack reads the
 * locked account's key there; then that the same request through the gateway is refused with the
 * exact status and reason and never reaches the upstream.
 *
 * The strategy reads opaque Bearer tokens (its default), so the query parameters RFC 6750 §2.3
 * lets a bearer token travel in (access_token; Doorkeeper's bearer_token), which token libraries
 * read (passport-http-bearer, Doorkeeper, oauthlib), are read as keys too; and it reads the key
 * as the Basic password, so a Basic header whose password is empty carries a credential nothing
 * checks (the user name, which Stripe-style upstreams take for the key). Beside them, the names
 * CGI-style stacks fold into the key's header, and a key beside another credential (a header, the
 * path) naming another account.
 */

const LOCKED_KEY = 'sk_live_locked_4Rt7Yu1Io3Pa5Sd8';
const OPEN_KEY = 'sk_live_open_9Zx2Cv4Bn6Mm8Qw1';

const CONFIG = `identity:
  strategies:
    - type: header
      header: X-Auth-ID
    - type: path
      templates: ["/v1/Account/{account}/"]
    - type: api-key
      header: X-API-Key
      bearer: true
      basic: password
`;

/** What the application took from the request, whatever its stack. */
interface Seen {
  /** The access_token (or bearer_token) parameter as the stack parses the query and a form body. */
  param(name: string): unknown;
  /** The user name of Authorization: Basic, decoded. */
  basicUser(): string | null;
  /** A header as the stack names it (CGI: HTTP_X_API_KEY; Node: lower case). */
  header(cgiName: string): unknown;
  /** The account the stack routes /v1/Account/{account}/... to. */
  routedAccount(): string | null;
}

type Kind = 'wsgi' | 'php' | 'rails' | 'node';

function basicUserOf(authorization: unknown): string | null {
  if (typeof authorization !== 'string' || !authorization.startsWith('Basic ')) return null;
  const decoded = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
  return decoded.slice(0, decoded.indexOf(':'));
}

function routed(path: string): string | null {
  return /^\/v1\/Account\/([^/]+)\//.exec(path)?.[1] ?? null;
}

function fromCgi(r: CgiRequest): Seen {
  return {
    param: (name) => r.request?.[name] ?? r.get?.[name] ?? r.query?.[name]?.[0] ?? r.params?.[name],
    basicUser: () => r.auth_user ?? basicUserOf(r.http['HTTP_AUTHORIZATION']),
    header: (cgiName) => r.http[cgiName],
    routedAccount: () => (typeof r.params?.['account_id'] === 'string' ? r.params['account_id'] : routed(r.path)),
  };
}

async function startStack(kind: Kind): Promise<RecordingUpstream<Seen>> {
  if (kind === 'node') {
    const echo = await startEchoUpstream();
    return {
      url: echo.url,
      seen: () => echo.seen.map((r): Seen => ({
        // As passport-http-bearer reads it: the query (req.query), then a form body (req.body).
        param: (name) => new URL(r.url, 'http://x').searchParams.get(name) ?? new URLSearchParams(r.body).get(name),
        basicUser: () => basicUserOf(r.headers['authorization']),
        header: (cgiName) => r.headers[cgiName.slice(5).toLowerCase().replaceAll('_', '-')],
        routedAccount: () => routed(new URL(r.url, 'http://x').pathname),
      })),
      close: () => echo.close(),
    };
  }
  const cgi = await { wsgi: startWsgiUpstream, php: startPhpUpstream, rails: startRailsUpstream }[kind]();
  return { url: cgi.url, seen: () => cgi.seen().map(fromCgi), close: () => cgi.close() };
}

type Attack = StackAttack<Kind, Seen>;

const ALL = ['wsgi', 'php', 'rails', 'node'] as const;
const CGI = ['wsgi', 'php', 'rails'] as const;
const keyHeader = (s: Seen): boolean => s.header('HTTP_X_API_KEY') === LOCKED_KEY;
const tokenParam = (name: string) => (s: Seen): boolean => {
  const value = s.param(name);
  return value === LOCKED_KEY || (Array.isArray(value) && value.includes(LOCKED_KEY));
};
const form = (body: string): Pick<Attack, 'headers' | 'body'> => ({
  headers: [['X-API-Key', OPEN_KEY], ['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', String(body.length)]],
  body,
});
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const ATTACKS: readonly Attack[] = [
  { name: '?access_token=<locked key> beside X-API-Key: <open key>', stacks: ALL, target: `/v1/x?access_token=${LOCKED_KEY}`, headers: [['X-API-Key', OPEN_KEY]], read: tokenParam('access_token'), status: 400, reason: 'ambiguous_credentials' },
  { name: '?access_token=<locked key> alone, from outside its list', stacks: ALL, target: `/v1/x?access_token=${LOCKED_KEY}`, read: tokenParam('access_token'), status: 403, reason: 'ip_not_allowed' },
  { name: '?bearer_token=<locked key> alone (Doorkeeper)', stacks: ALL, target: `/v1/x?bearer_token=${LOCKED_KEY}`, read: tokenParam('bearer_token'), status: 403, reason: 'ip_not_allowed' },
  { name: '?Access_Token=<locked key> (a case-insensitive reader)', stacks: ['node'], target: `/v1/x?access_token=${LOCKED_KEY}&Access_Token=x`, read: tokenParam('access_token'), status: 400, reason: 'ambiguous_credentials' },
  { name: '?access_token[]=<locked key> (PHP)', stacks: ['php'], target: `/v1/x?access_token[]=${LOCKED_KEY}`, read: tokenParam('access_token'), status: 400, reason: 'ambiguous_credentials' },
  { name: 'a form body access_token=<locked key> beside X-API-Key: <open key>', stacks: ['php', 'rails', 'node'], target: '/v1/x', ...form(`access_token=${LOCKED_KEY}`), read: tokenParam('access_token'), status: 400, reason: 'ambiguous_credentials' },
  // Names each stack folds into the key's header, and other credentials naming another account.
  { name: 'X_API_Key: <locked key>', stacks: CGI, target: '/v1/x', headers: [['X_API_Key', LOCKED_KEY]], read: keyHeader, status: 400, reason: 'ambiguous_header' },
  { name: 'X.API.Key: <locked key> (PHP folds dots)', stacks: ['php'], target: '/v1/x', headers: [['X.API.Key', LOCKED_KEY]], read: keyHeader, status: 400, reason: 'ambiguous_header' },
  { name: 'X-API-Key: <open key> on the locked account\'s path', stacks: ALL, target: '/v1/Account/AC1/Call', headers: [['X-API-Key', OPEN_KEY]], read: (s) => s.routedAccount() === 'AC1', status: 400, reason: 'ambiguous_credentials' },
  { name: 'X-API-Key: <open key> beside X-Auth-ID: <locked account>', stacks: ALL, target: '/v1/x', headers: [['X-API-Key', OPEN_KEY], ['X-Auth-ID', 'AC1']], read: (s) => s.header('HTTP_X_AUTH_ID') === 'AC1', status: 400, reason: 'ambiguous_credentials' },
  // A user name beside a key in the Basic password, read by Twilio-style upstreams as the account.
  { name: 'Basic AC1:<open key> (the locked account as the user name, another account\'s key)', stacks: ALL, target: '/v1/x', headers: [['Authorization', basic('AC1', OPEN_KEY)]], read: (s) => s.basicUser() === 'AC1', status: 400, reason: 'ambiguous_credentials' },
  { name: 'Basic ac1:<open key> (the locked account in other letter case)', stacks: ALL, target: '/v1/x', headers: [['Authorization', basic('ac1', OPEN_KEY)]], read: (s) => s.basicUser() === 'ac1', status: 400, reason: 'ambiguous_credentials' },
  // Two keys in one header value: an upstream splitting it on commas (Spring's List<String>) reads the first.
  { name: 'X-API-Key: <locked key>,<open key>', stacks: ALL, target: '/v1/x', headers: [['X-API-Key', `${LOCKED_KEY},${OPEN_KEY}`]], read: (s) => String(s.header('HTTP_X_API_KEY')).split(',')[0] === LOCKED_KEY, status: 400, reason: 'ambiguous_credentials' },
  { name: 'Basic <locked key>: (the key as the user name, the password empty)', stacks: ALL, target: '/v1/x', headers: [['Authorization', basic(LOCKED_KEY, '')]], read: (s) => s.basicUser() === LOCKED_KEY, status: 401, reason: 'invalid_key' },
];

describe.each(ALL.map((kind) => ({ kind })))('API keys in front of a $kind upstream', ({ kind }) => {
  const stack = stackBypassCases({
    kind,
    start: () => startStack(kind),
    config: CONFIG,
    setup: async (gw) => {
      expect((await gw.admin('POST', '/v1/accounts/AC1/keys', { key: LOCKED_KEY, name: 'locked' })).status).toBe(201);
      expect((await gw.admin('POST', '/v1/accounts/AC1/ip-acl', { ip_address: `${OFFICE}/32` })).status).toBe(201);
      expect((await gw.admin('POST', '/v1/accounts/AC2/keys', { key: OPEN_KEY, name: 'open' })).status).toBe(201);
    },
    attacks: ATTACKS,
    readsAs: 'as the locked key',
  });

  it('reads a key in access_token as the key: checked against its account\'s list, forwarded as sent', async () => {
    const { gw, upstream } = stack;
    const fromOffice = await send(`${gw.url}/v1/x?access_token=${LOCKED_KEY}`, { localAddress: OFFICE });
    expect(fromOffice.status).toBe(200);
    expect(tokenParam('access_token')(upstream.seen().at(-1)!)).toBe(true);
    const open = await send(`${gw.url}/v1/x?bearer_token=${OPEN_KEY}`, { localAddress: STRANGER });
    expect(open.status).toBe(200);
    const unknown = await send(`${gw.url}/v1/x?access_token=sk_live_made_up_000000000000`, { localAddress: OFFICE });
    expect([unknown.status, unknown.json()['reason']]).toEqual([401, 'unknown_key']);
    // A Basic user name beside a key in the password that no account has ("api", as Mailgun asks),
    // or the key's own account, passes: only another account's name is refused (above).
    expect((await send(`${gw.url}/v1/x`, { headers: { authorization: basic('api', OPEN_KEY) }, localAddress: STRANGER })).status).toBe(200);
    expect(upstream.seen().at(-1)!.basicUser()).toBe('api');
    expect((await send(`${gw.url}/v1/x`, { headers: { authorization: basic('AC2', OPEN_KEY) }, localAddress: STRANGER })).status).toBe(200);
    expect((await send(`${gw.url}/v1/x`, { headers: { authorization: basic('AC1', LOCKED_KEY) }, localAddress: OFFICE })).status).toBe(200);
  });

  it('never writes a key from a bearer token parameter to its log', () => {
    const text = stack.gw.logs.map((line) => JSON.stringify(line)).join('\n');
    expect(text).toContain('bearer_token=[REDACTED]');
    for (const key of [LOCKED_KEY, OPEN_KEY]) expect(text).not.toContain(key);
  });
});
