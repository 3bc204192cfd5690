import { ApiError, guardWarning, type Api, type Entry, type ListState, type Settings, type Whoami } from './api.ts';
import { describeChanges, type AccountState } from './changes.ts';
import { entryDialog } from './entry-dialog.ts';
import { field, formatTime, h, openDialog, replaceChildren, toast } from './dom.ts';
import { importDialog } from './import-dialog.ts';
import { keysSection } from './keys-view.ts';
import { checkPanel, recentPanel } from './list-panels.ts';

type SortKey = 'description' | 'ip_address' | 'action' | 'enabled' | 'created_at' | 'updated_at' | 'expires_at';
const COLUMNS: readonly [SortKey, string][] = [
  ['description', 'Name'], ['ip_address', 'Address'], ['action', 'Action'], ['enabled', 'Enabled'],
  ['created_at', 'Created'], ['updated_at', 'Updated'], ['expires_at', 'Expires'],
];

const LIST_STATE_TEXT: Readonly<Record<ListState, string>> = {
  none: 'never restricted (or opened): the default decides.',
  active: 'allow entries in force: callers outside them are refused.',
  empty: 'emptied: no allow entry in force, every caller is refused until one applies or the account is opened.',
};

const SETTING_FIELDS = ['mode', 'default', 'parent', 'max_entries', 'ipv4_only', 'guard', 'list_state'] as const;

function sameSettings(a: Settings, b: Settings): boolean {
  return SETTING_FIELDS.every((key) => a[key] === b[key]);
}

/** One account: its settings, its entries, the check box, recent callers and the audit trail. */
export async function accountView(root: HTMLElement, api: Api, who: Whoami, account: string): Promise<void> {
  const canWrite = who.role !== 'read-only';
  const canSettings = who.role === 'owner' || who.role === 'admin';
  let entries: Entry[] = [];
  /** The account as the page shows it: every change is sent with its version (If-Match). */
  let state: AccountState | null = null;
  /** Whether the settings form holds edits not saved yet (a reload then leaves it alone). */
  let settingsEdited = false;
  /** The settings and version the settings form was filled from (what its save is based on). */
  let formBase: { version: number; settings: Settings } | null = null;
  let sort: { key: SortKey; ascending: boolean } = { key: 'created_at', ascending: true };

  const filter = h('input', { type: 'search', placeholder: 'Filter by name or address', 'aria-label': 'Filter entries' });
  const tableBox = h('div', { class: 'table-box' });
  const settingsBox = h('section', { 'aria-labelledby': 'settings-title' });
  const recent = recentPanel(api, account, 'No forwarded request for this account in the last 24 hours.');
  const auditBox = h('div');
  // Key changes are audited on the account: the trail is drawn again after each.
  const keys = keysSection(api, who, account, () => renderAudit());
  const notice = h('div', { class: 'conflict', role: 'alert', hidden: true });

  /** The entries and the settings at one version (read again if a change fell between the two reads). */
  const load = async (): Promise<AccountState> => {
    for (let attempt = 0; ; attempt++) {
      const [list, settings] = await Promise.all([api.entries(account), api.settings(account)]);
      if (list.version === settings.version || attempt >= 3) return { version: list.version, settings, entries: list.entries };
    }
  };

  const reload = async (options: { settings?: boolean } = {}): Promise<void> => {
    try {
      state = await load();
      entries = [...state.entries];
      renderTable();
      // The form is drawn again only when the settings it shows moved (and it holds no edits), or
      // when asked: redrawing under a user about to click would lose what they chose.
      if (options.settings === true || formBase === null || (!settingsEdited && !sameSettings(formBase.settings, state.settings))) renderSettings(state);
      else if (!settingsEdited && sameSettings(formBase.settings, state.settings)) formBase = { version: state.version, settings: state.settings };
      await Promise.all([recent.reload(), renderAudit(), keys.reload()]);
    } catch (error) {
      replaceChildren(tableBox, h('p', { class: 'form-error', role: 'alert' }, `Could not load the entries: ${(error as Error).message}`));
    }
  };

  /** The version the page's view of the account is at. */
  const version = (): number => state?.version ?? 0;

  /**
   * A change refused because the page was out of date (412): reloads, and says what changed since
   * the page loaded the account, so nothing another admin did is undone unseen. True if it was that.
   */
  const conflict = async (error: unknown): Promise<boolean> => {
    if (!(error instanceof ApiError) || error.status !== 412) return false;
    const before = state;
    settingsEdited = false;
    await reload({ settings: true });
    const changes = before === null || state === null ? [] : describeChanges(before, state);
    replaceChildren(notice,
      h('p', {}, h('strong', {}, 'Not saved: '), `account ${account} changed since this page loaded it (version ${before?.version ?? 0} → ${state?.version ?? 0})${changes.length === 0 ? '.' : ':'}`),
      changes.length === 0 ? null : h('ul', {}, ...changes.map((c) => h('li', {}, c))),
      h('p', {}, 'The page now shows the account as it is. Apply your change again if it still makes sense.'));
    notice.hidden = false;
    notice.scrollIntoView?.({ block: 'nearest' });
    return true;
  };

  const renderTable = (): void => {
    const q = filter.value.trim().toLowerCase();
    const shown = entries
      .filter((e) => q === '' || e.description.toLowerCase().includes(q) || e.ip_address.toLowerCase().includes(q) || e.cidrs.some((c) => c.includes(q)))
      .sort((a, b) => {
        const x = String(a[sort.key] ?? '');
        const y = String(b[sort.key] ?? '');
        return (x < y ? -1 : x > y ? 1 : 0) * (sort.ascending ? 1 : -1);
      });
    // An emptied list refuses everyone; it is said above the table, with the way out.
    const listState = state?.settings.list_state ?? 'none';
    const banner = listState === 'empty' ? h('div', { class: 'lockout list-state', role: 'status' },
      h('p', {}, h('strong', {}, 'The list is empty: '), 'no allow entry is in force, so every caller is refused (list_empty). A list never opens by itself: add an allow entry, or open the account to every address.'),
      canSettings ? h('button', { type: 'button', class: 'danger', onclick: () => void openAccount() }, 'Open to every address') : null) : null;
    if (entries.length === 0) {
      replaceChildren(tableBox, banner ?? h('div', { class: 'empty' },
        h('p', {}, 'No entries yet: every address may call this account (or the account\'s default applies).'),
        canWrite ? h('p', {}, 'Add the addresses your integrations call from, and only they will get through.') : null));
      return;
    }
    const header = COLUMNS.map(([key, label]) => h('th', { scope: 'col', 'aria-sort': sort.key === key ? (sort.ascending ? 'ascending' : 'descending') : 'none' },
      h('button', { type: 'button', class: 'sort', onclick: () => { sort = { key, ascending: sort.key === key ? !sort.ascending : true }; renderTable(); } }, label)));
    const rows = shown.map((e) => h('tr', { 'data-entry': e.id, class: e.enabled ? '' : 'disabled' },
      h('td', { 'data-label': 'Name' }, e.description || '—'),
      h('td', { 'data-label': 'Address' }, h('code', {}, e.ip_address), e.cidrs.length > 1 || e.cidrs[0] !== e.ip_address ? h('div', { class: 'cidrs' }, e.cidrs.join(', ')) : null),
      h('td', { 'data-label': 'Action' }, h('span', { class: `badge ${e.action}` }, e.action)),
      h('td', { 'data-label': 'Enabled' }, canWrite
        ? h('button', { type: 'button', class: 'toggle', 'aria-pressed': String(e.enabled), 'aria-label': `${e.enabled ? 'Disable' : 'Enable'} ${e.description || e.ip_address}`, onclick: () => toggle(e) }, e.enabled ? 'On' : 'Off')
        : (e.enabled ? 'On' : 'Off')),
      h('td', { 'data-label': 'Created' }, formatTime(e.created_at)),
      h('td', { 'data-label': 'Updated' }, formatTime(e.updated_at)),
      h('td', { 'data-label': 'Expires' }, formatTime(e.expires_at) || 'never'),
      canWrite ? h('td', { class: 'row-actions' },
        h('button', { type: 'button', class: 'secondary', 'aria-label': `Edit ${e.description || e.ip_address}`, onclick: () => entryDialog(api, account, e, version(), () => void reload(), conflict) }, 'Edit'),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${e.description || e.ip_address}`, onclick: () => remove(e) }, 'Delete')) : null));
    replaceChildren(tableBox, banner,
      h('table', { class: 'entries' }, h('caption', { class: 'visually-hidden' }, `Entries of ${account}, ${shown.length} shown`),
        h('thead', {}, h('tr', {}, ...header, canWrite ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')) : null)),
        h('tbody', {}, ...rows)),
      shown.length === 0 ? h('p', { class: 'empty' }, 'No entry matches the filter.') : null);
  };

  /** Sends a change with guard=strict; on a guard refusal asks before sending it again without. */
  const guarded = async (label: string, attempt: (strict: boolean) => Promise<unknown>): Promise<void> => {
    try {
      await attempt(true);
    } catch (error) {
      if (await conflict(error)) return;
      const warning = guardWarning(error);
      if (warning === null) {
        toast(`${label} failed: ${(error as Error).message}`, true);
        if (error instanceof ApiError && error.outcomeUnknown) await reload();
        return;
      }
      await openDialog({
        title: (error as ApiError).reason === 'would_open' ? 'This would open the account' : 'This would lock out callers',
        body: [h('p', { class: 'lockout', role: 'alert' }, warning)],
        submitLabel: `${label} anyway`,
        danger: true,
        onSubmit: async () => {
          try {
            await attempt(false);
          } catch (again) {
            if (!(await conflict(again))) throw again;
          }
          return true;
        },
      });
    }
    await reload();
  };

  const openAccount = (): Promise<void> => {
    const based = version();
    return guarded('Open', async (strict) => {
      await api.openAccount(account, { strict, version: based });
      toast(`${account} is open to every address`);
    });
  };

  const toggle = (e: Entry): Promise<void> => {
    const based = version();
    return guarded(e.enabled ? 'Disable' : 'Enable', (strict) => api.updateEntry(account, e.id, { enabled: !e.enabled }, { strict, version: based }));
  };

  const remove = async (e: Entry): Promise<void> => {
    const warning = h('p', { class: 'lockout', role: 'alert', hidden: true });
    const based = version();
    let strict = true;
    await openDialog({
      title: 'Delete this entry?',
      body: [h('p', {}, `${e.description || 'The entry'} (${e.ip_address}) will be removed; calls from it are refused from the next request on unless another entry allows them.`), warning],
      submitLabel: 'Delete',
      danger: true,
      onSubmit: async () => {
        try {
          await api.deleteEntry(account, e.id, { strict, version: based });
        } catch (error) {
          if (await conflict(error)) return true;
          const guard = guardWarning(error);
          if (guard !== null) {
            warning.textContent = `Warning: ${guard}`;
            warning.hidden = false;
            strict = false;
            const button = warning.closest('form')?.querySelector<HTMLButtonElement>('button[type=submit]');
            if (button) button.textContent = 'Delete anyway';
            return false;
          }
          throw error;
        }
        toast(`Deleted ${e.ip_address}`);
        return true;
      },
    });
    await reload();
  };

  /** The settings form, filled from `shown`; saved with the version it was filled from. */
  const renderSettings = (shown: AccountState): void => {
    const settings: Settings = shown.settings;
    settingsEdited = false;
    formBase = { version: shown.version, settings };
    const mode = h('select', { disabled: !canSettings }, h('option', { value: '' }, 'Gateway default'), h('option', { value: 'enforce' }, 'Enforce'), h('option', { value: 'report-only' }, 'Report only'), h('option', { value: 'off' }, 'Off'));
    mode.value = settings.mode ?? '';
    const fallback = h('select', { disabled: !canSettings }, h('option', { value: '' }, 'Gateway default'), h('option', { value: 'open' }, 'Open (no list: allow)'), h('option', { value: 'closed' }, 'Closed (no list: refuse)'));
    fallback.value = settings.default ?? '';
    const parent = h('input', { type: 'text', value: settings.parent ?? '', disabled: !canSettings, placeholder: 'none' });
    const limit = h('input', { type: 'number', min: 1, value: settings.max_entries ?? '', disabled: !canSettings, placeholder: 'gateway default' });
    const ipv6 = h('select', { disabled: !canSettings }, h('option', { value: '' }, 'Gateway default'), h('option', { value: 'false' }, 'Allowed'), h('option', { value: 'true' }, 'Refused (IPv4 only)'));
    ipv6.value = settings.ipv4_only === null ? '' : String(settings.ipv4_only);
    const guard = h('select', { disabled: !canSettings }, h('option', { value: '' }, 'Gateway default'), h('option', { value: 'warn' }, 'Warn'), h('option', { value: 'strict' }, 'Strict (refuse)'));
    guard.value = settings.guard ?? '';
    const error = h('p', { class: 'form-error', role: 'alert' });
    const listNote = h('p', { class: 'list-state-note' }, h('strong', {}, 'List: '), LIST_STATE_TEXT[settings.list_state]);
    const form = h('form', { class: 'settings' }, field('Mode', mode).row, field('Default', fallback).row, field('Parent account', parent, 'Inherit the parent\'s list').row,
      field('Entry limit', limit).row, field('IPv6 entries', ipv6).row,
      field('Lockout guard', guard, 'Strict refuses changes that block a recent caller').row, canSettings ? h('button', { type: 'submit', class: 'secondary' }, 'Save settings') : null, error);
    form.addEventListener('input', () => { settingsEdited = true; });
    form.addEventListener('change', () => { settingsEdited = true; });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.textContent = '';
      const body: Record<string, unknown> = { mode: mode.value || null, default: fallback.value || null, parent: parent.value.trim() || null, max_entries: limit.value === '' ? null : Number(limit.value),
        ipv4_only: ipv6.value === '' ? null : ipv6.value === 'true', guard: guard.value || null };
      try {
        const saved = await api.saveSettings(account, body, formBase?.version ?? shown.version);
        toast('Settings saved');
        notice.hidden = true;
        settingsEdited = false;
        // The form shows what was saved: it stays, based on the saved version.
        formBase = { version: saved.version, settings: saved };
        await reload();
      } catch (e) {
        if (!(await conflict(e))) error.textContent = (e as Error).message;
      }
    });
    replaceChildren(settingsBox, h('h2', { id: 'settings-title' }, 'Settings'), listNote, form);
  };

  const renderAudit = async (): Promise<void> => {
    try {
      const events = await api.audit(account);
      replaceChildren(auditBox, events.length === 0 ? h('p', { class: 'empty' }, 'No change recorded yet.')
        : h('ol', { class: 'audit' }, ...events.map((e) => h('li', {}, h('time', { datetime: e.at }, formatTime(e.at)), ' ', h('strong', {}, e.action), ` by ${e.actor.name} (${e.actor.role}), version ${e.version}`))));
    } catch (error) {
      replaceChildren(auditBox, h('p', { class: error instanceof ApiError && error.status === 404 ? 'empty' : 'form-error' }, (error as Error).message));
    }
  };

  const checkForm = checkPanel(api, account, 'What would a call from this address get now?');

  // The export needs the bearer token, so a plain link cannot fetch it: read it, then save it.
  const download = async (format: 'csv' | 'json'): Promise<void> => {
    try {
      const text = await api.exportList(account, format);
      const url = URL.createObjectURL(new Blob([text], { type: format === 'csv' ? 'text/csv' : 'application/json' }));
      const link = h('a', { href: url, download: `${account}-ip-acl.${format}` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 0);
    } catch (error) {
      toast(`Export failed: ${(error as Error).message}`);
    }
  };

  filter.addEventListener('input', renderTable);
  replaceChildren(root,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, who.role === 'account' ? null : h('a', { href: '#/accounts' }, 'Accounts'), who.role === 'account' ? null : ' / ', h('span', { 'aria-current': 'page' }, account)),
    h('h1', {}, `Account ${account}`),
    notice,
    h('section', { 'aria-labelledby': 'entries-title' },
      h('div', { class: 'toolbar' }, h('h2', { id: 'entries-title' }, 'IP access list'), filter,
        canWrite ? h('button', { type: 'button', class: 'primary', onclick: () => entryDialog(api, account, null, version(), () => void reload(), conflict) }, 'Add entry') : null,
        canWrite ? h('button', { type: 'button', class: 'secondary', onclick: () => importDialog(api, account, () => void reload()) }, 'Import') : null,
        h('button', { type: 'button', class: 'secondary', onclick: () => void download('csv') }, 'Export CSV'),
        h('button', { type: 'button', class: 'secondary', onclick: () => void download('json') }, 'Export JSON')),
      tableBox),
    h('section', { 'aria-labelledby': 'check-title' }, h('h2', { id: 'check-title' }, 'Check an IP'), checkForm),
    h('section', { 'aria-labelledby': 'recent-title' }, h('h2', { id: 'recent-title' }, 'Recent callers'), recent.element),
    keys.element,
    settingsBox,
    h('section', { 'aria-labelledby': 'audit-title' }, h('h2', { id: 'audit-title' }, 'Audit trail'), auditBox));
  await reload({ settings: true });
}
