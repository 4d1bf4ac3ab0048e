// Veritrain's web UI: a hash-routed single-page application over the public
// API. Every string from the server is put in the page as text (never as
// HTML), and the Content-Security-Policy forbids inline script, so a job
// name or a log line cannot run code. docs/ui.md describes the pages.

import { charts } from './charts.js';

// ------------------------------------------------------------------ helpers

// h('p', {class: 'x', onclick: f}, 'text', child): a DOM element.
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const $main = () => document.getElementById('main');
function announce(text) { document.getElementById('announce').textContent = text; }

function bytes(n) {
  if (n == null) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0; let v = n;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i += 1; }
  return `${i ? v.toFixed(1) : v} ${u[i]}`;
}
function when(s) { return s ? new Date(s).toLocaleString() : '—'; }
function secs(s) {
  if (s == null) return '—';
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
function short(hash) { return hash ? `${hash.slice(0, 12)}…` : ''; }
const ACTIVE = ['queued', 'validating', 'training', 'attesting'];

function stateBadge(state) { return h('span', { class: `badge state-${state}` }, state); }

// An actionable message for an API error.
function errorBox(err, title = 'Something went wrong') {
  const box = h('div', { class: 'error', role: 'alert' }, h('strong', {}, title), ' ');
  box.append(err.message || String(err));
  if (err.code) box.append(' ', h('code', {}, err.code));
  if (err.status === 401) box.append(' ', h('a', { href: '#/signin' }, 'Sign in again'));
  if (err.status === 0) box.append(' Check that the Veritrain server is running and reachable.');
  return box;
}

// ------------------------------------------------------------------ API

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message); this.status = status; this.code = code; this.details = details;
  }
}

const session = {
  get token() { return sessionStorage.getItem('veritrain.token'); },
  set token(t) { if (t) sessionStorage.setItem('veritrain.token', t); else sessionStorage.removeItem('veritrain.token'); },
  me: null,
  config: null,
};

async function toError(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  const e = body && body.error;
  if (res.status === 401) { session.token = null; session.me = null; renderWho(); }
  if (e) return new ApiError(res.status, e.code, e.message, e.details);
  return new ApiError(res.status, `http.${res.status}`, `the server answered ${res.status} ${res.statusText}`);
}

async function api(path, { method = 'GET', body, headers = {}, auth = true, raw = false } = {}) {
  const hdrs = { ...headers };
  if (auth && session.token) hdrs.Authorization = `Bearer ${session.token}`;
  let res;
  try {
    res = await fetch(path, { method, body, headers: hdrs });
  } catch (e) {
    throw new ApiError(0, 'network', `the request to ${path} did not reach the server (${e.message}).`);
  }
  if (!res.ok) throw await toError(res);
  return raw ? res : res.json();
}

// Downloads an authenticated file: fetched with the token, saved through a
// blob URL (a plain link could not carry the Authorization header).
async function download(path, filename) {
  const res = await api(path, { raw: true });
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: filename, class: 'visually-hidden' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

function downloadButton(label, path, filename) {
  const status = h('span', { class: 'muted', 'aria-live': 'polite' });
  const btn = h('button', {
    type: 'button', class: 'secondary',
    onclick: async () => {
      btn.disabled = true; status.textContent = ' downloading…';
      try { await download(path, filename); status.textContent = ' saved'; } catch (e) { status.textContent = ''; status.append(errorBox(e, 'Download failed.')); }
      btn.disabled = false;
    },
  }, label);
  return h('span', {}, btn, status);
}

// Follows a server-sent event stream with fetch() (EventSource cannot send
// an Authorization header), resuming with Last-Event-ID after a drop.
// Returns a function that stops following.
function follow(path, onEvent, onEnd) {
  const ctrl = new AbortController();
  let last = null; let stopped = false; let tries = 0;
  (async () => {
    while (!stopped) {
      try {
        const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${session.token}` };
        if (last) headers['Last-Event-ID'] = last;
        const res = await fetch(path, { headers, signal: ctrl.signal });
        if (!res.ok) throw await toError(res);
        tries = 0;
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i); buf = buf.slice(i + 2);
            let event = 'message'; const data = []; let id = null;
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              const c = line.indexOf(':');
              const field = c < 0 ? line : line.slice(0, c);
              const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
              if (field === 'event') event = val;
              else if (field === 'data') data.push(val);
              else if (field === 'id') id = val;
            }
            if (id) last = id;
            if (event === 'end') { stopped = true; onEnd(); return; }
            if (!data.length) continue;
            try { onEvent(event, JSON.parse(data.join('\n'))); } catch (e) { console.warn('bad event', e); }
          }
        }
      } catch (e) {
        if (stopped || e.name === 'AbortError') return;
        if (e instanceof ApiError && e.status >= 400 && e.status < 500) { onEnd(e); return; }
      }
      tries += 1;
      await new Promise((r) => setTimeout(r, Math.min(1000 * tries, 10000)));
    }
  })();
  return () => { stopped = true; ctrl.abort(); };
}

// ------------------------------------------------------------------ sign-in

const b64url = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const randomString = (n = 32) => b64url(crypto.getRandomValues(new Uint8Array(n)));

async function discovery(oidc) {
  const res = await fetch(oidc.discovery_url);
  if (!res.ok) throw new ApiError(res.status, 'oidc.discovery', `the identity provider's discovery document (${oidc.discovery_url}) answered ${res.status}`);
  return res.json();
}

// OIDC authorization code flow with PKCE (RFC 7636, S256): the browser is a
// public client, so the code is bound to a verifier only this tab knows.
async function oidcStart() {
  const oidc = session.config.oidc;
  const meta = await discovery(oidc);
  const verifier = randomString(32);
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const state = randomString(16);
  const nonce = randomString(16);
  sessionStorage.setItem('veritrain.oidc', JSON.stringify({ verifier, state, nonce, back: location.hash || '#/jobs' }));
  const url = new URL(meta.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code', client_id: oidc.client_id, redirect_uri: `${location.origin}/`,
    scope: oidc.scopes, state, nonce, code_challenge: challenge, code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

// The identity provider redirected back with ?code=...&state=...
async function oidcFinish(params) {
  const saved = JSON.parse(sessionStorage.getItem('veritrain.oidc') || 'null');
  sessionStorage.removeItem('veritrain.oidc');
  history.replaceState(null, '', `${location.pathname}${saved ? saved.back : '#/jobs'}`);
  if (params.get('error')) throw new ApiError(400, `oidc.${params.get('error')}`, params.get('error_description') || 'the identity provider refused the sign-in');
  if (!saved || saved.state !== params.get('state')) throw new ApiError(400, 'oidc.state', 'the sign-in response does not belong to this tab (state mismatch); sign in again');
  const meta = await discovery(session.config.oidc);
  const res = await fetch(meta.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: params.get('code'), redirect_uri: `${location.origin}/`,
      client_id: session.config.oidc.client_id, code_verifier: saved.verifier,
    }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || !body.access_token) throw new ApiError(res.status, 'oidc.token', body.error_description || body.error || 'the identity provider did not issue a token');
  session.token = body.access_token;
}

async function loadMe() {
  session.me = null;
  if (session.token) {
    try { session.me = await api('/v1/me'); } catch { session.token = null; }
  }
  renderWho();
}

const hasRole = (r) => !!session.me && session.me.roles.includes(r);

function renderWho() {
  const who = document.getElementById('who');
  who.replaceChildren();
  if (session.me) {
    who.append(h('span', {}, session.me.display_name || session.me.object_id, ' ', h('span', { class: 'muted' }, `(${session.me.roles.join(', ')})`)),
      h('button', { type: 'button', class: 'link', onclick: () => { session.token = null; session.me = null; renderWho(); location.hash = '#/signin'; } }, 'Sign out'));
  } else {
    who.append(h('a', { href: '#/signin' }, 'Sign in'));
  }
  const submit = document.querySelector('[data-nav=submit]');
  if (submit) submit.parentElement.hidden = !!session.me && !hasRole('developer');
}

function signinPage() {
  const c = session.config;
  const page = h('section', { class: 'narrow' }, h('h1', {}, 'Sign in'));
  if (!c.jobs) {
    page.append(h('p', {}, 'This server is a verification node: it has no jobs API to sign in to. You can still ', h('a', { href: '#/verify' }, 'verify a bundle'), ' and read the ', h('a', { href: '#/trust' }, 'trust material'), '.'));
    return page;
  }
  if (c.dev) {
    const out = h('div', { 'aria-live': 'polite' });
    const form = h('form', { class: 'card' },
      h('p', {}, 'Development mode: a local sign-in, answered only on this machine. Choose who to be.'),
      h('label', { for: 'dev-subject' }, 'User name'),
      h('input', { id: 'dev-subject', name: 'subject', value: 'alice', required: true, autocomplete: 'username' }),
      h('fieldset', {}, h('legend', {}, 'Roles'),
        ...[['developer', 'submits jobs and sees their own'], ['auditor', 'reads every job'], ['admin', 'reads and cancels every job']].map(([r, help]) =>
          h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'roles', value: r, checked: r === 'developer' }), ` ${r} `, h('span', { class: 'muted' }, `— ${help}`)))),
      h('button', { type: 'submit', id: 'dev-signin' }, 'Sign in'), out);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      out.replaceChildren();
      const roles = [...form.querySelectorAll('input[name=roles]:checked')].map((i) => i.value);
      if (!roles.length) { out.append(errorBox({ message: 'Choose at least one role.' }, 'No role.')); return; }
      try {
        const t = await api('/v1/dev/token', { method: 'POST', auth: false, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ subject: form.subject.value.trim(), roles }) });
        session.token = t.access_token;
        await loadMe();
        announce(`Signed in as ${session.me.display_name}`);
        location.hash = '#/jobs';
      } catch (e) { out.append(errorBox(e, 'Sign-in failed.')); }
    });
    page.append(form);
  } else if (c.oidc) {
    const out = h('div', { 'aria-live': 'polite' });
    let host = c.oidc.issuer;
    try { host = new URL(c.oidc.issuer).host; } catch { /* keep */ }
    page.append(h('div', { class: 'card' },
      h('p', {}, 'Sign in with your organisation\'s account. You will be sent to ', h('strong', {}, host), ' and back.'),
      h('button', { type: 'button', id: 'oidc-signin', onclick: async () => { try { await oidcStart(); } catch (e) { out.replaceChildren(errorBox(e, 'Cannot start the sign-in.')); } } }, 'Sign in with your identity provider'),
      out));
  } else {
    page.append(h('div', { class: 'error', role: 'alert' }, 'This server has no browser sign-in configured. An operator can set ', h('code', {}, '[ui] oidc_client_id'), ' (see docs/ui.md). Verification and the trust page work without signing in.'));
  }
  return page;
}

// ------------------------------------------------------------------ jobs list

// The last integrity check of finished jobs, read from their event streams.
const integrityCache = new Map();
async function lastIntegrity(id) {
  if (integrityCache.has(id)) return integrityCache.get(id);
  const p = new Promise((resolve) => {
    let found = null;
    follow(`/v1/jobs/${id}/events`, (ev, e) => { if (ev === 'integrity') found = e.data; }, () => resolve(found));
  });
  integrityCache.set(id, p);
  return p;
}

function verificationCell(job) {
  const cell = h('td', { 'data-label': 'Verification' });
  if (job.state !== 'succeeded') { cell.append(job.state === 'failed' ? h('span', { class: 'muted' }, job.reason ? job.reason.code : 'failed') : '—'); return cell; }
  cell.append(h('span', { class: 'muted' }, 'signed'));
  lastIntegrity(job.id).then((r) => {
    cell.replaceChildren(r ? h('span', { class: r.passed ? 'ok' : 'bad' }, r.passed ? '✓ intact' : '✗ integrity failed', h('span', { class: 'muted' }, ` ${when(r.checked_at)}`)) : h('span', { class: 'muted' }, 'signed; not checked yet'));
  });
  return cell;
}

function jobsPage() {
  const page = h('section', {}, h('h1', {}, 'Jobs'));
  const canAll = hasRole('auditor') || hasRole('admin');
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const filters = h('form', { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
    h('label', {}, 'State ', h('select', { name: 'state' }, h('option', { value: '' }, 'any'), ...['queued', 'validating', 'training', 'attesting', 'succeeded', 'failed', 'cancelled'].map((s) => h('option', { value: s, selected: q.get('state') === s }, s)))),
    h('label', {}, 'Search ', h('input', { name: 'text', type: 'search', placeholder: 'model, id or owner', value: q.get('text') || '' })),
    h('label', {}, 'Sort ', h('select', { name: 'sort' }, h('option', { value: 'created' }, 'newest first'), h('option', { value: 'duration' }, 'longest first'), h('option', { value: 'name' }, 'model name'), h('option', { value: 'state' }, 'state'))),
    canAll ? h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'all', checked: true }), ' all users\' jobs') : null,
    hasRole('developer') ? h('a', { class: 'button', href: '#/submit' }, 'Submit a job') : null);
  const out = h('div', { 'aria-live': 'polite' }, h('p', {}, 'Loading…'));
  page.append(filters, out);
  let jobs = []; let next = null;
  const render = () => {
    const f = new FormData(filters);
    const text = (f.get('text') || '').toLowerCase();
    let rows = jobs.filter((j) => (!f.get('state') || j.state === f.get('state')) && (!text || `${j.request.model.name} ${j.request.model.version} ${j.id} ${j.owner.object_id}`.toLowerCase().includes(text)));
    const sort = f.get('sort');
    rows = rows.slice().sort((a, b) => sort === 'name' ? a.request.model.name.localeCompare(b.request.model.name)
      : sort === 'duration' ? (b.duration_secs || 0) - (a.duration_secs || 0)
        : sort === 'state' ? a.state.localeCompare(b.state) : b.created_at.localeCompare(a.created_at));
    out.replaceChildren();
    if (!jobs.length) { out.append(h('p', {}, 'No jobs yet. ', hasRole('developer') ? h('a', { href: '#/submit' }, 'Submit one.') : '')); return; }
    out.append(h('p', { class: 'muted' }, `${rows.length} of ${jobs.length} job(s)`));
    out.append(h('table', { class: 'jobs' },
      h('thead', {}, h('tr', {}, ...['Model', 'State', 'Started', 'Duration', 'Verification', ...(canAll ? ['Owner'] : [])].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows.map((j) => h('tr', { 'data-job': j.id },
        h('td', { 'data-label': 'Model' }, h('div', {}, h('a', { href: `#/jobs/${j.id}` }, `${j.request.model.name} ${j.request.model.version}`), h('div', { class: 'muted mono' }, short(j.id)))),
        h('td', { 'data-label': 'State' }, stateBadge(j.state), j.progress && ACTIVE.includes(j.state) ? h('span', { class: 'muted' }, ` epoch ${j.progress.epoch}/${j.progress.total_epochs}`) : ''),
        h('td', { 'data-label': 'Started' }, when(j.started_at)),
        h('td', { 'data-label': 'Duration' }, secs(j.duration_secs)),
        verificationCell(j),
        canAll ? h('td', { 'data-label': 'Owner' }, j.owner.object_id) : null)))));
    if (next) out.append(h('button', { type: 'button', class: 'secondary', onclick: () => load(false) }, 'Load more'));
  };
  const load = async (reset) => {
    try {
      const scope = canAll && (!filters.all || filters.all.checked) ? 'all' : 'mine';
      const params = new URLSearchParams({ limit: '100', scope });
      if (!reset && next) params.set('after', next);
      const r = await api(`/v1/jobs?${params}`);
      jobs = reset ? r.jobs : jobs.concat(r.jobs); next = r.next;
      render();
    } catch (e) { out.replaceChildren(errorBox(e, 'Cannot list the jobs.')); }
  };
  filters.addEventListener('input', (e) => { if (e.target.name === 'all') load(true); else render(); });
  load(true);
  const timer = setInterval(() => { if (jobs.some((j) => ACTIVE.includes(j.state))) load(true); }, 5000);
  return { node: page, stop: () => clearInterval(timer) };
}

// ------------------------------------------------------------------ submit

const FIELDS = {
  model: { ext: ['.keras'], limit: 'max_model_bytes', label: 'Model (.keras)' },
  definition: { ext: ['.yaml', '.yml'], limit: 'max_definition_bytes', label: 'Dataset definition (.yaml)' },
  dataset: { ext: ['.csv', '.zip', '.tfrecord'], limit: 'max_dataset_bytes', label: 'Dataset (.csv, .zip of images, .tfrecord)' },
};

function lines(v) { return (v || '').split('\n').map((s) => s.trim()).filter(Boolean); }

function field(id, label, input, help) {
  return h('div', { class: 'field', 'data-field': id },
    h('label', { for: id }, label), input,
    help ? h('p', { class: 'help', id: `${id}-help` }, help) : null,
    h('div', { class: 'field-error', id: `${id}-error`, 'aria-live': 'polite' }));
}
const text = (id, attrs = {}) => h('input', { id, name: id, type: 'text', 'aria-describedby': `${id}-help ${id}-error`, ...attrs });
const area = (id, attrs = {}) => h('textarea', { id, name: id, rows: 3, 'aria-describedby': `${id}-help ${id}-error`, ...attrs });

function submitPage() {
  const limits = session.config.limits || {};
  const form = h('form', { class: 'submit', novalidate: true },
    h('fieldset', {}, h('legend', {}, 'Files'),
      ...Object.entries(FIELDS).map(([k, f]) => field(k, f.label, h('input', { id: k, name: k, type: 'file', accept: f.ext.join(','), required: true, 'aria-describedby': `${k}-help ${k}-error` }),
        `${k === 'model' ? 'A Keras 3 model file; its layers are checked against an allow-list before training. ' : k === 'definition' ? 'Says what the dataset is: its type, columns or classes, and the validation split. ' : 'Uploaded last, after the other parts passed the checks. '}At most ${bytes(limits[f.limit])}.`))),
    h('fieldset', {}, h('legend', {}, 'Model card'),
      field('name', 'Name *', text('name', { required: true }), 'The trained model\'s name, as the AIBoM will state it.'),
      field('version', 'Version *', text('version', { required: true, value: '1.0.0' }), 'The trained model\'s version.'),
      field('description', 'Description', area('description'), 'What the model does, in a sentence or two.'),
      field('authors', 'Authors', area('authors', { rows: 2, placeholder: 'Ada Lovelace <ada@example.org>' }), 'One per line: a name, optionally followed by an email address in <angle brackets>.'),
      field('license', 'Licence', text('license', { placeholder: 'Apache-2.0' }), 'An SPDX licence expression.'),
      field('task', 'Task', text('task', { placeholder: 'classification' }), 'For example classification or regression.'),
      field('approach', 'Type (learning approach)', h('select', { id: 'approach', name: 'approach' }, h('option', { value: '' }, 'not stated'), ...['supervised', 'unsupervised', 'reinforcement-learning', 'semi-supervised', 'self-supervised'].map((a) => h('option', { value: a }, a))), null),
      field('architecture_family', 'Architecture family', text('architecture_family', { placeholder: 'multilayer perceptron' }), 'Derived from the layers when left empty.'),
      field('tags', 'Tags', text('tags'), 'Comma-separated.'),
      field('base_name', 'Base model name', text('base_name'), 'What the uploaded model is called.'),
      field('base_version', 'Base model version', text('base_version'), null),
      field('base_source', 'Base model source', text('base_source'), 'Where the uploaded model came from: a URL or a sentence.'),
      field('intended_users', 'Intended users', area('intended_users'), 'One per line.'),
      field('use_cases', 'Intended use', area('use_cases'), 'One use case per line.'),
      field('out_of_scope', 'Out-of-scope use', area('out_of_scope'), 'One per line: uses the model is not fit for.'),
      field('misuse', 'Misuse and mitigation', area('misuse', { placeholder: 'Using it on real patients | The card and licence forbid it' }), 'One per line: the misuse, a "|", then its mitigation.')),
    h('fieldset', {}, h('legend', {}, 'Dataset'),
      field('ds_description', 'Description', area('ds_description', { rows: 2 }), 'What the data is.'),
      field('ds_source', 'Source', text('ds_source'), 'Where it came from.'),
      field('ds_license', 'Licence', text('ds_license', { placeholder: 'CC0-1.0' }), 'An SPDX licence expression.')),
    h('fieldset', {}, h('legend', {}, 'Training (fit parameters)'),
      field('epochs', 'Epochs', h('input', { id: 'epochs', name: 'epochs', type: 'number', min: 1, max: 100000, value: 10, 'aria-describedby': 'epochs-help epochs-error' }), 'Passes over the training split (default 10).'),
      field('batch_size', 'Batch size', h('input', { id: 'batch_size', name: 'batch_size', type: 'number', min: 1, value: 32, 'aria-describedby': 'batch_size-help batch_size-error' }), 'Samples per gradient step (default 32).'),
      field('seed', 'Seed', h('input', { id: 'seed', name: 'seed', type: 'number', min: 0, max: 4294967295, 'aria-describedby': 'seed-help seed-error' }), 'Seed of weights, dropout and shuffle, below 2³². Empty: the definition\'s, else one the platform picks and records.'),
      field('validation_split', 'Validation split', h('input', { id: 'validation_split', name: 'validation_split', type: 'number', min: 0, max: 0.99, step: 0.01, 'aria-describedby': 'validation_split-help validation_split-error' }), 'Fraction held out for validation, 0 to below 1. Empty: the definition\'s, else 0.2.'),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', id: 'shuffle', name: 'shuffle', checked: true }), ' Shuffle the training split every epoch')),
    h('div', { class: 'field-error', id: 'job-error', 'aria-live': 'polite' }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'submit-job' }, 'Submit job'),
      h('progress', { id: 'upload', max: 100, value: 0, hidden: true, 'aria-label': 'Upload progress' }), h('span', { id: 'upload-text', 'aria-live': 'polite' })),
    h('div', { id: 'submit-out', 'aria-live': 'polite' }));

  const setError = (name, msg, findings) => {
    const box = form.querySelector(`#${name}-error`) || form.querySelector('#job-error');
    box.replaceChildren();
    if (!msg) return;
    box.append(h('p', {}, msg));
    if (findings && findings.length) box.append(h('ul', {}, findings.map((f) => h('li', {}, h('code', {}, f.code), ' ', f.message))));
    const input = form.querySelector(`#${name}`);
    if (input) input.setAttribute('aria-invalid', 'true');
  };
  const clearErrors = () => { form.querySelectorAll('.field-error').forEach((e) => e.replaceChildren()); form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid')); };

  const request = () => {
    const v = (k) => form.elements[k].value.trim();
    const errors = [];
    const model = { name: v('name'), version: v('version') };
    if (!model.name) errors.push(['name', 'Give the model a name.']);
    if (!model.version) errors.push(['version', 'Give the model a version.']);
    if (v('description')) model.description = v('description');
    const authors = lines(v('authors')).map((l) => {
      const m = l.match(/^(.*?)\s*<([^<>\s]+@[^<>\s]+)>\s*$/);
      if (!m && l.includes('@')) errors.push(['authors', `Write "${l}" as Name <email>.`]);
      return m ? { name: m[1], email: m[2] } : { name: l };
    });
    if (authors.length) model.authors = authors;
    for (const k of ['license', 'task', 'approach', 'architecture_family']) if (v(k)) model[k] = v(k);
    const tags = v('tags').split(',').map((s) => s.trim()).filter(Boolean);
    if (tags.length) model.tags = tags;
    const base = {};
    for (const [k, f] of [['name', 'base_name'], ['version', 'base_version'], ['source', 'base_source']]) if (v(f)) base[k] = v(f);
    if (Object.keys(base).length) model.base_model = base;
    for (const k of ['intended_users', 'use_cases', 'out_of_scope']) if (lines(v(k)).length) model[k] = lines(v(k));
    const misuse = lines(v('misuse')).map((l) => { const [d, ...m] = l.split('|'); return m.length ? { description: d.trim(), mitigation: m.join('|').trim() } : { description: d.trim() }; });
    if (misuse.length) model.misuse = misuse;
    const req = { model };
    const ds = {};
    for (const [k, f] of [['description', 'ds_description'], ['source', 'ds_source'], ['license', 'ds_license']]) if (v(f)) ds[k] = v(f);
    if (Object.keys(ds).length) req.dataset = ds;
    const fit = { shuffle: form.elements.shuffle.checked };
    const int = (k, lo, hi) => {
      if (!v(k)) return;
      const n = Number(v(k));
      if (!Number.isInteger(n) || n < lo || n > hi) errors.push([k, `Must be a whole number from ${lo} to ${hi}.`]); else fit[k] = n;
    };
    int('epochs', 1, 100000); int('batch_size', 1, 1000000); int('seed', 0, 4294967295);
    if (v('validation_split')) {
      const n = Number(v('validation_split'));
      if (!(n >= 0 && n < 1)) errors.push(['validation_split', 'Must be at least 0 and below 1.']); else fit.validation_split = n;
    }
    req.fit = fit;
    for (const [k, f] of Object.entries(FIELDS)) {
      const file = form.elements[k].files[0];
      if (!file) { errors.push([k, `Choose the ${k} file.`]); continue; }
      const name = file.name.toLowerCase();
      if (!f.ext.some((e) => name.endsWith(e))) errors.push([k, `"${file.name}" is not a ${f.ext.join(' or ')} file.`]);
      if (limits[f.limit] && file.size > limits[f.limit]) errors.push([k, `"${file.name}" is ${bytes(file.size)}; this server takes at most ${bytes(limits[f.limit])}.`]);
      if (file.size === 0) errors.push([k, `"${file.name}" is empty.`]);
    }
    return { req, errors };
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearErrors();
    const out = form.querySelector('#submit-out'); out.replaceChildren();
    const { req, errors } = request();
    if (errors.length) {
      for (const [k, m] of errors) setError(k, m);
      out.append(h('div', { class: 'error', role: 'alert' }, `Fix ${errors.length} field(s) before submitting.`));
      form.querySelector(`#${errors[0][0]}`).focus();
      return;
    }
    // The server reads the parts in this order and wants the dataset last,
    // so a bad job is refused before its largest part is sent.
    const data = new FormData();
    data.append('job', new Blob([JSON.stringify(req)], { type: 'application/json' }), 'job.json');
    for (const k of ['definition', 'model', 'dataset']) data.append(k, form.elements[k].files[0]);
    const bar = form.querySelector('#upload'); const barText = form.querySelector('#upload-text');
    const button = form.querySelector('#submit-job');
    bar.hidden = false; bar.value = 0; button.disabled = true;
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/v1/jobs');
    xhr.setRequestHeader('Authorization', `Bearer ${session.token}`);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) { bar.value = Math.round((e.loaded / e.total) * 100); barText.textContent = ` ${bytes(e.loaded)} of ${bytes(e.total)} sent`; }
    });
    xhr.addEventListener('error', () => { button.disabled = false; bar.hidden = true; out.append(errorBox({ status: 0, message: 'The upload did not reach the server.' }, 'Upload failed.')); });
    xhr.addEventListener('load', () => {
      button.disabled = false; bar.hidden = true; barText.textContent = '';
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201) { announce('Job submitted'); location.hash = `#/jobs/${body.id}`; return; }
      const e = body.error || { code: `http.${xhr.status}`, message: `the server answered ${xhr.status}` };
      const d = e.details || {};
      if (xhr.status === 401) { session.token = null; renderWho(); }
      if (d.field) setError(d.field === 'job' ? 'job' : d.field, e.message, d.findings);
      out.append(errorBox(new ApiError(xhr.status, e.code, d.field ? `${e.message} (see the ${d.field} field above)` : e.message), xhr.status === 422 ? 'The job was refused by the intake checks.' : 'The job was not accepted.'));
      const target = d.field && form.querySelector(`#${d.field}`);
      if (target) target.focus();
    });
    xhr.send(data);
  });
  return h('section', {}, h('h1', {}, 'Submit a training job'),
    h('p', { class: 'muted' }, 'The files are checked on upload (the model\'s layers, the definition, that the model fits the data); the job then trains in a sandbox and its outputs are signed.'), form);
}

// ------------------------------------------------------------------ job detail

const props = (c) => (c && c.properties) || [];
const prop = (c, name) => { const p = props(c).find((x) => x.name === name); return p ? p.value : undefined; };
const propsWith = (c, prefix) => props(c).filter((p) => p.name.startsWith(prefix));

function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && !v.length)).map(([k, v]) => [h('dt', {}, k), h('dd', {}, Array.isArray(v) ? h('ul', {}, v.map((x) => h('li', {}, x))) : v)]));
}

function modelCard(bom, history, totalEpochs) {
  const m = bom.metadata.component;
  const card = m.modelCard || {};
  const params = card.modelParameters || {};
  const cons = card.considerations || {};
  const comps = bom.components || [];
  const base = comps.find((c) => c.type === 'machine-learning-model');
  const datasets = comps.filter((c) => c.type === 'data' && (c.data || []).some((d) => d.type === 'dataset'));
  const platform = comps.find((c) => c.type === 'platform');
  const sec = (title, ...body) => h('section', { class: 'card' }, h('h3', {}, title), ...body);
  const out = h('div', { class: 'model-card', id: 'model-card' }, h('h2', {}, 'Model card'), h('p', { class: 'muted' }, 'Rendered from the signed AIBoM (aibom.cdx.json, CycloneDX 1.6).'));

  out.append(sec('Purpose', dl([
    ['Model', `${m.name} ${m.version}`], ['Description', m.description], ['Task', params.task], ['Approach', params.approach && params.approach.type],
    ['Authors', (m.authors || []).map((a) => (a.email ? `${a.name} <${a.email}>` : a.name))],
    ['Licence', (m.licenses || []).map((l) => l.expression || (l.license && (l.license.id || l.license.name)))],
    ['Tags', (m.tags || []).join(', ')], ['Intended users', cons.users], ['Intended use', cons.useCases], ['Out of scope', cons.technicalLimitations],
    ['Misuse', (cons.ethicalConsiderations || []).map((e) => `${e.name}${e.mitigationStrategy ? ` — mitigation: ${e.mitigationStrategy}` : ''}`)],
    ['Trade-offs', cons.performanceTradeoffs],
    ['Fairness', (cons.fairnessAssessments || []).map((f) => `${f.groupAtRisk}: benefits ${f.benefits}; harms ${f.harms}; mitigation ${f.mitigationStrategy}`)],
    ['SHA-256', h('code', {}, ((m.hashes || [])[0] || {}).content)],
  ])));

  out.append(sec('Architecture', dl([
    ['Summary', params.modelArchitecture], ['Family', params.architectureFamily],
    ['Inputs', (params.inputs || []).map((i) => i.format)], ['Outputs', (params.outputs || []).map((o) => o.format)],
    ['Parameters', prop(m, 'veritrain:model:param_count')], ['Keras', prop(m, 'veritrain:model:keras_version')],
    ['Base model', base && `${base.name} ${base.version || ''} (${short(((base.hashes || [])[0] || {}).content)})`],
    ['Base model source', base && prop(base, 'veritrain:base_model:source')],
  ])));

  out.append(sec('Datasets', ...datasets.map((d) => dl([
    ['Name', d.name], ['Description', d.description], ['Licence', (d.licenses || []).map((l) => l.expression || (l.license && (l.license.id || l.license.name)))],
    ['Source', prop(d, 'veritrain:dataset:source')], ['Kind', prop(d, 'veritrain:dataset:kind')],
    ['Files', prop(d, 'veritrain:dataset:file_count')], ['Size', bytes(Number(prop(d, 'veritrain:dataset:size_bytes')))],
    ['Classes', propsWith(d, 'veritrain:dataset:class').filter((p) => p.name === 'veritrain:dataset:class').map((p) => p.value).join(', ')],
    ['Manifest root', h('code', {}, prop(d, 'veritrain:dataset:manifest_root_sha256'))],
  ]))));

  const qa = card.quantitativeAnalysis || {};
  out.append(sec('Metrics',
    h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Metric'), h('th', { scope: 'col' }, 'Split'), h('th', { scope: 'col' }, 'Value'))),
      h('tbody', {}, (qa.performanceMetrics || []).map((p) => h('tr', {}, h('td', {}, p.type), h('td', {}, p.slice || ''), h('td', { class: 'mono' }, Number(p.value).toPrecision(4)))))),
    history && history.length ? charts(history, totalEpochs) : h('p', { class: 'muted' }, 'No per-epoch history.')));

  const subs = (platform && platform.components) || [];
  const keyLibs = subs.filter((c) => c.type !== 'library' || /^(keras|tensorflow|tensorflow-cpu|numpy|jax|torch|h5py)$/.test(c.name));
  out.append(sec('Environment', dl([
    ...keyLibs.map((c) => [c.type, `${c.name} ${c.version || ''}`]),
    ['Libraries', `${subs.filter((c) => c.type === 'library').length} pinned in the runtime lock file`],
    ['Memory limit', bytes(Number(prop(platform, 'veritrain:memory:limit_bytes')))], ['CPU cores', prop(platform, 'veritrain:cpu:cores_limit')],
  ])));

  const sb = (k) => prop(platform, `veritrain:sandbox:${k}`);
  const list = (prefix) => propsWith(platform, `veritrain:sandbox:${prefix}.`).filter((p) => /\.\d+$/.test(p.name)).map((p) => p.value);
  const limits = [];
  for (let i = 0; sb(`limits.${i}.name`) !== undefined; i += 1) limits.push(['name', 'value', 'unit', 'mechanism'].map((f) => sb(`limits.${i}.${f}`)));
  out.append(sec('Sandbox', dl([
    ['Backend', `${sb('backend') || ''} ${sb('backend_version') || ''}`], ['Network', sb('network')], ['Namespaces', list('namespaces').join(', ')],
    ['No new privileges', sb('no_new_privs')], ['Seccomp', sb('seccomp.enabled') === 'true' ? `on: ${list('seccomp.denied').length} system calls denied (${sb('seccomp.digest')})` : sb('seccomp.enabled')],
    ['Capabilities', sb('capabilities')], ['GPU devices', sb('gpu_devices')], ['Sandbox uid', sb('uid')],
  ]), limits.length ? h('table', {}, h('caption', {}, 'Resource limits'), h('thead', {}, h('tr', {}, ['Limit', 'Value', 'Unit', 'Enforced by'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, limits.map((r) => h('tr', {}, r.map((c) => h('td', {}, c === 'null' ? 'none' : c)))))) : null));

  const scan = (k) => prop(base, `veritrain:scan:${k}`);
  out.append(sec('Intake scan', base ? h('p', { class: scan('accepted') === 'true' ? 'ok' : 'bad' }, scan('accepted') === 'true' ? '✓ accepted by the intake scanner' : '✗ not accepted') : null, dl([
    ['Allow-list', scan('allowlist_version')], ['Keras', scan('keras_version')], ['Model class', scan('model_class')], ['Model name', scan('model_name')],
    ['Input shape', scan('input_shape')], ['Layers', scan('layer_count')], ['Parameters', scan('param_count')], ['Findings', scan('finding_count')],
  ])));
  return out;
}

// A check passed (✓), failed (✗), or did not run because a check it needs
// failed (–, with what it needed); reports without `status` only have `ok`.
function checkStatus(c) { return c.status || (c.ok ? 'passed' : 'failed'); }
const CHECK_MARK = { passed: ['ok', '✓', 'passed: '], failed: ['bad', '✗', 'failed: '], not_run: ['skip', '–', 'not run: '] };

function checksList(checks) {
  return h('ul', { class: 'checks' }, checks.map((c) => {
    const [cls, mark, said] = CHECK_MARK[checkStatus(c)] || CHECK_MARK.failed;
    return h('li', { class: cls, 'data-check': c.id, 'data-status': checkStatus(c) },
      h('span', { class: 'mark', 'aria-hidden': 'true' }, mark), h('span', { class: 'visually-hidden' }, said),
      h('strong', {}, c.title),
      (c.failures || []).length ? h('ul', { class: 'failures' }, c.failures.map((f) => h('li', {}, f.file ? h('code', {}, f.file) : '', f.file ? ': ' : '', f.message))) : null,
      c.needs ? h('p', { class: 'needs' }, `${(c.failures || []).length || (c.details || []).length ? 'The rest not run' : 'Not run'}: needs ${c.needs}.`) : null,
      (c.details || []).length ? h('details', {}, h('summary', {}, 'details'), h('ul', {}, c.details.map((d) => h('li', {}, d)))) : null);
  }));
}

function integrityView(r) {
  if (!r) return h('p', { class: 'muted' }, 'Not checked yet.');
  const bad = [...(r.mismatches || []), ...(r.objects || []).filter((o) => o.status !== 'ok')];
  return h('div', {},
    h('p', { class: r.passed ? 'ok' : 'bad', id: 'integrity-verdict' }, r.passed ? '✓ Every stored object matches its recorded digest and the bundle verifies.' : '✗ The stored job no longer verifies.', h('span', { class: 'muted' }, ` Checked ${when(r.checked_at)}.`)),
    bad.length ? h('ul', {}, bad.map((o) => h('li', {}, h('code', {}, o.name), ` ${o.status}`))) : null,
    r.verification ? checksList(r.verification.checks.filter((c) => !c.ok)) : null,
    (r.failed_checks || []).length ? h('ul', {}, r.failed_checks.map((c) => h('li', {}, h('code', {}, c.id), ' ', (c.failures || []).map((f) => `${f.file}: ${f.message}`).join('; ')))) : null);
}

function jobPage(id) {
  const page = h('section', { class: 'job' }, h('p', {}, 'Loading…'));
  let job = null; let history = []; const logLines = []; let integrity = null; let stop = null; let done = false; let failure = null;
  const head = h('div'); const live = h('div', { class: 'card live' }); const logBox = h('pre', { class: 'log', role: 'log', 'aria-label': 'Training log', tabindex: 0 });
  const chartBox = h('div', { id: 'live-charts' }); const progressText = h('p', { id: 'progress-text', 'aria-live': 'polite' });
  const bar = h('progress', { id: 'epoch-bar', max: 1, value: 0, 'aria-labelledby': 'progress-text' });
  const doneBox = h('div'); const integrityBox = h('div', { 'aria-live': 'polite' });

  const renderHead = () => {
    const m = job.request.model;
    const cancel = ACTIVE.includes(job.state) && (hasRole('admin') || (session.me && session.me.object_id === job.owner.object_id))
      ? h('button', { type: 'button', class: 'danger', onclick: async (e) => { e.target.disabled = true; try { await api(`/v1/jobs/${id}/cancel`, { method: 'POST' }); announce('Cancellation requested'); } catch (err) { head.append(errorBox(err, 'Cannot cancel.')); } } }, 'Cancel job') : null;
    head.replaceChildren(h('h1', {}, `${m.name} ${m.version} `, stateBadge(job.state)), dl([
      ['Job', h('code', {}, job.id)], ['Owner', job.owner.object_id], ['Submitted', when(job.created_at)], ['Started', when(job.started_at)],
      ['Finished', when(job.finished_at)], ['Duration', secs(job.duration_secs)],
      ['Reason', job.reason ? `${job.reason.message} (${job.reason.code})` : null],
      ['Inputs', job.inputs.map((i) => `${i.name} — ${bytes(i.size)} — sha256 ${short(i.sha256)}`)],
    ]), cancel || '');
  };
  const renderLive = () => {
    const last = history[history.length - 1];
    const total = (job.progress && job.progress.total_epochs) || (job.request.fit && job.request.fit.epochs) || 10;
    bar.max = total; bar.value = last ? last.epoch : 0;
    progressText.textContent = last ? `Epoch ${last.epoch} of ${total}: ${Object.entries(last).filter(([k]) => k !== 'epoch').map(([k, v]) => `${k} ${Number(v).toPrecision(4)}`).join(', ')}` : `${job.state}: waiting for the first epoch…`;
    chartBox.replaceChildren(history.length ? charts(history, total) : '');
  };
  const renderFailure = () => {
    if (!failure || !failure.findings) return;
    live.append(h('div', { class: 'error', role: 'alert' }, h('strong', {}, 'The job failed.'), h('ul', {}, failure.findings.map((f) => h('li', {}, h('code', {}, f.code), ' ', f.message)))));
  };
  const checkNow = async (btn) => {
    btn.disabled = true; integrityBox.replaceChildren(h('p', {}, 'Checking: re-hashing every stored object and verifying the bundle…'));
    try { integrity = await api(`/v1/jobs/${id}/integrity`); integrityBox.replaceChildren(integrityView(integrity)); announce(integrity.passed ? 'Integrity check passed' : 'Integrity check failed'); } catch (e) { integrityBox.replaceChildren(errorBox(e, 'The integrity check did not run.')); }
    btn.disabled = false;
  };
  const renderDone = async () => {
    doneBox.replaceChildren();
    if (job.state !== 'succeeded') return;
    const artifacts = h('div', {}, h('p', {}, 'Loading artifacts…'));
    const cardBox = h('div', {}, h('p', {}, 'Loading the model card…'));
    const checkBtn = h('button', { type: 'button', id: 'check-now', class: 'secondary', onclick: () => checkNow(checkBtn) }, 'Check now');
    integrityBox.replaceChildren(integrityView(integrity));
    doneBox.append(
      h('section', { class: 'card' }, h('h2', {}, 'Bundle and artifacts'),
        h('p', {}, 'The bundle is one ZIP with the inputs, the outputs, the signed attestations and the trust material; ', h('a', { href: '#/verify' }, 'verify it'), ' here or offline with ', h('code', {}, 'veritrain verify'), '.'),
        downloadButton('Download bundle (.zip)', `/v1/jobs/${id}/bundle`, `veritrain-${id}.zip`), artifacts),
      h('section', { class: 'card' }, h('h2', {}, 'Integrity'), integrityBox, checkBtn),
      cardBox);
    try {
      const a = await api(`/v1/jobs/${id}/artifacts`);
      artifacts.replaceChildren(h('table', { class: 'artifacts' }, h('thead', {}, h('tr', {}, ['File', 'Size', 'SHA-256', ''].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, a.artifacts.map((f) => h('tr', {}, h('td', { class: 'mono' }, f.name), h('td', {}, bytes(f.size)), h('td', { class: 'mono', title: f.sha256 }, short(f.sha256)),
          h('td', {}, downloadButton('Download', `/v1/jobs/${id}/artifacts/${f.name.split('/').map(encodeURIComponent).join('/')}`, f.name.split('/').pop())))))));
    } catch (e) { artifacts.replaceChildren(errorBox(e, 'Cannot list the artifacts.')); }
    try {
      const [bom, metrics] = await Promise.all([api(`/v1/jobs/${id}/artifacts/aibom.cdx.json`), api(`/v1/jobs/${id}/artifacts/outputs/metrics.json`).catch(() => null)]);
      const hist = (metrics && metrics.history) || history;
      history = hist; renderLive();
      cardBox.replaceChildren(modelCard(bom, hist, (job.progress && job.progress.total_epochs) || hist.length));
    } catch (e) { cardBox.replaceChildren(errorBox(e, 'Cannot load the model card (aibom.cdx.json).')); }
  };
  const refresh = async () => { job = await api(`/v1/jobs/${id}`); renderHead(); renderLive(); };

  (async () => {
    try { await refresh(); } catch (e) { page.replaceChildren(errorBox(e, e.status === 404 ? 'No such job (or not yours to see).' : 'Cannot load the job.')); return; }
    page.replaceChildren(head, live, doneBox);
    live.append(h('h2', {}, 'Progress'), bar, progressText, chartBox, h('h3', {}, 'Log'), logBox);
    stop = follow(`/v1/jobs/${id}/events`, (ev, e) => {
      const d = e.data || {};
      if (ev === 'progress') {
        if (!history.length || history[history.length - 1].epoch !== d.epoch) history.push({ epoch: d.epoch, ...d.metrics });
        job.progress = d; if (!done) renderLive();
      } else if (ev === 'log') {
        logLines.push(d.line); if (logLines.length > 300) logLines.shift();
        const atEnd = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
        logBox.textContent = logLines.join('\n');
        if (atEnd) logBox.scrollTop = logBox.scrollHeight;
      } else if (ev === 'state') {
        job.state = d.to; if (d.reason) job.reason = d.reason;
        if (d.to === 'validating' && !job.started_at) job.started_at = e.at;
        renderHead(); announce(`Job ${d.to}`);
      } else if (ev === 'failure') {
        failure = d;
      } else if (ev === 'integrity') {
        integrity = d; integrityBox.replaceChildren(integrityView(d));
      }
    }, async (err) => {
      done = true;
      if (err) { live.append(errorBox(err, 'Lost the event stream.')); return; }
      try { await refresh(); } catch (e) { live.append(errorBox(e)); }
      renderFailure();
      page.dataset.done = job.state;
      await renderDone();
      page.dataset.loaded = 'true';
    });
  })();
  return { node: page, stop: () => stop && stop() };
}

// ------------------------------------------------------------------ verify

function verifyPage() {
  const out = h('div', { id: 'verify-out', 'aria-live': 'polite' });
  const bundleInput = h('input', { id: 'bundle', name: 'bundle', type: 'file', accept: '.zip,application/zip', required: true, 'aria-describedby': 'bundle-help' });
  const artifactInput = h('input', { id: 'artifact', name: 'artifact', type: 'file', multiple: true, 'aria-describedby': 'artifact-help' });
  const drop = h('div', { class: 'drop', id: 'drop' }, h('p', {}, 'Drop a bundle ZIP here, or choose it below.'));
  const form = h('form', { class: 'card' }, drop,
    field('bundle', 'Bundle (.zip)', bundleInput, 'The ZIP downloaded from a job, or made by veritrain bundle pack.'),
    field('artifact', 'Model or dataset you hold (optional)', artifactInput, 'Files you received separately, e.g. model.keras: each must match the bundle by its SHA-256.'),
    h('button', { type: 'submit', id: 'verify-button' }, 'Verify'));
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault(); drop.classList.remove('over');
    const files = [...e.dataTransfer.files];
    const zip = files.find((f) => f.name.toLowerCase().endsWith('.zip'));
    const dt = new DataTransfer(); if (zip) dt.items.add(zip); bundleInput.files = dt.files;
    const rest = new DataTransfer(); files.filter((f) => f !== zip).forEach((f) => rest.items.add(f)); artifactInput.files = rest.files;
    drop.firstChild.textContent = zip ? `Bundle: ${zip.name}${rest.files.length ? ` plus ${rest.files.length} file(s)` : ''}` : 'That was not a .zip: drop the bundle ZIP.';
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    out.replaceChildren();
    const bundle = bundleInput.files[0];
    if (!bundle) { out.append(errorBox({ message: 'Choose the bundle ZIP first.' }, 'No bundle.')); bundleInput.focus(); return; }
    if (!bundle.name.toLowerCase().endsWith('.zip')) { out.append(errorBox({ message: `"${bundle.name}" is not a .zip file; a bundle is a ZIP archive.` }, 'Not a bundle.')); return; }
    const max = session.config.verify_max_bytes;
    if (max && bundle.size > max) { out.append(errorBox({ message: `The bundle is ${bytes(bundle.size)}; this server verifies at most ${bytes(max)}. Use veritrain verify offline (see Trust).` }, 'Too large.')); return; }
    const data = new FormData();
    data.append('bundle', bundle, bundle.name);
    for (const f of artifactInput.files) data.append('artifact', f, f.name);
    out.append(h('p', {}, 'Verifying…'));
    try {
      const r = await api('/v1/verify', { method: 'POST', body: data, auth: false });
      const failed = r.checks.filter((c) => checkStatus(c) === 'failed').length;
      const notRun = r.checks.filter((c) => checkStatus(c) === 'not_run').length;
      out.replaceChildren(
        h('div', { class: `verdict ${r.passed ? 'ok' : 'bad'}`, id: 'verdict', role: 'status' }, r.passed ? `✓ ${bundle.name} verifies: every check passed.` : `✗ ${bundle.name} does not verify: ${failed} check(s) failed${notRun ? `, ${notRun} not run` : ''}.`),
        dl([['Job', r.job_id], ['Model SHA-256', r.model_sha256 && h('code', {}, r.model_sha256)], ['Root key', r.root_keyid && h('code', {}, r.root_keyid)], ['Signed at', r.signing_time && when(r.signing_time)]]),
        checksList(r.checks), h('ul', { class: 'muted' }, (r.notes || []).map((n) => h('li', {}, n))));
      announce(r.passed ? 'Verification passed' : 'Verification failed');
    } catch (e) {
      out.replaceChildren(errorBox(e, e.status === 429 ? 'Too many verifications; wait a minute.' : e.status === 422 ? 'That file is not a readable bundle.' : 'Verification did not run.'));
    }
  });
  return h('section', { class: 'narrow-wide' }, h('h1', {}, 'Verify a bundle'),
    h('p', {}, 'Checks signatures, key validity, the in-toto chain, every file\'s digest, and the AIBoM, against this server\'s root key and latest key set. No sign-in needed. For a check that trusts nothing of this server, use ', h('a', { href: '#/trust' }, 'the offline commands'), '.'),
    form, out);
}

// ------------------------------------------------------------------ trust

async function derSha256(pem) {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const der = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', der));
  return [...d].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function trustPage() {
  const page = h('section', {}, h('h1', {}, 'Trust'), h('p', {}, 'What this server signs with, and how to check a bundle without trusting this server at all.'));
  const out = h('div', {}, h('p', {}, 'Loading…'));
  page.append(out);
  (async () => {
    try {
      const [pem, ks, layout, ready] = await Promise.all([
        api('/.well-known/veritrain/root.pub', { raw: true, auth: false }).then((r) => r.text()),
        api('/.well-known/veritrain/keyset.json', { auth: false }),
        api('/.well-known/veritrain/layout', { auth: false }),
        fetch('/readyz').then((r) => r.json()).catch(() => ({})),
      ]);
      const keyset = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(ks.payload), (c) => c.charCodeAt(0))));
      const fp = await derSha256(pem);
      const origin = location.origin;
      const l = layout.signed || {};
      const cmds = [
        '# 1. Get the root key through a channel you trust, and compare its fingerprint:',
        `curl -fsS -o root.pub ${origin}/.well-known/veritrain/root.pub`,
        'openssl pkey -pubin -in root.pub -outform DER | sha256sum',
        `#    expected: ${fp}`,
        '# 2. The latest key set (so that keys revoked since the job are judged by it):',
        `curl -fsS -o keyset.dsse.json ${origin}/.well-known/veritrain/keyset.json`,
        '# 3. Verify the bundle, and optionally the model you were given:',
        'veritrain verify --root-key root.pub --keyset keyset.dsse.json bundle.zip',
        'veritrain verify --root-key root.pub --keyset keyset.dsse.json --artifact model.keras bundle.zip',
      ].join('\n');
      out.replaceChildren(
        h('section', { class: 'card' }, h('h2', {}, 'Root key'), dl([
          ['Fingerprint (SHA-256 of the DER key)', h('code', { id: 'root-fingerprint', class: 'wrap' }, fp)],
          ['Key id', ready.trust && h('code', { class: 'wrap' }, ready.trust.root)],
        ]), h('details', {}, h('summary', {}, 'PEM'), h('pre', {}, pem))),
        h('section', { class: 'card' }, h('h2', {}, `Key set, version ${keyset.version}`), h('p', { class: 'muted' }, `Issued ${when(keyset.issued)}; signed by the root key. Retired and revoked keys stay listed so old bundles can still be judged.`),
          h('table', { id: 'keys' }, h('thead', {}, h('tr', {}, ['Key id', 'Status', 'Valid from', 'Valid until', 'Revoked'].map((t) => h('th', { scope: 'col' }, t)))),
            h('tbody', {}, keyset.keys.map((k) => h('tr', {}, h('td', { class: 'mono', 'data-label': 'Key id' }, short(k.keyid)), h('td', { 'data-label': 'Status' }, h('span', { class: `badge key-${k.status}` }, k.status)),
              h('td', { 'data-label': 'Valid from' }, when(k.valid_from)), h('td', { 'data-label': 'Valid until' }, k.valid_until ? when(k.valid_until) : 'open'),
              h('td', { 'data-label': 'Revoked' }, k.revoked_at ? `${when(k.revoked_at)}${k.revocation_reason ? `: ${k.revocation_reason}` : ''}` : '—')))))),
        h('section', { class: 'card' }, h('h2', {}, 'Current layout'), dl([
          ['Expires', when(l.expires)], ['Functionary keys', Object.keys(l.keys || {}).map(short).join(', ')],
          ['Steps', (l.steps || []).map((s) => `${s.name}: ${(s.expected_command || []).join(' ')} (threshold ${s.threshold}, products: ${(s.expected_products || []).filter((r) => r[0] === 'REQUIRE').map((r) => r[1]).join(', ')})`)],
          ['Inspections', (l.inspect || []).map((i) => i.name)], ['Readme', l.readme],
        ])),
        h('section', { class: 'card' }, h('h2', {}, 'Verify offline'), h('p', {}, 'With the veritrain binary, on a machine that never talks to this server:'), h('pre', { id: 'offline-commands' }, cmds)));
    } catch (e) { out.replaceChildren(errorBox(e, 'Cannot load the trust material.')); }
  })();
  return page;
}

// ------------------------------------------------------------------ router

let current = null;
let routed = false;
async function route() {
  if (current && current.stop) current.stop();
  current = null;
  const hash = location.hash.split('?')[0] || '#/jobs';
  const parts = hash.replace(/^#\/?/, '').split('/');
  const needAuth = ['jobs', 'submit'].includes(parts[0]);
  if (needAuth && !session.me) { location.replace('#/signin'); return; }
  let view;
  switch (parts[0]) {
    case 'signin': view = signinPage(); break;
    case 'submit': view = hasRole('developer') ? submitPage() : h('p', { class: 'error' }, 'Submitting jobs needs the developer role.'); break;
    case 'jobs': view = parts[1] ? jobPage(parts[1]) : jobsPage(); break;
    case 'verify': view = verifyPage(); break;
    case 'trust': view = trustPage(); break;
    default: view = h('section', {}, h('h1', {}, 'Not found'), h('p', {}, 'There is no such page. ', h('a', { href: '#/jobs' }, 'Go to the jobs.')));
  }
  if (view && view.node) { current = view; view = view.node; }
  const main = $main();
  main.replaceChildren(view);
  document.querySelectorAll('[data-nav]').forEach((a) => { if (a.dataset.nav === parts[0]) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current'); });
  const title = main.querySelector('h1');
  document.title = `${title ? title.textContent : 'Veritrain'} · Veritrain`;
  // After a navigation, focus moves to the new content (as a page load
  // would reset it); on the first load it stays at the top of the document.
  if (routed) main.focus({ preventScroll: true });
  routed = true;
}

async function start() {
  try {
    session.config = await api('/v1/ui/config', { auth: false });
  } catch (e) {
    $main().replaceChildren(errorBox(e, 'Cannot reach the Veritrain server.'));
    return;
  }
  const params = new URLSearchParams(location.search);
  if (params.get('code') || params.get('error')) {
    try { await oidcFinish(params); } catch (e) { await loadMe(); location.hash = '#/signin'; await route(); $main().prepend(errorBox(e, 'Sign-in failed.')); return; }
  }
  await loadMe();
  window.addEventListener('hashchange', route);
  if (!location.hash) history.replaceState(null, '', session.me ? '#/jobs' : session.config.jobs ? '#/signin' : '#/verify');
  await route();
}

start();
