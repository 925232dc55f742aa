// The status page: reads the control API (docs/api.md) and stays current by the
// event stream (/api/v1/events): each event refreshes the parts it concerns, a
// few seconds apart at most, and a lost stream reconnects by itself.

import {ago, byId, bytes, duration, h, money, moneyShort, put, shortId, timeAgo} from './dom.js';
import {drawMesh} from './mesh.js';

const CHANNELS = ['billboard', 'social', 'media', 'direct'];
const EVENTS_KEPT = 40;
const REFRESH_MS = 5000; // RTTs, byte counts and uptime have no events of their own

const state = {
  me: null, // this node's id
  channel: 'social',
  cursor: null, // the messages list's next page
  names: new Map(), // node id -> name, from the topology and the humans list
  events: [],
  timers: new Map(),
  socket: null,
  retry: 0,
  poll: null, // the refresh interval, stopped when signed out
};

class SignInNeeded extends Error {}

async function api(path, body) {
  const init = {credentials: 'same-origin', headers: {Accept: 'application/json'}};
  if (body !== undefined) {
    init.method = 'POST';
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.status === 401) throw new SignInNeeded(data?.error || 'sign in');
  if (!response.ok && !(path === '/api/v1/health' && response.status === 503)) {
    throw new Error(data?.error || `HTTP ${response.status}`);
  }
  return data;
}

function nameOf(id) {
  if (!id) return '?';
  if (id === state.me) return 'you';
  return state.names.get(id) || shortId(id);
}

function who(id) {
  return h('span', {class: id === state.me ? 'who me' : 'who', title: id}, nameOf(id));
}

// -- sections --------------------------------------------------------------------------

async function refreshStatus() {
  const st = await api('/api/v1/status');
  state.me = st.node_id;
  const name = st.name || shortId(st.node_id);
  document.title = `${name} · liberation-node`;
  put(byId('node-name'), name);
  put(byId('node-network'), `network ${st.network}`);
  put(byId('node-version'), `v${st.version}`);
  put(byId('node-id'), st.node_id);
  put(byId('fact-peers'), String(st.peers.length));
  put(byId('fact-ops'), `${st.ops} ops from ${st.authors} authors, ${st.records} records` +
    (st.pending ? `, ${st.pending} waiting` : ''));
  put(byId('fact-uptime'), duration(st.uptime_s));
  put(byId('fact-data'), st.data_dir || '');
  const paused = byId('write-paused');
  paused.hidden = st.writable !== false;
  put(paused, st.writable === false
    ? `This node cannot save changes right now: ${st.write_error || 'writes are paused'}.` : '');
  const urls = st.join_urls || [];
  put(byId('join-urls'), urls.length ? urls.map((url) => h('li', {},
    h('code', {class: 'id'}, url),
    h('button', {type: 'button', class: 'link', onclick: () => copy(url)}, 'copy')))
    : h('li', {class: 'muted'}, 'None: this node advertises no address (--no-advertise); '
      + 'others reach it through its peers.'));
}

function copy(text) {
  if (navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
}

function showHealth(report) {
  const badge = byId('health-badge');
  badge.className = `badge ${report.ok ? 'ok' : 'bad'}`;
  put(badge, report.ok ? 'healthy' : 'needs attention');
  const checks = report.checks || report;
  const detail = {
    store: (c) => c.ops_stored === undefined ? '' : `${c.ops_stored} ops stored`,
    degree: (c) => `${c.peers} peers (wants ${c.low}–${c.high})`,
    sync: (c) => `${c.pending} waiting of ${c.ops}`,
    loop: (c) => `lag ${c.lag_ms} ms`,
    memory: (c) => bytes(c.rss_bytes),
    clock: (c) => c.offset_ms === null || c.offset_ms === undefined ? 'offset unknown'
      : `offset ${c.offset_ms} ms`,
  };
  put(byId('checks'), Object.entries(checks).filter(([, c]) => c && typeof c === 'object')
    .map(([key, c]) => h('li', {class: c.ok ? 'ok' : 'bad'},
      h('span', {class: 'mark', 'aria-hidden': 'true'}, c.ok ? '✓' : '!'),
      h('strong', {}, key), ' ', h('span', {class: 'muted'}, (detail[key] || (() => ''))(c)))));
}

async function refreshHealth() {
  showHealth(await api('/api/v1/health'));
}

async function refreshPeers() {
  const {peers} = await api('/api/v1/peers');
  put(byId('peer-count'), String(peers.filter((p) => p.state === 'open').length));
  byId('no-peers').hidden = peers.length > 0;
  put(byId('peer-rows'), peers.map((p) => h('tr', {class: `peer ${p.state}`, 'data-id': p.id || ''},
    h('td', {}, p.id ? who(p.id) : '…', p.state === 'open' ? null : ` (${p.state})`,
      p.address ? h('div', {class: 'muted small'}, p.address) : null),
    h('td', {}, p.rtt_ms === null ? '—' : `${p.rtt_ms} ms`),
    h('td', {}, bytes(p.bytes_in), h('div', {class: 'muted small'}, bytes(p.bytes_out))),
    h('td', {}, p.since_ms ? timeAgo(p.since_ms) : '—',
      h('div', {class: 'muted small'},
        `${p.found_by || '?'}, ${p.direction === 'out' ? 'dialed' : 'dialed us'}`)))));
}

async function refreshTopology() {
  const topology = await api('/api/v1/topology');
  for (const node of topology.nodes) if (node.name) state.names.set(node.id, node.name);
  put(byId('mesh-count'), `${topology.nodes.length} nodes, ${topology.links.length} links`);
  drawMesh(byId('mesh-svg'), topology);
}

async function refreshLedger() {
  const [summary, txs, humans] = await Promise.all([
    api('/api/v1/ledger'),
    api('/api/v1/ledger/transactions?limit=8'),
    api('/api/v1/ledger/humans?limit=100'),
  ]);
  for (const human of humans.humans) if (human.name) state.names.set(human.id, human.name);
  put(byId('known-humans'), humans.humans.filter((x) => x.id !== state.me)
    .map((x) => h('option', {value: x.id}, x.name || shortId(x.id))));
  const me = summary.me;
  put(byId('stat-balance'), me ? money(me.balance_cents) : 'not registered');
  byId('stat-balance').title = me ? `spendable now: ${money(me.spendable_cents)}` : '';
  put(byId('stat-pool'), moneyShort(summary.pool.available_cents));
  byId('stat-pool').title = money(summary.pool.available_cents);
  put(byId('stat-distributed'), moneyShort(summary.pool.distributed_cents));
  byId('stat-distributed').title = money(summary.pool.distributed_cents);
  put(byId('stat-humans'), String(summary.humans));
  byId('register-form').hidden = Boolean(me);
  byId('ledger-actions').hidden = !me;
  put(byId('tx-list'), txs.transactions.map(transaction));
  if (!txs.transactions.length) put(byId('tx-list'), h('li', {class: 'muted'}, 'No transactions yet.'));
}

function transaction(tx) {
  const text = {
    register: () => [who(tx.human_id), ' registered'],
    claim: () => [who(tx.human_id), ` claimed week ${tx.week}`],
    transfer: () => [who(tx.human_id), ' → ', who(tx.counterparty)],
  }[tx.kind]();
  return h('li', {class: `tx ${tx.status}`, 'data-id': tx.id},
    h('span', {class: 'amount'}, money(tx.amount_cents)),
    h('span', {class: 'what'}, ...text, tx.memo ? h('span', {class: 'memo'}, ` “${tx.memo}”`) : null),
    h('span', {class: 'muted small'}, timeAgo(tx.timestamp_ms),
      tx.status === 'void' ? ` · void: ${tx.reason}` : ''));
}

function channelTabs() {
  put(byId('channel-tabs'), CHANNELS.map((name) => h('button', {
    type: 'button', role: 'tab', 'aria-selected': String(name === state.channel),
    class: name === state.channel ? 'tab on' : 'tab',
    onclick: () => {
      state.channel = name;
      channelTabs();
      byId('post-to-label').hidden = name !== 'direct';
      byId('post-text').placeholder = `Write to ${name}`;
      refreshMessages().catch(report);
    },
  }, name)));
}

async function refreshMessages(more = false) {
  const query = new URLSearchParams({channel: state.channel, limit: '30'});
  if (more && state.cursor) query.set('cursor', state.cursor);
  const page = await api(`/api/v1/messages?${query}`);
  const items = page.messages.map(message);
  if (more) byId('message-list').append(...items);
  else put(byId('message-list'), items.length ? items : h('li', {class: 'muted'}, 'Nothing here yet.'));
  state.cursor = page.next_cursor;
  byId('more-messages').hidden = !page.next_cursor;
}

// Why a message's text is not shown (docs/api.md, `unreadable`).
const UNREADABLE = {
  not_for_this_node: 'A private message between two other nodes: sealed, only they can read it.',
  dropped: 'Its text is not kept on this node (retention).',
  retracted: 'Retracted by its author: its text is gone.',
  invalid: 'Its text cannot be read (malformed).',
};

function message(m) {
  const author = m.author === state.me ? 'you' : (m.author_name || shortId(m.author));
  const mine = m.author === state.me;
  const readable = m.text !== null;
  return h('li', {class: `message p${m.priority}${readable ? '' : ' unreadable'}`,
                  'data-id': m.id},
    h('div', {class: 'meta'},
      h('span', {class: mine ? 'who me' : 'who', title: m.author}, author),
      m.to ? [' → ', who(m.to)] : null,
      ' · ', timeAgo(m.timestamp_ms),
      m.priority > 1 ? h('span', {class: 'prio', title: 'priority'}, ` ★${m.priority}`) : null,
      m.encrypted ? h('span', {class: 'sealed', title: 'end-to-end encrypted to its recipient'},
        ' · private') : null,
      h('span', {class: 'muted small', title: 'nodes known to hold it'}, ` · reach ${m.reach}`),
      mine && !m.retracted
        ? h('button', {type: 'button', class: 'link', onclick: () => retract(m.id)}, 'retract')
        : null),
    readable ? h('p', {class: 'text'}, m.text)
      : h('p', {class: 'text muted'}, UNREADABLE[m.unreadable] || 'Its text cannot be shown.'));
}

async function retract(id) {
  await act('post-result', () => api(`/api/v1/messages/${id}/retract`, {}), 'Retracted.');
  refreshMessages().catch(report);
}

function addEvent(event) {
  state.events.unshift({at: Date.now(), event});
  state.events.length = Math.min(state.events.length, EVENTS_KEPT);
  byId('no-events').hidden = true;
  put(byId('event-list'), state.events.map(({at, event: e}) => h('li', {class: 'event'},
    h('span', {class: 'kind'}, e.type), ' ', h('span', {}, summary(e)), ' ',
    h('span', {class: 'muted small', title: new Date(at).toLocaleString()}, ago(at)))));
}

function summary(e) {
  switch (e.type) {
    case 'resource.distributed': return `${e.kind} by ${nameOf(e.author)} (${e.status})`;
    case 'truth.spread': return `message from ${nameOf(e.author)}`;
    case 'mesh.node.connected': return `${nameOf(e.peer)} connected`;
    case 'mesh.node.disconnected': return `${nameOf(e.peer)} left: ${e.reason || ''} ${e.detail || ''}`;
    case 'system.health.check': return e.ok ? 'all checks pass' : 'a check fails';
    case 'user.action': return `you: ${e.action}`;
    default: return '';
  }
}

// -- live updates ----------------------------------------------------------------------

const REFRESH = {
  status: refreshStatus, health: refreshHealth, peers: refreshPeers,
  topology: refreshTopology, ledger: refreshLedger, messages: () => refreshMessages(),
};
const AFFECTS = {
  'resource.distributed': ['ledger', 'status'],
  'truth.spread': ['messages', 'status'],
  'mesh.node.connected': ['peers', 'topology', 'status'],
  'mesh.node.disconnected': ['peers', 'topology', 'status'],
  'mesh.topology': ['topology'],
  'user.action': ['ledger', 'messages'],
};

/** Refresh a part soon; many events in a burst cost one refresh. */
function soon(part, delay = 250) {
  if (state.timers.has(part)) return;
  state.timers.set(part, setTimeout(() => {
    state.timers.delete(part);
    REFRESH[part]().catch(report);
  }, delay));
}

function live(text, kind) {
  const badge = byId('live');
  badge.className = `badge ${kind}`;
  put(badge, text);
}

function connect() {
  const socket = new WebSocket(`ws://${location.host}/api/v1/events`);
  state.socket = socket;
  socket.onopen = () => {
    state.retry = 0;
    live('live', 'ok');
    for (const part of Object.keys(REFRESH)) soon(part, 0); // catch up on what we missed
  };
  socket.onmessage = (msg) => {
    let event;
    try {
      event = JSON.parse(msg.data);
    } catch {
      return;
    }
    if (event.type === 'system.health.check') showHealth(event);
    else if (event.type !== 'mesh.topology') addEvent(event); // records churn: map only
    for (const part of AFFECTS[event.type] || []) soon(part);
  };
  socket.onclose = () => {
    state.socket = null;
    live('reconnecting', 'wait');
    reconnect();
  };
}

/** Open the stream again once the node answers (no socket is tried on a dead port). */
function reconnect() {
  const delay = Math.min(15000, 500 * 2 ** state.retry);
  state.retry += 1;
  setTimeout(() => api('/api/v1/status').then(connect, (err) => {
    report(err);
    if (!(err instanceof SignInNeeded)) reconnect();
  }), delay);
}

function report(err) {
  if (err instanceof SignInNeeded) {
    clearInterval(state.poll);
    if (state.socket) state.socket.close();
    byId('app').hidden = true;
    byId('signin').hidden = false;
    put(byId('signin-detail'), err.message);
    live('signed out', 'bad');
    return;
  }
  if (err instanceof TypeError) live('node unreachable', 'bad'); // fetch itself failed
  else byId('live').title = err.message;
}

// -- forms -----------------------------------------------------------------------------

async function act(resultId, call, done) {
  const out = byId(resultId);
  out.className = 'result';
  put(out, 'sending…');
  try {
    await call();
    out.className = 'result ok';
    put(out, done);
    return true;
  } catch (err) {
    if (err instanceof SignInNeeded) report(err);
    out.className = 'result bad';
    put(out, err.message);
    return false;
  }
}

function forms() {
  byId('register-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = ev.target.elements.name.value.trim();
    if (await act('ledger-result', () => api('/api/v1/register', {name}), 'Registered.')) {
      refreshLedger().catch(report);
    }
  });
  byId('claim-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (await act('ledger-result', () => api('/api/v1/ledger/claim', {}), 'Claimed.')) {
      refreshLedger().catch(report);
    }
  });
  byId('transfer-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target.elements;
    const cents = Math.round(Number(f.amount.value) * 100);
    const body = {to: f.to.value.trim(), amount_cents: cents, memo: f.memo.value};
    if (await act('ledger-result', () => api('/api/v1/ledger/transfer', body),
      `Sent ${money(cents)} to ${nameOf(body.to)}.`)) {
      ev.target.reset();
      refreshLedger().catch(report);
    }
  });
  const priority = byId('post-form').elements.priority;
  put(priority, Array.from({length: 10}, (_, i) => h('option', {value: i + 1}, String(i + 1))));
  byId('post-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target.elements;
    const body = {text: f.text.value, channel: state.channel, priority: Number(f.priority.value)};
    if (state.channel === 'direct') body.to = f.to.value.trim();
    if (await act('post-result', () => api('/api/v1/messages', body), 'Posted.')) {
      f.text.value = '';
      refreshMessages().catch(report);
    }
  });
  byId('more-messages').addEventListener('click', () => refreshMessages(true).catch(report));
}

async function main() {
  channelTabs();
  forms();
  try {
    await refreshStatus();
  } catch (err) {
    report(err);
    return;
  }
  byId('app').hidden = false;
  await Promise.all(Object.values(REFRESH).map((refresh) => refresh().catch(report)));
  connect();
  state.poll = setInterval(() => {
    soon('status', 0);
    soon('peers', 0);
  }, REFRESH_MS);
}

main();
