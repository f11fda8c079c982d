// Plugins: what is available (GET /api/v1/plugins), which the tenant has
// enabled, and a config form made from each plugin's JSON schema. Where the
// platform has no plugin API yet (404), the page says so.
import { api, ApiError, can, currentTenant, el, renderNav, requireSession, say, showError } from './common.js';

let tenant;

/** One input per property of a flat object schema: text, number, checkbox or a choice. */
function fieldFor(plugin, name, prop, required, value) {
  const id = `${plugin}-${name}`;
  const label = el('label', { for: id }, prop.title ?? name, required ? ' (required)' : '');
  const help = prop.description ? el('small', { id: `${id}-help` }, prop.description) : '';
  const common = { id, name, required: required || undefined, 'aria-describedby': prop.description ? `${id}-help` : undefined };
  let input;
  if (Array.isArray(prop.enum)) {
    input = el('select', common, prop.enum.map((v) => el('option', { value: v, selected: v === value || undefined }, String(v))));
  } else if (prop.type === 'boolean') {
    input = el('input', { ...common, type: 'checkbox', checked: value === true || undefined, 'data-type': 'boolean' });
  } else if (prop.type === 'number' || prop.type === 'integer') {
    input = el('input', { ...common, type: 'number', step: prop.type === 'integer' ? 1 : 'any', min: prop.minimum, max: prop.maximum, value: value ?? prop.default, 'data-type': 'number' });
  } else {
    const type = prop.format === 'email' ? 'email' : prop.format === 'uri' ? 'url' : 'text';
    input = el('input', { ...common, type, minlength: prop.minLength, maxlength: prop.maxLength, value: value ?? prop.default ?? '' });
  }
  return el('div', { class: 'field' }, label, input, help);
}

function configFrom(form, schema) {
  const config = {};
  for (const name of Object.keys(schema?.properties ?? {})) {
    const input = form.elements[name];
    if (!input) continue;
    if (input.dataset.type === 'boolean') config[name] = input.checked;
    else if (input.value === '') continue;
    else config[name] = input.dataset.type === 'number' ? Number(input.value) : input.value;
  }
  return config;
}

function pluginCard(p, enabled) {
  const schema = p.configSchema ?? p.schema ?? { type: 'object', properties: {} };
  const required = new Set(schema.required ?? []);
  const current = enabled?.config ?? {};
  const form = el(
    'form',
    { class: 'grid' },
    Object.entries(schema.properties ?? {}).map(([name, prop]) => fieldFor(p.name, name, prop, required.has(name), current[name])),
    el('button', { type: 'submit' }, enabled ? `Save ${p.name}` : `Enable ${p.name}`),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api('PUT', `/api/v1/tenants/${encodeURIComponent(tenant)}/plugins/${encodeURIComponent(p.name)}`, { config: configFrom(form, schema) });
      say(`${p.name} ${enabled ? 'saved' : 'enabled'}.`);
      await list();
    } catch (err) {
      showError(err);
    }
  });
  const disable = el('button', { type: 'button', class: 'danger' }, `Disable ${p.name}`);
  disable.addEventListener('click', async () => {
    try {
      await api('DELETE', `/api/v1/tenants/${encodeURIComponent(tenant)}/plugins/${encodeURIComponent(p.name)}`);
      say(`${p.name} disabled (its data is kept).`);
      await list();
    } catch (err) {
      showError(err);
    }
  });
  return el(
    'article',
    { class: 'plugin' },
    el('h2', {}, p.name, ' ', el('small', {}, p.version ?? ''), enabled ? el('span', { class: 'badge live' }, 'enabled') : ''),
    el('p', {}, p.description ?? ''),
    can('plugins') ? [form, enabled ? disable : ''] : '',
  );
}

const asList = (data) => (Array.isArray(data) ? data : (data?.plugins ?? []));

async function list() {
  const box = document.getElementById('plugin-list');
  let available;
  try {
    available = asList(await api('GET', '/api/v1/plugins'));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      box.replaceChildren(el('p', { class: 'empty' }, 'No plugins available on this platform.'));
      return;
    }
    throw err;
  }
  let enabled = [];
  try {
    enabled = asList(await api('GET', `/api/v1/tenants/${encodeURIComponent(tenant)}/plugins`));
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
  const byName = new Map(enabled.map((e) => [e.name, e]));
  box.replaceChildren(...available.map((p) => pluginCard(p, byName.get(p.name))));
  if (!available.length) box.append(el('p', { class: 'empty' }, 'No plugins available on this platform.'));
}

async function start() {
  await requireSession();
  tenant = currentTenant();
  renderNav('plugins', tenant);
  await list();
}
start().catch(showError);
