// A tenant's deploys: history (live marked, failed ones with their reason),
// one-click rollback / forward, and a new deploy by dropping a folder or an
// archive, with an upload progress bar.
import { api, can, currentTenant, el, formatBytes, formatTime, getCsrfToken, renderNav, requireSession, say, showError } from './common.js';
import { gzipBlob, tarBlob } from './tar.js';
import { renderCharts } from './charts.js';

const SKIP = /(^|\/)(\.git|node_modules)(\/|$)/;
let tenant;

async function start() {
  await requireSession();
  tenant = currentTenant();
  renderNav('deploys', tenant);
  if (!can('deploy')) document.querySelector('[aria-labelledby="new-deploy"]').hidden = true;
  await Promise.all([listDeploys(), showStats()]);
  // The charts follow the clock: a new bar each minute.
  setInterval(() => showStats().catch(() => {}), 30_000);
}

async function showStats() {
  const stats = await api('GET', `/api/v1/tenants/${encodeURIComponent(tenant)}/stats`);
  renderCharts(document.getElementById('charts'), stats);
}

async function listDeploys() {
  const { deploys } = await api('GET', `/api/v1/tenants/${encodeURIComponent(tenant)}/deploys`);
  const rows = deploys.map((d) =>
    el(
      'tr',
      { class: d.live ? 'live' : d.status === 'failed' ? 'failed' : '', 'data-deploy': d.id },
      el('th', { scope: 'row' }, el('code', {}, d.id), d.message ? el('div', { class: 'message' }, d.message) : ''),
      el('td', {}, formatTime(d.createdAt)),
      el('td', {}, d.source),
      el(
        'td',
        {},
        d.live ? el('strong', { class: 'badge live' }, 'live') : el('span', { class: `badge ${d.status}` }, d.status),
        d.status === 'failed' && d.error ? el('div', { class: 'reason' }, d.error) : '',
      ),
      el('td', {}, d.files ? `${d.files} files, ${formatBytes(d.bytes)}` : ''),
      el(
        'td',
        {},
        !d.live && d.status === 'ready' && can('deploy')
          ? el('button', { type: 'button', 'aria-label': `Make ${d.id} live`, onclick: () => activate(d) }, 'Make live')
          : '',
      ),
    ),
  );
  const body = document.getElementById('deploy-rows');
  body.replaceChildren(...rows);
  if (!deploys.length) body.append(el('tr', {}, el('td', { colspan: 6 }, 'No deploys yet.')));
}

async function activate(d) {
  try {
    await api('POST', `/api/v1/tenants/${encodeURIComponent(tenant)}/deploys/${encodeURIComponent(d.id)}/activate`);
    say(`${d.id} is live.`);
    await listDeploys();
  } catch (err) {
    showError(err);
  }
}

/** Uploads with XMLHttpRequest: fetch has no upload progress. */
function upload(blob, type) {
  const box = document.getElementById('upload');
  const bar = document.getElementById('upload-progress');
  const label = document.getElementById('upload-label');
  box.hidden = false;
  bar.value = 0;
  label.textContent = `Uploading ${formatBytes(blob.size)}`;
  const message = document.getElementById('deploy-message').value.trim();
  const url = `/api/v1/tenants/${encodeURIComponent(tenant)}/deploys${message ? `?message=${encodeURIComponent(message)}` : ''}`;
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('Content-Type', type);
    xhr.setRequestHeader('X-CSRF-Token', getCsrfToken());
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
    });
    xhr.upload.addEventListener('load', () => {
      bar.value = 100;
      label.textContent = 'Uploaded; making it live';
    });
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status === 201) resolve(data);
      else reject(new Error(data?.error?.message ?? `HTTP ${xhr.status}`));
    });
    xhr.addEventListener('error', () => reject(new Error('The upload failed (network error).')));
    xhr.send(blob);
  });
}

async function deployBlob(blob, type) {
  try {
    const result = await upload(blob, type);
    const warnings = result.warnings?.length ? ` ${result.warnings.length} rule warning(s).` : '';
    say(`Deployed ${result.id} (${result.files} files, ${formatBytes(result.bytes)}): live at ${result.url}.${warnings}`);
  } catch (err) {
    showError(err);
  } finally {
    document.getElementById('upload-label').textContent = 'Done';
    await listDeploys().catch(showError);
  }
}

/** [{path, file}] of a folder, paths relative to it, without .git and node_modules. */
async function deployFiles(entries) {
  const kept = entries.filter((e) => e.path && !SKIP.test(e.path));
  if (!kept.length) return showError(new Error('The folder has no files to deploy.'));
  say(`Packing ${kept.length} files…`);
  const tar = await tarBlob(kept);
  const gz = await gzipBlob(tar);
  await deployBlob(gz, gz.type || 'application/x-tar');
}

function archiveType(name) {
  return /\.(tgz|gz)$/i.test(name) ? 'application/gzip' : 'application/x-tar';
}

document.getElementById('folder-input').addEventListener('change', (e) => {
  const files = [...e.target.files];
  // webkitRelativePath is "<folder>/<path>": the folder's own name is left out.
  deployFiles(files.map((file) => ({ path: file.webkitRelativePath.split('/').slice(1).join('/'), file }))).finally(() => (e.target.value = ''));
});

document.getElementById('archive-input').addEventListener('change', (e) => {
  const file = e.target.files[0];
  if (file) deployBlob(file, archiveType(file.name)).finally(() => (e.target.value = ''));
});

/** Every file under a dropped directory entry. */
async function walk(entry, prefix, out) {
  if (entry.isFile) {
    const file = await new Promise((res, rej) => entry.file(res, rej));
    out.push({ path: prefix + entry.name, file });
  } else if (entry.isDirectory) {
    if (entry.name === '.git' || entry.name === 'node_modules') return;
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`, out);
    }
  }
}

const zone = document.getElementById('drop-zone');
zone.addEventListener('dragover', (e) => {
  e.preventDefault();
  zone.classList.add('over');
});
zone.addEventListener('dragleave', () => zone.classList.remove('over'));
zone.addEventListener('drop', async (e) => {
  e.preventDefault();
  zone.classList.remove('over');
  const items = [...(e.dataTransfer?.items ?? [])];
  const entry = items[0]?.webkitGetAsEntry?.();
  if (entry?.isDirectory) {
    const out = [];
    try {
      await walk(entry, '', out);
    } catch (err) {
      return showError(err);
    }
    // Paths start with the dropped folder's name: strip it.
    return deployFiles(out.map((x) => ({ path: x.path.split('/').slice(1).join('/'), file: x.file })));
  }
  const file = e.dataTransfer?.files?.[0];
  if (file) return deployBlob(file, archiveType(file.name));
});


start().catch(showError);
