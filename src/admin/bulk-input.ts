import type { NewEntryFields } from '../acl/changes.ts';
import { refusal, type Refusal } from '../http/refusal.ts';
import { clip } from '../ip/cidr.ts';
import { CSV_COLUMNS, parseCsv } from './csv.ts';
import { parseEntryFields } from './entry-input.ts';
import { listBodyItems } from './list-body.ts';

/**
 * The bodies of a list replace or import (JSON `{"entries": [...]}` or CSV with a header row),
 * read into entry fields row by row. Pure and synchronous: the admin API runs it on a worker
 * thread (bulk-parser.ts), so a large or pathological body never holds up the proxy's loop.
 */

export type BulkFormat = 'json' | 'csv';

export interface BulkLimits {
  /** Rows beyond this refuse the body (the most entries the account may hold). */
  readonly maxItems: number;
  /** Networks all rows together may expand into. */
  readonly maxNetworks: number;
}

/** One row: where it was (CSV line, or 1-based item), and its fields or why it is refused. */
export type BulkRow =
  | { readonly line: number; readonly ok: true; readonly fields: NewEntryFields }
  | { readonly line: number; readonly ok: false; readonly refusal: Refusal };

export type BulkParsed = { readonly ok: true; readonly rows: readonly BulkRow[] } | { readonly ok: false; readonly refusal: Refusal };

/** Rows as the body holds them; a body that is not a list at all is refused whole. */
export function parseBulk(format: BulkFormat, text: string, nowMs: number, limits: BulkLimits): BulkParsed {
  const parsed = format === 'csv' ? csvRows(text, nowMs, limits) : jsonRows(text, nowMs, limits);
  if (!parsed.ok) return parsed;
  let networks = 0;
  for (const row of parsed.rows) {
    if (row.ok) networks += row.fields.ipAddress.cidrs.length;
  }
  if (networks > limits.maxNetworks) {
    return fail(413, 'too_many_networks', `the rows expand into ${networks} networks, more than the ${limits.maxNetworks} one request may hold: send fewer or narrower ranges`);
  }
  return parsed;
}

/** The refusal of a body with more rows than `limit`. */
export function tooManyItems(limit: number): Refusal {
  return refusal(409, 'limit_reached', `the body has more than ${limit} rows, and the account may hold at most ${limit} entries: send fewer (or raise the account's max_entries)`);
}

function fail(status: Refusal['status'], reason: string, message: string): BulkParsed {
  return { ok: false, refusal: refusal(status, reason, message) };
}

function row(line: number, raw: unknown, nowMs: number): BulkRow {
  const fields = parseEntryFields(raw, nowMs, true);
  if (!fields.ok) return { line, ok: false, refusal: fields.refusal };
  // parseEntryFields with `true` refuses a body without ip_address.
  return { line, ok: true, fields: { ...fields.value, ipAddress: fields.value.ipAddress! } };
}

/** `{"entries": [...]}`, each item like a POST body; an export imports as it is. */
function jsonRows(text: string, nowMs: number, limits: BulkLimits): BulkParsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return fail(400, 'invalid_json', `the request body is not valid JSON: ${(error as Error).message}`);
  }
  // An export ({account, version, entries}) imports as it is; the account and version it names are informative.
  const items = listBodyItems(value);
  if (!items.ok) return items;
  const entries = items.value;
  if (entries.length > limits.maxItems) return { ok: false, refusal: tooManyItems(limits.maxItems) };
  return { ok: true, rows: entries.map((raw, i) => row(i + 1, withoutReadOnly(raw), nowMs)) };
}

/** A header row naming the columns (ip_address required, the others optional), then one row per entry. */
function csvRows(text: string, nowMs: number, limits: BulkLimits): BulkParsed {
  const parsed = parseCsv(text);
  if (!parsed.ok) return fail(400, 'invalid_csv', `the CSV has an unterminated or misplaced quote on line ${parsed.line}`);
  const [header, ...rows] = parsed.rows;
  const columns = header?.map((h) => h.trim().toLowerCase()) ?? [];
  if (!columns.includes('ip_address')) return fail(400, 'invalid_csv', `the first row must name the columns, with at least ip_address (${CSV_COLUMNS.join(',')})`);
  const unknown = columns.find((c) => !(CSV_COLUMNS as readonly string[]).includes(c));
  if (unknown !== undefined) return fail(400, 'invalid_csv', `unknown column '${clip(unknown)}': expected ${CSV_COLUMNS.join(', ')}`);
  const repeated = columns.find((c, i) => columns.indexOf(c) !== i);
  if (repeated !== undefined) return fail(400, 'invalid_csv', `column '${clip(repeated)}' is named twice in the header`);
  if (rows.length > limits.maxItems) return { ok: false, refusal: tooManyItems(limits.maxItems) };
  return {
    ok: true,
    rows: rows.map((cells, i) => {
      if (cells.length > columns.length) return { line: i + 2, ok: false, refusal: refusal(400, 'invalid_csv', `line ${i + 2} has ${cells.length} cells, but the header names ${columns.length} columns`) };
      const body: Record<string, unknown> = {};
      columns.forEach((column, c) => {
        const value = cells[c] ?? '';
        if (value === '') return;
        body[column] = column === 'enabled' ? value === 'true' ? true : value === 'false' ? false : value : value;
      });
      return row(i + 2, body, nowMs);
    }),
  };
}

/** An exported entry carries fields the server assigns; importing it back ignores them. */
function withoutReadOnly(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const { id: _id, cidrs: _cidrs, created_at: _created, updated_at: _updated, ...rest } = raw as Record<string, unknown>;
  return rest;
}

/** Deepest nesting a JSON list body may have: `{"entries": [{"cidrs": [...]}]}` needs 4. */
export const MAX_JSON_DEPTH = 8;
/** Fields one JSON item may have (an exported entry has 9). */
export const MAX_ITEM_FIELDS = 32;
/** Cells one CSV line may have (there are five columns). */
export const MAX_CSV_CELLS = 16;

/**
 * Checks the shape of a body as it arrives, without parsing it, so a body built to be expensive
 * is refused after its first bytes too many instead of being read, parsed and expanded whole:
 * more rows than the account may hold (CSV: records, header included, blank lines not counted;
 * JSON: the items of arrays directly inside the top-level object, i.e. `entries`), JSON nested
 * deeper than MAX_JSON_DEPTH or items with more than MAX_ITEM_FIELDS fields, CSV lines with more
 * than MAX_CSV_CELLS cells.
 */
export class BodyShape {
  readonly #format: BulkFormat;
  readonly #maxRows: number;
  #rows = 0;
  // CSV
  #quoted = false;
  #lineHasText = false;
  #cells = 1;
  // JSON
  #depth = 0;
  /** Whether the container at each depth is an array. */
  readonly #isList: boolean[] = [];
  #inString = false;
  #escaped = false;
  #itemOpen = false;
  #fields = 0;

  /** `maxRows`: the rows (CSV: data rows, not the header; JSON: items) the body may have. */
  constructor(format: BulkFormat, maxRows: number) {
    this.#format = format;
    this.#maxRows = maxRows;
  }

  /** The next chunk; a refusal once the body has gone too far. */
  push(chunk: Buffer): Refusal | null {
    return this.#format === 'csv' ? this.#csv(chunk) : this.#json(chunk);
  }

  #csv(chunk: Buffer): Refusal | null {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (c === 0x22) this.#quoted = !this.#quoted;
      if (this.#quoted) continue;
      if (c === 0x0a || c === 0x0d) {
        this.#lineHasText = false;
        this.#cells = 1;
        continue;
      }
      if (c === 0x2c && ++this.#cells > MAX_CSV_CELLS) return refusal(400, 'invalid_csv', `a line has more than ${MAX_CSV_CELLS} cells; the columns are ${CSV_COLUMNS.join(', ')}`);
      if (!this.#lineHasText && c !== 0x20 && c !== 0x09) {
        this.#lineHasText = true;
        if (++this.#rows > this.#maxRows + 1) return tooManyItems(this.#maxRows);
      }
    }
    return null;
  }

  #json(chunk: Buffer): Refusal | null {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (c === 0x5c) this.#escaped = true;
        else if (c === 0x22) this.#inString = false;
        continue;
      }
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
      // An item starts at the first token after `[` or `,` directly inside a top-level array.
      if (this.#depth === 2 && this.#isList[2] === true && !this.#itemOpen && c !== 0x5d && c !== 0x2c) {
        this.#itemOpen = true;
        this.#fields = 0;
        if (++this.#rows > this.#maxRows) return tooManyItems(this.#maxRows);
      }
      if (c === 0x22) {
        this.#inString = true;
      } else if (c === 0x7b || c === 0x5b) {
        if (++this.#depth > MAX_JSON_DEPTH) return refusal(400, 'invalid_json', `the body is nested deeper than ${MAX_JSON_DEPTH} levels; a list is {"entries": [{...}, ...]}`);
        this.#isList[this.#depth] = c === 0x5b;
        if (this.#depth === 2) this.#itemOpen = false;
        if (this.#depth === 3 && c === 0x7b) this.#fields = 1;
      } else if (c === 0x7d || c === 0x5d) {
        this.#depth--;
      } else if (c === 0x2c) {
        if (this.#depth === 2) this.#itemOpen = false;
        else if (this.#depth === 3 && this.#isList[3] === false && ++this.#fields > MAX_ITEM_FIELDS) {
          return refusal(400, 'unknown_field', `an item has more than ${MAX_ITEM_FIELDS} fields; an entry has ip_address, description, action, enabled and expires_at`);
        }
      }
    }
    return null;
  }
}
