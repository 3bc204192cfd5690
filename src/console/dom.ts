/**
 * Building the page without innerHTML: every value from the API or the user becomes a text node,
 * so nothing an entry's name holds can turn into markup.
 */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function replaceChildren(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

let ids = 0;
/** A unique id for label/field and field/message pairs. */
export function uid(prefix: string): string {
  return `${prefix}-${++ids}`;
}

export interface DialogOptions {
  readonly title: string;
  readonly body: (Child | Child[])[];
  /** The primary action; the dialog stays open while it runs and closes when it resolves true. */
  readonly submitLabel: string;
  readonly onSubmit: () => Promise<boolean>;
  readonly danger?: boolean;
}

/**
 * A modal <dialog>: the browser keeps focus inside it and closes it on Escape; Enter in a field
 * submits its form. Resolves when it closes.
 */
export function openDialog(options: DialogOptions): Promise<void> {
  const titleId = uid('dialog-title');
  const submit = h('button', { type: 'submit', class: options.danger ? 'danger' : 'primary' }, options.submitLabel);
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const form = h('form', { method: 'dialog', novalidate: true },
    h('h2', { id: titleId }, options.title),
    ...options.body,
    h('div', { class: 'actions' }, cancel, submit));
  const dialog = h('dialog', { 'aria-labelledby': titleId }, form);
  document.body.append(dialog);
  cancel.addEventListener('click', () => dialog.close());
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    submit.disabled = true;
    options.onSubmit().then((done) => {
      submit.disabled = false;
      if (done) dialog.close();
    }, (error: unknown) => {
      submit.disabled = false;
      toast(`Failed: ${(error as Error).message}`, true);
    });
  });
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve();
    });
    dialog.showModal();
    (form.querySelector('input, select, textarea, button.primary, button.danger') as HTMLElement | null)?.focus();
  });
}

/** A short message in the live region (read out by screen readers). */
export function toast(message: string, error = false): void {
  const region = document.getElementById('toast');
  if (!region) return;
  region.className = error ? 'toast error' : 'toast';
  region.textContent = message;
  window.clearTimeout(Number(region.dataset['timer'] ?? 0));
  region.dataset['timer'] = String(window.setTimeout(() => { region.textContent = ''; region.className = 'toast'; }, 5000));
}

/** A labelled form field with a place for its error message, linked for assistive technology. */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): { row: HTMLElement; error: HTMLElement; hint: HTMLElement } {
  const id = control.id || uid('field');
  control.id = id;
  const error = h('p', { class: 'field-error', id: `${id}-error`, role: 'alert' });
  const help = h('p', { class: 'field-hint', id: `${id}-hint` }, hint ?? '');
  control.setAttribute('aria-describedby', `${id}-hint ${id}-error`);
  const row = h('div', { class: 'field' }, h('label', { for: id }, label), control, help, error);
  return { row, error, hint: help };
}

export function formatTime(iso: string | null): string {
  if (iso === null) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
