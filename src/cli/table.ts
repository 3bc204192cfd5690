/**
 * Plain-text tables for the terminal. Values come from the API (descriptions are free text), so
 * control characters are shown escaped rather than sent to the terminal.
 */

export type Cell = string | number | boolean | null | undefined;

/** Printable form of a value: null/undefined/'' as '-', control characters escaped. */
export function cell(value: Cell): string {
  if (value === null || value === undefined || value === '') return '-';
  return String(value).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Columns padded to their widest value, separated by two spaces; no trailing spaces. */
export function formatTable(headers: readonly string[] | null, rows: readonly (readonly Cell[])[]): string {
  const all = [...(headers === null ? [] : [headers]), ...rows.map((r) => r.map(cell))];
  const count = Math.max(0, ...all.map((r) => r.length));
  const widths = Array.from({ length: count }, (_, c) => Math.max(...all.map((r) => width(r[c] ?? ''))));
  return all
    .map((row) => row.map((text, c) => (c === row.length - 1 ? text : text + ' '.repeat(widths[c]! - width(text)))).join('  ').trimEnd())
    .map((line) => `${line}\n`)
    .join('');
}

/** Label/value pairs, one a line, values aligned. */
export function formatPairs(pairs: readonly (readonly [string, Cell])[]): string {
  return formatTable(null, pairs);
}

/** Display width: code points, not UTF-16 units (wide East Asian characters count as one). */
function width(text: string): number {
  return [...text].length;
}
