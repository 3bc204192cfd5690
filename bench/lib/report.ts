import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * What every benchmark prints and keeps: a plain-text table on stdout and a JSON document in
 * bench/results/<name>.json, stamped with the machine and the date so figures from different
 * runs are never mistaken for one another.
 */

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

export type Cell = string | number | null;

export interface Table {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
  /** Lines printed under the table: targets met or missed, skipped parts and why. */
  readonly notes?: readonly string[];
}

export interface Machine {
  readonly node: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly platform: string;
}

export function machine(): Machine {
  const list = cpus();
  return {
    node: process.version,
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** Numbers get thousands separators and at most `digits` decimals; null prints as "-". */
export function formatCell(value: Cell, digits = 2): string {
  if (value === null) return '-';
  if (typeof value === 'string') return value;
  const fixed = Number.isInteger(value) ? value : Number(value.toFixed(digits));
  return fixed.toLocaleString('en-US', { maximumFractionDigits: digits });
}

export function renderTable(table: Table): string {
  const cells = [table.columns.map(String), ...table.rows.map((row) => row.map((c) => formatCell(c)))];
  const widths = table.columns.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: readonly string[]): string =>
    row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  const out = [table.title, line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)];
  for (const note of table.notes ?? []) out.push(`  ${note}`);
  return out.join('\n');
}

/** Prints the tables and writes bench/results/<name>.json with them, the machine and `data`. */
export function report(name: string, tables: readonly Table[], data: unknown): string {
  for (const table of tables) console.log(`\n${renderTable(table)}`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(file, `${JSON.stringify({ benchmark: name, date: new Date().toISOString(), machine: machine(), tables, data }, null, 2)}\n`);
  console.log(`\nresults: bench/results/${name}.json`);
  return file;
}

/** The p-th percentile (nearest rank) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** "met" or "MISSED (by ...)" for a target line under a table. */
export function verdict(label: string, met: boolean, detail: string): string {
  return `${met ? 'met   ' : 'MISSED'}  ${label}: ${detail}`;
}
