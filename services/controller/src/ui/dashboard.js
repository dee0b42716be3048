// crank's fleet dashboard: the fleet live from GET /watch (Server-Sent Events),
// heartbeat ages refreshed from GET /workers, throughput from GET /metrics, a
// worker's full record from GET /workers/{id}. Plain JavaScript, no framework;
// every text is set with textContent.
'use strict';

const KINDS = ['registered', 'deregistered', 'stale', 'healthy', 'draining', 'evicted'];
const MAX_ROWS = 500;            // rows drawn at most; the rest are counted
const MAX_EVENTS = 60;           // recent events kept
const METRICS_EVERY_MS = 2000;   // how often /metrics is polled for the chart
const CHART_POINTS = 60;         // samples on the chart (2 minutes)

const fleet = new Map();         // worker id -> {id, status, lastHeartbeat (ms), capabilities}
const recent = [];               // newest first
const samples = [];              // {heartbeats, routes} per second
let selected = null;
let renderQueued = false;

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- the stream -------------------------------------------------------------

function connect() {
  const source = new EventSource('/watch');
  source.onopen = () => setConnection('live', 'live');
  source.onerror = () => setConnection('connecting', 'reconnecting…');
  source.addEventListener('snapshot', (message) => {
    const snapshot = JSON.parse(message.data);
    fleet.clear();
    for (const worker of snapshot.workers) {
      fleet.set(worker.worker_id, {
        id: worker.worker_id,
        status: worker.status,
        lastHeartbeat: Date.parse(worker.last_heartbeat),
        capabilities: worker.capabilities,
      });
    }
    if (snapshot.reason !== 'start') {
      remember({ kind: 'snapshot', worker_id: `${snapshot.workers.length} workers (${snapshot.reason.replace('_', ' ')})`, at: new Date().toISOString() });
    }
    queueRender();
  });
  source.addEventListener('resync', (message) => {
    const resync = JSON.parse(message.data);
    remember({ kind: 'resync', worker_id: `missed ${resync.missed} events`, at: new Date().toISOString() });
  });
  for (const kind of KINDS) {
    source.addEventListener(kind, (message) => apply(JSON.parse(message.data)));
  }
}

function apply(event) {
  const worker = fleet.get(event.worker_id);
  const at = Date.parse(event.at);
  switch (event.kind) {
    case 'registered':
      fleet.set(event.worker_id, { id: event.worker_id, status: 'healthy', lastHeartbeat: at, capabilities: event.capabilities });
      break;
    case 'healthy':
      if (worker) { worker.status = 'healthy'; worker.lastHeartbeat = at; }
      break;
    case 'stale':
      if (worker) worker.status = 'stale';
      break;
    case 'draining': // no new routes; it deregisters once its calls are done
      if (worker) worker.status = 'draining';
      break;
    default: // deregistered, evicted
      fleet.delete(event.worker_id);
  }
  remember(event);
  queueRender();
}

function remember(event) {
  recent.unshift(event);
  if (recent.length > MAX_EVENTS) recent.length = MAX_EVENTS;
  queueRender();
}

function setConnection(className, text) {
  const badge = $('connection');
  badge.className = `badge ${className}`;
  badge.textContent = text;
}

// Heartbeats are not events: their times (and suspects) come from /workers.
async function refreshHeartbeats() {
  try {
    const response = await fetch('/workers', { cache: 'no-store' });
    if (response.ok) {
      const list = await response.json();
      for (const row of list.workers) {
        const worker = fleet.get(row.worker_id);
        if (worker) {
          worker.lastHeartbeat = Date.parse(row.last_heartbeat);
          worker.status = row.status;
        }
      }
      queueRender();
    }
  } catch (_) { /* the stream's badge tells the connection state */ }
  setTimeout(refreshHeartbeats, fleet.size > 2000 ? 60000 : 2000);
}

// ---- throughput ----------------------------------------------------------------

function sumOf(text, name) {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && (line[name.length] === '{' || line[name.length] === ' ')) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
    }
  }
  return total;
}

let previous = null;
async function pollMetrics() {
  try {
    const response = await fetch('/metrics', { cache: 'no-store' });
    if (response.ok) {
      const text = await response.text();
      const now = { at: performance.now(), heartbeats: sumOf(text, 'crank_heartbeats_total'), routes: sumOf(text, 'crank_routes_total') };
      if (previous) {
        const seconds = Math.max((now.at - previous.at) / 1000, 0.001);
        samples.push({
          heartbeats: Math.max(0, now.heartbeats - previous.heartbeats) / seconds,
          routes: Math.max(0, now.routes - previous.routes) / seconds,
        });
        if (samples.length > CHART_POINTS) samples.shift();
        drawChart();
      }
      previous = now;
      showStore(text);
    }
  } catch (_) { /* try again on the next tick */ }
  setTimeout(pollMetrics, METRICS_EVERY_MS);
}

// Each capability's SLO as GET /slos measures it; the panel stays hidden
// while the controller holds no SLO.
async function pollSlos() {
  try {
    const response = await fetch('/slos', { cache: 'no-store' });
    if (response.ok) {
      const { slos } = await response.json();
      $('slos').hidden = slos.length === 0;
      const ms = (value) => (value === null || value === undefined ? '–' : `${value.toFixed(1)} ms`);
      $('slo-table').tBodies[0].replaceChildren(...slos.map((slo) => {
        const row = el('tr', slo.breach ? 'breach' : '');
        row.append(
          el('td', '', slo.capability),
          el('td', '', `${ms(slo.p95_ms)} / ${ms(slo.p95_target_ms)}`),
          el('td', '', `${(slo.error_budget_remaining * 100).toFixed(0)} %`),
          el('td', '', slo.breach ? `breach: ${slo.breach}; low priority shed` : `ok (${slo.samples} calls)`),
        );
        return row;
      }));
    }
  } catch (_) { /* try again on the next tick */ }
  setTimeout(pollSlos, METRICS_EVERY_MS);
}

// The registry's store in the header: which one, and for the durable store
// its size on disk and the changes waiting to be written.
function showStore(text) {
  const state = (text.match(/^crank_store_state\{state="([a-z]+)"\} 1$/m) || [])[1];
  if (!state) return;
  let label = `store: ${state}`;
  if (state === 'file') {
    const kib = sumOf(text, 'crank_store_bytes') / 1024;
    label += ` · ${kib.toFixed(kib < 10 ? 1 : 0)} KiB on disk · ${sumOf(text, 'crank_store_pending_writes')} pending`;
  }
  $('store').textContent = label;
}

function drawChart() {
  const canvas = $('chart');
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const context = canvas.getContext('2d');
  context.scale(ratio, ratio);
  context.clearRect(0, 0, width, height);
  const top = Math.max(1, ...samples.map((s) => Math.max(s.heartbeats, s.routes)));
  const scale = niceCeiling(top);
  const left = 38, bottom = height - 16, plotWidth = width - left - 6;
  context.strokeStyle = '#e3e6ec';
  context.fillStyle = '#6b7385';
  context.font = '11px system-ui, sans-serif';
  for (let i = 0; i <= 2; i++) {
    const y = bottom - (bottom - 8) * i / 2;
    context.beginPath(); context.moveTo(left, y); context.lineTo(width - 6, y); context.stroke();
    context.fillText(formatRate(scale * i / 2), 2, y + 4);
  }
  context.fillText(`last ${CHART_POINTS * METRICS_EVERY_MS / 1000} s`, left, height - 2);
  const line = (key, color) => {
    context.strokeStyle = color;
    context.lineWidth = 2;
    context.beginPath();
    samples.forEach((sample, i) => {
      const x = left + plotWidth * (i + CHART_POINTS - samples.length) / (CHART_POINTS - 1);
      const y = bottom - (bottom - 8) * sample[key] / scale;
      if (i === 0) context.moveTo(x, y); else context.lineTo(x, y);
    });
    context.stroke();
  };
  line('heartbeats', '#3563e9');
  line('routes', '#8a4fd8');
  const last = samples[samples.length - 1];
  $('rate-heartbeats').textContent = last ? formatRate(last.heartbeats) : '–';
  $('rate-routes').textContent = last ? formatRate(last.routes) : '–';
}

function niceCeiling(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function formatRate(value) {
  return value >= 1000 ? `${(value / 1000).toFixed(1)}k` : value >= 10 ? value.toFixed(0) : value.toFixed(1);
}

// ---- drawing -------------------------------------------------------------------

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => { renderQueued = false; render(); }, 100);
}

function age(lastHeartbeat) {
  const seconds = Math.max(0, Math.round((Date.now() - lastHeartbeat) / 1000));
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m ago`;
  return `${Math.floor(seconds / 3600)}h ago`;
}

function render() {
  const text = $('filter-text').value.trim();
  const capability = $('filter-capability').value;
  const state = $('filter-state').value;
  const workers = [...fleet.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const shown = workers.filter((w) => (!text || w.id.includes(text))
    && (!capability || w.capabilities.includes(capability))
    && (!state || w.status === state));

  const body = document.createElement('tbody');
  for (const worker of shown.slice(0, MAX_ROWS)) {
    const row = el('tr');
    row.dataset.worker = worker.id;
    row.dataset.state = worker.status;
    if (worker.id === selected) row.classList.add('selected');
    row.append(el('td', 'id', worker.id));
    const stateCell = el('td');
    stateCell.append(el('span', `state ${worker.status}`, worker.status));
    row.append(stateCell);
    row.append(el('td', worker.status === 'healthy' ? 'age' : 'age late', age(worker.lastHeartbeat)));
    const caps = el('td');
    for (const key of worker.capabilities) caps.append(el('span', 'cap', key));
    row.append(caps);
    row.addEventListener('click', () => showDetail(worker.id));
    body.append(row);
  }
  $('workers').replaceChild(body, $('workers').tBodies[0]);
  $('empty').hidden = fleet.size > 0;
  $('shown').textContent = shown.length > MAX_ROWS
    ? `${MAX_ROWS} of ${shown.length} shown`
    : `${shown.length} of ${fleet.size} shown`;

  const counts = new Map();
  const byState = { healthy: 0, suspect: 0, stale: 0, draining: 0 };
  for (const worker of workers) {
    byState[worker.status] = (byState[worker.status] || 0) + 1;
    for (const key of worker.capabilities) {
      const count = counts.get(key) || { healthy: 0, total: 0 };
      count.total += 1;
      if (worker.status !== 'stale' && worker.status !== 'draining') count.healthy += 1;
      counts.set(key, count);
    }
  }
  const draining = byState.draining ? ` · ${byState.draining} draining` : '';
  $('summary').textContent = `${fleet.size} workers · ${byState.healthy} healthy · ${byState.suspect} suspect · ${byState.stale} stale${draining}`;
  const capabilities = document.createElement('tbody');
  for (const [key, count] of [...counts.entries()].sort()) {
    const row = el('tr');
    row.dataset.capability = key;
    row.append(el('td', 'cap-name', key), el('td', 'healthy-count', String(count.healthy)), el('td', 'total-count', String(count.total)));
    capabilities.append(row);
  }
  $('capabilities').replaceChild(capabilities, $('capabilities').tBodies[0]);
  const select = $('filter-capability');
  const known = [...counts.keys()].sort();
  const offered = [...select.options].slice(1).map((o) => o.value);
  if (known.join('\n') !== offered.join('\n')) {
    const current = select.value;
    select.length = 1;
    for (const key of known) select.append(new Option(key, key));
    select.value = known.includes(current) ? current : '';
  }

  const list = $('events');
  list.replaceChildren(...recent.map((event) => {
    const item = el('li');
    item.append(el('time', '', new Date(event.at).toLocaleTimeString()));
    item.append(el('span', `kind ${event.kind}`, event.kind));
    item.append(document.createTextNode(event.worker_id));
    return item;
  }));
}

async function showDetail(id) {
  selected = id;
  render();
  $('detail').hidden = false;
  $('detail-id').textContent = id;
  const fields = $('detail-fields');
  fields.replaceChildren(el('dd', '', 'loading…'));
  try {
    const response = await fetch(`/workers/${encodeURIComponent(id)}`, { cache: 'no-store' });
    const record = await response.json();
    if (!response.ok) throw new Error(record.detail || `HTTP ${response.status}`);
    const rows = [
      ['url', record.worker_url],
      ['status', record.status],
      ['registered', new Date(record.registered_at).toLocaleString()],
      ['last heartbeat', `${record.seconds_since_heartbeat.toFixed(1)} s ago`],
      ['registered by', record.registered_by],
      ['load', record.load ? `${record.load.in_flight} of ${record.load.capacity} in flight` : '–'],
    ];
    for (const capability of record.capabilities) {
      rows.push(['capability', `${capability.verb}:${capability.name}@${capability.version}`]);
    }
    fields.replaceChildren(...rows.flatMap(([term, value]) => [el('dt', '', term), el('dd', '', String(value))]));
  } catch (error) {
    fields.replaceChildren(el('dd', '', String(error.message || error)));
  }
}

$('detail-close').addEventListener('click', () => { selected = null; $('detail').hidden = true; render(); });
for (const id of ['filter-text', 'filter-capability', 'filter-state']) {
  $(id).addEventListener('input', render);
}
setInterval(render, 1000); // ages move on
connect();
refreshHeartbeats();
pollMetrics();
pollSlos();
drawChart();
