// Environment variables of the tenant's code: names only once set.
import { api, confirmDialog, currentTenant, el, renderNav, requireSession, say, showError } from './common.js';

let tenant;
const base = () => `/api/v1/tenants/${encodeURIComponent(tenant)}/env`;

function render(keys) {
  const list = document.getElementById('env-keys');
  list.replaceChildren(
    ...keys.map((k) => el('li', {}, el('code', {}, k), ' ', el('button', { type: 'button', class: 'danger', onclick: () => remove(k) }, `Remove ${k}`))),
  );
  if (!keys.length) list.append(el('li', {}, 'No variables set.'));
}

async function remove(key) {
  if (!(await confirmDialog(`Remove ${key}? The tenant's code restarts without it.`, `Remove ${key}`))) return;
  try {
    render((await api('PATCH', base(), { [key]: null })).keys);
    say(`${key} removed.`);
  } catch (err) {
    showError(err);
  }
}

document.getElementById('set-env').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  const key = f.key.value.trim();
  try {
    render((await api('PATCH', base(), { [key]: f.value.value })).keys);
    e.target.reset();
    say(`${key} set; the tenant's code restarts with it.`);
  } catch (err) {
    showError(err);
  }
});

async function start() {
  await requireSession();
  tenant = currentTenant();
  renderNav('env', tenant);
  render((await api('GET', base())).keys);
}
start().catch(showError);
