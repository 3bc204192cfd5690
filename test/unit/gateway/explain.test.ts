import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.ts';
import { parseIp } from '../../../src/ip/address.ts';
import { explain } from '../../../src/gateway/explain.ts';
import { gatekeeperFromConfig, type GatekeeperSettings } from '../../../src/gateway/from-config.ts';
import { MAX_PARENT_DEPTH } from '../../../src/list/inherit.ts';
import { GLOBAL_ACCOUNT, type AccountSettings, type AclEntry } from '../../../src/list/types.ts';
import { PolicyCache } from '../../../src/policy/cache.ts';
import { PolicyResolver } from '../../../src/policy/resolve.ts';
import { MemoryStore } from '../../../src/store/memory-store.ts';

// The shipped defaults (an empty configuration file), with the lists in memory.
const dir = mkdtempSync(join(tmpdir(), 'allowgate-explain-'));
writeFileSync(join(dir, 'allowgate.yaml'), '{}\n');
const SETTINGS: GatekeeperSettings = loadConfig({ argv: ['--config', join(dir, 'allowgate.yaml')], env: { ALLOWGATE_ADMIN_TOKEN: 'a-long-enough-admin-token', ALLOWGATE_STORE: 'memory' } });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function entry(id: string, cidr: string, action: 'allow' | 'deny' = 'allow'): AclEntry {
  return { id, ipAddress: cidr, cidrs: [cidr], action, description: '', enabled: true, createdAt: 'x', updatedAt: 'x' };
}

async function put(store: MemoryStore, account: string, entries: AclEntry[], settings: AccountSettings = {}): Promise<void> {
  expect((await store.update(account, () => ({ ok: true, draft: { account, settings, entries } }))).ok).toBe(true);
}

describe('explain: the admin check reports the Gatekeeper\'s own conclusion', () => {
  it('agrees with a request\'s verdict, reason and entry for the same account and address', async () => {
    const store = new MemoryStore();
    await put(store, GLOBAL_ACCOUNT, [entry('g1', '198.51.100.0/24', 'deny')]);
    await put(store, 'AC1', [entry('e1', '203.0.113.0/24'), entry('e2', '203.0.113.7/32', 'deny')]);
    await put(store, 'SUB', [], { parent: 'AC1' });
    const cache = new PolicyCache(store, Date.now, { maxEntries: 100, maxBytes: 1 << 20, maxNegativeEntries: 100 });
    const gatekeeper = gatekeeperFromConfig(SETTINGS, new PolicyResolver(cache, SETTINGS.policy));
    const cases: [string, string][] = [['AC1', '203.0.113.5'], ['AC1', '203.0.113.7'], ['AC1', '192.0.2.1'], ['AC1', '198.51.100.9'], ['SUB', '203.0.113.5'], ['NOLIST', '192.0.2.1']];
    for (const [account, address] of cases) {
      const ip = parseIp(address)!;
      const explained = await explain(gatekeeper, account, ip);
      const checked = await gatekeeper.check({ url: '/', rawHeaders: ['X-Auth-ID', account], remoteAddress: address });
      expect({ decision: explained.decision, reason: explained.reason, entry: explained.matched?.id ?? null }, `${account} from ${address}`)
        .toEqual({ decision: checked.verdict, reason: checked.reason, entry: checked.entryId });
    }
    expect(await explain(gatekeeper, 'AC1', parseIp('203.0.113.7')!)).toEqual({ decision: 'deny', reason: 'ip_denied', matched: { id: 'e2', cidr: '203.0.113.7/32', action: 'deny', list: 'account' }, listState: 'active' });
    expect((await explain(gatekeeper, 'SUB', parseIp('203.0.113.5')!)).matched).toEqual({ id: 'e1', cidr: '203.0.113.0/24', action: 'allow', list: 'parent' });
    cache.close();
  });

  it('a parent chain too deep is the same error on both', async () => {
    const store = new MemoryStore();
    for (let i = 0; i <= MAX_PARENT_DEPTH + 1; i++) await put(store, `A${i}`, [], i === MAX_PARENT_DEPTH + 1 ? {} : { parent: `A${i + 1}` });
    const cache = new PolicyCache(store, Date.now, { maxEntries: 100, maxBytes: 1 << 20, maxNegativeEntries: 100 });
    const gatekeeper = gatekeeperFromConfig(SETTINGS, new PolicyResolver(cache, SETTINGS.policy));
    const explained = await explain(gatekeeper, 'A0', parseIp('192.0.2.1')!);
    const checked = await gatekeeper.check({ url: '/', rawHeaders: ['X-Auth-ID', 'A0'], remoteAddress: '192.0.2.1' });
    expect(explained).toEqual({ decision: 'error', reason: 'policy_error', matched: null, listState: null });
    expect([checked.verdict, checked.reason]).toEqual(['error', 'policy_error']);
    cache.close();
  });
});
