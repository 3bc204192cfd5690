import { ApiError, guardWarning, keyListId, type Api, type ApiKey, type Entry, type ListState, type Whoami } from './api.ts';
import { entryDialog } from './entry-dialog.ts';
import { field, formatTime, h, openDialog, replaceChildren, toast } from './dom.ts';
import { checkPanel, recentPanel } from './list-panels.ts';

/**
 * An account's API keys (a section of the account's page) and a key's own page: its list, the
 * check box and its recent callers. A key's list is served by the same entry routes as an
 * account's, so the entry dialog is the account's, given the key's list id.
 */

const KEY_LIST_TEXT: Readonly<Record<ListState, string>> = {
  none: 'no list of its own: the account\'s list alone applies',
  active: 'restricted by its own list too',
  empty: 'list emptied: every request with the key is refused',
};

const keyHash = (account: string, id: string): string => `#/accounts/${encodeURIComponent(account)}/keys/${encodeURIComponent(id)}`;

/**
 * Sends a change with guard=strict; when the lockout guard refuses it, says why and sends it
 * again without once confirmed. A 412 (the page is behind) reloads instead.
 */
async function guardedChange(label: string, attempt: (strict: boolean) => Promise<unknown>, reload: () => Promise<void>): Promise<void> {
  try {
    await attempt(true);
  } catch (error) {
    const warning = guardWarning(error);
    if (warning === null) {
      toast(error instanceof ApiError && error.status === 412 ? `${label}: the page was out of date and has been reloaded; try again` : `${label} failed: ${(error as Error).message}`, true);
      await reload();
      return;
    }
    await openDialog({
      title: (error as ApiError).reason === 'would_open' ? 'This would open the key' : 'This would lock out callers',
      body: [h('p', { class: 'lockout', role: 'alert' }, warning)],
      submitLabel: `${label} anyway`,
      danger: true,
      onSubmit: async () => {
        await attempt(false);
        return true;
      },
    });
  }
  await reload();
}

/** The "API keys" section of an account's page: every key with its last use and its list's state. */
export function keysSection(api: Api, who: Whoami, account: string, changed: () => Promise<void>): { readonly element: HTMLElement; readonly reload: () => Promise<void> } {
  const canWrite = who.role !== 'read-only';
  const box = h('div', { class: 'table-box' });
  let version = 0;

  const reload = async (): Promise<void> => {
    let keys: ApiKey[];
    try {
      ({ keys, version } = await api.keys(account));
    } catch (error) {
      replaceChildren(box, h('p', { class: 'form-error', role: 'alert' }, `Could not load the keys: ${(error as Error).message}`));
      return;
    }
    if (keys.length === 0) {
      replaceChildren(box, h('p', { class: 'empty' }, 'No API key is registered for this account. Register the keys its clients send (X-API-Key, Bearer, ...): requests with them are then checked against this account\'s list, and each key can have a list of its own.'));
      return;
    }
    replaceChildren(box, h('table', { class: 'keys' }, h('caption', { class: 'visually-hidden' }, `API keys of ${account}`),
      h('thead', {}, h('tr', {}, ...['Name', 'Fingerprint', 'Enabled', 'Own list', 'Last used', 'From'].map((label) => h('th', { scope: 'col' }, label)),
        canWrite ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')) : null)),
      h('tbody', {}, ...keys.map((k) => h('tr', { 'data-key': k.id, class: k.enabled ? '' : 'disabled' },
        h('td', { 'data-label': 'Name' }, h('a', { href: keyHash(account, k.id) }, k.name || k.id)),
        h('td', { 'data-label': 'Fingerprint' }, h('code', {}, k.fingerprint)),
        h('td', { 'data-label': 'Enabled' }, canWrite
          ? h('button', { type: 'button', class: 'toggle', 'aria-pressed': String(k.enabled), 'aria-label': `${k.enabled ? 'Disable' : 'Enable'} key ${k.name || k.id}`, onclick: () => void toggle(k) }, k.enabled ? 'On' : 'Off')
          : (k.enabled ? 'On' : 'Off')),
        h('td', { 'data-label': 'Own list', class: `key-list ${k.list_state}` }, KEY_LIST_TEXT[k.list_state]),
        h('td', { 'data-label': 'Last used' }, formatTime(k.last_used_at) || 'never'),
        h('td', { 'data-label': 'From' }, k.last_used_ip === null ? '—' : h('code', {}, k.last_used_ip)),
        canWrite ? h('td', { class: 'row-actions' },
          h('button', { type: 'button', class: 'secondary', 'aria-label': `The list of key ${k.name || k.id}`, onclick: () => { location.hash = keyHash(account, k.id); } }, 'List'),
          h('button', { type: 'button', class: 'secondary', 'aria-label': `Rename key ${k.name || k.id}`, onclick: () => void rename(k) }, 'Rename'),
          h('button', { type: 'button', class: 'danger', 'aria-label': `Delete key ${k.name || k.id}`, onclick: () => void remove(k) }, 'Delete')) : null)))));
  };

  // After a change: the keys again, and what else on the page shows it (the audit trail).
  const refresh = async (): Promise<void> => {
    await reload();
    await changed();
  };

  const toggle = async (k: ApiKey): Promise<void> => {
    try {
      await api.updateKey(account, k.id, { enabled: !k.enabled }, version);
      toast(`Key ${k.name || k.id} ${k.enabled ? 'disabled' : 'enabled'}`);
    } catch (error) {
      toast(`${k.enabled ? 'Disable' : 'Enable'} failed: ${(error as Error).message}`, true);
    }
    await refresh();
  };

  const rename = async (k: ApiKey): Promise<void> => {
    const name = h('input', { type: 'text', maxlength: 255, autocomplete: 'off', value: k.name });
    const nameField = field('Name', name, 'What the key is for, e.g. CI runner. The key itself does not change.');
    await openDialog({
      title: `Rename key ${k.name || k.id}`,
      body: [nameField.row],
      submitLabel: 'Rename',
      onSubmit: async () => {
        nameField.error.textContent = '';
        try {
          await api.updateKey(account, k.id, { name: name.value }, version);
        } catch (error) {
          // A 412: someone changed the keys since this page was drawn; the reload shows what they did.
          nameField.error.textContent = error instanceof ApiError && error.status === 412 ? 'The keys changed since this page was loaded: close this, look again, and retry.' : (error as Error).message;
          return false;
        }
        toast(`Renamed key ${k.name || k.id} to ${name.value || k.id}`);
        return true;
      },
    });
    await refresh();
  };

  const remove = async (k: ApiKey): Promise<void> => {
    await openDialog({
      title: 'Delete this key?',
      body: [h('p', {}, `Key ${k.name || k.id} (${k.fingerprint}) and its own list will be deleted: requests with it are refused as unknown from the next request on.`)],
      submitLabel: 'Delete',
      danger: true,
      onSubmit: async () => {
        await api.deleteKey(account, k.id, version);
        toast(`Deleted key ${k.name || k.id}`);
        return true;
      },
    });
    await refresh();
  };

  const register = async (): Promise<void> => {
    const name = h('input', { type: 'text', maxlength: 255, autocomplete: 'off' });
    const key = h('input', { type: 'password', autocomplete: 'off', spellcheck: 'false' });
    const sha = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: '64 hex digits' });
    const keyField = field('Key, as clients send it', key, 'Kept only as a keyed hash: never stored, shown or logged.');
    const shaField = field('Or only its SHA-256', sha, 'printf %s "$KEY" | sha256sum');
    await openDialog({
      title: `Register an API key for ${account}`,
      body: [field('Name', name, 'What the key is for, e.g. CI runner').row, keyField.row, shaField.row],
      submitLabel: 'Register',
      onSubmit: async () => {
        keyField.error.textContent = '';
        if ((key.value === '') === (sha.value.trim() === '')) {
          keyField.error.textContent = 'Give the key, or its SHA-256: exactly one of them.';
          return false;
        }
        try {
          const added = await api.addKey(account, key.value === '' ? { key_sha256: sha.value.trim() } : { key: key.value }, name.value);
          toast(`Registered key ${added.name || added.id} (${added.fingerprint})`);
        } catch (error) {
          keyField.error.textContent = (error as Error).message;
          return false;
        }
        return true;
      },
    });
    await refresh();
  };

  const element = h('section', { 'aria-labelledby': 'keys-title' },
    h('div', { class: 'toolbar' }, h('h2', { id: 'keys-title' }, 'API keys'),
      canWrite ? h('button', { type: 'button', class: 'primary', onclick: () => void register() }, 'Register key') : null),
    box);
  return { element, reload };
}

/** One key's page: what it is, its own list (checked after the account's), a check box and its recent callers. */
export async function keyView(root: HTMLElement, api: Api, who: Whoami, account: string, keyId: string): Promise<void> {
  const canWrite = who.role !== 'read-only';
  const canOpen = who.role === 'owner' || who.role === 'admin';
  const listId = keyListId(account, keyId);
  const title = h('h1', {}, `Key ${keyId}`);
  const infoBox = h('div');
  const tableBox = h('div', { class: 'table-box' });
  const recent = recentPanel(api, listId, 'No forwarded request with this key in the last 24 hours.');
  let version = 0;
  let state: ListState = 'none';

  const reload = async (): Promise<void> => {
    let key: ApiKey;
    let list: { entries: Entry[]; version: number };
    try {
      [key, list] = await Promise.all([api.key(account, keyId), api.entries(listId)]);
    } catch (error) {
      replaceChildren(tableBox, h('p', { class: 'form-error', role: 'alert' }, `Could not load the key: ${(error as Error).message}`));
      return;
    }
    version = list.version;
    state = key.list_state;
    title.textContent = `Key ${key.name || key.id} of ${account}`;
    replaceChildren(infoBox, h('dl', { class: 'key-info' },
      h('dt', {}, 'Fingerprint'), h('dd', {}, h('code', {}, key.fingerprint)),
      h('dt', {}, 'Enabled'), h('dd', {}, key.enabled ? 'yes' : 'no: requests with it are refused (key_disabled)'),
      h('dt', {}, 'Last used'), h('dd', {}, key.last_used_at === null ? 'never' : `${formatTime(key.last_used_at)} from ${key.last_used_ip ?? '?'}`),
      h('dt', {}, 'Own list'), h('dd', {}, KEY_LIST_TEXT[key.list_state])));
    renderTable(list.entries);
    await recent.reload();
  };

  const renderTable = (entries: readonly Entry[]): void => {
    const banner = state === 'empty' ? h('div', { class: 'lockout list-state', role: 'status' },
      h('p', {}, h('strong', {}, 'The key\'s list is empty: '), 'no allow entry is in force, so every request with this key is refused (list_empty_for_key). A list never opens by itself: add an allow entry, or open the key\'s list so the account\'s list alone applies.'),
      canOpen ? h('button', { type: 'button', class: 'danger', onclick: () => void open() }, 'Open the key\'s list') : null) : null;
    if (entries.length === 0) {
      replaceChildren(tableBox, banner ?? h('p', { class: 'empty' }, 'No entries: the account\'s list alone decides for this key. Add the addresses this key may be used from (a CI runner\'s range, say), and requests with it from anywhere else are refused even where the account allows them.'));
      return;
    }
    replaceChildren(tableBox, banner, h('table', { class: 'entries' }, h('caption', { class: 'visually-hidden' }, `Entries of key ${keyId}`),
      h('thead', {}, h('tr', {}, ...['Name', 'Address', 'Action', 'Enabled', 'Expires'].map((label) => h('th', { scope: 'col' }, label)),
        canWrite ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')) : null)),
      h('tbody', {}, ...entries.map((e) => h('tr', { 'data-entry': e.id, class: e.enabled ? '' : 'disabled' },
        h('td', { 'data-label': 'Name' }, e.description || '—'),
        h('td', { 'data-label': 'Address' }, h('code', {}, e.ip_address)),
        h('td', { 'data-label': 'Action' }, h('span', { class: `badge ${e.action}` }, e.action)),
        h('td', { 'data-label': 'Enabled' }, canWrite
          ? h('button', { type: 'button', class: 'toggle', 'aria-pressed': String(e.enabled), 'aria-label': `${e.enabled ? 'Disable' : 'Enable'} ${e.description || e.ip_address}`, onclick: () => void toggle(e) }, e.enabled ? 'On' : 'Off')
          : (e.enabled ? 'On' : 'Off')),
        h('td', { 'data-label': 'Expires' }, formatTime(e.expires_at) || 'never'),
        canWrite ? h('td', { class: 'row-actions' },
          h('button', { type: 'button', class: 'secondary', 'aria-label': `Edit ${e.description || e.ip_address}`, onclick: () => void entryDialog(api, listId, e, version, () => void reload(), stale) }, 'Edit'),
          h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${e.description || e.ip_address}`, onclick: () => void remove(e) }, 'Delete')) : null)))));
  };

  /** A change refused because the page was behind (412): reload, say so, and close the dialog. */
  const stale = async (error: unknown): Promise<boolean> => {
    if (!(error instanceof ApiError) || error.status !== 412) return false;
    toast('The key\'s list changed since this page loaded it: reloaded, nothing saved', true);
    await reload();
    return true;
  };

  const toggle = (e: Entry): Promise<void> => {
    const based = version;
    return guardedChange(e.enabled ? 'Disable' : 'Enable', (strict) => api.updateEntry(listId, e.id, { enabled: !e.enabled }, { strict, version: based }), reload);
  };

  const remove = (e: Entry): Promise<void> => {
    const based = version;
    return guardedChange('Delete', (strict) => api.deleteEntry(listId, e.id, { strict, version: based }), reload);
  };

  const open = (): Promise<void> => {
    const based = version;
    return guardedChange('Open', async (strict) => {
      await api.openKeyList(account, keyId, { strict, version: based });
      toast(`The list of key ${keyId} is open: the account's list alone applies to it`);
    }, reload);
  };

  const checkForm = checkPanel(api, listId, 'What would a request with this key from this address get now? (the account\'s list, then the key\'s)');

  replaceChildren(root,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, who.role === 'account' ? null : h('a', { href: '#/accounts' }, 'Accounts'), who.role === 'account' ? null : ' / ',
      h('a', { href: `#/accounts/${encodeURIComponent(account)}` }, account), ' / ', h('span', { 'aria-current': 'page' }, `key ${keyId}`)),
    title,
    infoBox,
    h('section', { 'aria-labelledby': 'key-entries-title' },
      h('div', { class: 'toolbar' }, h('h2', { id: 'key-entries-title' }, 'The key\'s own IP access list'),
        canWrite ? h('button', { type: 'button', class: 'primary', onclick: () => void entryDialog(api, listId, null, version, () => void reload(), stale) }, 'Add entry') : null),
      h('p', { class: 'field-hint' }, 'A request with this key must pass the account\'s list and this one.'),
      tableBox),
    h('section', { 'aria-labelledby': 'key-check-title' }, h('h2', { id: 'key-check-title' }, 'Check an IP'), checkForm),
    h('section', { 'aria-labelledby': 'key-recent-title' }, h('h2', { id: 'key-recent-title' }, 'Recent callers with this key'), recent.element));
  await reload();
}
