import type { Api } from './api.ts';
import { field, formatTime, h, replaceChildren } from './dom.ts';

/**
 * The panels an account's page and a key's page share, for the list they show (an account id, or
 * a key's list id): who called lately with the decision each gets now, and what a caller at an
 * address would get.
 */

/** Recent callers of the list's owner; `reload` reads them again. */
export function recentPanel(api: Api, id: string, emptyText: string): { readonly element: HTMLElement; readonly reload: () => Promise<void> } {
  const element = h('div');
  const reload = async (): Promise<void> => {
    try {
      const callers = await api.recent(id);
      replaceChildren(element, callers.length === 0 ? h('p', { class: 'empty' }, emptyText)
        : h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Address'), h('th', { scope: 'col' }, 'Last seen'), h('th', { scope: 'col' }, 'Now'))),
          h('tbody', {}, ...callers.map((c) => h('tr', {}, h('td', {}, h('code', {}, c.ip)), h('td', {}, formatTime(c.last_seen)),
            h('td', {}, h('span', { class: `badge ${c.decision === 'allow' ? 'allow' : 'deny'}` }, c.decision ?? 'unknown')))))));
    } catch (error) {
      replaceChildren(element, h('p', { class: 'form-error' }, (error as Error).message));
    }
  };
  return { element, reload };
}

const LIST_NAMES: Readonly<Record<string, string>> = { account: 'entry', key: 'the key\'s entry', parent: 'parent entry', global: 'global entry' };

/** "Check an IP": the decision the gateway would make now, and the entry that makes it. */
export function checkPanel(api: Api, id: string, hint: string): HTMLFormElement {
  const input = h('input', { type: 'text', placeholder: '203.0.113.7', spellcheck: 'false', autocomplete: 'off' });
  const result = h('div', { class: 'check-result', 'aria-live': 'polite' });
  const form = h('form', { class: 'check' }, field('IP address to check', input, hint).row, h('button', { type: 'submit', class: 'secondary' }, 'Check'), result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const r = await api.check(id, input.value.trim());
      const verdict = r.decision === 'allow' ? 'Allowed' : r.decision === 'report_only' ? 'Would be refused (report-only)' : r.decision === 'deny' ? 'Refused' : 'Error';
      replaceChildren(result, h('p', { class: `verdict ${r.decision}` }, h('strong', {}, verdict), ` (${r.reason})`,
        r.matched ? ` by ${LIST_NAMES[r.matched.list] ?? `${r.matched.list} entry`}${r.matched.cidr === undefined ? '' : ` ${r.matched.cidr}`} (${r.matched.action})` : ''));
    } catch (error) {
      replaceChildren(result, h('p', { class: 'form-error', role: 'alert' }, (error as Error).message));
    }
  });
  return form;
}
