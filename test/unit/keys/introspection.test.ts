import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Introspector, type IntrospectionConfig } from '../../../src/keys/introspection.ts';
import { startIntrospectionServer, type IntrospectionServer } from '../../support/introspection-server.ts';

const BASE: Omit<IntrospectionConfig, 'url'> = {
  style: 'rfc7662', tokenHeader: 'authorization', clientId: 'gw', clientSecret: 'gw-secret-123', accountField: 'sub',
  timeoutMs: 1_000, cacheSeconds: 60, negativeCacheSeconds: 10, cacheEntries: 1_000, maxConcurrent: 16, maxConcurrentPerClient: 16, onUnavailable: 'closed',
};

describe('Introspector', () => {
  let idp: IntrospectionServer;
  beforeAll(async () => {
    idp = await startIntrospectionServer('gw', 'gw-secret-123');
  });
  afterAll(async () => {
    await idp.close();
  });

  it('caches active answers for cacheSeconds, never past the token\'s exp, and inactive ones for negativeCacheSeconds', async () => {
    let now = 1_000_000_000_000;
    const introspector = new Introspector({ ...BASE, url: new URL(idp.url) }, { now: () => now });
    try {
      idp.tokens.set('t_long', { active: true, sub: 'ACME' });
      idp.tokens.set('t_short', { active: true, sub: 'ACME', exp: now / 1000 + 5 });
      expect(await introspector.lookup('t_long', 'd_long')).toEqual({ kind: 'active', account: 'ACME' });
      expect(await introspector.lookup('t_short', 'd_short')).toEqual({ kind: 'active', account: 'ACME' });
      expect(await introspector.lookup('t_none', 'd_none')).toEqual({ kind: 'inactive' });
      // Synchronous from the cache.
      expect(introspector.lookup('t_long', 'd_long')).toEqual({ kind: 'active', account: 'ACME' });
      now += 6_000;
      expect(introspector.lookup('t_long', 'd_long')).toEqual({ kind: 'active', account: 'ACME' });
      expect(introspector.lookup('t_short', 'd_short')).toBeInstanceOf(Promise);
      expect(introspector.lookup('t_none', 'd_none')).toEqual({ kind: 'inactive' });
      now += 5_000;
      expect(introspector.lookup('t_none', 'd_none')).toBeInstanceOf(Promise);
      now += 60_000;
      expect(introspector.lookup('t_long', 'd_long')).toBeInstanceOf(Promise);
    } finally {
      await introspector.close();
    }
  });

  it('bounds each client\'s share of the calls in flight: a flood of made-up tokens from one leaves slots to the others', async () => {
    const introspector = new Introspector({ ...BASE, url: new URL(idp.url), maxConcurrent: 4, maxConcurrentPerClient: 2 });
    try {
      idp.delayMs = 150;
      idp.tokens.set('t_other', { active: true, sub: 'ACME' });
      // One IPv6 host (any address of its /64) and one IPv4 address, each sending made-up tokens.
      const flood = [
        introspector.lookup('made_up_1', 'dm_1', '2001:db8::1'),
        introspector.lookup('made_up_2', 'dm_2', '2001:db8::2'),
        introspector.lookup('made_up_3', 'dm_3', '2001:db8::3'),
      ];
      const other = introspector.lookup('t_other', 'd_other', '127.0.0.7');
      const answers = await Promise.all(flood);
      expect(answers.map((a) => a.kind)).toEqual(['inactive', 'inactive', 'unavailable']);
      expect(answers[2]).toMatchObject({ refusal: { status: 503, reason: 'introspection_unavailable', message: expect.stringContaining('2001:db8::/64') } });
      expect(await other).toEqual({ kind: 'active', account: 'ACME' });
      // Once its calls are answered, the client has its share again.
      expect(await introspector.lookup('made_up_4', 'dm_4', '2001:db8::9')).toEqual({ kind: 'inactive' });
    } finally {
      idp.delayMs = 0;
      await introspector.close();
    }
  });

  it('holds at most cacheEntries answers of each kind, and at most maxConcurrent calls', async () => {
    const introspector = new Introspector({ ...BASE, url: new URL(idp.url), cacheEntries: 3, maxConcurrent: 2 });
    try {
      for (let i = 0; i < 10; i++) {
        idp.tokens.set(`t_${i}`, { active: true, sub: 'ACME' });
        await introspector.lookup(`t_${i}`, `d_${i}`);
        await introspector.lookup(`x_${i}`, `dx_${i}`);
      }
      expect(introspector.size).toEqual({ active: 3, inactive: 3 });
      idp.delayMs = 100;
      const calls = [introspector.lookup('s_1', 'ds_1'), introspector.lookup('s_2', 'ds_2'), introspector.lookup('s_3', 'ds_3')];
      const answers = await Promise.all(calls);
      expect(answers.map((a) => a.kind)).toEqual(['inactive', 'inactive', 'unavailable']);
      expect(answers[2]).toMatchObject({ refusal: { status: 503, reason: 'introspection_unavailable' }, passAnonymous: false });
    } finally {
      idp.delayMs = 0;
      await introspector.close();
    }
  });

  it('fails closed on a timeout, a refused connection and a bad answer, and never caches a failure', async () => {
    const slow = new Introspector({ ...BASE, url: new URL(idp.url), timeoutMs: 50 });
    idp.delayMs = 300;
    try {
      expect(await slow.lookup('t_slow', 'd_slow')).toMatchObject({ kind: 'unavailable', refusal: { reason: 'introspection_unavailable' } });
    } finally {
      idp.delayMs = 0;
      await slow.close();
    }
    const refused = new Introspector({ ...BASE, url: new URL('http://127.0.0.1:9/introspect'), onUnavailable: 'anonymous' });
    try {
      expect(await refused.lookup('t', 'd')).toMatchObject({ kind: 'unavailable', passAnonymous: true });
      expect(refused.size).toEqual({ active: 0, inactive: 0 });
    } finally {
      await refused.close();
    }
    const wrongClient = new Introspector({ ...BASE, url: new URL(idp.url), clientSecret: 'wrong' });
    try {
      expect(await wrongClient.lookup('t', 'd')).toMatchObject({ kind: 'unavailable', refusal: { message: expect.stringContaining('answered 401') } });
    } finally {
      await wrongClient.close();
    }
  });

  it('speaks the simple lookup style: GET with the token in a header, 404 for an unknown token', async () => {
    const seen: (string | undefined)[] = [];
    const server = createServer((req, res) => {
      seen.push(String(req.headers['x-token']));
      const known = req.method === 'GET' && req.headers['x-token'] === 'tok_ok';
      res.writeHead(known ? 200 : 404, { 'content-type': 'application/json' });
      res.end(known ? JSON.stringify({ owner: { account: 'ACME' } }) : '{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/whose-key`);
    const introspector = new Introspector({ ...BASE, url, style: 'lookup', tokenHeader: 'x-token', accountField: 'owner.account' });
    try {
      expect(await introspector.lookup('tok_ok', 'd1')).toEqual({ kind: 'active', account: 'ACME' });
      expect(await introspector.lookup('tok_no', 'd2')).toEqual({ kind: 'inactive' });
      expect(seen).toEqual(['tok_ok', 'tok_no']);
    } finally {
      await introspector.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
