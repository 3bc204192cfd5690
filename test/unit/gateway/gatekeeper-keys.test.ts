import { ok } from '../../../src/http/refusal.ts';
import { describe, expect, it } from 'vitest';
import { compileClientIpResolver, compileTrustedPeerCheck } from '../../../src/client-ip/resolve.ts';
import type { AnonymousPolicy } from '../../../src/config/types.ts';
import { compileAddressClaims } from '../../../src/gateway/address-claims.ts';
import { Gatekeeper, type Checked } from '../../../src/gateway/gatekeeper.ts';
import { compileRequestScreen } from '../../../src/gateway/request-screen.ts';
import { compileIdentityResolver, credentialHeaders } from '../../../src/identity/resolve.ts';
import type { ApiKeyStrategy, StrategyConfig } from '../../../src/identity/types.ts';
import { refusal } from '../../../src/http/refusal.ts';
import { addEntry } from '../../../src/acl/changes.ts';
import { KeyDigester } from '../../../src/list/key-digest.ts';
import { keyListId } from '../../../src/list/key-list-id.ts';
import { addKey } from '../../../src/acl/key-changes.ts';
import { KeyResolver, type KeyLookup } from '../../../src/keys/resolver.ts';
import { PolicyCache } from '../../../src/policy/cache.ts';
import { PolicyResolver } from '../../../src/policy/resolve.ts';
import { MemoryStore } from '../../../src/store/memory-store.ts';
import type { AccountNaming } from '../../../src/policy/account-names.ts';

const digester = new KeyDigester(Buffer.from('gatekeeper-test-secret-0123456789'));
const KEY = 'sk_live_gatekeeper_0123456789';
const CTX = { policy: { maxEntries: 50, ipv4Only: false, refused: [] }, now: '2026-01-01T00:00:00.000Z' };
const entry = (cidr: string) => ({ ipAddress: { input: cidr, cidrs: [cidr] } });

async function gatekeeper(options: { unknown?: ApiKeyStrategy['unknown']; anonymous?: AnonymousPolicy; keys?: { resolve(key: string): KeyLookup | Promise<KeyLookup> } | null; basic?: ApiKeyStrategy['basic']; accountName?: AccountNaming } = {}) {
  const store = new MemoryStore();
  await store.update('ACME', addEntry('ACME', 'e1', entry('198.51.100.0/24'), CTX));
  await store.update('ACME', addEntry('ACME', 'e2', entry('203.0.113.0/24'), CTX));
  await store.update('ACME', addKey('ACME', { id: 'key_ci', name: 'ci', hash: 'hmac-sha256', digest: digester.hmac(KEY), enabled: true, createdAt: CTX.now, updatedAt: CTX.now }, 10));
  const ciList = keyListId('ACME', 'key_ci');
  await store.update(ciList, addEntry(ciList, 'k1', entry('203.0.113.0/24'), CTX));
  const cache = new PolicyCache(store);
  const strategies: StrategyConfig[] = [{ type: 'header', header: 'x-auth-id' }, { type: 'api-key', header: 'x-api-key', bearer: true, basic: options.basic ?? 'off', query: null, unknown: options.unknown ?? 'refuse' }];
  const clientIp = { trust: { mode: 'none' }, source: 'x-forwarded-for', maxEntries: 32 } as const;
  const gate = new Gatekeeper({
    screen: compileRequestScreen({ credentialHeaders: credentialHeaders(strategies), underscores: 'pass' }),
    clientIp: compileClientIpResolver(clientIp),
    addressClaims: compileAddressClaims(clientIp.source, []),
    identity: compileIdentityResolver(strategies),
    accountName: options.accountName ?? ok,
    isExempt: () => false,
    trustedCaller: compileTrustedPeerCheck(clientIp.trust),
    policy: new PolicyResolver(cache, { mode: 'enforce', default: 'open' }),
    keys: options.keys === undefined ? new KeyResolver(digester, store, cache) : options.keys,
    defaults: { mode: 'enforce', default: 'open' },
    anonymous: options.anonymous ?? 'pass',
    onStoreUnavailable: 'closed',
  });
  return (from: string, ...headers: string[]): Promise<Checked> => Promise.resolve(gate.check({ url: '/v1/x', rawHeaders: headers, remoteAddress: from }));
}

describe('the Gatekeeper with API keys', () => {
  it('refuses a key holding what no key holds, with a registry or without one, naming where it came', async () => {
    for (const keys of [undefined, null]) {
      const check = await gatekeeper(keys === null ? { keys, unknown: 'anonymous' } : { unknown: 'anonymous' });
      for (const bad of ['sk live', 'sk_\u00e9', '']) {
        const refused = await check('203.0.113.7', 'X-API-Key', bad);
        expect(refused, `${keys === null ? 'no registry' : 'registry'} ${JSON.stringify(bad)}`).toMatchObject({ verdict: 'deny', reason: 'invalid_key', refusal: { status: 401 } });
        expect(refused.refusal?.message).toContain('the x-api-key header');
      }
      // A key that can be one is looked up: unknown, passed as anonymous as configured.
      expect(await check('203.0.113.7', 'X-API-Key', 'sk_made_up_0123456789')).toMatchObject({ verdict: 'anonymous' });
    }
  });

  it('checks the account\'s list and the key\'s own, and says which refused', async () => {
    const check = await gatekeeper();
    expect(await check('203.0.113.7', 'X-API-Key', KEY)).toMatchObject({ account: 'ACME', keyId: 'key_ci', verdict: 'allow', reason: 'ip_allowed' });
    const office = await check('198.51.100.7', 'X-API-Key', KEY);
    expect(office).toMatchObject({ account: 'ACME', keyId: 'key_ci', verdict: 'deny', reason: 'ip_not_allowed_for_key', refusal: { status: 403 } });
    expect(office.refusal?.message).toBe('IP address 198.51.100.7 is not allowed for key key_ci of account ACME');
    expect(await check('192.0.2.1', 'X-API-Key', KEY)).toMatchObject({ verdict: 'deny', reason: 'ip_not_allowed', keyId: 'key_ci' });
    // Another credential naming the same account is fine; another account is ambiguous.
    expect(await check('203.0.113.7', 'X-API-Key', KEY, 'X-Auth-ID', 'ACME')).toMatchObject({ verdict: 'allow' });
    expect(await check('203.0.113.7', 'X-API-Key', KEY, 'X-Auth-ID', 'OTHER')).toMatchObject({ verdict: 'deny', reason: 'ambiguous_credentials', refusal: { status: 400 } });
  });

  it('refuses an unknown key, or (unknown: anonymous) goes on without it', async () => {
    const refusing = await gatekeeper();
    expect(await refusing('203.0.113.7', 'X-API-Key', 'sk_live_unknown_0000000000')).toMatchObject({ verdict: 'deny', reason: 'unknown_key', refusal: { status: 401 } });
    const passing = await gatekeeper({ unknown: 'anonymous' });
    expect(await passing('203.0.113.7', 'X-API-Key', 'sk_live_unknown_0000000000')).toMatchObject({ verdict: 'anonymous', reason: 'no_credentials', keyId: null });
    // The other credentials still count: X-Auth-ID names the account whose list applies.
    expect(await passing('192.0.2.1', 'X-API-Key', 'sk_live_unknown_0000000000', 'X-Auth-ID', 'ACME')).toMatchObject({ verdict: 'deny', reason: 'ip_not_allowed', account: 'ACME' });
    const denying = await gatekeeper({ unknown: 'anonymous', anonymous: 'deny' });
    expect(await denying('203.0.113.7', 'X-API-Key', 'sk_live_unknown_0000000000')).toMatchObject({ verdict: 'deny', reason: 'missing_credentials' });
  });

  it('fails closed when a key cannot be looked up, and passes what introspection cannot check only when told to', async () => {
    const down = await gatekeeper({ keys: { resolve: () => Promise.reject(new Error('store down')) } });
    expect(await down('203.0.113.7', 'X-API-Key', KEY)).toMatchObject({ verdict: 'error', reason: 'store_unavailable', refusal: { status: 503 } });
    const unchecked = await gatekeeper({ keys: { resolve: () => ({ kind: 'unchecked', refusal: refusal(503, 'introspection_unavailable', 'x') }) } });
    expect(await unchecked('203.0.113.7', 'X-API-Key', KEY)).toMatchObject({ verdict: 'anonymous', reason: 'introspection_unavailable' });
    const refused = await gatekeeper({ keys: { resolve: () => ({ kind: 'refused', refusal: refusal(503, 'introspection_unavailable', 'x') }) } });
    expect(await refused('203.0.113.7', 'X-API-Key', KEY)).toMatchObject({ verdict: 'deny', reason: 'introspection_unavailable', refusal: { status: 503 } });
    // An introspected token names an account: its list applies, there is no key list.
    const introspected = await gatekeeper({ keys: { resolve: () => ({ kind: 'introspected', account: 'ACME' }) } });
    expect(await introspected('198.51.100.7', 'X-API-Key', 'tok_from_the_idp_0123')).toMatchObject({ verdict: 'allow', account: 'ACME', keyId: null });
    expect(await introspected('192.0.2.1', 'X-API-Key', 'tok_from_the_idp_0123')).toMatchObject({ verdict: 'deny', reason: 'ip_not_allowed' });
  });

  it('refuses a Basic user name beside a key that is another account, and says so only when the gateway can tell', async () => {
    const basic = (user: string): string => `Basic ${Buffer.from(`${user}:${KEY}`).toString('base64')}`;
    const check = await gatekeeper({ basic: 'password' });
    // OTHER has no record: the upstream's business (Mailgun's api:key); ACME is the key's own.
    expect(await check('203.0.113.7', 'Authorization', basic('api'))).toMatchObject({ verdict: 'allow', account: 'ACME' });
    expect(await check('203.0.113.7', 'Authorization', basic('ACME'))).toMatchObject({ verdict: 'allow', account: 'ACME' });
    // While the account index cannot tell (503), that refusal, not a verdict on the name.
    const loading = await gatekeeper({ basic: 'password', accountName: (id) => (id === 'ACME' ? ok(id) : { ok: false, refusal: refusal(503, 'account_index_loading', 'x') }) });
    expect(await loading('203.0.113.7', 'Authorization', basic('someone'))).toMatchObject({ verdict: 'deny', reason: 'account_index_loading', refusal: { status: 503 } });
    // A spelling the account rules refuse: the upstream could read it as that account.
    const caseless = await gatekeeper({ basic: 'password', accountName: (id) => (id === 'ACME' ? ok(id) : { ok: false, refusal: refusal(400, 'ambiguous_account', 'x') }) });
    expect(await caseless('203.0.113.7', 'Authorization', basic('acme2'))).toMatchObject({ verdict: 'deny', reason: 'ambiguous_credentials', refusal: { status: 400 } });
  });
});
