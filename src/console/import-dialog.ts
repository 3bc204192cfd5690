import { ApiError, guardWarning, type Api, type ImportPreview } from './api.ts';
import { field, h, openDialog, toast } from './dom.ts';

/** JSON when the text is an object or a list, CSV otherwise: the server reads it by its type. */
function formatOf(text: string): 'csv' | 'json' {
  const trimmed = text.trim();
  return trimmed.startsWith('{') || trimmed.startsWith('[') ? 'json' : 'csv';
}

const OUTCOME: Readonly<Record<string, string>> = { add: 'added', skip: 'already listed', refused: 'refused' };

/**
 * Paste or pick a CSV or JSON file, see what each row becomes, then merge or replace. The preview
 * is the server's own reading of the text (a dry run of the import: the same parser, the same
 * column mapping by the CSV header, the same checks against the list as it is), so what it shows
 * is what is stored; the import is sent with the version the preview was computed from, and a
 * list that moved since gets a fresh preview instead of a surprise.
 */
export function importDialog(api: Api, account: string, onSaved: () => void): Promise<void> {
  const text = h('textarea', { rows: 8, spellcheck: 'false', placeholder: 'ip_address,action,description\n203.0.113.0/24,allow,Office' });
  const file = h('input', { type: 'file', accept: '.csv,.json,text/csv,application/json' });
  const mode = h('select', {}, h('option', { value: 'merge' }, 'Add to the list (merge)'), h('option', { value: 'replace' }, 'Replace the whole list'));
  const table = h('div', { class: 'preview-table', 'aria-live': 'polite' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  let confirmed = false;
  /** The preview shown, and the text and mode it is of. */
  let preview: { of: string; result: ImportPreview } | null = null;
  let pending: Promise<void> | null = null;
  let timer = 0;

  const key = (): string => `${mode.value}\n${text.value}`;

  const render = (): void => {
    if (text.value.trim() === '') {
      table.replaceChildren(h('p', { class: 'empty' }, 'Nothing to import yet.'));
      return;
    }
    if (preview === null) return;
    const { rows } = preview.result;
    const bad = rows.filter((r) => r.outcome === 'refused').length;
    table.replaceChildren(
      h('p', {}, `${rows.length} row${rows.length === 1 ? '' : 's'}${bad ? `, ${bad} with a problem` : ''}`),
      h('table', {}, h('thead', {}, h('tr', {}, ...['Line', 'Address', 'Becomes', 'Action', 'Name', 'Result'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ...rows.slice(0, 200).map((r) => h('tr', { class: r.outcome === 'refused' ? 'invalid' : '' },
          h('td', {}, r.line), h('td', {}, r.entry?.ip_address ?? ''), h('td', {}, r.outcome === 'refused' ? r.error ?? '' : r.entry?.cidrs.join(', ') ?? ''),
          h('td', {}, r.entry?.action ?? ''), h('td', {}, r.entry?.description ?? ''), h('td', {}, OUTCOME[r.outcome] ?? r.outcome))))));
  };

  /** Asks the server what the text would store; the newest request's answer wins. */
  const refresh = (): Promise<void> => {
    const of = key();
    const run = (async () => {
      if (text.value.trim() === '') {
        preview = null;
        render();
        return;
      }
      try {
        const result = await api.previewImport(account, text.value, formatOf(text.value), mode.value as 'merge' | 'replace');
        if (key() !== of) return;
        preview = { of, result };
        error.textContent = '';
      } catch (e) {
        if (key() !== of) return;
        preview = null;
        table.replaceChildren(h('p', { class: 'form-error' }, `The text cannot be imported: ${(e as Error).message}`));
        return;
      }
      render();
    })();
    pending = run;
    return run;
  };
  const later = (): void => {
    confirmed = false;
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void refresh(), 250);
  };
  text.addEventListener('input', later);
  mode.addEventListener('change', later);
  file.addEventListener('change', async () => {
    const chosen = file.files?.[0];
    if (chosen) text.value = await chosen.text();
    later();
  });
  render();

  return openDialog({
    title: 'Import entries',
    submitLabel: 'Import',
    body: [field('Paste CSV or JSON', text).row, field('Or choose a file', file).row, field('Mode', mode).row, table, error],
    onSubmit: async () => {
      window.clearTimeout(timer);
      if (preview?.of !== key()) await refresh();
      else await pending;
      const shown = preview;
      if (text.value.trim() === '') {
        error.textContent = 'Nothing to import.';
        return false;
      }
      if (shown === null || !shown.result.would_store) {
        error.textContent = shown === null ? 'The text cannot be imported: see above.' : 'Fix the rows marked in the preview first.';
        return false;
      }
      try {
        const result = await api.importEntries(account, text.value, formatOf(text.value), mode.value as 'merge' | 'replace', { strict: !confirmed, version: shown.result.version });
        toast(`Imported ${result.received} entries`);
        onSaved();
        return true;
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        if (e.outcomeUnknown) onSaved();
        if (e.status === 412) {
          await refresh();
          error.textContent = 'The list changed since the preview: the preview now shows what the import would store. Check it and import again.';
          confirmed = false;
          return false;
        }
        const warning = guardWarning(e);
        error.textContent = warning !== null ? `Warning: ${warning} Press Import again to apply it regardless.` : e.message;
        confirmed = warning !== null;
        return false;
      }
    },
  });
}
