import { afterAll, describe, expect, it } from 'vitest';
import { BodyShape, MAX_CSV_CELLS, MAX_ITEM_FIELDS, MAX_JSON_DEPTH, parseBulk } from '../../../src/admin/bulk-input.ts';
import { BulkParser } from '../../../src/admin/bulk-parser.ts';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const LIMITS = { maxItems: 50, maxNetworks: 1000 };

/** Feeds `text` to a BodyShape in chunks of `size` bytes; the first refusal, or null. */
function shape(format: 'csv' | 'json', text: string, maxRows: number, size = 7): string | null {
  const check = new BodyShape(format, maxRows);
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) {
    const refused = check.push(bytes.subarray(i, i + size));
    if (refused !== null) return refused.reason;
  }
  return null;
}

describe('list bodies, checked as they arrive', () => {
  it('counts CSV records (header included, blank lines and quoted line breaks not) against the limit', () => {
    const rows = (n: number): string => `ip_address,description\n${Array.from({ length: n }, (_, i) => `10.0.${i}.0/24,"a\nb"`).join('\n')}\n\n\n`;
    expect(shape('csv', rows(3), 3)).toBeNull();
    expect(shape('csv', rows(4), 3)).toBe('limit_reached');
    expect(shape('csv', `ip_address${',x'.repeat(MAX_CSV_CELLS)}\n`, 3)).toBe('invalid_csv');
    expect(shape('csv', `ip_address\n"${','.repeat(100)}"\n`, 3)).toBeNull();
  });

  it('counts the items of entries, whatever their shape or the strings in them, and bounds depth and fields', () => {
    const items = (n: number): string => JSON.stringify({ account: 'x', entries: Array.from({ length: n }, (_, i) => ({ ip_address: `10.0.${i}.0/24`, description: '[{",]}\\"', cidrs: ['a', 'b'] })) });
    expect(shape('json', items(3), 3)).toBeNull();
    expect(shape('json', items(4), 3)).toBe('limit_reached');
    expect(shape('json', '{"entries": [1, "x", [], {}]}', 3)).toBe('limit_reached');
    expect(shape('json', '{"entries": []}', 0)).toBeNull();
    expect(shape('json', `{"entries": [${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}]}`, 3)).toBe('invalid_json');
    const wide = Object.fromEntries(Array.from({ length: MAX_ITEM_FIELDS + 1 }, (_, i) => [`k${i}`, i]));
    expect(shape('json', JSON.stringify({ entries: [wide] }), 3)).toBe('unknown_field');
    // A wide object that is not an item (an unknown top-level field) is refused by the parser, not counted.
    expect(shape('json', JSON.stringify({ other: wide }), 3)).toBeNull();
  });

  it('reads CSV by its header, whatever the column order, and names refused rows by line', () => {
    const parsed = parseBulk('csv', 'ip_address,description,action\n93.184.216.0/24,deny,allow\n2001:db8::1 - 2001:db8::ffff:ffff:ffff:fffe,wide\n', NOW, LIMITS);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.rows[0]).toMatchObject({ line: 2, ok: true, fields: { description: 'deny', action: 'allow', ipAddress: { cidrs: ['93.184.216.0/24'] } } });
    expect(parsed.rows[1]).toMatchObject({ line: 3, ok: false, refusal: { reason: 'too_many_networks' } });
    expect(parseBulk('csv', 'ip_address,action,action\n', NOW, LIMITS)).toMatchObject({ ok: false, refusal: { reason: 'invalid_csv', message: expect.stringContaining('named twice') } });
    expect(parseBulk('csv', 'ip_address\n1.2.3.4,extra\n', NOW, LIMITS)).toMatchObject({ ok: true, rows: [{ ok: false, refusal: { reason: 'invalid_csv' } }] });
  });

  it('refuses more rows than the limit, and more networks than one request may hold', () => {
    const many = { entries: Array.from({ length: 51 }, (_, i) => ({ ip_address: `10.0.${i}.0/24` })) };
    expect(parseBulk('json', JSON.stringify(many), NOW, LIMITS)).toMatchObject({ ok: false, refusal: { status: 409, reason: 'limit_reached' } });
    const ranges = { entries: Array.from({ length: 30 }, (_, i) => ({ ip_address: `10.${i}.0.1 - 10.${i}.255.254` })) };
    expect(parseBulk('json', JSON.stringify(ranges), NOW, { maxItems: 50, maxNetworks: 100 })).toMatchObject({ ok: false, refusal: { status: 413, reason: 'too_many_networks' } });
  });
});

describe('the bulk parser worker', () => {
  const parser = new BulkParser(32);
  afterAll(() => parser.close());

  it('parses on its own thread what parseBulk parses here', async () => {
    const text = 'ip_address,action\n10.1.0.0/16,deny\n10.2.0.0/16\n';
    expect(await parser.parse('csv', Buffer.from(text), NOW, LIMITS)).toEqual(parseBulk('csv', text, NOW, LIMITS));
  });

  it('refuses a body that exhausts its heap, and the next body gets a fresh worker', async () => {
    // Far more rows than a 32 MiB heap holds once parsed (the shape check would have stopped this at the door).
    const huge = `{"entries":[${Array.from({ length: 400_000 }, (_, i) => `{"ip_address":"10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}","description":"${'x'.repeat(40)}"}`).join(',')}]}`;
    expect(await parser.parse('json', Buffer.from(huge), NOW, { maxItems: 1_000_000, maxNetworks: 10_000_000 })).toMatchObject({ ok: false, refusal: { status: 413, reason: 'body_too_complex' } });
    expect(await parser.parse('csv', Buffer.from('ip_address\n10.9.0.0/16\n'), NOW, LIMITS)).toMatchObject({ ok: true, rows: [{ ok: true }] });
  }, 30_000);
});
