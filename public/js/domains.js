// A tenant's domains: add one, the TXT record to set, verify, certificate status, remove.
import { api, can, confirmDialog, currentTenant, el, formatTime, renderNav, requireSession, say, showError } from './common.js';

let tenant;
const base = () => `/api/v1/tenants/${encodeURIComponent(tenant)}/domains`;

function certificateText(c) {
  switch (c?.status) {
    case 'issued':
      return `issued, expires ${formatTime(c.expiresAt)}${c.error ? ` (last renewal failed: ${c.error})` : ''}`;
    case 'uploaded':
      return `uploaded, expires ${formatTime(c.expiresAt)}`;
    case 'failed':
      return `failed: ${c.error}${c.retryAt ? ` (retry ${formatTime(c.retryAt)})` : ''}`;
    case 'pending':
      return 'being issued';
    default:
      return 'none';
  }
}

function domainCard(d) {
  const v = d.verification;
  return el(
    'article',
    { class: 'domain', 'data-domain': d.domain },
    el('h2', {}, d.domain, ' ', el('span', { class: `badge ${d.verified ? 'live' : 'pending'}` }, d.verified ? 'verified' : 'pending')),
    el(
      'dl',
      {},
      el('dt', {}, 'Certificate'),
      el('dd', {}, certificateText(d.certificate)),
      d.redirect !== 'none' ? [el('dt', {}, 'Redirect'), el('dd', {}, d.redirect)] : '',
    ),
    v
      ? el(
          'div',
          { class: 'proof' },
          el('p', {}, 'Prove the name with this DNS TXT record (or point its A/AAAA record here):'),
          el(
            'table',
            { class: 'record' },
            el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Type'), el('th', { scope: 'col' }, 'Name'), el('th', { scope: 'col' }, 'Value'))),
            el('tbody', {}, el('tr', {}, el('td', {}, 'TXT'), el('td', {}, el('code', { class: 'txt-name' }, v.txt.name)), el('td', {}, el('code', { class: 'txt-value' }, v.txt.value)))),
          ),
          can('deploy') ? el('button', { type: 'button', onclick: () => verify(d.domain) }, `Verify ${d.domain}`) : '',
        )
      : '',
    !d.default && can('deploy') ? el('button', { type: 'button', class: 'danger', onclick: () => remove(d.domain) }, `Remove ${d.domain}`) : '',
  );
}

async function list() {
  const { domains } = await api('GET', base());
  document.getElementById('domain-list').replaceChildren(...domains.map(domainCard));
}

async function verify(domain) {
  say(`Looking for the proof of ${domain}…`);
  try {
    await api('POST', `${base()}/${encodeURIComponent(domain)}/verify`, {});
    say(`${domain} is verified.`);
  } catch (err) {
    showError(err);
  }
  await list().catch(showError);
}

async function remove(domain) {
  if (!(await confirmDialog(`Remove the domain ${domain} from ${tenant}? It stops serving at once.`, `Remove ${domain}`))) return;
  try {
    await api('DELETE', `${base()}/${encodeURIComponent(domain)}`);
    say(`${domain} removed.`);
    await list();
  } catch (err) {
    showError(err);
  }
}

document.getElementById('add-domain').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = e.target.elements.domain;
  try {
    const d = await api('POST', base(), { domain: input.value.trim() });
    input.value = '';
    say(d.verified ? `${d.domain} added and live.` : `${d.domain} added: set the TXT record below, then verify.`);
    await list();
  } catch (err) {
    showError(err);
  }
});

async function start() {
  await requireSession();
  tenant = currentTenant();
  renderNav('domains', tenant);
  if (!can('deploy')) document.getElementById('add-domain').hidden = true;
  await list();
}
start().catch(showError);
