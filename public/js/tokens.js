// A tenant's tokens (admin): create (the value shown once), revoke.
import { api, confirmDialog, currentTenant, el, formatTime, renderNav, requireSession, say, showError } from './common.js';

let tenant;
const base = () => `/api/v1/tenants/${encodeURIComponent(tenant)}/tokens`;

async function list() {
  const { tokens } = await api('GET', base());
  const rows = tokens.map((t) =>
    el(
      'tr',
      {},
      el('th', { scope: 'row' }, t.name),
      el('td', {}, t.scopes.join(', ')),
      el('td', {}, formatTime(t.createdAt)),
      el('td', {}, t.lastUsedAt ? formatTime(t.lastUsedAt) : 'never'),
      el('td', {}, el('button', { type: 'button', class: 'danger', 'aria-label': `Revoke token ${t.name}`, onclick: () => revoke(t) }, 'Revoke')),
    ),
  );
  const body = document.getElementById('token-rows');
  body.replaceChildren(...rows);
  if (!tokens.length) body.append(el('tr', {}, el('td', { colspan: 5 }, 'No tokens.')));
}

async function revoke(t) {
  if (!(await confirmDialog(`Revoke the token "${t.name}" of ${tenant}? Whatever uses it stops working at once.`, `Revoke ${t.name}`))) return;
  try {
    await api('DELETE', `${base()}/${encodeURIComponent(t.id)}`);
    say(`Token ${t.name} revoked.`);
    await list();
  } catch (err) {
    showError(err);
  }
}

document.getElementById('create-token').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.target;
  const scopes = [...form.querySelectorAll('input[name="scopes"]:checked')].map((i) => i.value);
  try {
    const t = await api('POST', base(), { name: form.elements.name.value.trim(), scopes });
    document.getElementById('new-token').hidden = false;
    document.getElementById('new-token-value').textContent = t.token;
    say(`Token ${t.name} created: copy it now, it is shown only once.`);
    await list();
  } catch (err) {
    showError(err);
  }
});

async function start() {
  const p = await requireSession();
  tenant = currentTenant();
  renderNav('tokens', tenant);
  if (p.kind !== 'admin') {
    document.querySelector('main').replaceChildren(el('h1', {}, 'Tokens'), el('p', {}, 'Only the admin manages tokens.'));
    return;
  }
  await list();
}
start().catch(showError);
