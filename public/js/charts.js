// Small bar charts of a tenant's last hour (GET /api/v1/tenants/:id/stats):
// requests per minute with their 4xx and 5xx parts, and worker memory. Inline
// SVG built here (nothing parsed as HTML); each chart is a figure whose
// caption states the numbers, with the minutes that had any in a table.
import { el, formatBytes } from './common.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 600;
const HEIGHT = 90;

function svgEl(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * One bar per minute; each bar is a stack of parts ({value, class}) drawn
 * bottom up. `label(minute)` is the bar's tooltip.
 */
function barChart(minutes, partsOf, label) {
  const max = Math.max(1, ...minutes.map((m) => partsOf(m).reduce((a, p) => a + p.value, 0)));
  const step = WIDTH / minutes.length;
  const bars = minutes.map((m, i) => {
    const g = svgEl('g', { class: 'minute' }, svgEl('title', {}, label(m)));
    let y = HEIGHT;
    for (const part of partsOf(m)) {
      if (part.value <= 0) continue;
      // Never thinner than 2 units: one request in a busy hour still shows.
      const h = Math.max(2, (part.value / max) * (HEIGHT - 4));
      y -= h;
      g.append(svgEl('rect', { class: `bar ${part.class}`, x: (i * step + 1).toFixed(1), y: y.toFixed(1), width: (step - 2).toFixed(1), height: h.toFixed(1), 'data-value': part.value }));
    }
    return g;
  });
  return svgEl('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: 'none', class: 'bars', 'aria-hidden': 'true', focusable: 'false' }, svgEl('line', { class: 'axis', x1: 0, y1: HEIGHT - 0.5, x2: WIDTH, y2: HEIGHT - 0.5 }), ...bars);
}

function figure(id, title, summary, svg, legend, table) {
  return el(
    'figure',
    { class: 'chart', id, 'aria-labelledby': `${id}-caption` },
    el('figcaption', { id: `${id}-caption` }, el('strong', {}, title), ' ', el('span', { class: 'summary' }, summary)),
    svg,
    el('div', { class: 'chart-axis', 'aria-hidden': 'true' }, el('span', {}, '60 min ago'), legend, el('span', {}, 'now')),
    table,
  );
}

function numbersTable(caption, head, rows) {
  if (!rows.length) return ''; // the caption has said so
  return el(
    'details',
    {},
    el('summary', {}, 'Numbers by minute'),
    el(
      'table',
      {},
      el('caption', { class: 'visually-hidden' }, caption),
      el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows.map(([first, ...rest]) => el('tr', {}, el('th', { scope: 'row' }, first), rest.map((c) => el('td', {}, c))))),
    ),
  );
}

function requestsFigure(stats) {
  const { totals, minutes } = stats;
  const now = minutes[minutes.length - 1];
  const summary =
    `${plural(totals.requests, 'request')} in the last hour, ${plural(totals.errors5xx, 'server error')} (5xx), ${plural(totals.errors4xx, 'client error')} (4xx); ` +
    `${plural(now?.requests ?? 0, 'request')} this minute.`;
  const svg = barChart(
    minutes,
    (m) => [
      { value: m.requests - m.errors4xx - m.errors5xx, class: 'ok' },
      { value: m.errors4xx, class: 'e4xx' },
      { value: m.errors5xx, class: 'e5xx' },
    ],
    (m) => `${clock(m.start)}: ${plural(m.requests, 'request')}, ${m.errors5xx} 5xx, ${m.errors4xx} 4xx`,
  );
  const legend = el('span', { class: 'legend' }, el('span', { class: 'key ok' }, 'other'), ' ', el('span', { class: 'key e4xx' }, '4xx'), ' ', el('span', { class: 'key e5xx' }, '5xx'));
  const rows = minutes.filter((m) => m.requests > 0).map((m) => [clock(m.start), m.requests, m.errors4xx, m.errors5xx]);
  return figure('chart-requests', 'Requests per minute.', summary, svg, legend, numbersTable('Requests', ['Minute', 'Requests', '4xx', '5xx'], rows));
}

function memoryFigure(stats) {
  const { minutes, memory } = stats;
  const read = minutes.filter((m) => m.memoryBytes !== null);
  const now = minutes[minutes.length - 1]?.memoryBytes ?? null;
  const peak = read.length ? Math.max(...read.map((m) => m.memoryBytes)) : 0;
  let summary;
  if (!memory.readable) summary = `Not available: ${memory.reason}.`;
  else if (!read.length) summary = 'No worker ran in the last hour.';
  else summary = `${now === null ? 'no worker now' : `${formatBytes(now)} now`}, at most ${formatBytes(peak)} in the last hour.`;
  const svg = barChart(minutes, (m) => [{ value: m.memoryBytes ?? 0, class: 'memory' }], (m) => `${clock(m.start)}: ${m.memoryBytes === null ? 'no worker' : formatBytes(m.memoryBytes)}`);
  const rows = read.map((m) => [clock(m.start), formatBytes(m.memoryBytes)]);
  return figure('chart-memory', 'Worker memory.', summary, svg, el('span', {}), numbersTable('Worker memory', ['Minute', 'Memory'], rows));
}

/** Draws the charts into `box` (replacing what was there). */
export function renderCharts(box, stats) {
  box.replaceChildren(requestsFigure(stats), memoryFigure(stats));
}
