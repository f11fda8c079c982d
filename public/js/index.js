// The home page: sign in, then the tenants (admin) or straight to the tenant's own deploys.
import { api, ApiError, confirmDialog, el, loadSession, renderNav, say, setSession, showError } from './common.js';

const LIMIT_FIELDS = ['memoryMB', 'cpuPercent', 'pids', 'archiveMB', 'files'];

async function start() {
  const p = await loadSession();
  if (!p) return showSignIn();
  if (p.kind === 'tenant') return location.replace(`/deploys?t=${encodeURIComponent(p.tenantId)}`);
  renderNav('tenants');
  document.getElementById('tenants').hidden = false;
  await listTenants();
}

function showSignIn() {
  document.getElementById('sign-in').hidden = false;
  const form = document.getElementById('sign-in-form');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = form.elements.token;
    try {
      setSession(await api('POST', '/api/v1/session', { token: input.value }));
      input.value = '';
      location.reload();
    } catch (err) {
      input.value = '';
      showError(err instanceof ApiError && err.status === 401 ? new Error('That token is not valid.') : err);
      input.focus();
    }
  });
  document.getElementById('token').focus();
}

function limitsText(l) {
  return `${l.memoryMB} MB, ${l.cpuPercent}% CPU, ${l.pids} processes, ${l.archiveMB} MB / ${l.files} files per upload`;
}

async function listTenants() {
  const { tenants } = await api('GET', '/api/v1/tenants');
  const rows = tenants.map((t) =>
    el(
      'tr',
      {},
      el('th', { scope: 'row' }, el('a', { href: `/deploys?t=${encodeURIComponent(t.id)}` }, t.id)),
      el('td', {}, t.url ? el('a', { href: t.url }, t.url) : ''),
      el('td', {}, t.liveDeployId ?? 'none'),
      el('td', {}, t.limits ? limitsText(t.limits) : ''),
      el('td', {}, el('button', { type: 'button', class: 'danger', 'aria-label': `Delete tenant ${t.id}`, onclick: () => deleteTenant(t.id) }, 'Delete')),
    ),
  );
  document.getElementById('tenant-rows').replaceChildren(...rows);
  if (!tenants.length) document.getElementById('tenant-rows').append(el('tr', {}, el('td', { colspan: 5 }, 'No tenants yet.')));
}

async function deleteTenant(id) {
  const ok = await confirmDialog(
    `Delete tenant "${id}"? Its sites, releases, data, domains, tokens and repository are removed. This cannot be undone.`,
    `Delete ${id}`,
  );
  if (!ok) return;
  try {
    await api('DELETE', `/api/v1/tenants/${encodeURIComponent(id)}`);
    say(`Tenant ${id} deleted.`);
    await listTenants();
  } catch (err) {
    showError(err);
  }
}

document.getElementById('create-tenant').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  const limits = {};
  for (const k of LIMIT_FIELDS) if (f[k].value !== '') limits[k] = Number(f[k].value);
  try {
    const t = await api('POST', '/api/v1/tenants', { id: f.id.value.trim(), ...(Object.keys(limits).length ? { limits } : {}) });
    e.target.reset();
    say(`Tenant ${t.id} created: ${t.url ?? ''}`);
    await listTenants();
  } catch (err) {
    showError(err);
  }
});

start().catch(showError);

