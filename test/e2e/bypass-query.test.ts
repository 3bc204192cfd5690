import { describe, expect, it } from 'vitest';
import { echoGatewayAround } from '../support/gateway-around.ts';
import type { GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { unsignedJwt } from '../unit/identity/support.ts';

/*
 * Query-parameter aliases with the query strategy on (and the header strategy beside it):
 * every spelling that PHP, Rack, qs, ASP.NET or an old Python would read as account_id must be
 * what the gateway checked, or refused. LOCKED admits OFFICE only; callers come from STRANGER,
 * anonymous callers pass. A bypass shows up as a 200 where a refusal was due.
 */

const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';
const LOCKED = 'AC1';
const OPEN = 'AC2';

interface Case {
  readonly name: string;
  readonly query: string;
  readonly headers?: readonly (readonly [string, string])[];
  readonly method?: string;
  readonly body?: string;
  readonly status: number;
  readonly reason?: string;
}

const alias = (query: string, name = `?${query}`): Case => ({ name, query, status: 400, reason: 'ambiguous_credentials' });
/** A POST whose body a framework could parse into parameters (the gateway does not read bodies). */
const body = (contentType: string | null, payload: string, name = `a body of Content-Type ${JSON.stringify(contentType)}`): Case => ({
  name, query: `account_id=${OPEN}`, method: 'POST', headers: contentType === null ? [] : [['Content-Type', contentType]], body: payload, status: 400, reason: 'ambiguous_credentials',
});
const FORM = `account_id=${LOCKED}`;
const MULTIPART = `--b\r\nContent-Disposition: form-data; name="account_id"\r\n\r\n${LOCKED}\r\n--b--\r\n`;
const JSON_BODY = `{"account_id":"${LOCKED}"}`;
const token = (iss: string): string => unsignedJwt({ iss });

const CASES: readonly Case[] = [
  { name: 'the parameter itself (control)', query: `account_id=${LOCKED}`, status: 403, reason: 'ip_not_allowed' },
  { name: 'the parameter in another case is read as it', query: `Account_ID=${LOCKED}`, status: 403, reason: 'ip_not_allowed' },
  { name: 'the parameter with an escaped name is read as it', query: `account%5Fid=${LOCKED}`, status: 403, reason: 'ip_not_allowed' },
  { name: 'an escaped value is read decoded', query: 'account_id=AC%31', status: 403, reason: 'ip_not_allowed' },
  { name: 'an open account (control)', query: `account_id=${OPEN}`, status: 200 },
  alias(`x=1;account_id=${LOCKED}`),
  alias(`account_id=${OPEN};account_id=${LOCKED}`),
  alias(`account_id=${OPEN}&x=1;y=2`),
  alias(`account_id[]=${LOCKED}`),
  alias(`account_id[0]=${LOCKED}`),
  alias(`account_id[a][b]=${LOCKED}`),
  alias(`account_id%5B%5D=${LOCKED}`),
  alias(`account_id%5b0%5d=${LOCKED}`),
  alias(`account.id=${LOCKED}`),
  alias(`account%2Eid=${LOCKED}`),
  alias(`ACCOUNT.ID=${LOCKED}`),
  alias(`account+id=${LOCKED}`),
  alias(`account%20id=${LOCKED}`),
  alias(`account[id=${LOCKED}`),
  alias(`%20account_id=${LOCKED}`),
  alias(`+account_id=${LOCKED}`),
  alias(`account_id%00x=${LOCKED}`),
  alias(`account_id%00=${LOCKED}`),
  alias(`account_%C4%B1d=${LOCKED}`, '?account_ıd (dotless i)'),
  alias(`account_%C4%B0d=${LOCKED}`, '?account_İd (dotted capital I)'),
  alias(`account_id=${OPEN}&account_id[]=${LOCKED}`),
  alias(`account.id=${LOCKED}&account_id=${OPEN}`),
  alias(`x=1&account.id=${LOCKED}`),
  { name: 'an alias beside the header naming the open account', query: `account.id=${LOCKED}`, headers: [['X-Auth-ID', OPEN]], status: 400, reason: 'ambiguous_credentials' },
  { name: 'a fragment hiding the parameter from the gateway', query: `x=1#&account_id=${LOCKED}`, status: 400, reason: 'invalid_request_target' },
  { name: 'a cookie named like the parameter', query: 'x=1', headers: [['Cookie', `session=s; account_id=${LOCKED}`]], status: 400, reason: 'ambiguous_credentials' },
  { name: 'a cookie named like a PHP alias of the parameter', query: 'x=1', headers: [['Cookie', `account.id=${LOCKED}`]], status: 400, reason: 'ambiguous_credentials' },
  { name: 'a form body, which frameworks merge with the query', query: 'x=1', method: 'POST', headers: [['Content-Type', 'application/x-www-form-urlencoded']], body: `account_id=${LOCKED}`, status: 400, reason: 'ambiguous_credentials' },
  { name: 'a multipart form body', query: 'x=1', method: 'POST', headers: [['Content-Type', 'multipart/form-data; boundary=b']], body: `--b\r\nContent-Disposition: form-data; name="account_id"\r\n\r\n${LOCKED}\r\n--b--\r\n`, status: 400, reason: 'ambiguous_credentials' },
  // Content-Type read as PHP (media type up to ';', ',' or a space) and Rack (up to ';' or ',') read it.
  body('application/x-www-form-urlencoded,', FORM),
  body('application/x-www-form-urlencoded x', FORM),
  body('application/x-www-form-urlencoded\tx', FORM),
  body(' APPLICATION/X-WWW-FORM-URLENCODED ; charset=utf-8', FORM),
  body('application/x-www-form-urlencoded,text/plain', FORM),
  body('multipart/form-data, boundary=b', MULTIPART),
  body('multipart/form-data boundary=b', MULTIPART),
  body('multipart/mixed; boundary=b', MULTIPART),
  body(null, FORM, 'a POST body without Content-Type (Rack reads it as a form)'),
  body('', FORM, 'a POST body with an empty Content-Type'),
  // JSON bodies: Rails params and Laravel's input() merge them with the query.
  body('application/json', JSON_BODY),
  body('application/json; charset=utf-8', JSON_BODY),
  body('application/vnd.api+json', JSON_BODY),
  body('text/x-json', JSON_BODY),
  body('application/jsonrequest', JSON_BODY),
  body('application/json,', JSON_BODY),
  body('*/*', JSON_BODY, 'a body of a media range (*/*)'),
  { name: 'a text body passes (no framework merges it)', query: `account_id=${OPEN}`, method: 'POST', headers: [['Content-Type', 'text/plain']], body: FORM, status: 200 },
  { name: 'a GET without a body and without Content-Type passes', query: `account_id=${OPEN}`, method: 'GET', status: 200 },
  // Rack 2 and qs read a name through leading brackets and up to the next bracket.
  alias(`[account_id]=${LOCKED}`),
  alias(`account_id]=${LOCKED}`),
  alias(`]account_id=${LOCKED}`),
  alias(`[[account_id=${LOCKED}`),
  alias(`[]account_id=${LOCKED}`),
  alias(`%5Baccount_id%5D=${LOCKED}`),
  alias(`%5baccount_id=${LOCKED}`),
  alias(`]]account_id]]=${LOCKED}`),
  alias(`[account_id][x]=${LOCKED}`),
  alias(`account_id]x=${LOCKED}`),
  alias(`!account_id=${LOCKED}`, '?!account_id (Spring\'s default marker)'),
  { name: '?account%u005Fid (IIS decodes %u escapes) is read as the parameter', query: `account%u005Fid=${LOCKED}`, status: 403, reason: 'ip_not_allowed' },
  alias(`account_id=${OPEN}&account%u005Fid=${LOCKED}`, '?account%u005Fid beside the parameter'),
  alias(`account_id=${OPEN}&[account_id]=${LOCKED}`),
  { name: 'names that only contain the parameter inside brackets pass', query: `x[account_id]=${LOCKED}&x]account_id=${LOCKED}`, status: 200 },
  // Bearer tokens in the query (RFC 6750 §2.3) are read like the Authorization header's.
  { name: '?access_token=<token for the locked account>', query: `access_token=${token(LOCKED)}`, status: 403, reason: 'ip_not_allowed' },
  { name: '?bearer_token=<token for the locked account>', query: `bearer_token=${token(LOCKED)}`, status: 403, reason: 'ip_not_allowed' },
  { name: '?Access_Token=<token for the locked account>', query: `Access_Token=${token(LOCKED)}`, status: 403, reason: 'ip_not_allowed' },
  { name: '?access_token=<token for the open account> (control)', query: `access_token=${token(OPEN)}`, status: 200 },
  { name: 'a query token for the locked account beside the open account\'s id', query: `account_id=${OPEN}&access_token=${token(LOCKED)}`, status: 400, reason: 'ambiguous_credentials' },
  { name: 'a query token beside an Authorization token for another account', query: `access_token=${token(LOCKED)}`, headers: [['Authorization', `Bearer ${token(OPEN)}`]], status: 400, reason: 'ambiguous_credentials' },
  alias(`access_token[]=${token(LOCKED)}`),
  alias(`[access_token]=${token(LOCKED)}`),
  alias(`access.token=${token(LOCKED)}`),
  alias(`access_token=${token(OPEN)}&access_token=${token(LOCKED)}`, '?access_token twice'),
  { name: '?access_token that is no token', query: 'access_token=abc', status: 401, reason: 'invalid_token' },
  { name: 'an escaped semicolon is a value, not a separator', query: `x=%3B&account_id=${OPEN}`, status: 200 },
  { name: 'a semicolon inside the account id value is no valid id', query: `account_id=${LOCKED}%3Bx`, status: 400, reason: 'invalid_account' },
  { name: 'names no framework folds into the parameter pass as other parameters', query: `account-id=${LOCKED}&accountid=${LOCKED}&account_idx=${LOCKED}&my.account_id=${LOCKED}`, status: 200 },
];

const lockOffice = async (gw: GatewayProcess): Promise<void> => {
  expect((await gw.admin('POST', `/v1/accounts/${LOCKED}/ip-acl`, { ip_address: `${OFFICE}/32` })).status).toBe(201);
};
const stack = echoGatewayAround({
  config: 'identity:\n  strategies:\n    - {type: header, header: X-Auth-ID}\n    - {type: bearer-jwt}\n    - {type: query, param: account_id}\n',
  setup: lockOffice,
});

describe('query strategy: no parameter spelling reads as another account upstream', () => {
  let n = 0;
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const path = `/q/${n++}`;
    const reply = await send(stack.gw.url, {
      target: `${path}?${c.query}`,
      method: c.method ?? 'GET',
      headers: [['Host', 'api.example'], ...(c.headers ?? [])],
      ...(c.body === undefined ? {} : { body: c.body }),
      localAddress: STRANGER,
    });
    const body = reply.status === 200 ? {} : reply.json();
    expect({ status: reply.status, reason: body['reason'] }, c.name).toEqual({ status: c.status, reason: c.reason });
    const seen = stack.upstream.seen.find((r) => r.url.startsWith(`${path}?`));
    if (c.status === 200) expect(seen?.url, `${c.name}: the target arrives as sent`).toBe(`${path}?${c.query}`);
    else expect(seen, `${c.name}: reached the upstream`).toBeUndefined();
  });
});

describe('identity.formBodies and jsonBodies: pass', () => {
  const lenient = stack.also('identity:\n  formBodies: pass\n  jsonBodies: pass\n  strategies:\n    - {type: query, param: account_id}\n');
  it('let form and JSON bodies through when the deployment says its upstream does not merge them', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'application/json']) {
      const reply = await send(`${lenient.gw.url}/form?account_id=${OPEN}`, { method: 'POST', headers: [['Host', 'api.example'], ['Content-Type', type]], body: 'a=1', localAddress: STRANGER });
      expect(reply.status, reply.body).toBe(200);
    }
  });
});

describe('bearer-jwt alone: a token in the query or a form body is a credential too', () => {
  const bearerOnly = stack.also('identity:\n  strategies:\n    - {type: bearer-jwt}\n', lockOffice);

  const BEARER: readonly Case[] = [
    { name: '?access_token for the locked account', query: `access_token=${token(LOCKED)}`, status: 403, reason: 'ip_not_allowed' },
    { name: '?bearer_token for the locked account', query: `bearer_token=${token(LOCKED)}`, status: 403, reason: 'ip_not_allowed' },
    alias(`access_token]=${token(LOCKED)}`),
    { name: 'a form body with access_token and no Authorization', query: 'x=1', method: 'POST', headers: [['Content-Type', 'application/x-www-form-urlencoded']], body: `access_token=${token(LOCKED)}`, status: 400, reason: 'ambiguous_credentials' },
    { name: 'a multipart body with bearer_token and no Authorization', query: 'x=1', method: 'POST', headers: [['Content-Type', 'multipart/form-data, boundary=b']], body: `--b\r\nContent-Disposition: form-data; name="bearer_token"\r\n\r\n${token(LOCKED)}\r\n--b--\r\n`, status: 400, reason: 'ambiguous_credentials' },
    { name: 'a cookie named access_token', query: 'x=1', headers: [['Cookie', `access_token=${token(LOCKED)}`]], status: 400, reason: 'ambiguous_credentials' },
    // Token libraries read Authorization first (Doorkeeper, oauthlib, passport-http-bearer): a form beside it is no second token.
    { name: 'a form body beside Authorization: Bearer', query: 'x=1', method: 'POST', headers: [['Authorization', `Bearer ${token(OPEN)}`], ['Content-Type', 'application/x-www-form-urlencoded']], body: 'a=1', status: 200 },
    { name: 'no token anywhere (anonymous pass)', query: 'x=1', status: 200 },
  ];
  let n = 0;
  it.each(BEARER.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const path = `/bearer/${n++}`;
    const reply = await send(bearerOnly.gw.url, { target: `${path}?${c.query}`, method: c.method ?? 'GET', headers: [['Host', 'api.example'], ...(c.headers ?? [])], ...(c.body === undefined ? {} : { body: c.body }), localAddress: STRANGER });
    const body = reply.status === 200 ? {} : reply.json();
    expect({ status: reply.status, reason: body['reason'] }, c.name).toEqual({ status: c.status, reason: c.reason });
    const seen = stack.upstream.seen.find((r) => r.url.startsWith(`${path}?`));
    if (c.status === 200) expect(seen?.url).toBe(`${path}?${c.query}`);
    else expect(seen, `${c.name}: reached the upstream`).toBeUndefined();
  });
});
