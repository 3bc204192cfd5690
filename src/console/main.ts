import { accountView } from './account-view.ts';
import { accountsView } from './accounts-view.ts';
import { keyView } from './keys-view.ts';
import { Api, ApiError, type Whoami } from './api.ts';
import { field, h, replaceChildren } from './dom.ts';

/**
 * The console: sign in with an admin API token (kept for this tab only), then the accounts list
 * or, for an account credential, its own account. Routes live in the URL fragment.
 */

const TOKEN_KEY = 'allowgate.token';
const main = document.getElementById('main')!;
const who = document.getElementById('who')!;
const signOut = document.getElementById('signout') as HTMLButtonElement;

let session: { api: Api; who: Whoami } | null = null;

signOut.addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  session = null;
  // Clearing the fragment routes (hashchange); routing here as well would draw the sign-in form
  // twice, the second time over a token already being typed.
  if (location.hash !== '') location.hash = '';
  else void route();
});
window.addEventListener('hashchange', () => void route());

async function signIn(token: string): Promise<string | null> {
  const api = new Api(token);
  try {
    session = { api, who: await api.whoami() };
  } catch (error) {
    return error instanceof ApiError && error.status === 401 ? 'That token is not valid for this gateway.' : (error as Error).message;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  who.textContent = `${session.who.name} (${session.who.role}${session.who.account ? `, ${session.who.account}` : ''})`;
  signOut.hidden = false;
  return null;
}

function signInView(): void {
  const token = h('input', { type: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h('form', { class: 'signin' }, h('h1', {}, 'Sign in'),
    h('p', {}, 'Use an admin token, or a token scoped to your account.'),
    field('Token', token).row, h('button', { type: 'submit', class: 'primary' }, 'Sign in'), error);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    const problem = await signIn(token.value.trim());
    if (problem !== null) {
      error.textContent = problem;
      token.focus();
      return;
    }
    await route();
  });
  who.textContent = '';
  signOut.hidden = true;
  replaceChildren(main, form);
  token.focus();
}

async function route(): Promise<void> {
  if (session === null) {
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved === null || (await signIn(saved)) !== null) return signInView();
  }
  const { api, who: me } = session!;
  const keyMatch = /^#\/accounts\/([^/]+)\/keys\/([^/]+)$/.exec(location.hash);
  const match = /^#\/accounts\/([^/]+)$/.exec(location.hash);
  // An account credential sees its own account (and its keys) and nothing else.
  const named = keyMatch ? decodeURIComponent(keyMatch[1]!) : match ? decodeURIComponent(match[1]!) : null;
  const account = me.role === 'account' ? me.account! : named;
  main.focus();
  if (account === null) return accountsView(main, api);
  if (keyMatch && account === named) return keyView(main, api, me, account, decodeURIComponent(keyMatch[2]!));
  return accountView(main, api, me, account);
}

void route();
