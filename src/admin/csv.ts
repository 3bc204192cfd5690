/**
 * RFC 4180 CSV for list import and export: fields with a comma, quote or line break are quoted,
 * quotes doubled. Small on purpose: one header row, then one row per entry.
 *
 * A spreadsheet runs a cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return as a
 * formula, so a description written by one tenant could run on an operator's machine when the
 * export is opened. Such cells are written as OWASP advises against CSV injection: a single quote
 * in front, and the cell quoted. Reading takes exactly one quote off again, so an export imports
 * back as the same entries. To keep that exact, a value that already begins with quotes before
 * one of those characters (`'=x`) gains one more on the way out, and loses one on the way in.
 */

export const CSV_COLUMNS = ['ip_address', 'action', 'description', 'enabled', 'expires_at'] as const;

/** Values a spreadsheet would run: quotes (added or the value's own), then a formula trigger. */
const FORMULA = /^'*[=+\-@\t\r]/;
/** The same, as written: at least the one quote the writer added. */
const NEUTRALIZED = /^'+[=+\-@\t\r]/;

function field(value: string): string {
  if (FORMULA.test(value)) return `"'${value.replace(/"/g, '""')}"`;
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** A cell as read: the quote the writer put before a formula trigger taken off. */
function cell(value: string): string {
  return NEUTRALIZED.test(value) ? value.slice(1) : value;
}

export function toCsv(rows: readonly (readonly string[])[]): string {
  return rows.map((row) => row.map(field).join(',')).join('\r\n') + '\r\n';
}

/** Rows of fields (neutralized formulas restored), or the 1-based line of the first malformed quote. */
export function parseCsv(text: string): { ok: true; rows: string[][] } | { ok: false; line: number } {
  const rows: string[][] = [];
  let row: string[] = [];
  let value = '';
  let quoted = false;
  let line = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          value += '"';
          i++;
        } else {
          quoted = false;
        }
      } else {
        if (c === '\n') line++;
        value += c;
      }
    } else if (c === '"') {
      if (value !== '') return { ok: false, line };
      quoted = true;
    } else if (c === ',') {
      row.push(cell(value));
      value = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell(value));
      if (row.length > 1 || row[0] !== '') rows.push(row);
      row = [];
      value = '';
      line++;
    } else {
      value += c;
    }
  }
  if (quoted) return { ok: false, line };
  row.push(cell(value));
  if (row.length > 1 || row[0] !== '') rows.push(row);
  return { ok: true, rows };
}
