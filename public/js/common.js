// Shared by every dashboard page: the session (who is signed in, the CSRF
// token), API calls, a tiny DOM builder (text only: nothing is ever parsed as
// HTML), the navigation and status messages. The token itself is never kept:
// the session lives in an HttpOnly cookie the page cannot read.

let csrfToken = '';
/** @type {{kind: 'admin'} | {kind: 'tenant', tenantId: string, scopes: string[]} | null} */
export let principal = null;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the control API with the session cookie (and the CSRF token on changes). */
export async function api(method, path, body, headers = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers } };
  if (method !== 'GET' && method !== 'HEAD') init.headers['X-CSRF-Token'] = csrfToken;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data?.error?.code ?? 'error', data?.error?.message ?? `HTTP ${res.status}`);
  return data;
}

export function setSession(s) {
  principal = s.principal;
  csrfToken = s.csrfToken;
}

export function getCsrfToken() {
  return csrfToken;
}

/** The signed-in session, or null. */
export async function loadSession() {
  try {
    setSession(await api('GET', '/api/v1/session'));
    return principal;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

/** For pages behind sign-in: the session, or off to the sign-in page. */
export async function requireSession() {
  const p = await loadSession();
  if (!p) {
    location.assign('/');
    throw new Error('not signed in');
  }
  return p;
}

export async function signOut() {
  await api('DELETE', '/api/v1/session');
  principal = null;
  csrfToken = '';
  location.assign('/');
}

/** el('a', {href: '/x', class: 'b'}, 'text', child): attributes are set as attributes, children as text or nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** The tenant a page is about: ?t=<id>, or the signed-in tenant token's own. */
export function currentTenant() {
  const t = new URLSearchParams(location.search).get('t');
  if (t) return t;
  return principal?.kind === 'tenant' ? principal.tenantId : null;
}

export function can(scope) {
  return principal?.kind === 'admin' || (principal?.kind === 'tenant' && principal.scopes.includes(scope));
}

const PAGES = [
  ['deploys', 'Deploys', 'read'],
  ['logs', 'Log', 'read'],
  ['domains', 'Domains', 'read'],
  ['env', 'Environment', 'deploy'],
  ['plugins', 'Plugins', 'read'],
  ['tokens', 'Tokens', 'admin'],
];

/** The header: where you are, the tenant's pages you may open, sign out. */
export function renderNav(active, tenantId) {
  const header = document.getElementById('top');
  const links = [];
  if (principal?.kind === 'admin') links.push(['/', 'Tenants', active === 'tenants']);
  if (tenantId) {
    for (const [page, label, scope] of PAGES) {
      if (scope === 'admin' ? principal?.kind !== 'admin' : !can(scope)) continue;
      links.push([`/${page}?t=${encodeURIComponent(tenantId)}`, label, active === page]);
    }
  }
  const who = principal?.kind === 'admin' ? 'admin' : `tenant ${principal?.tenantId} (${principal?.scopes.join(', ')})`;
  header.replaceChildren(
    el('a', { href: '/', class: 'brand' }, 'Tenantry'),
    tenantId ? el('span', { class: 'tenant-name' }, tenantId) : '',
    el(
      'nav',
      { 'aria-label': 'Dashboard' },
      el('ul', {}, links.map(([href, label, current]) => el('li', {}, el('a', { href, 'aria-current': current ? 'page' : undefined }, label)))),
    ),
    el('span', { class: 'who' }, `Signed in as ${who}`),
    el('button', { type: 'button', id: 'sign-out', onclick: () => signOut().catch(showError) }, 'Sign out'),
  );
}

/** A message in the page's live region (read out by screen readers). */
export function say(text, kind = 'ok') {
  const box = document.getElementById('status');
  box.className = `status ${kind}`;
  box.textContent = text;
}

export function showError(err) {
  say(err instanceof Error ? err.message : String(err), 'error');
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** Asks in a modal <dialog>; resolves true only when the user confirms. */
export function confirmDialog(message, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = el(
      'dialog',
      { class: 'confirm', 'aria-labelledby': 'confirm-text' },
      el('p', { id: 'confirm-text' }, message),
      el(
        'form',
        { method: 'dialog' },
        el('button', { value: 'cancel', type: 'submit', autofocus: true }, 'Cancel'),
        el('button', { value: 'yes', type: 'submit', class: 'danger' }, confirmLabel),
      ),
    );
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'yes');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
