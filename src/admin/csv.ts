/**
 * RFC 4180 CSV for list import and export: fields with a comma, quote or line break are quoted,
 * quotes doubled. Small on purpose: one header row, then one row per entry.
 */

export const CSV_COLUMNS = ['ip_address', 'action', 'description', 'enabled', 'expires_at'] as const;

function field(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function toCsv(rows: readonly (readonly string[])[]): string {
  return rows.map((row) => row.map(field).join(',')).join('\r\n') + '\r\n';
}

/** Rows of fields, or the 1-based line of the first malformed quote. */
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
      row.push(value);
      value = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(value);
      if (row.length > 1 || row[0] !== '') rows.push(row);
      row = [];
      value = '';
      line++;
    } else {
      value += c;
    }
  }
  if (quoted) return { ok: false, line };
  row.push(value);
  if (row.length > 1 || row[0] !== '') rows.push(row);
  return { ok: true, rows };
}
