import { formatCidr } from '../ip/cidr.ts';
import { parseRule } from '../ip/rule.ts';
import { ApiError, guardWarning, type Api, type Entry } from './api.ts';
import { field, h, openDialog, toast, uid } from './dom.ts';

/** Refusals that are about the address itself: shown under the address field. */
const ADDRESS_REASONS = new Set(['invalid_format', 'duplicate', 'subset_exists', 'superset_conflict', 'reserved_range', 'ipv6_not_allowed']);

type Kind = 'ip' | 'range';

/** The address as typed, split into the dialog's two shapes: one field, or a first and a last. */
function shapeOf(address: string): { kind: Kind; first: string; last: string } {
  const dash = address.indexOf('-');
  if (dash < 0) return { kind: 'ip', first: address, last: '' };
  const first = address.slice(0, dash).trim();
  let last = address.slice(dash + 1).trim();
  // 203.0.113.10-20: the last octet only.
  if (!last.includes('.') && !last.includes(':')) last = `${first.slice(0, first.lastIndexOf('.') + 1)}${last}`;
  return { kind: 'range', first, last };
}

function toLocalInput(iso: string | null): string {
  if (iso === null) return '';
  const d = new Date(iso);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * Add (entry null) or edit an entry. Shows the networks the address becomes as it is typed,
 * puts each refusal next to the field it is about, offers to replace narrower entries a new one
 * would cover, and warns before a change that would block a recent caller (it is sent with
 * guard=strict first; "Save anyway" sends it again without). The change is sent with the version
 * the page showed (`version`); when the account moved since, `onConflict` reloads the page and
 * says what changed, and the dialog closes with nothing saved.
 */
export function entryDialog(api: Api, account: string, entry: Entry | null, version: number, onSaved: () => void, onConflict: (error: unknown) => Promise<boolean>): Promise<void> {
  const shape = shapeOf(entry?.ip_address ?? '');
  const radioName = uid('kind');
  const kindIp = h('input', { type: 'radio', name: radioName, value: 'ip', id: uid('kind-ip'), checked: shape.kind === 'ip' });
  const kindRange = h('input', { type: 'radio', name: radioName, value: 'range', id: uid('kind-range'), checked: shape.kind === 'range' });
  const kindGroup = h('fieldset', { class: 'kind' }, h('legend', {}, 'IP type'),
    h('label', { for: kindIp.id }, kindIp, ' IP'), h('label', { for: kindRange.id }, kindRange, ' Range'));

  const name = h('input', { type: 'text', name: 'name', maxlength: 255, autocomplete: 'off', value: entry?.description ?? '' });
  const address = h('input', { type: 'text', name: 'address', autocomplete: 'off', spellcheck: 'false', value: shape.kind === 'ip' ? shape.first : '', placeholder: '203.0.113.7, 203.0.113.0/24 or 203.0.113.0/255.255.255.0' });
  const first = h('input', { type: 'text', name: 'first', autocomplete: 'off', spellcheck: 'false', value: shape.first, placeholder: '203.0.113.10' });
  const last = h('input', { type: 'text', name: 'last', autocomplete: 'off', spellcheck: 'false', value: shape.last, placeholder: '203.0.113.20' });
  const action = h('select', { name: 'action' }, h('option', { value: 'allow' }, 'Allow'), h('option', { value: 'deny' }, 'Deny'));
  action.value = entry?.action ?? 'allow';
  const expires = h('input', { type: 'datetime-local', name: 'expires', value: toLocalInput(entry?.expires_at ?? null) });

  const nameField = field('Name', name, 'What the address is, e.g. "Office Berlin"');
  const addressField = field('Address', address, 'An address, a CIDR or an IPv4 address/netmask');
  const firstField = field('First address', first);
  const lastField = field('Last address', last);
  const expiresField = field('Expires (optional)', expires, 'Leave empty to keep the entry until it is removed');
  const preview = h('p', { class: 'preview', 'aria-live': 'polite' });
  const formError = h('p', { class: 'form-error', role: 'alert' });
  const lockout = h('div', { class: 'lockout', role: 'alert', hidden: true });
  const replaceBox = h('input', { type: 'checkbox', id: uid('replace') });
  const replaceRow = h('p', { class: 'replace', hidden: true }, h('label', { for: replaceBox.id }, replaceBox, ' Replace the narrower entries with this one'));
  const rangeFields = h('div', { class: 'range-fields' }, firstField.row, lastField.row);

  const kind = (): Kind => (kindRange.checked ? 'range' : 'ip');
  const typed = (): string => (kind() === 'ip' ? address.value.trim() : `${first.value.trim()} - ${last.value.trim()}`);
  const addressError = (): HTMLElement => (kind() === 'ip' ? addressField.error : firstField.error);

  let confirmedLockout = false;
  const resetWarnings = (): void => {
    confirmedLockout = false;
    lockout.hidden = true;
    const button = lockout.closest('form')?.querySelector<HTMLButtonElement>('button[type=submit]');
    if (button) button.textContent = 'Save';
    formError.textContent = '';
    for (const f of [addressField, firstField, lastField, nameField, expiresField]) f.error.textContent = '';
    for (const input of [address, first, last]) input.removeAttribute('aria-invalid');
  };

  const update = (): void => {
    addressField.row.hidden = kind() !== 'ip';
    rangeFields.hidden = kind() !== 'range';
    const text = typed();
    if (kind() === 'ip' ? text === '' : first.value.trim() === '' || last.value.trim() === '') {
      preview.textContent = '';
      return;
    }
    const parsed = parseRule(text);
    preview.textContent = parsed.ok ? `Becomes ${parsed.value.cidrs.map(formatCidr).join(', ')}` : '';
    preview.classList.toggle('invalid', !parsed.ok);
    if (!parsed.ok) preview.textContent = parsed.error;
  };
  for (const input of [address, first, last, kindIp, kindRange]) input.addEventListener('input', () => { resetWarnings(); update(); });
  update();

  const submit = async (): Promise<boolean> => {
    const text = typed();
    const parsed = parseRule(text);
    if (!parsed.ok) {
      addressError().textContent = parsed.error;
      (kind() === 'ip' ? address : first).setAttribute('aria-invalid', 'true');
      (kind() === 'ip' ? address : first).focus();
      return false;
    }
    const fields: Record<string, unknown> = { ip_address: text, description: name.value.trim(), action: action.value };
    if (expires.value !== '') fields['expires_at'] = new Date(expires.value).toISOString();
    else if (entry?.expires_at) fields['expires_at'] = null;
    const options = { strict: !confirmedLockout, replace: replaceBox.checked, version };
    let saved;
    try {
      saved = entry === null ? await api.addEntry(account, fields, options) : await api.updateEntry(account, entry.id, fields, options);
    } catch (error) {
      if (await onConflict(error)) return true;
      if (!(error instanceof ApiError)) throw error;
      // Maybe saved, maybe not: the list behind the dialog shows which.
      if (error.outcomeUnknown) onSaved();
      const warning = guardWarning(error);
      if (warning !== null) {
        lockout.replaceChildren(h('strong', {}, 'Warning: '), warning, ' Press "Save anyway" to apply it regardless.');
        lockout.hidden = false;
        confirmedLockout = true;
        const button = lockout.closest('form')?.querySelector<HTMLButtonElement>('button[type=submit]');
        if (button) button.textContent = 'Save anyway';
        return false;
      }
      if (ADDRESS_REASONS.has(error.reason)) {
        addressError().textContent = error.message;
        (kind() === 'ip' ? address : first).setAttribute('aria-invalid', 'true');
        replaceRow.hidden = error.reason !== 'superset_conflict';
      } else if (error.reason === 'invalid_field' && /expires_at/.test(error.message)) {
        expiresField.error.textContent = error.message;
      } else {
        formError.textContent = error.message;
      }
      return false;
    }
    // The list will empty when its temporary entries expire: said where it cannot be missed.
    const empties = saved.warnings?.find((w) => w.reason === 'will_empty');
    toast(`${entry === null ? `Added ${text}` : `Saved ${text}`}${empties?.message ? `. Note: ${empties.message}` : ''}`);
    onSaved();
    return true;
  };

  return openDialog({
    title: entry === null ? 'Add an entry' : 'Edit entry',
    submitLabel: 'Save',
    body: [kindGroup, nameField.row, addressField.row, rangeFields, preview, replaceRow,
      field('Action', action).row, expiresField.row, lockout, formError],
    onSubmit: submit,
  });
}
