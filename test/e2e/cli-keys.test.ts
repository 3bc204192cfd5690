import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type Run } from '../support/cli-run.ts';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { ADMIN_TOKEN, startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send, type Reply } from '../support/http.ts';
import { scratchDir } from '../support/scratch.ts';

/*
 * `allowgate keys ...` against the real gateway process (memory store, the api-key strategy on
 * X-API-Key): an operator registers an account's keys, restricts one to the CI range, finds the
 * keys open to every address, and manages each key's own list with the same commands as an
 * account's. Every step is checked on the proxy too, from distinct loopback addresses.
 */

const OFFICE = '127.0.0.2';
const CI = '127.0.0.3';
const STRANGER = '127.0.0.4';
const CI_KEY = 'sk_live_cli_ci_Zq8Wm2Xr5Tn7';
const OFFICE_KEY = 'sk_live_cli_office_Hb4Kp9Lc3Vd6';
const OPEN_KEY = 'sk_live_cli_open_Yf5Gj8Nu2Ra4';

interface Key {
  id: string;
  name: string;
  fingerprint: string;
  enabled: boolean;
  list_state: string;
}

describe('allowgate keys: API keys and their lists from the command line', () => {
  const dir = scratchDir();
  let upstream: EchoUpstream;
  let gw: GatewayProcess;
  let cli: (args: readonly string[], input?: string) => Promise<Run>;
  const ok = async (...args: string[]): Promise<string> => {
    const result = await cli(args);
    expect(result.stderr, args.join(' ')).toBe('');
    expect(result.code, args.join(' ')).toBe(0);
    return result.stdout;
  };
  const call = (from: string, key: string): Promise<Reply> => send(`${gw.url}/v1/messages`, { headers: { 'X-API-Key': key }, localAddress: from });
  const outcome = async (from: string, key: string): Promise<[number, string | undefined]> => {
    const reply = await call(from, key);
    return [reply.status, reply.status === 200 ? undefined : reply.json<{ reason: string }>().reason];
  };
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    upstream = await startEchoUpstream();
    writeFileSync(join(dir.path, 'allowgate.yaml'), 'identity:\n  strategies:\n    - type: header\n      header: X-Auth-ID\n    - type: api-key\n      header: X-API-Key\n');
    gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_CONFIG: join(dir.path, 'allowgate.yaml') } });
    cli = (args, input) => runCli(args, { ALLOWGATE_ADMIN_URL: gw.adminUrl, ALLOWGATE_ADMIN_TOKEN: ADMIN_TOKEN }, dir.path, input);
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
    dir.remove();
  });

  it('registers keys from a file, from standard input and by hash, and never prints a key', async () => {
    writeFileSync(join(dir.path, 'ci.key'), `${CI_KEY}\n`);
    const added = await ok('keys', 'add', 'ACME', '--key-file', 'ci.key', '--name', 'CI runner');
    expect(added).toMatch(/^registered key_[0-9a-f]+ for ACME\n/);
    expect(added).toMatch(/^name +CI runner$/m);
    expect(added).toMatch(/^hash +hmac-sha256$/m);
    expect(added).not.toContain(CI_KEY);
    ids['ci'] = /^id +(key_[0-9a-f]+)$/m.exec(added)![1]!;

    const fromStdin = await cli(['keys', 'add', 'ACME', '--key-file', '-', '--name', 'office', '--json'], `${OFFICE_KEY}\n`);
    expect([fromStdin.code, fromStdin.stderr]).toEqual([0, '']);
    const office = JSON.parse(fromStdin.stdout) as Key;
    expect(office).toMatchObject({ name: 'office', enabled: true, list_state: 'none' });
    expect(fromStdin.stdout).not.toContain(OFFICE_KEY);
    ids['office'] = office.id;

    const sha = createHash('sha256').update(OPEN_KEY).digest('hex');
    ids['open'] = (JSON.parse(await ok('keys', 'add', 'OPENCO', '--sha256', sha, '--name', 'partner', '--json')) as Key).id;

    // Exactly one way of giving the key; the same key twice is refused by the gateway.
    const none = await cli(['keys', 'add', 'ACME']);
    expect([none.code, none.stderr]).toEqual([1, 'allowgate: give the key in exactly one way: --key-file FILE (- for standard input), --key KEY, or --sha256 HEX\n']);
    expect((await cli(['keys', 'add', 'ACME', '--key', CI_KEY, '--sha256', sha])).code).toBe(1);
    const twice = await cli(['keys', 'add', 'OTHER', '--key', CI_KEY]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/\(duplicate, HTTP 409\)/);
    expect(twice.stderr).not.toContain(CI_KEY);

    const table = (await ok('keys', 'list', 'ACME')).trimEnd().split('\n');
    expect(table[0]).toMatch(/^ID +NAME +FINGERPRINT +ENABLED +LIST +LAST_USED_AT +LAST_USED_IP$/);
    expect(table.slice(1).map((row) => row.split(/ {2,}/).slice(0, 2))).toEqual([[ids['ci'], 'CI runner'], [ids['office'], 'office']]);
    expect((await ok('keys', 'list', 'NOBODY'))).toBe('NOBODY has no keys\n');
  });

  it('restricts the CI key to the CI range with keys acl, while the office key keeps working from the office', async () => {
    await ok('acl', 'add', 'ACME', OFFICE);
    await ok('acl', 'add', 'ACME', CI);
    const added = await ok('keys', 'acl', 'add', 'ACME', ids['ci']!, CI, '--description', 'CI runners');
    expect(added).toMatch(new RegExp(`^added ipacl_\\w+ to key ${ids['ci']} of ACME\\n`));
    expect(await outcome(CI, CI_KEY)).toEqual([200, undefined]);
    expect(await outcome(OFFICE, CI_KEY)).toEqual([403, 'ip_not_allowed_for_key']);
    expect(await outcome(OFFICE, OFFICE_KEY)).toEqual([200, undefined]);
    expect(await outcome(STRANGER, OFFICE_KEY)).toEqual([403, 'ip_not_allowed']);

    const check = await ok('keys', 'check', 'ACME', ids['ci']!, OFFICE);
    expect(check).toMatch(new RegExp(`^key +${ids['ci']}$`, 'm'));
    expect(check).toMatch(/^decision +deny$/m);
    expect(check).toMatch(/^reason +ip_not_allowed_for_key$/m);
    const listed = (await ok('keys', 'acl', 'list', 'ACME', ids['ci']!)).trimEnd().split('\n');
    expect(listed).toHaveLength(2);
    expect(listed[1]).toMatch(new RegExp(`^ipacl_\\w+ +${CI.replaceAll('.', '\\.')} +allow +true +- +CI runners$`));
    const csv = await ok('keys', 'acl', 'export', 'ACME', ids['ci']!, '--format', 'csv');
    expect(csv.split('\n')[1]).toMatch(new RegExp(`^${CI.replaceAll('.', '\\.')},allow,CI runners,true,`));
  });

  it('reports the keys open to every address', async () => {
    const report = await cli(['keys', 'report', '--unrestricted']);
    expect(report.code).toBe(0);
    const rows = report.stdout.trimEnd().split('\n').slice(1).map((row) => row.split(/ {2,}/).slice(0, 3));
    // ACME's keys are restricted by the account's list; the partner key of an account without one is not.
    expect(rows).toEqual([['OPENCO', ids['open'], 'partner']]);
    expect(report.stderr).toBe('allowgate: 1 enabled key is open to every address: restrict the account\'s list or the key\'s own (allowgate keys acl add ACCOUNT KEY_ID CIDR)\n');
    const all = JSON.parse(await ok('keys', 'report', '--json')) as { keys: { id: string; unrestricted: boolean; key_restricts: boolean }[] };
    expect(all.keys.map((k) => [k.id, k.unrestricted, k.key_restricts])).toEqual([[ids['ci'], false, true], [ids['office'], false, false], [ids['open'], true, false]]);
  });

  it('shows an emptied key list refusing every caller, and opens it only when told to', async () => {
    const [entry] = (JSON.parse(await ok('keys', 'acl', 'list', 'ACME', ids['ci']!, '--json')) as { entries: { id: string }[] }).entries;
    const removed = await cli(['keys', 'acl', 'rm', 'ACME', ids['ci']!, entry!.id]);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toBe(`deleted ${entry!.id} from key ${ids['ci']} of ACME\n`);
    expect(await outcome(CI, CI_KEY)).toEqual([403, 'list_empty_for_key']);
    expect(await ok('keys', 'acl', 'list', 'ACME', ids['ci']!)).toBe(`key ${ids['ci']} of ACME has no entries\nthe list of key ${ids['ci']} of ACME is empty: no allow entry is in force, so every request with the key is refused (list_empty_for_key); add one, or open the key's list (the account's list alone applies then) with: allowgate keys acl open ACME ${ids['ci']}\n`);
    expect(await ok('keys', 'show', 'ACME', ids['ci']!)).toMatch(/^list_state +empty$/m);

    const strict = await cli(['keys', 'acl', 'open', 'ACME', ids['ci']!, '--guard', 'strict']);
    expect([strict.code, strict.stderr]).toEqual([1, expect.stringMatching(/\(would_open, HTTP 409\)/)]);
    const opened = await cli(['keys', 'acl', 'open', 'ACME', ids['ci']!]);
    expect(opened.code).toBe(0);
    expect(opened.stdout).toBe(`opened the list of key ${ids['ci']} of ACME: the account's list alone applies to the key; list state none\n`);
    expect(opened.stderr).toBe(`allowgate: warning: key ${ids['ci']} of account ACME would no longer be restricted by a list of its own: it would be opened (restricted: false) with no allow entry in force, so the account's list alone would apply\n`);
    expect(await outcome(OFFICE, CI_KEY)).toEqual([200, undefined]);
    expect(await outcome(STRANGER, CI_KEY)).toEqual([403, 'ip_not_allowed']);
  });

  it('renames, disables, enables and deletes keys', async () => {
    expect(await ok('keys', 'rename', 'ACME', ids['office']!, 'office laptops')).toMatch(/^name +office laptops$/m);
    expect(await ok('keys', 'disable', 'ACME', ids['office']!)).toMatch(new RegExp(`^disabled ${ids['office']} of ACME\\n`));
    expect(await outcome(OFFICE, OFFICE_KEY)).toEqual([401, 'key_disabled']);
    await ok('keys', 'enable', 'ACME', ids['office']!);
    expect(await outcome(OFFICE, OFFICE_KEY)).toEqual([200, undefined]);
    expect(await ok('keys', 'rm', 'ACME', ids['office']!)).toBe(`deleted ${ids['office']} of ACME, and its list\n`);
    expect(await outcome(OFFICE, OFFICE_KEY)).toEqual([401, 'unknown_key']);
    const gone = await cli(['keys', 'show', 'ACME', ids['office']!]);
    expect([gone.code, gone.stderr]).toEqual([1, expect.stringMatching(/\(key_not_found, HTTP 404\)/)]);
    // Usage errors: a group without its command, a missing argument.
    expect((await cli(['keys', 'acl'])).code).toBe(2);
    expect((await cli(['keys', 'acl', 'add', 'ACME', ids['ci']!])).stderr).toMatch(/^allowgate: missing IP\n/);
  });
});
