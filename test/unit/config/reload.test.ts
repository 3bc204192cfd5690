import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.ts';
import { planReload } from '../../../src/config/reload.ts';
import { scratchDir } from '../../support/scratch.ts';

const TOKEN = 'reload-test-token-0123456789';
const SECRET = 'reload-test-key-secret-0123456789abcdef';
const dir = scratchDir();
writeFileSync(join(dir.path, 'allowgate.yaml'), '# no settings: the environment gives them\n');
const load = (env: Record<string, string>) => loadConfig({ argv: [], env: { ALLOWGATE_ADMIN_TOKEN: TOKEN, ALLOWGATE_CONFIG: join(dir.path, 'allowgate.yaml'), ...env } });

afterAll(() => dir.remove());

describe('planReload and the key secret', () => {
  it('sees no change in a secret the gateway generated for itself, on the memory store or beside the file store', () => {
    expect(planReload(load({ ALLOWGATE_STORE: 'memory' }), load({ ALLOWGATE_STORE: 'memory' }))).toEqual({ applied: [], restart: [] });
    const store = { ALLOWGATE_STORE: `file:${join(dir.path, 'store.json')}` };
    const first = load(store);
    expect(first.keys.secretSource).toBe('generated');
    const again = load(store);
    expect(again.keys.secretSource).toBe('file');
    expect(planReload(first, again)).toEqual({ applied: [], restart: [] });
  });

  it('says a changed configured secret needs a restart (every stored digest was made with the running one)', () => {
    const running = load({ ALLOWGATE_STORE: 'memory', ALLOWGATE_KEY_SECRET: SECRET });
    expect(planReload(running, load({ ALLOWGATE_STORE: 'memory', ALLOWGATE_KEY_SECRET: SECRET }))).toEqual({ applied: [], restart: [] });
    expect(planReload(running, load({ ALLOWGATE_STORE: 'memory', ALLOWGATE_KEY_SECRET: `${SECRET}-new` }))).toEqual({ applied: [], restart: ['keys.secret'] });
    expect(planReload(running, load({ ALLOWGATE_STORE: 'memory' }))).toEqual({ applied: [], restart: ['keys.secret'] });
  });
});
