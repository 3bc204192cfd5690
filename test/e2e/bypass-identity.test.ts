import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { echoGatewayAround } from '../support/gateway-around.ts';
import { send } from '../support/http.ts';
import { signedJwt } from '../unit/identity/support.ts';

/*
 * Attempts to be taken for another account, or for none, against the real gateway process.
 * LOCKED has a list that admits only OFFICE; OPEN has no list (open by default). Requests come
 * from STRANGER, so a request resolved to LOCKED is refused with 403, and one that the gateway
 * took for OPEN (or for nobody) while the upstream could read LOCKED would be a bypass. Every
 * case states the exact status and reason.
 */

const OFFICE = '127.0.0.2';
const STRANGER = '127.0.0.3';
const LOCKED = 'AC1';
const OPEN = 'AC2';

const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const now = Math.floor(Date.now() / 1000);
const jwt = (iss: string, key = keys.privateKey, alg = 'ES256'): string => signedJwt({ iss, iat: now, exp: now + 600 }, key, { alg });
const b64url = (s: string): string => Buffer.from(s).toString('base64url');
const unsigned = (iss: string): string => `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify({ iss, exp: now + 600 }))}.`;
const basic = (user: string): string => `Basic ${Buffer.from(`${user}:secret`).toString('base64')}`;

interface Case {
  readonly name: string;
  readonly path?: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly status: number;
  readonly reason?: string;
}

const CASES: readonly Case[] = [
  // The baseline: each strategy alone resolves LOCKED and is refused from STRANGER.
  { name: 'X-Auth-ID', headers: [['X-Auth-ID', LOCKED]], status: 403, reason: 'ip_not_allowed' },
  { name: 'X-Auth-ID in odd case', headers: [['x-AUTH-id', LOCKED]], status: 403, reason: 'ip_not_allowed' },
  { name: 'Basic', headers: [['Authorization', basic(LOCKED)]], status: 403, reason: 'ip_not_allowed' },
  { name: 'Basic with an odd-case scheme', headers: [['Authorization', `bAsIc ${Buffer.from(`${LOCKED}:x`).toString('base64')}`]], status: 403, reason: 'ip_not_allowed' },
  { name: 'Bearer JWT', headers: [['Authorization', `Bearer ${jwt(LOCKED)}`]], status: 403, reason: 'ip_not_allowed' },
  { name: 'query parameter', path: `/v1/x?account_id=${LOCKED}`, headers: [], status: 403, reason: 'ip_not_allowed' },
  { name: 'path template', path: `/v1/Account/${LOCKED}/Calls`, headers: [], status: 403, reason: 'ip_not_allowed' },
  { name: 'an open account passes (control)', headers: [['X-Auth-ID', OPEN]], status: 200 },

  // Two accounts in one request: refused, whatever the combination.
  { name: 'X-Auth-ID twice, different accounts', headers: [['X-Auth-ID', OPEN], ['X-Auth-ID', LOCKED]], status: 400, reason: 'ambiguous_credentials' },
  { name: 'X-Auth-ID twice, different case of the name', headers: [['X-Auth-ID', OPEN], ['x-auth-id', LOCKED]], status: 400, reason: 'ambiguous_credentials' },
  { name: 'X-Auth-ID twice, the same account', headers: [['X-Auth-ID', LOCKED], ['X-Auth-ID', LOCKED]], status: 400, reason: 'ambiguous_credentials' },
  { name: 'header vs Basic', headers: [['X-Auth-ID', OPEN], ['Authorization', basic(LOCKED)]], status: 400, reason: 'ambiguous_credentials' },
  { name: 'header vs Bearer', headers: [['X-Auth-ID', OPEN], ['Authorization', `Bearer ${jwt(LOCKED)}`]], status: 400, reason: 'ambiguous_credentials' },
  { name: 'two Authorization headers (Basic and Bearer)', headers: [['Authorization', basic(OPEN)], ['Authorization', `Bearer ${jwt(LOCKED)}`]], status: 400, reason: 'ambiguous_credentials' },
  { name: 'header vs query', path: `/v1/x?account_id=${LOCKED}`, headers: [['X-Auth-ID', OPEN]], status: 400, reason: 'ambiguous_credentials' },
  { name: 'query twice', path: `/v1/x?account_id=${OPEN}&account_id=${LOCKED}`, headers: [], status: 400, reason: 'ambiguous_credentials' },
  { name: 'header vs path', path: `/v1/Account/${LOCKED}/Calls`, headers: [['X-Auth-ID', OPEN]], status: 400, reason: 'ambiguous_credentials' },
  { name: 'Basic vs path', path: `/v1/Account/${LOCKED}/Calls`, headers: [['Authorization', basic(OPEN)]], status: 400, reason: 'ambiguous_credentials' },
  { name: 'the same account everywhere is one account', path: `/v1/Account/${LOCKED}/Calls?account_id=${LOCKED}`, headers: [['X-Auth-ID', LOCKED], ['Authorization', basic(LOCKED)]], status: 403, reason: 'ip_not_allowed' },

  // Other spellings of the same account must not read as another (open) account.
  { name: 'percent-encoded account in the query', path: '/v1/x?account_id=AC%31', headers: [], status: 403, reason: 'ip_not_allowed' },
  { name: 'percent-encoded account in the query, against a header', path: '/v1/x?account_id=AC%32', headers: [['X-Auth-ID', LOCKED]], status: 400, reason: 'ambiguous_credentials' },
  // Read as the upstream would read them (decoded, dot segments resolved): still LOCKED.
  { name: 'percent-encoded account in the path', path: '/v1/Account/AC%31/Calls', headers: [], status: 403, reason: 'ip_not_allowed' },
  { name: 'dot segments around the account in the path', path: `/v1/Account/${OPEN}/../${LOCKED}/Calls`, headers: [], status: 403, reason: 'ip_not_allowed' },
  { name: 'path template in another case', path: `/v1/account/${LOCKED}/Calls`, headers: [], status: 400, reason: 'noncanonical_path' },
  { name: 'account id with a space', headers: [['X-Auth-ID', `${LOCKED} x`]], status: 400 },

  // Broken or forged credentials: refused, never anonymous.
  { name: 'Basic with malformed base64', headers: [['Authorization', 'Basic !!!not-base64']], status: 401 },
  { name: 'Basic without a colon', headers: [['Authorization', `Basic ${Buffer.from(LOCKED).toString('base64')}`]], status: 401 },
  { name: 'Bearer that is not a JWT', headers: [['Authorization', 'Bearer abc']], status: 401, reason: 'invalid_token' },
  { name: 'JWT with alg none', headers: [['Authorization', `Bearer ${unsigned(OPEN)}`]], status: 401, reason: 'invalid_token' },
  { name: 'JWT signed by an unknown key', headers: [['Authorization', `Bearer ${jwt(OPEN, other.privateKey)}`]], status: 401, reason: 'invalid_token' },
  { name: 'JWT whose signature belongs to another token', headers: [['Authorization', `Bearer ${jwt(OPEN).split('.').slice(0, 2).join('.')}.${jwt(LOCKED).split('.')[2]}`]], status: 401, reason: 'invalid_token' },
  { name: 'a good JWT for one account with a header for another', headers: [['Authorization', `Bearer ${jwt(OPEN)}`], ['X-Auth-ID', LOCKED]], status: 400, reason: 'ambiguous_credentials' },
  { name: 'an oversized Bearer token', headers: [['Authorization', `Bearer ${'a'.repeat(12_000)}`]], status: 401, reason: 'invalid_token' },
  { name: 'headers beyond the size limit', headers: [['Authorization', `Bearer ${'a'.repeat(20_000)}`]], status: 431, reason: 'headers_too_large' },
  { name: 'no credentials at all (anonymous: deny)', headers: [], status: 401, reason: 'missing_credentials' },
];

describe('identity: no way to be taken for another account', () => {
  const stack = echoGatewayAround({
    config: (dir) => {
      const pem = join(dir, 'jwt.pem');
      writeFileSync(pem, keys.publicKey.export({ type: 'spki', format: 'pem' }));
      return [
        'identity:',
        '  strategies:',
        '    - {type: header, header: X-Auth-ID}',
        '    - {type: basic}',
        `    - {type: bearer-jwt, claim: iss, verify: {keys: [{file: ${JSON.stringify(pem)}}], algorithms: [ES256]}}`,
        '    - {type: query, param: account_id}',
        '    - {type: path, templates: ["/v1/Account/{account}/"]}',
        '  anonymous: deny',
        '',
      ].join('\n');
    },
    setup: async (gw) => {
      expect((await gw.admin('POST', `/v1/accounts/${LOCKED}/ip-acl`, { ip_address: `${OFFICE}/32` })).status).toBe(201);
    },
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const reply = await send(`${stack.gw.url}${c.path ?? '/v1/resource'}`, { headers: [['Host', 'api.example'], ...c.headers], localAddress: STRANGER });
    const body = reply.status === 200 ? {} : reply.json();
    const expected = c.reason === undefined ? { status: c.status } : { status: c.status, reason: c.reason };
    const got = c.reason === undefined ? { status: reply.status } : { status: reply.status, reason: body['reason'] };
    expect(got, c.name).toEqual(expected);
  });

  it('stayed up through all of it', async () => {
    expect(stack.gw.child.exitCode).toBeNull();
    expect((await stack.gw.admin('GET', '/healthz')).status).toBe(200);
  });
});
