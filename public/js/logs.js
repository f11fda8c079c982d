// The tenant's site log, live (server-sent events), with a pause: while
// paused, new lines are held and counted, and shown on resume.
import { currentTenant, el, renderNav, requireSession, showError } from './common.js';

const MAX_LINES = 2000;
let paused = false;
let held = [];

function show(lines) {
  const log = document.getElementById('log');
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  for (const l of lines) log.append(el('span', { class: 'line' }, l), '\n');
  while (log.childNodes.length > MAX_LINES * 2) {
    log.firstChild.remove();
    log.firstChild.remove();
  }
  if (atBottom) log.scrollTop = log.scrollHeight;
}

async function start() {
  await requireSession();
  const tenant = currentTenant();
  renderNav('logs', tenant);
  const source = new EventSource(`/api/v1/tenants/${encodeURIComponent(tenant)}/logs/stream`);
  source.addEventListener('message', (e) => {
    if (paused) {
      held.push(e.data);
      document.getElementById('held').textContent = `${held.length} new line(s) held`;
    } else show([e.data]);
  });
  source.addEventListener('end', () => {
    source.close();
    showError(new Error('The log stream ended: sign in again.'));
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) showError(new Error('The log stream was closed.'));
  });
  const button = document.getElementById('pause');
  button.addEventListener('click', () => {
    paused = !paused;
    button.textContent = paused ? 'Resume' : 'Pause';
    button.setAttribute('aria-pressed', String(paused));
    if (!paused) {
      show(held);
      held = [];
      document.getElementById('held').textContent = '';
    }
  });
}
start().catch(showError);
