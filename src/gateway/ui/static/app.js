// The Switchboard dashboard: plain ES modules, preact + htm from the installed packages (see ../plugin.ts), no
// build step. The registry comes live from /v1/watch (feed.js); cluster and readiness are asked every few seconds
// because no feed carries them.
import { h, render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import { Feed, FLASH_MS, HISTORY_SECONDS, LOG_LIMIT } from './feed.js';
import { drawDelays, drawRate, percentiles } from './charts.js';
import { authHeaders, ensureToken } from './auth.js';

const html = htm.bind(h);

const STATES = ['up', 'down', 'pending', 'maintenance'];
/** Always offered in the protocol filter; any other protocol seen in the registry is added. */
const PROTOCOLS = ['http', 'rpc-server', 'rpc-publisher'];
const CHANGES = ['registered', 'updated', 'up', 'down', 'maintenance', 'deregistered'];
/** Row height of the providers table, in CSS pixels (the virtual scroller's unit). */
const ROW_HEIGHT = 34;
/** Order and membership of the providers table are recomputed at most this often; row contents are always live. */
const DERIVE_MS = 250;
const READY_POLL_MS = 2000;
const CLUSTER_POLL_MS = 2000;
/** Services listed at once; a search narrows the rest. */
const SERVICE_LIST_LIMIT = 300;
/** Log lines rendered at once (of the LOG_LIMIT kept). */
const LOG_SHOWN = 300;
/** A worker not heard from for this long is shown as late (the leader declares it dead after its own timeout). */
const WORKER_LATE_MS = 1500;

const feed = new Feed(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/watch`);

// ---------------------------------------------------------------------------------------------------- helpers

function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

const clock = (t) => new Date(t).toLocaleTimeString([], { hour12: false }) + `.${String(t % 1000).padStart(3, '0')}`;
const short = (id) => (id ? String(id).slice(0, 8) : '—');

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? authHeaders() : { ...authHeaders(), 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error(data?.code ? `${data.code}: ${data.message}` : `HTTP ${res.status}`);
  return data;
}

/** Re-renders on every applied batch of the feed. */
function useFeed() {
  const [, set] = useState(0);
  useEffect(() => feed.subscribe(() => set((n) => n + 1)), []);
}

/** Re-renders every `ms` (durations, charts). */
function useTick(ms) {
  const [, set] = useState(0);
  useEffect(() => {
    const t = setInterval(() => set((n) => n + 1), ms);
    return () => clearInterval(t);
  }, [ms]);
}

/** GETs `path` now and every `ms`; a 503 with a JSON body (e.g. /readyz while stale) is data, not an error. */
function usePoll(path, ms) {
  const [state, setState] = useState({ data: null, error: null, at: 0 });
  useEffect(() => {
    let stopped = false;
    let timer = 0;
    const run = async () => {
      try {
        const res = await fetch(path, { headers: authHeaders(), signal: AbortSignal.timeout(Math.max(1000, ms)) });
        const data = await res.json();
        const error = res.ok || path === '/readyz' ? null : (data?.message ?? `HTTP ${res.status}`);
        if (!stopped) setState({ data: error ? null : data, error, at: Date.now() });
      } catch (err) {
        if (!stopped) setState((s) => ({ ...s, error: String(err.message ?? err), at: Date.now() }));
      }
      if (!stopped) timer = setTimeout(() => void run(), ms);
    };
    void run();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [path, ms]);
  return state;
}

function parseRoute() {
  const [tab, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  return {
    tab: ['services', 'cluster', 'events'].includes(tab) ? tab : 'services',
    service: decodeURIComponent(rest.join('/')) || null,
  };
}

function useRoute() {
  const [route, setRoute] = useState(parseRoute);
  useEffect(() => {
    const on = () => setRoute(parseRoute());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

// ---------------------------------------------------------------------------------------------------- layout

function App() {
  useFeed();
  useTick(1000);
  const route = useRoute();
  const ready = usePoll('/readyz', READY_POLL_MS);
  const [dialog, setDialog] = useState(null);
  const [selected, setSelected] = useState(null);
  const [notice, setNotice] = useState(null);

  const ask = (d) => setDialog(d);
  const done = (text) => {
    setNotice(text);
    setTimeout(() => setNotice((n) => (n === text ? null : n)), 4000);
  };

  let view;
  if (route.tab === 'cluster') view = html`<${ClusterView} ready=${ready} ask=${ask} done=${done} />`;
  else if (route.tab === 'events') view = html`<${EventsView} />`;
  else view = html`<${ServicesView} service=${route.service} selected=${selected} onSelect=${setSelected} />`;

  const tab = (name, label) =>
    html`<a
      href=${`#/${name}`}
      class=${route.tab === name ? 'tab on' : 'tab'}
      aria-current=${route.tab === name ? 'page' : undefined}
      >${label}</a
    >`;

  return html`
    <header class="top">
      <a class="brand" href="#/services">Switchboard</a>
      <nav class="tabs">${tab('services', 'Services')}${tab('cluster', 'Cluster')}${tab('events', 'Events')}</nav>
      <${Position} />
    </header>
    <${Banners} ready=${ready} />
    <main>${view}</main>
    ${selected && feed.providers.has(selected) && html`<${ProviderDetail} id=${selected} onClose=${() => setSelected(null)} ask=${ask} done=${done} />`}
    ${dialog && html`<${ConfirmDialog} ...${dialog} onClose=${() => setDialog(null)} />`}
    ${notice && html`<div class="notice" role="status">${notice}</div>`}
  `;
}

function Position() {
  const label = { connecting: 'connecting', live: 'live', reconnecting: 'reconnecting', refused: 'no access' }[
    feed.status
  ];
  return html`<div class="position" title="The registry's epoch and the last revision this page has applied">
    <span>epoch <code data-testid="epoch">${short(feed.epoch)}</code></span>
    <span>rev <code data-testid="rev">${feed.rev}</code></span>
    <span class=${`pill ${feed.status}`} data-testid="connection">${label}</span>
  </div>`;
}

function Banners({ ready }) {
  const out = [];
  if (feed.status === 'refused')
    out.push(
      html`<div class="banner danger" role="alert" data-testid="banner-token">
        The gateway refused this page's token (<code>${feed.refusal?.code}</code>: ${feed.refusal?.message}).
        <button class="primary" onClick=${() => void askToken({ ask: true })}>Enter a token</button>
      </div>`,
    );
  else if (feed.status === 'reconnecting')
    out.push(
      html`<div class="banner warn" role="alert" data-testid="banner-reconnecting">
        Lost the connection to the gateway; reconnecting (attempt ${feed.attempts}). Showing the last state seen, rev
        ${feed.rev}.
      </div>`,
    );
  else if (feed.status === 'connecting')
    out.push(html`<div class="banner info" role="status">Connecting to the gateway…</div>`);
  const r = ready.data;
  if (feed.status === 'live' && r && r.stale)
    out.push(
      html`<div class="banner warn" role="alert" data-testid="banner-stale">
        The gateway has lost its
        leader${r.lastContactMs !== null ? ` (last contact ${duration(r.lastContactMs)} ago)` : ''}: this may be out of
        date, and changes are refused until the leader is back.
      </div>`,
    );
  const guard = r?.massDownGuard;
  if (guard?.active)
    out.push(
      html`<div class="banner danger" role="alert" data-testid="banner-guard">
        Mass-down guard active${guard.since ? ` since ${clock(guard.since)}` : ''}: ${guard.held} down
        transition${guard.held === 1 ? '' : 's'} held back.
        <a href="#/cluster">Review</a>
      </div>`,
    );
  return out;
}

// ---------------------------------------------------------------------------------------------------- services

function ServicesView({ service, selected, onSelect }) {
  const [search, setSearch] = useState('');
  const summaries = feed.serviceList();
  const q = search.trim().toLowerCase();
  const matching = q ? summaries.filter((s) => s.name.includes(q)) : summaries;
  const total = { up: 0, down: 0, pending: 0, maintenance: 0, total: feed.providers.size };
  for (const s of summaries) for (const k of STATES) total[k] += s[k];

  return html`<div class="services-layout">
    <aside class="service-list">
      <input
        type="search"
        placeholder="Search services"
        aria-label="Search services"
        value=${search}
        onInput=${(e) => setSearch(e.currentTarget.value)}
      />
      <ul>
        <li>
          <a href="#/services" class=${service ? 'svc' : 'svc on'}
            ><span class="name">All services (${summaries.length})</span><${Counts} s=${total}
          /></a>
        </li>
        ${matching.slice(0, SERVICE_LIST_LIMIT).map(
          (s) =>
            html`<li key=${s.name}>
              <a
                href=${`#/services/${encodeURIComponent(s.name)}`}
                class=${s.name === service ? 'svc on' : 'svc'}
                data-testid="service"
                data-service=${s.name}
              >
                <span class="name">${s.name}</span><${Counts} s=${s} />
              </a>
            </li>`,
        )}
        ${matching.length > SERVICE_LIST_LIMIT && html`<li class="more">${matching.length - SERVICE_LIST_LIMIT} more: refine the search</li>`}
        ${matching.length === 0 && html`<li class="more">${summaries.length ? 'No service matches.' : 'No service registered yet.'}</li>`}
      </ul>
    </aside>
    <section class="providers">
      <${ProvidersPanel} service=${service} selected=${selected} onSelect=${onSelect} />
    </section>
  </div>`;
}

function Counts({ s }) {
  return html`<span class="counts"
    >${STATES.map(
      (k) =>
        html`<span class=${`count ${k}${s[k] ? '' : ' zero'}`} title=${`${s[k]} ${k}`} data-count=${k}>${s[k]}</span>`,
    )}</span
  >`;
}

const SORT_KEYS = {
  id: (p) => p.id,
  service: (p) => p.service,
  address: (p) => `${p.host}:${String(p.port).padStart(5, '0')}`,
  protocol: (p) => p.protocol,
  state: (p) => STATES.indexOf(p.state),
  since: (p) => p.stateSince,
};

function matchText(p, text) {
  if (p.id.toLowerCase().includes(text) || p.host.toLowerCase().includes(text) || String(p.port) === text) return true;
  if (p.tags.some((t) => t.toLowerCase().includes(text))) return true;
  for (const [k, v] of Object.entries(p.meta)) if (`${k}=${v}`.toLowerCase().includes(text)) return true;
  return false;
}

/** The ids to show, filtered and sorted, plus the tags and protocols seen (for the filters' options). */
function derive(service, f, sort) {
  const text = f.text.trim().toLowerCase();
  const tags = new Set();
  const protocols = new Set(PROTOCOLS);
  const out = [];
  const key = SORT_KEYS[sort.key];
  for (const p of feed.providers.values()) {
    if (service && p.service !== service) continue;
    if (tags.size < 200) for (const t of p.tags) tags.add(t);
    if (protocols.size < 50) protocols.add(p.protocol);
    if (f.state && p.state !== f.state) continue;
    if (f.protocol && p.protocol !== f.protocol) continue;
    if (f.tag && !p.tags.includes(f.tag)) continue;
    if (text && !matchText(p, text)) continue;
    out.push([key(p), p.id]);
  }
  out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) * sort.dir);
  return { ids: out.map((x) => x[1]), tags: [...tags].sort(), protocols: [...protocols].sort() };
}

/** derive(), at most every DERIVE_MS while the registry keeps changing; at once when the filters change. */
function useDerived(service, filters, sort) {
  const cache = useRef({ key: null, version: -1, structure: -1, at: 0, result: null, timer: 0 });
  const [, force] = useState(0);
  useEffect(() => () => clearTimeout(cache.current.timer), []);
  const c = cache.current;
  const key = JSON.stringify([service, filters, sort]);
  const now = performance.now();
  // Only states changed, and neither the filters nor the order look at states: the list stands as it is.
  if (c.key === key && c.structure === feed.structure && !filters.state && sort.key !== 'state' && sort.key !== 'since')
    c.version = feed.version;
  if (c.key !== key || (c.version !== feed.version && now - c.at >= DERIVE_MS)) {
    c.result = derive(service, filters, sort);
    c.key = key;
    c.version = feed.version;
    c.structure = feed.structure;
    c.at = now;
  } else if (c.version !== feed.version && !c.timer) {
    c.timer = setTimeout(
      () => {
        c.timer = 0;
        force((n) => n + 1);
      },
      DERIVE_MS - (now - c.at),
    );
  }
  return c.result;
}

function ProvidersPanel({ service, selected, onSelect }) {
  const [filters, setFilters] = useState({ text: '', state: '', protocol: '', tag: '' });
  const [sort, setSort] = useState({ key: 'id', dir: 1 });
  const { ids, tags, protocols } = useDerived(service, filters, sort);
  const set = (k) => (e) => setFilters({ ...filters, [k]: e.currentTarget.value });
  const onSort = (k) => setSort(sort.key === k ? { key: k, dir: -sort.dir } : { key: k, dir: 1 });

  return html`<div class="panel">
    <div class="panel-head">
      <h2>${service ?? 'All providers'}</h2>
      <span class="muted" data-testid="provider-count"
        >${ids.length} of ${service ? serviceSize(service) : feed.providers.size}</span
      >
    </div>
    <div class="filters">
      <input
        type="search"
        placeholder="Filter: id, address, tag, meta"
        aria-label="Filter providers"
        value=${filters.text}
        onInput=${set('text')}
      />
      <select aria-label="State" value=${filters.state} onChange=${set('state')}>
        <option value="">any state</option>
        ${STATES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
      <select aria-label="Protocol" value=${filters.protocol} onChange=${set('protocol')}>
        <option value="">any protocol</option>
        ${protocols.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
      <select aria-label="Tag" value=${filters.tag} onChange=${set('tag')}>
        <option value="">any tag</option>
        ${[...new Set([...tags, filters.tag].filter(Boolean))].map((t) => html`<option value=${t}>${t}</option>`)}
      </select>
    </div>
    <${ProviderTable}
      ids=${ids}
      showService=${!service}
      selected=${selected}
      onSelect=${onSelect}
      sort=${sort}
      onSort=${onSort}
    />
  </div>`;
}

const serviceSize = (service) => feed.services.get(service)?.total ?? 0;

const COLUMNS = [
  { key: 'id', label: 'id', sort: 'id' },
  { key: 'service', label: 'service', sort: 'service' },
  { key: 'address', label: 'address', sort: 'address' },
  { key: 'protocol', label: 'protocol', sort: 'protocol' },
  { key: 'tags', label: 'tags' },
  { key: 'meta', label: 'meta' },
  { key: 'state', label: 'state', sort: 'state' },
  { key: 'since', label: 'for', sort: 'since' },
  { key: 'check', label: 'last check' },
  { key: 'failure', label: 'last failure' },
];

/** A virtual table: only the rows in view (plus a margin) are in the DOM, so 10,000 rows cost as much as 30. */
function ProviderTable({ ids, showService, selected, onSelect, sort, onSort }) {
  const ref = useRef(null);
  const [view, setView] = useState({ top: 0, height: 600 });
  useEffect(() => {
    const el = ref.current;
    const ro = new ResizeObserver(() => setView((v) => ({ ...v, height: el.clientHeight })));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const columns = COLUMNS.filter((c) => showService || c.key !== 'service');
  const first = Math.max(0, Math.floor(view.top / ROW_HEIGHT) - 5);
  const last = Math.min(ids.length, Math.ceil((view.top + view.height) / ROW_HEIGHT) + 5);
  const now = Date.now();
  const rows = [];
  for (let i = first; i < last; i++) {
    const id = ids[i];
    rows.push(
      html`<${Row}
        key=${rowKey(id, now)}
        id=${id}
        index=${i}
        now=${now}
        columns=${columns}
        selected=${id === selected}
        onSelect=${onSelect}
      />`,
    );
  }
  return html`<div
    class=${`grid-scroll${showService ? ' with-service' : ''}`}
    ref=${ref}
    onScroll=${(e) => setView({ top: e.currentTarget.scrollTop, height: e.currentTarget.clientHeight })}
    role="table"
    aria-rowcount=${ids.length}
    data-testid="providers"
  >
    <div class="grid-row grid-head" role="row">
      ${columns.map((c) => {
        const on = sort.key === c.sort;
        return html`<div
          role="columnheader"
          class=${`cell ${c.key}`}
          aria-sort=${on ? (sort.dir > 0 ? 'ascending' : 'descending') : undefined}
        >
          ${c.sort ? html`<button class="sort" onClick=${() => onSort(c.sort)}>${c.label}${on ? (sort.dir > 0 ? ' ▲' : ' ▼') : ''}</button>` : c.label}
        </div>`;
      })}
    </div>
    <div class="grid-body" style=${{ height: `${ids.length * ROW_HEIGHT}px` }}>${rows}</div>
    ${ids.length === 0 && html`<p class="empty">No provider matches.</p>`}
  </div>`;
}

/** A changed row gets a fresh key for as long as it flashes, so its highlight animation starts over. */
function rowKey(id, now) {
  const t = feed.changedAt.get(id);
  return t !== undefined && now - t < FLASH_MS ? `${id}@${t}` : id;
}

function Row({ id, index, now, columns, selected, onSelect }) {
  const p = feed.providers.get(id);
  const style = { top: `${index * ROW_HEIGHT}px` };
  if (!p)
    return html`<div class="grid-row gone" style=${style} role="row" data-id=${id}>
      <div class="cell id">${id}</div>
      <div class="cell">deregistered</div>
    </div>`;
  const t = feed.changedAt.get(id);
  const flash = t !== undefined && now - t < FLASH_MS;
  const cells = {
    id: html`<code>${p.id}</code>`,
    service: p.service,
    address: `${p.host}:${p.port}`,
    protocol: p.protocol,
    tags: p.tags.map((tag) => html`<span class="tag">${tag}</span>`),
    meta: Object.entries(p.meta)
      .map(([k, v]) => `${k}=${v}`)
      .join(' '),
    state: html`<span class=${`badge ${p.state}`}>${p.state}</span>`,
    since: duration(now - p.stateSince),
    check: p.lastCheck
      ? (p.lastCheck.output ?? (p.lastCheck.ok ? 'ok' : 'failed'))
      : p.check
        ? 'no result yet'
        : 'no check',
    failure: p.lastCheck?.lastFailure
      ? `${p.lastCheck.lastFailure}${p.lastCheck.lastFailureAt ? ` (${duration(now - p.lastCheck.lastFailureAt)} ago)` : ''}`
      : '',
  };
  const titles = { meta: cells.meta, check: cells.check, failure: cells.failure, tags: p.tags.join(', ') };
  return html`<div
    class=${`grid-row${flash ? ' flash' : ''}${selected ? ' selected' : ''}`}
    style=${style}
    role="row"
    tabindex="0"
    data-id=${p.id}
    data-state=${p.state}
    aria-selected=${selected}
    onClick=${() => onSelect(p.id)}
    onKeyDown=${(e) => e.key === 'Enter' && onSelect(p.id)}
  >
    ${columns.map((c) => html`<div role="cell" class=${`cell ${c.key}`} title=${titles[c.key]}>${cells[c.key]}</div>`)}
  </div>`;
}

// ---------------------------------------------------------------------------------------------------- detail + actions

function ProviderDetail({ id, onClose, ask, done }) {
  const p = feed.providers.get(id);
  const now = Date.now();
  const inMaintenance = p.state === 'maintenance';
  const path = `/v1/providers/${encodeURIComponent(p.id)}`;
  const maintenance = () =>
    ask(
      inMaintenance
        ? {
            title: `End maintenance of ${p.id}?`,
            text: 'It goes back to what its check last observed.',
            confirm: 'End maintenance',
            run: async () => {
              await api('PUT', `${path}/maintenance`, { enabled: false });
              done(`${p.id}: maintenance ended`);
            },
          }
        : {
            title: `Put ${p.id} in maintenance?`,
            text: 'It stays registered but is not up in lookups, whatever its check says.',
            reason: true,
            confirm: 'Start maintenance',
            run: async (reason) => {
              await api('PUT', `${path}/maintenance`, { enabled: true, ...(reason ? { reason } : {}) });
              done(`${p.id}: in maintenance`);
            },
          },
    );
  const deregister = () =>
    ask({
      title: `Deregister ${p.id}?`,
      text: `It is removed from ${p.service}; clients stop seeing it at once. A running provider can register again.`,
      confirm: 'Deregister',
      danger: true,
      run: async () => {
        await api('DELETE', path);
        done(`${p.id}: deregistered`);
        onClose();
      },
    });
  const row = (k, v) =>
    html`<dt>${k}</dt>
      <dd>${v}</dd>`;
  return html`<aside class="detail" aria-label=${`Provider ${p.id}`} data-testid="detail">
    <div class="detail-head">
      <h2><code>${p.id}</code></h2>
      <button class="close" aria-label="Close" onClick=${onClose}>×</button>
    </div>
    <dl>
      ${row('service', html`<a href=${`#/services/${encodeURIComponent(p.service)}`}>${p.service}</a>`)}
      ${row('state', html`<span class=${`badge ${p.state}`} data-testid="detail-state">${p.state}</span> for ${duration(now - p.stateSince)}`)}
      ${row('address', `${p.host}:${p.port}`)} ${row('protocol', p.protocol)}
      ${row('tags', p.tags.length ? p.tags.map((t) => html`<span class="tag">${t}</span>`) : '—')}
      ${row(
        'meta',
        Object.keys(p.meta).length
          ? html`<code class="block"
              >${Object.entries(p.meta)
                .map(([k, v]) => `${k}=${v}`)
                .join('\n')}</code
            >`
          : '—',
      )}
      ${row('check', p.check ? html`<code class="block">${JSON.stringify(p.check, null, 1)}</code>` : 'none (up while registered)')}
      ${row('last check', p.lastCheck ? `${p.lastCheck.ok ? 'ok' : 'failed'} ${duration(now - p.lastCheck.at)} ago${p.lastCheck.output ? `: ${p.lastCheck.output}` : ''}` : '—')}
      ${row('last failure', p.lastCheck?.lastFailure ? `${p.lastCheck.lastFailure}${p.lastCheck.lastFailureAt ? ` (${duration(now - p.lastCheck.lastFailureAt)} ago)` : ''}` : '—')}
      ${row('registered', `${new Date(p.registeredAt).toLocaleString()} · rev ${p.rev}`)}
    </dl>
    <div class="actions">
      <button onClick=${maintenance}>${inMaintenance ? 'End maintenance' : 'Maintenance…'}</button>
      <button class="danger" onClick=${deregister}>Deregister…</button>
    </div>
  </aside>`;
}

function ConfirmDialog({ title, text, reason, confirm, danger, run, onClose }) {
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const input = useRef(null);
  useEffect(() => {
    input.current?.focus();
    const esc = (e) => e.key === 'Escape' && onClose();
    addEventListener('keydown', esc);
    return () => removeEventListener('keydown', esc);
  }, []);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await run(value.trim());
      onClose();
    } catch (err) {
      setError(String(err.message ?? err));
      setBusy(false);
    }
  };
  return html`<div class="overlay" onClick=${(e) => e.target === e.currentTarget && onClose()}>
    <form class="dialog" role="dialog" aria-modal="true" aria-label=${title} onSubmit=${(e) => void submit(e)}>
      <h2>${title}</h2>
      <p>${text}</p>
      ${reason && html`<label>Reason <input ref=${input} name="reason" maxlength="512" placeholder="e.g. kernel upgrade" value=${value} onInput=${(e) => setValue(e.currentTarget.value)} /></label>`}
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <div class="actions">
        <button type="button" onClick=${onClose}>Cancel</button>
        <button type="submit" class=${danger ? 'danger' : 'primary'} disabled=${busy}>
          ${busy ? 'Working…' : confirm}
        </button>
      </div>
    </form>
  </div>`;
}

// ---------------------------------------------------------------------------------------------------- cluster

function ClusterView({ ready, ask, done }) {
  const cluster = usePoll('/v1/admin/cluster', CLUSTER_POLL_MS);
  const c = cluster.data;
  const r = ready.data;
  const guard = r?.massDownGuard;
  const release = () =>
    ask({
      title: 'Release the mass-down guard?',
      text: `The ${guard?.held ?? 0} held down transitions are published now: every client is told those providers are down. Do this only when they really are gone.`,
      confirm: 'Release',
      danger: true,
      run: async () => {
        const res = await api('POST', '/v1/admin/release-guard');
        done(`guard released (rev ${res.rev})`);
      },
    });
  return html`<div class="cluster">
    <section class="card" data-testid="leader">
      <h2>Leader</h2>
      ${cluster.error && html`<p class="error">Not reachable: ${cluster.error}</p>`}
      ${
        c &&
        html`<dl>
          <dt>session</dt>
          <dd><code>${short(c.session)}</code></dd>
          <dt>epoch</dt>
          <dd><code>${c.epoch}</code></dd>
          <dt>revision</dt>
          <dd>${c.rev}</dd>
          <dt>providers</dt>
          <dd>${c.providers}</dd>
          <dt>waiting for a worker</dt>
          <dd>${c.unassigned}</dd>
        </dl>`
      }
    </section>
    <section class="card" data-testid="workers">
      <h2>Workers ${c ? `(${c.workers.length})` : ''}</h2>
      ${
        c &&
        (c.workers.length
          ? html`<table>
              <thead>
                <tr>
                  <th>id</th>
                  <th>tasks</th>
                  <th>last heard</th>
                </tr>
              </thead>
              <tbody>
                ${c.workers.map(
                  (w) =>
                    html`<tr key=${w.id}>
                      <td><code>${w.id}</code></td>
                      <td>${w.tasks}</td>
                      <td>
                        <span class=${`badge ${w.lastSeenMs < WORKER_LATE_MS ? 'up' : 'pending'}`}
                          >${w.lastSeenMs < WORKER_LATE_MS ? 'live' : 'late'}</span
                        >
                        ${Math.round(w.lastSeenMs)} ms ago
                      </td>
                    </tr>`,
                )}
              </tbody>
            </table>`
          : html`<p class="error">No live worker: checked providers are not being watched.</p>`)
      }
    </section>
    <section class="card" data-testid="gateway">
      <h2>This gateway</h2>
      ${ready.error && !r && html`<p class="error">Not reachable: ${ready.error}</p>`}
      ${
        r &&
        html`<dl>
          <dt>sync</dt>
          <dd>
            <span class=${`badge ${r.ready ? 'up' : 'down'}`}
              >${r.ready ? 'in sync' : r.loaded ? 'stale' : 'loading'}</span
            >
          </dd>
          <dt>leader reachable</dt>
          <dd>${r.leaderReachable ? 'yes' : 'no'}</dd>
          <dt>last contact</dt>
          <dd>${r.lastContactMs === null ? '—' : `${Math.round(r.lastContactMs)} ms ago`}</dd>
          <dt>replica</dt>
          <dd>epoch <code>${short(r.epoch)}</code>, rev ${r.rev}</dd>
          <dt>this page</dt>
          <dd>
            rev ${feed.rev},
            ${feed.status}${feed.snapshots > 1 ? `, ${feed.snapshots - 1} resync${feed.snapshots > 2 ? 's' : ''}` : ''}
          </dd>
        </dl>`
      }
    </section>
    <section class=${`card${guard?.active ? ' alarm' : ''}`} data-testid="guard">
      <h2>Mass-down guard</h2>
      ${!guard && html`<p class="muted">Unknown (the gateway has not heard from the leader).</p>`}
      ${
        guard &&
        html`<p>
            ${
              guard.active
                ? html`<strong>Active</strong> since ${guard.since ? clock(guard.since) : '?'}:
                    <strong>${guard.held}</strong> down transitions held. The leader thinks a worker or a network was
                    cut off; they are published when their providers stay silent, or on release.`
                : 'Not active: down transitions are published as they happen.'
            }
          </p>
          <button class="danger" disabled=${!guard.active} onClick=${release}>Release…</button>`
      }
    </section>
    <${Charts} />
  </div>`;
}

function Charts() {
  const rate = useRef(null);
  const delay = useRef(null);
  useEffect(() => {
    drawRate(rate.current, feed.perSecond, 60);
    drawDelays(delay.current, feed.delays, 60);
  });
  const cutoff = Date.now() - 60_000;
  const recent = feed.delays.filter((d) => d.seen >= cutoff);
  const leader = percentiles(recent.map((d) => d.leaderMs));
  const detect = percentiles(recent.filter((d) => d.detectMs !== null).map((d) => d.detectMs));
  const fmt = (p) => (p ? `p50 ${Math.round(p.p50)} ms, p99 ${Math.round(p.p99)} ms` : 'no sample yet');
  return html`<section class="card wide">
    <h2>Seen by this page (last 60 s of ${HISTORY_SECONDS})</h2>
    <div class="charts">
      <figure>
        <figcaption>Events per second</figcaption>
        <canvas ref=${rate} data-testid="rate-chart"></canvas>
      </figure>
      <figure>
        <figcaption>
          Delay to this page: <span class="key accent">leader commit</span> (${fmt(leader)}),
          <span class="key down">check that saw an up/down</span> (${fmt(detect)})
        </figcaption>
        <canvas ref=${delay}></canvas>
      </figure>
    </div>
    <p class="muted">Measured against this computer's clock: exact on one machine, off by any clock skew otherwise.</p>
  </section>`;
}

// ---------------------------------------------------------------------------------------------------- events

function EventsView() {
  const [change, setChange] = useState('');
  const [text, setText] = useState('');
  const q = text.trim().toLowerCase();
  const lines = [];
  for (const e of feed.log) {
    if (change && e.change !== change) continue;
    if (q && !e.service.includes(q) && !e.id.toLowerCase().includes(q)) continue;
    lines.push(e);
    if (lines.length >= LOG_SHOWN) break;
  }
  return html`<div class="panel events">
    <div class="panel-head">
      <h2>Live events</h2>
      <span class="muted">newest first; the last ${LOG_LIMIT} are kept, ${feed.log.length} so far</span>
    </div>
    <div class="filters">
      <select aria-label="Change" value=${change} onChange=${(e) => setChange(e.currentTarget.value)}>
        <option value="">every change</option>
        ${CHANGES.map((c) => html`<option value=${c}>${c}</option>`)}
      </select>
      <input
        type="search"
        placeholder="Filter: service or provider id"
        aria-label="Filter events"
        value=${text}
        onInput=${(e) => setText(e.currentTarget.value)}
      />
    </div>
    <table class="log" data-testid="event-log">
      <thead>
        <tr>
          <th>time</th>
          <th>rev</th>
          <th>change</th>
          <th>service</th>
          <th>provider</th>
          <th>state</th>
        </tr>
      </thead>
      <tbody>
        ${lines.map(
          (e) =>
            html`<tr key=${e.rev}>
              <td>${clock(e.at)}</td>
              <td>${e.rev}</td>
              <td><span class=${`change ${e.change}`}>${e.change}</span></td>
              <td><a href=${`#/services/${encodeURIComponent(e.service)}`}>${e.service}</a></td>
              <td><code>${e.id}</code></td>
              <td>${e.change === 'deregistered' ? '—' : html`<span class=${`badge ${e.state}`}>${e.state}</span>`}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${lines.length === 0 && html`<p class="empty">${feed.log.length ? 'No event matches.' : 'No event since this page opened.'}</p>`}
  </div>`;
}

const root = document.getElementById('app');
root.textContent = '';
/** Asks for a token as needed; the feed starts (again) once one is accepted, else the page says why it cannot. */
async function askToken(opts) {
  // A gateway that cannot be asked (down, restarting): start anyway, the feed reconnects until it answers.
  const { ok, refusal } = await ensureToken(opts).catch(() => ({ ok: true }));
  if (ok) feed.start();
  else feed.refuse(refusal ?? feed.refusal ?? { code: 'SB_UNAUTHENTICATED', message: 'no token given' });
}

// With ACLs on, the page needs a token before the feed connects (asked once, kept for the tab's life).
await askToken();
render(html`<${App} />`, root);
