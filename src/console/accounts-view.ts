import type { Api } from './api.ts';
import { field, h, replaceChildren } from './dom.ts';

/** Every account with a list, searchable; any other account id can be opened directly. */
export async function accountsView(root: HTMLElement, api: Api): Promise<void> {
  const search = h('input', { type: 'search', placeholder: 'AC123…', autocomplete: 'off' });
  const list = h('div', { 'aria-live': 'polite' });
  const open = h('input', { type: 'text', placeholder: 'Account id', autocomplete: 'off', spellcheck: 'false' });
  const openForm = h('form', { class: 'open-account' }, field('Open an account by id', open, 'Accounts without a list are not listed above').row, h('button', { type: 'submit', class: 'secondary' }, 'Open'));
  openForm.addEventListener('submit', (event) => {
    event.preventDefault();
    if (open.value.trim() !== '') location.hash = `#/accounts/${encodeURIComponent(open.value.trim())}`;
  });
  replaceChildren(root, h('h1', {}, 'Accounts'), field('Search accounts', search).row, list, openForm);

  let accounts: string[];
  try {
    accounts = await api.accounts();
  } catch (error) {
    replaceChildren(list, h('p', { class: 'form-error', role: 'alert' }, `Could not load the accounts: ${(error as Error).message}`));
    return;
  }
  const render = (): void => {
    const q = search.value.trim().toLowerCase();
    const shown = accounts.filter((a) => a.toLowerCase().includes(q));
    replaceChildren(list, accounts.length === 0
      ? h('p', { class: 'empty' }, 'No account has a list yet. Open one by its id below to add the first entry.')
      : shown.length === 0 ? h('p', { class: 'empty' }, 'No account matches.')
        : h('ul', { class: 'accounts' }, ...shown.map((a) => h('li', {}, h('a', { href: `#/accounts/${encodeURIComponent(a)}` }, a)))));
  };
  search.addEventListener('input', render);
  render();
  search.focus();
}
