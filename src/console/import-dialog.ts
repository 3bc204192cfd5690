import { formatCidr } from '../ip/cidr.ts';
import { parseRule } from '../ip/rule.ts';
import { ApiError, guardWarning, type Api } from './api.ts';
import { field, h, openDialog, toast } from './dom.ts';

interface Row {
  readonly line: number;
  readonly address: string;
  readonly action: string;
  readonly name: string;
  readonly networks: string;
  readonly problem: string | null;
}

/** Rows of a CSV export (ip_address,action,description,enabled,expires_at) or a JSON {entries}. */
function previewRows(text: string): { format: 'csv' | 'json'; rows: Row[] } {
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let entries: unknown[] = [];
    try {
      const value = JSON.parse(trimmed) as unknown;
      entries = Array.isArray(value) ? value : ((value as { entries?: unknown[] }).entries ?? []);
    } catch (error) {
      return { format: 'json', rows: [{ line: 1, address: '', action: '', name: '', networks: '', problem: `not valid JSON: ${(error as Error).message}` }] };
    }
    return { format: 'json', rows: entries.map((raw, i) => row(i + 1, raw as Record<string, unknown>)) };
  }
  const lines = trimmed.split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((c) => c.trim());
  const start = header[0] === 'ip_address' ? 1 : 0;
  return {
    format: 'csv',
    rows: lines.slice(start).filter((l) => l.trim() !== '').map((l, i) => {
      const cells = splitCsv(l);
      return row(i + 1 + start, { ip_address: cells[0] ?? '', action: cells[1] || 'allow', description: cells[2] ?? '' });
    }),
  };
}

function row(line: number, raw: Record<string, unknown>): Row {
  const address = String(raw['ip_address'] ?? '');
  const parsed = parseRule(address);
  return {
    line,
    address,
    action: String(raw['action'] ?? 'allow'),
    name: String(raw['description'] ?? raw['name'] ?? ''),
    networks: parsed.ok ? parsed.value.cidrs.map(formatCidr).join(', ') : '',
    problem: parsed.ok ? null : parsed.error,
  };
}

/** One CSV line: commas separate, double quotes enclose, "" is a quote. */
function splitCsv(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { cells.push(cell); cell = ''; } else cell += c;
  }
  cells.push(cell);
  return cells.map((c) => c.trim());
}

/** Paste or pick a CSV or JSON file, see what each row becomes, then merge or replace. */
export function importDialog(api: Api, account: string, onSaved: () => void): Promise<void> {
  const text = h('textarea', { rows: 8, spellcheck: 'false', placeholder: 'ip_address,action,description\n203.0.113.0/24,allow,Office' });
  const file = h('input', { type: 'file', accept: '.csv,.json,text/csv,application/json' });
  const mode = h('select', {}, h('option', { value: 'merge' }, 'Add to the list (merge)'), h('option', { value: 'replace' }, 'Replace the whole list'));
  const table = h('div', { class: 'preview-table', 'aria-live': 'polite' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  let confirmed = false;

  const render = (): void => {
    const { rows } = previewRows(text.value);
    if (rows.length === 0) {
      table.replaceChildren(h('p', { class: 'empty' }, 'Nothing to import yet.'));
      return;
    }
    const bad = rows.filter((r) => r.problem !== null).length;
    table.replaceChildren(
      h('p', {}, `${rows.length} row${rows.length === 1 ? '' : 's'}${bad ? `, ${bad} with a problem` : ''}`),
      h('table', {}, h('thead', {}, h('tr', {}, ...['Line', 'Address', 'Becomes', 'Action', 'Name'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ...rows.slice(0, 200).map((r) => h('tr', { class: r.problem ? 'invalid' : '' },
          h('td', {}, r.line), h('td', {}, r.address), h('td', {}, r.problem ?? r.networks), h('td', {}, r.action), h('td', {}, r.name))))));
  };
  text.addEventListener('input', () => { confirmed = false; render(); });
  file.addEventListener('change', async () => {
    const chosen = file.files?.[0];
    if (chosen) text.value = await chosen.text();
    render();
  });
  render();

  return openDialog({
    title: 'Import entries',
    submitLabel: 'Import',
    body: [field('Paste CSV or JSON', text).row, field('Or choose a file', file).row, field('Mode', mode).row, table, error],
    onSubmit: async () => {
      const { format, rows } = previewRows(text.value);
      if (rows.length === 0 || rows.some((r) => r.problem !== null)) {
        error.textContent = rows.length === 0 ? 'Nothing to import.' : 'Fix the rows marked in the preview first.';
        return false;
      }
      try {
        const result = await api.importEntries(account, text.value, format, mode.value as 'merge' | 'replace', !confirmed);
        toast(`Imported ${result.received} entries`);
        onSaved();
        return true;
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        if (e.outcomeUnknown) onSaved();
        const warning = guardWarning(e);
        error.textContent = warning !== null ? `Warning: ${warning} Press Import again to apply it regardless.` : e.message;
        confirmed = warning !== null;
        return false;
      }
    },
  });
}
