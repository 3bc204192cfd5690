import { describe, expect, it } from 'vitest';
import { ExpirySweeper } from '../../../src/acl/expiry-sweeper.ts';
import { startAdminApi } from '../../support/admin-api.ts';

describe('ExpirySweeper', () => {
  it('removes expired entries, audits each removal, and leaves other accounts alone', async () => {
    let now = new Date('2026-06-01T12:00:00Z');
    const api = await startAdminApi({ now: () => now });
    try {
      await api.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '20.0.0.0/24' });
      await api.call('POST', '/v1/accounts/AC1/ip-acl', { ip_address: '20.0.1.0/24', expires_at: '2026-06-01T12:10:00Z' });
      await api.call('POST', '/v1/accounts/AC2/ip-acl', { ip_address: '20.0.2.0/24', expires_at: '2026-06-01T13:00:00Z' });
      const sweeper = new ExpirySweeper(api.service);
      expect(await sweeper.sweep()).toBe(0);
      now = new Date('2026-06-01T12:30:00Z');
      expect(await sweeper.sweep()).toBe(1);
      expect((await api.store.read('AC1'))?.entries.map((e) => e.ipAddress)).toEqual(['20.0.0.0/24']);
      expect((await api.store.read('AC2'))?.entries).toHaveLength(1);
      const page = await api.audit.list({ account: 'AC1', limit: 1 });
      expect(page.events[0]).toMatchObject({ action: 'entry.expire', actor: { name: 'expiry' }, via: 'expiry', before: [{ ip_address: '20.0.1.0/24' }], after: [] });
      expect(await sweeper.sweep()).toBe(0);
      await sweeper.stop();
    } finally {
      await api.close();
    }
  });
});
