import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { runCli as run, type Run } from '../support/cli-run.ts';
import { ADMIN_TOKEN, startGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { send } from '../support/http.ts';
import { scratchDir } from '../support/scratch.ts';

interface Entry {
  id: string;
  ip_address: string;
  cidrs: string[];
  action: string;
  description: string;
  enabled: boolean;
  expires_at: string | null;
}

/** A loopback port nothing listens on (bound, then released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe('allowgate command-line client against a running gateway (memory store)', () => {
  let upstream: EchoUpstream;
  let gw: GatewayProcess;
  let dir: ReturnType<typeof scratchDir>;
  /** The CLI pointed at the gateway with its token, run in a scratch directory. */
  let cli: (...args: string[]) => Promise<Run>;
  const ok = async (...args: string[]): Promise<string> => {
    const result = await cli(...args);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return result.stdout;
  };
  const listJson = async (account: string, ...flags: string[]): Promise<Entry[]> =>
    (JSON.parse(await ok('acl', 'list', account, '--json', ...flags)) as { entries: Entry[] }).entries;
  const added = async (...args: string[]): Promise<Entry> => JSON.parse(await ok('acl', 'add', ...args, '--json')) as Entry;

  beforeAll(async () => {
    upstream = await startEchoUpstream();
    // Room for a list longer than one page (100 entries).
    gw = await startGateway({ env: { ALLOWGATE_UPSTREAM_URL: upstream.url, ALLOWGATE_MAX_ENTRIES: '500' } });
    dir = scratchDir();
    cli = (...args) => run(args, { ALLOWGATE_ADMIN_URL: gw.adminUrl, ALLOWGATE_ADMIN_TOKEN: ADMIN_TOKEN }, dir.path);
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
    dir?.remove();
  });

  it('adds entries and lists them as an aligned table', async () => {
    const out = await ok('acl', 'add', 'CLI1', '10.1.2.0/24', '--description', 'office');
    expect(out).toMatch(/^added ipacl_\w+ to CLI1\n/);
    expect(out).toMatch(/^ip_address +10\.1\.2\.0\/24$/m);
    expect(out).toMatch(/^action +allow$/m);
    expect(out).toMatch(/^description +office$/m);
    expect(out).toMatch(/^enabled +true$/m);
    await ok('acl', 'add', 'CLI1', '92.255.220.0/24', '--deny', '--description', 'scraper range');

    const table = (await ok('acl', 'list', 'CLI1')).trimEnd().split('\n');
    expect(table).toHaveLength(3);
    const header = table[0]!;
    expect(header).toMatch(/^ID +ADDRESS +ACTION +ENABLED +EXPIRES_AT +DESCRIPTION$/);
    const office = table.find((l) => l.includes('10.1.2.0/24'))!;
    const scraper = table.find((l) => l.includes('92.255.220.0/24'))!;
    for (const [column, value, line] of [['ADDRESS', '10.1.2.0/24', office], ['ACTION', 'allow', office], ['ACTION', 'deny', scraper], ['DESCRIPTION', 'scraper range', scraper]] as const) {
      expect(line.indexOf(value)).toBe(header.indexOf(column));
    }
    expect(office).toMatch(/ true +- +office$/);
  });

  it("lists as the API's JSON with --json", async () => {
    const body = JSON.parse(await ok('acl', 'list', 'CLI1', '--json')) as { account: string; version: number; entries: Entry[] };
    expect(body.account).toBe('CLI1');
    expect(body.version).toBeGreaterThanOrEqual(2);
    expect(body.entries.map((e) => [e.ip_address, e.action, e.description, e.enabled, e.expires_at])).toEqual(expect.arrayContaining([
      ['10.1.2.0/24', 'allow', 'office', true, null],
      ['92.255.220.0/24', 'deny', 'scraper range', true, null],
    ]));
    expect(body.entries[0]!.id).toMatch(/^ipacl_/);
  });

  it('adds disabled entries with an expiry, and filters the list by action and enabled', async () => {
    const expires = new Date(Date.now() + 86_400_000).toISOString();
    const entry = await added('CLI2', '8.8.8.8', '--disabled', '--expires', expires, '--description', 'resolver');
    expect(entry).toMatchObject({ ip_address: '8.8.8.8', enabled: false, action: 'allow', description: 'resolver' });
    expect(Date.parse(entry.expires_at!)).toBe(Date.parse(expires));
    await added('CLI2', '10.9.0.0/16');
    await added('CLI2', '10.9.9.9', '--deny');

    expect((await listJson('CLI2', '--action', 'deny')).map((e) => e.ip_address)).toEqual(['10.9.9.9']);
    expect((await listJson('CLI2', '--enabled', 'false')).map((e) => e.ip_address)).toEqual(['8.8.8.8']);
    expect((await listJson('CLI2', '--action', 'allow', '--enabled', 'true')).map((e) => e.ip_address)).toEqual(['10.9.0.0/16']);
    expect(await ok('acl', 'list', 'CLI2', '--action', 'deny', '--enabled', 'false')).toBe('no matching entries for CLI2\n');
    expect(await ok('acl', 'list', 'NOBODY')).toBe('NOBODY has no entries\n');
  });

  it('disables and enables an entry', async () => {
    const entry = await added('CLI3', '10.3.0.0/16');
    const disabled = await cli('acl', 'disable', 'CLI3', entry.id);
    // The only allow entry: without it the list is empty and refuses everyone (no caller was seen,
    // so the guard has nobody to name, and nothing opens).
    expect(disabled).toMatchObject({ code: 0, stderr: '' });
    const off = disabled.stdout;
    expect(off).toMatch(new RegExp(`^disabled ${entry.id} in CLI3\n`));
    expect(off).toMatch(/^enabled +false$/m);
    expect((await listJson('CLI3'))[0]).toMatchObject({ id: entry.id, enabled: false });
    expect(JSON.parse(await ok('acl', 'enable', 'CLI3', entry.id, '--json'))).toMatchObject({ id: entry.id, enabled: true });
    expect((await listJson('CLI3'))[0]).toMatchObject({ id: entry.id, enabled: true });
  });

  it('checks an address: the decision and the entry that decides it', async () => {
    const [office] = (await listJson('CLI1')).filter((e) => e.ip_address === '10.1.2.0/24');
    const allowed = await ok('check', 'CLI1', '10.1.2.3');
    expect(allowed).toMatch(/^decision +allow$/m);
    expect(allowed).toMatch(/^reason +ip_allowed$/m);
    expect(allowed).toMatch(new RegExp(`^entry +${office!.id}$`, 'm'));
    expect(allowed).toMatch(/^cidr +10\.1\.2\.0\/24$/m);
    // The list's state and the list the deciding entry belongs to are two rows, each with its own name.
    expect(allowed.match(/^list_state +active$/gm)).toHaveLength(1);
    expect(allowed.match(/^list +account$/gm)).toHaveLength(1);

    const denied = await ok('check', 'CLI1', '92.255.220.7');
    expect(denied).toMatch(/^decision +deny$/m);
    expect(denied).toMatch(/^reason +ip_denied$/m);
    expect(denied).toMatch(/^action +deny$/m);

    const stranger = await ok('check', 'CLI1', '8.8.4.4');
    expect(stranger).toMatch(/^decision +deny$/m);
    expect(stranger).toMatch(/^reason +ip_not_allowed$/m);
    expect(stranger).toMatch(/^entry +none/m);

    const json = JSON.parse(await ok('check', 'CLI1', '10.1.2.3', '--json')) as Record<string, unknown>;
    expect(json).toMatchObject({ account: 'CLI1', ip: '10.1.2.3', decision: 'allow', matched: { id: office!.id, cidr: '10.1.2.0/24', action: 'allow', list: 'account' } });
  });

  it('removes an entry, and says so when it is already gone', async () => {
    const entry = await added('CLI4', '10.4.0.0/16');
    await added('CLI4', '10.5.0.0/16');
    expect(await ok('acl', 'rm', 'CLI4', entry.id)).toBe(`deleted ${entry.id} from CLI4\n`);
    expect((await listJson('CLI4')).map((e) => e.ip_address)).toEqual(['10.5.0.0/16']);
    const again = await cli('acl', 'rm', 'CLI4', entry.id);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(new RegExp(`^allowgate: .*${entry.id}.* \\(\\w+, HTTP 404\\)\n$`));
  });

  it('lists the accounts', async () => {
    await added('CLI5', '10.6.0.0/16');
    const lines = (await ok('accounts')).trimEnd().split('\n');
    expect(lines).toEqual(expect.arrayContaining(['CLI1', 'CLI5']));
    const body = JSON.parse(await ok('accounts', '--json')) as { accounts: string[] };
    expect(body.accounts).toEqual(expect.arrayContaining(['CLI1', 'CLI5']));
  });

  it('reads every page of a long list', async () => {
    for (let i = 0; i < 150; i++) {
      const res = await gw.admin('POST', '/v1/accounts/CLI6/ip-acl', { ip_address: `10.60.${i}.0/24` });
      expect(res.status).toBe(201);
    }
    const entries = await listJson('CLI6');
    expect(entries).toHaveLength(150);
    expect(new Set(entries.map((e) => e.id)).size).toBe(150);
    expect((await ok('acl', 'list', 'CLI6')).trimEnd().split('\n')).toHaveLength(151);
  });

  it('prints lockout warnings on stderr, and refuses the change with --guard strict', async () => {
    // A caller seen recently (the account has no list yet, so it is let through and recorded).
    expect((await send(`${gw.url}/x`, { headers: { 'x-auth-id': 'CLI7' }, localAddress: '127.0.0.2' })).status).toBe(200);
    await expect.poll(async () => JSON.stringify(await (await gw.admin('GET', '/v1/accounts/CLI7/recent-ips')).json()), { timeout: 5_000 }).toContain('127.0.0.2');

    const strict = await cli('acl', 'add', 'CLI7', '10.7.0.0/16', '--guard', 'strict');
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/^allowgate: .*127\.0\.0\.2.* \(would_lock_out, HTTP 409\)\n$/);
    expect(await listJson('CLI7')).toEqual([]);

    const warned = await cli('acl', 'add', 'CLI7', '10.7.0.0/16');
    expect(warned.code).toBe(0);
    expect(warned.stdout).toMatch(/^added ipacl_/);
    expect(warned.stderr).toMatch(/^allowgate: warning: this change blocks 127\.0\.0\.2, last seen \d{4}-\d\d-\d\dT[^ ]+ \(now: deny\)\n$/);
  });

  it('reports API errors with their message, reason and status, and exits 1', async () => {
    const bad = await cli('acl', 'add', 'CLI1', '10.1.2.300');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/^allowgate: .*10\.1\.2\.300.* \(invalid_format, HTTP 400\)\n$/);

    const duplicate = await cli('acl', 'add', 'CLI1', '10.1.2.0/24');
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toMatch(/\(duplicate, HTTP 409\)\n$/);

    const badAccount = await cli('acl', 'list', 'no such account');
    expect(badAccount.code).toBe(1);
    expect(badAccount.stderr).toMatch(/\(invalid_account, HTTP 400\)\n$/);
  });

  it('exits 1 naming invalid_token when the token is wrong', async () => {
    const result = await run(['accounts'], { ALLOWGATE_ADMIN_URL: gw.adminUrl, ALLOWGATE_ADMIN_TOKEN: 'not-the-admin-token-at-all' }, dir.path);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^allowgate: .*\(invalid_token, HTTP 401\)\n/);
    expect(result.stderr).toContain('ALLOWGATE_ADMIN_TOKEN');
  });

  it('reads the token from data/admin-token, and takes --url and --token over the environment', async () => {
    const home = join(dir.path, 'with-token-file');
    mkdirSync(join(home, 'data'), { recursive: true });
    writeFileSync(join(home, 'data', 'admin-token'), `${ADMIN_TOKEN}\n`);
    const fromFile = await run(['accounts'], { ALLOWGATE_ADMIN_URL: gw.adminUrl }, home);
    expect(fromFile.stderr).toBe('');
    expect(fromFile.stdout).toContain('CLI1\n');

    const dead = `http://127.0.0.1:${await freePort()}`;
    const flags = await run(['accounts', '--url', gw.adminUrl, '--token', ADMIN_TOKEN], { ALLOWGATE_ADMIN_URL: dead, ALLOWGATE_ADMIN_TOKEN: 'wrong-token-wrong-token' }, dir.path);
    expect(flags.stderr).toBe('');
    expect(flags.code).toBe(0);

    const none = await run(['accounts'], { ALLOWGATE_ADMIN_URL: gw.adminUrl }, dir.path);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/\(missing_token, HTTP 401\)\n/);
    expect(none.stderr).toContain('--token');
  });

  it('exits 1 naming the URL when nothing listens there', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const result = await run(['acl', 'list', 'CLI1'], { ALLOWGATE_ADMIN_URL: url, ALLOWGATE_ADMIN_TOKEN: ADMIN_TOKEN }, dir.path);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`cannot reach the admin API at ${url}: connection refused`);
    expect(result.stderr).toContain('allowgate serve');
    expect(result.stderr).toContain('ALLOWGATE_ADMIN_URL');
  });

  it('exits 2 with the usage on a usage error', async () => {
    const unknown = await cli('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(/^allowgate: unknown command 'frobnicate'\n\nUsage: allowgate /);

    const unknownSub = await cli('acl', 'frob', 'X');
    expect(unknownSub.code).toBe(2);
    expect(unknownSub.stderr).toContain("unknown command 'acl frob'");
    expect(unknownSub.stderr).toContain('acl add ACCOUNT IP');

    const missing = await cli('acl', 'add', 'CLI1');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^allowgate: missing IP\n\nUsage: allowgate acl add ACCOUNT IP \[options\]/);

    const extra = await cli('check', 'CLI1', '10.1.2.3', '10.1.2.4');
    expect(extra.code).toBe(2);
    expect(extra.stderr).toContain("unexpected argument '10.1.2.4'");

    const option = await cli('acl', 'list', 'CLI1', '--deny');
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('unknown option --deny for allowgate acl list');

    const choice = await cli('acl', 'list', 'CLI1', '--action', 'maybe');
    expect(choice.code).toBe(2);
    expect(choice.stderr).toContain('--action must be allow or deny');

    const bare = await cli('acl');
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('acl rm ACCOUNT ENTRY_ID');

    const badUrl = await cli('accounts', '--url', 'ftp://example.com');
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain('must start with http:// or https://');
  });

  it('says when a list is empty (every caller refused), and opens it only when told to', async () => {
    const entry = await added('CLI10', '10.8.0.0/16');
    expect(await ok('check', 'CLI10', '10.8.0.1')).toMatch(/^list_state +active$/m);
    await ok('acl', 'rm', 'CLI10', entry.id);
    const listed = await ok('acl', 'list', 'CLI10');
    expect(listed).toBe('CLI10 has no entries\nthe list of CLI10 is empty: no allow entry is in force, so every caller is refused (list_empty); add one, or open the account to every address with: allowgate acl open CLI10\n');
    const check = await ok('check', 'CLI10', '10.8.0.1');
    expect(check).toMatch(/^reason +list_empty$/m);
    expect(check).toMatch(/^list_state +empty$/m);

    const strict = await cli('acl', 'open', 'CLI10', '--guard', 'strict');
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/^allowgate: account CLI10 would be open to every address: .* \(would_open, HTTP 409\)\n$/);
    const opened = await cli('acl', 'open', 'CLI10');
    expect(opened.code).toBe(0);
    expect(opened.stderr).toMatch(/^allowgate: warning: account CLI10 would be open to every address: /);
    expect(opened.stdout).toBe("opened CLI10: with no allow entry in force its default decides (the gateway's); list state none\n");
    expect(await ok('check', 'CLI10', '10.8.0.1')).toMatch(/^reason +no_list$/m);

    // An enabled allow entry: nothing to open.
    await added('CLI10', '10.8.0.0/16');
    const refused = await cli('acl', 'open', 'CLI10');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/\(list_in_force, HTTP 409\)\n$/);
  });

  it('prints help for the tool and for each command, and the version', async () => {
    const help = await ok('--help');
    for (const command of ['serve', 'acl list ACCOUNT', 'acl add ACCOUNT IP', 'acl rm ACCOUNT ENTRY_ID', 'acl enable', 'acl disable', 'acl export', 'acl import ACCOUNT FILE', 'acl open ACCOUNT', 'check ACCOUNT IP', 'accounts', 'audit', 'ALLOWGATE_ADMIN_URL', 'ALLOWGATE_ADMIN_TOKEN', '--json']) {
      expect(help).toContain(command);
    }
    expect(await ok('help')).toBe(help);

    const add = await ok('acl', 'add', '--help');
    expect(add).toMatch(/^Usage: allowgate acl add ACCOUNT IP \[options\]\n/);
    for (const option of ['--description TEXT', '--deny', '--disabled', '--expires ISO', '--replace', '--guard strict', '--url URL', '--token TOKEN']) expect(add).toContain(option);
    expect(await ok('help', 'acl', 'add')).toBe(add);
    expect(await ok('acl', '--help')).toContain('acl import ACCOUNT FILE');
    expect(await ok('check', '-h')).toMatch(/^Usage: allowgate check ACCOUNT IP\n/);
    expect(await ok('serve', '--help')).toContain('--config PATH');

    expect(await ok('--version')).toMatch(/^allowgate \d+\.\d+\.\d+\n$/);
  });

  // Endpoints built alongside the CLI: export, import, audit.

  it('exports a list as CSV and as JSON, to stdout or a file', async () => {
    const csv = await ok('acl', 'export', 'CLI1', '--format', 'csv');
    const lines = csv.trimEnd().split(/\r?\n/);
    expect(lines[0]).toBe('ip_address,action,description,enabled,expires_at');
    expect(lines.slice(1).sort()).toEqual(['10.1.2.0/24,allow,office,true,', '92.255.220.0/24,deny,scraper range,true,']);

    const file = join(dir.path, 'cli1.json');
    expect(await ok('acl', 'export', 'CLI1', '--output', file)).toBe(`exported CLI1 (json) to ${file}\n`);
    const exported = JSON.parse(readFileSync(file, 'utf8')) as { account: string; entries: Entry[] };
    expect(exported.account).toBe('CLI1');
    expect(exported.entries.map((e) => e.ip_address).sort()).toEqual(['10.1.2.0/24', '92.255.220.0/24']);
    expect(JSON.parse(await ok('acl', 'export', 'CLI1'))).toEqual(exported);
  });

  it('imports CSV (merge, then replace) and JSON files', async () => {
    const csv = join(dir.path, 'import.csv');
    writeFileSync(csv, 'ip_address,action,description\n10.80.0.0/16,allow,branch\n10.81.0.0/16,deny,"lab, old"\n');
    expect(await ok('acl', 'import', 'CLI8', csv)).toMatch(/^imported 2 rows into CLI8 \(merge: rows whose network is already listed are skipped; the list now has 2 entries, version \d+\)\n$/);
    // The same file again: its rows are read and skipped, and the message does not call them imported entries.
    expect(await ok('acl', 'import', 'CLI8', csv)).toMatch(/^imported 2 rows into CLI8 \(merge: rows whose network is already listed are skipped; the list now has 2 entries, version \d+\)\n$/);
    expect((await listJson('CLI8')).map((e) => [e.ip_address, e.action, e.description]).sort()).toEqual([['10.80.0.0/16', 'allow', 'branch'], ['10.81.0.0/16', 'deny', 'lab, old']]);

    const json = join(dir.path, 'import.json');
    writeFileSync(json, JSON.stringify({ entries: [{ ip_address: '10.82.0.0/16', description: 'new office' }] }));
    const merged = JSON.parse(await ok('acl', 'import', 'CLI8', json, '--json')) as { mode: string; entries: Entry[] };
    expect(merged.mode).toBe('merge');
    expect(merged.entries).toHaveLength(3);

    expect(await ok('acl', 'import', 'CLI8', json, '--replace')).toMatch(/^imported 1 row into CLI8 \(replace; the list now has 1 entry, version \d+\)\n$/);
    expect((await listJson('CLI8')).map((e) => e.ip_address)).toEqual(['10.82.0.0/16']);

    const missing = await cli('acl', 'import', 'CLI8', join(dir.path, 'nope.csv'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^allowgate: cannot read .*nope\.csv: ENOENT\n$/);
  });

  it('imports what it exported, CSV and JSON alike', async () => {
    for (const format of ['csv', 'json']) {
      const file = join(dir.path, `round-trip.${format}`);
      await ok('acl', 'export', 'CLI1', '--format', format, '--output', file);
      await ok('acl', 'import', `RT-${format}`, file);
      expect((await listJson(`RT-${format}`)).map((e) => [e.ip_address, e.action, e.description, e.enabled]).sort())
        .toEqual((await listJson('CLI1')).map((e) => [e.ip_address, e.action, e.description, e.enabled]).sort());
    }
  });

  it('exports descriptions a spreadsheet would run as formulas neutralized, and imports them back exactly', async () => {
    const descriptions = ['=HYPERLINK("http://evil.example","open")', '+44 20 7946 0000', '-5% partner', '@SUM(A1:A9)', '\tindented', "'=already quoted", "'plain quote", 'ok = fine'];
    for (const [i, description] of descriptions.entries()) expect((await gw.admin('POST', '/v1/accounts/CLIF/ip-acl', { ip_address: `10.70.${i}.0/24`, description })).status).toBe(201);
    const file = join(dir.path, 'formulas.csv');
    await ok('acl', 'export', 'CLIF', '--format', 'csv', '--output', file);
    const rows = readFileSync(file, 'utf8').split('\r\n').slice(1, -1).sort();
    expect(rows).toEqual([
      '10.70.0.0/24,allow,"\'=HYPERLINK(""http://evil.example"",""open"")",true,',
      '10.70.1.0/24,allow,"\'+44 20 7946 0000",true,',
      '10.70.2.0/24,allow,"\'-5% partner",true,',
      '10.70.3.0/24,allow,"\'@SUM(A1:A9)",true,',
      '10.70.4.0/24,allow,"\'\tindented",true,',
      '10.70.5.0/24,allow,"\'\'=already quoted",true,',
      "10.70.6.0/24,allow,'plain quote,true,",
      '10.70.7.0/24,allow,ok = fine,true,',
    ]);
    // No cell of the file begins with a formula trigger outside quotes.
    expect(rows.flatMap((r) => r.split(',')).filter((cell) => /^[=+\-@\t\r]/.test(cell))).toEqual([]);
    await ok('acl', 'import', 'CLIF2', file);
    expect((await listJson('CLIF2')).map((e) => [e.ip_address, e.description]).sort()).toEqual(descriptions.map((d, i) => [`10.70.${i}.0/24`, d]).sort());
  });

  it('shows the audit trail of changes', async () => {
    const entry = await added('CLI9', '10.90.0.0/16', '--description', 'audited');
    await added('CLI9', '10.91.0.0/16', '--description', 'kept');
    await ok('acl', 'disable', 'CLI9', entry.id);
    await ok('acl', 'rm', 'CLI9', entry.id);

    const body = JSON.parse(await ok('audit', '--account', 'CLI9', '--json')) as { events: { account: string; action: string; actor: { name: string; role: string }; version: number }[] };
    expect(body.events.map((e) => e.action)).toEqual(['entry.delete', 'entry.update', 'entry.create', 'entry.create']);
    expect(body.events.every((e) => e.account === 'CLI9' && typeof e.actor.name === 'string')).toBe(true);

    const table = (await ok('audit', '--account', 'CLI9', '--limit', '2')).trimEnd().split('\n');
    expect(table[0]).toMatch(/^TIME +ACTOR +ACCOUNT +ACTION +VERSION +CHANGE$/);
    expect(table).toHaveLength(3);
    expect(table[1]).toMatch(/ CLI9 +entry\.delete +\d+ +- 10\.90\.0\.0\/16 \(allow\)$/);
    expect(table[2]).toMatch(/ CLI9 +entry\.update +\d+ +10\.90\.0\.0\/16 enabled: true → false$/);
  });
});

describe('allowgate serve', () => {
  it('starts the gateway as `allowgate serve` as well as with no command', async () => {
    const gw = await startGateway({ args: ['serve'] });
    try {
      expect((await gw.admin('GET', '/v1/accounts')).status).toBe(200);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });

  it('refuses client options and a missing configuration file with exit 2', async () => {
    const dir = scratchDir();
    try {
      const client = await run(['serve', '--json'], {}, dir.path);
      expect(client.code).toBe(2);
      expect(client.stderr).toContain('unknown option --json for allowgate serve');
      const missing = await run(['serve', '--config', join(dir.path, 'missing.yaml')], {}, dir.path);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/^allowgate: configuration error: .*missing\.yaml/);
    } finally {
      dir.remove();
    }
  });
});
