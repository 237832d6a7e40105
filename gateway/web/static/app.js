// The live page of a Kairos gateway (docs/WEB.md). It listens on the
// gateway's WebSocket for snapshots of the mesh and draws them; an operator
// who signs in can freeze, thaw, heal and resolve. The operator's key never
// leaves the page: the sign-in challenge and every action are signed here
// with HMAC-SHA256 (WebCrypto, or the small SHA-256 below where the browser
// offers no WebCrypto: a page on plain http from another machine).
'use strict';

const $ = (id) => document.getElementById(id);
const STATE_COLOURS = {
  COMPLIANT: '#3fb950', PROCESSING: '#3fb950', VARIANCE_WARNING: '#d29922', QUARANTINED: '#f85149',
  FROZEN: '#58a6ff', OFFLINE: '#6e7681', STATUS_UNSPECIFIED: '#8a96a3',
};
const MAX_ROWS = 500;

const stats = { snapshots: 0, frames: 0, ticks: 0, fps: 0, errors: [] };  // ticks: animation frames
window.kairosStats = stats;  // read by the browser test and the benchmark
let snap = null;            // the newest snapshot
let drawn = null;           // the snapshot last drawn
const sort = { k: 0, up: true };
let session = null;         // {name, id, key, seq}

// ---- HMAC-SHA256 -----------------------------------------------------------

const enc = new TextEncoder();
function hexToBytes(hex) {
  hex = hex.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error('an operator key is 64 hex digits');
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}
const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

function sha256(data) {
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2]);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
    0x5be0cd19]);
  const len = data.length, blocks = Math.ceil((len + 9) / 64);
  const m = new Uint8Array(blocks * 64);
  m.set(data);
  m[len] = 0x80;
  const view = new DataView(m.buffer);
  view.setUint32(m.length - 8, Math.floor(len / 0x20000000));
  view.setUint32(m.length - 4, (len * 8) >>> 0);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let b = 0; b < blocks; b++) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(b * 64 + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, bb, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = bb; bb = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += bb; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  h.forEach((x, i) => ov.setUint32(i * 4, x));
  return out;
}

function hmacFallback(key, msg) {
  const k = new Uint8Array(64);
  k.set(key);
  const inner = new Uint8Array(64 + msg.length), outer = new Uint8Array(96);
  for (let i = 0; i < 64; i++) { inner[i] = k[i] ^ 0x36; outer[i] = k[i] ^ 0x5c; }
  inner.set(msg, 64);
  outer.set(sha256(inner), 64);
  return sha256(outer);
}

// A signer over the key's bytes; with WebCrypto the key is not extractable.
async function makeSigner(keyBytes) {
  if (window.crypto && crypto.subtle) {
    const key = await crypto.subtle.importKey('raw', keyBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    keyBytes.fill(0);
    return async (text) => toHex(new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(text))));
  }
  const copy = keyBytes.slice();
  keyBytes.fill(0);
  return async (text) => toHex(hmacFallback(copy, enc.encode(text)));
}

// ---- requests ---------------------------------------------------------------

async function post(path, body) {
  const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  let answer;
  try { answer = await r.json(); } catch (e) { answer = { ok: false, error: `HTTP ${r.status}` }; }
  if (!r.ok && answer.ok === undefined) answer.ok = false;
  return answer;
}

function notice(text, bad) {
  const n = $('notice');
  n.textContent = text;
  n.className = bad ? 'bad' : '';
  n.hidden = !text;
}

async function signIn(ev) {
  ev.preventDefault();
  const name = $('op-name').value.trim() || 'operator';
  let sign;
  try {
    sign = await makeSigner(hexToBytes($('op-key').value));
  } catch (e) {
    return notice(`sign-in: ${e.message}`, true);
  }
  $('op-key').value = '';
  const c = await (await fetch('/api/challenge')).json();
  const mac = await sign(`kairos-web-signin\n${c.nonce}\n${name}`);
  const r = await post('/api/signin', { operator: name, nonce: c.nonce, mac });
  if (!r.ok) return notice(`sign-in refused: ${r.error}`, true);
  session = { name: r.operator, id: r.session, sign, seq: 0 };
  $('signin').hidden = true;
  $('signed').hidden = false;
  $('who').textContent = `signed in as ${r.operator}`;
  notice('');
  if (drawn) drawTable(drawn);
  if (drawn) drawConflicts(drawn);
}

// An action of the session, signed over its session, a rising seq and its text.
async function signedPost(s, action) {
  const text = JSON.stringify(action);
  s.seq += 1;
  const mac = await s.sign(`kairos-web-act\n${s.id}\n${s.seq}\n${text}`);
  return post('/api/act', { session: s.id, seq: s.seq, act: text, mac });
}

async function act(action, confirmText) {
  if (!session) return;
  if (confirmText && !window.confirm(confirmText)) return;
  notice(`${action.verb}…`);
  const r = await signedPost(session, action);
  if (!r.ok) return notice(`${action.verb} refused: ${r.error}`, true);
  const parts = [`${action.verb}: done`];
  if (r.targets !== undefined) parts.push(`${r.ready} of ${r.targets} nodes ready`);
  if (r.silent) parts.push(`${r.silent} silent`);
  if (r.snapshot) parts.push(`snapshot ${r.snapshot}`);
  notice(parts.join(', '));
}

function signOut() {
  // The gateway ends the session too (signed like any action); the page forgets the key either way.
  if (session) signedPost(session, { verb: 'signout' }).catch(() => {});
  session = null;
  $('signin').hidden = false;
  $('signed').hidden = true;
  if (drawn) { drawTable(drawn); drawConflicts(drawn); }
}

// ---- drawing ----------------------------------------------------------------

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const fmt = (v, d) => (v === null || v === undefined ? '–' : Number(v).toFixed(d));
const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function hashOf(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0) / 4294967296;
}

function drawCircle(s) {
  const cv = $('circle'), g = cv.getContext('2d');
  const w = cv.width, cx = w / 2, cy = cv.height / 2, R = w / 2 - 24;
  g.clearRect(0, 0, w, cv.height);
  g.strokeStyle = css('--line');
  g.lineWidth = 1;
  g.beginPath(); g.arc(cx, cy, R, 0, 2 * Math.PI); g.stroke();
  g.beginPath(); g.moveTo(cx - R, cy); g.lineTo(cx + R, cy); g.moveTo(cx, cy - R); g.lineTo(cx, cy + R); g.stroke();
  g.fillStyle = css('--dim');
  g.font = '11px system-ui';
  g.fillText('0', cx + R + 6, cy + 4);
  g.fillText('π/2', cx - 8, cy - R - 8);
  const counts = {};
  let shown = 0;
  const dot = s.nodes.length > 2000 ? 1.5 : 3.5;
  for (const n of s.nodes) {
    const state = n[3];
    counts[state] = (counts[state] || 0) + 1;
    if (n[4] === null) continue;
    const r = R * (0.86 + 0.12 * hashOf(n[0]));
    g.fillStyle = STATE_COLOURS[state] || '#8a96a3';
    g.beginPath();
    g.arc(cx + r * Math.cos(n[4]), cy - r * Math.sin(n[4]), dot, 0, 2 * Math.PI);
    g.fill();
    shown++;
  }
  // Z: the mesh's phase as a vector, its length the coherence.
  const [zr, zi] = s.z;
  g.strokeStyle = '#ffffff';
  g.fillStyle = '#ffffff';
  g.lineWidth = 2;
  const ex = cx + R * zr, ey = cy - R * zi;
  g.beginPath(); g.moveTo(cx, cy); g.lineTo(ex, ey); g.stroke();
  const ang = Math.atan2(-(ey - cy), ex - cx);
  if (Math.hypot(zr, zi) > 0.05) {
    g.beginPath();
    g.moveTo(ex, ey);
    g.lineTo(ex - 9 * Math.cos(ang - 0.4), ey + 9 * Math.sin(ang - 0.4));
    g.lineTo(ex - 9 * Math.cos(ang + 0.4), ey + 9 * Math.sin(ang + 0.4));
    g.fill();
  }
  cv.dataset.nodes = String(s.nodes.length);
  cv.dataset.plotted = String(shown);
  $('legend').innerHTML = Object.keys(counts).sort().map((k) =>
    `<span data-state="${esc(k)}"><i style="background:${STATE_COLOURS[k] || '#8a96a3'}"></i>${esc(k)} ${counts[k]}</span>`).join('') +
    (s.nodes.length - shown ? `<span>${s.nodes.length - shown} without a phase yet</span>` : '');
}

function drawGauge(id, label, v, colour) {
  const cv = $(id), g = cv.getContext('2d');
  const cx = cv.width / 2, cy = cv.height - 18, R = 62;
  g.clearRect(0, 0, cv.width, cv.height);
  g.lineWidth = 12;
  g.strokeStyle = css('--line');
  g.beginPath(); g.arc(cx, cy, R, Math.PI, 2 * Math.PI); g.stroke();
  g.strokeStyle = colour;
  g.beginPath(); g.arc(cx, cy, R, Math.PI, Math.PI * (1 + Math.max(0, Math.min(1, v || 0)))); g.stroke();
  g.fillStyle = css('--ink');
  g.font = '20px system-ui';
  g.textAlign = 'center';
  g.fillText(fmt(v, 3), cx, cy - 8);
  g.font = '12px system-ui';
  g.fillStyle = css('--dim');
  g.fillText(label, cx, cy + 14);
  cv.dataset.value = String(v);
}

// The gateway's own record of C and A (one point a second, the last 5 minutes).
function drawPlot(history) {
  const cv = $('plot'), g = cv.getContext('2d');
  const w = cv.width, h = cv.height, pad = 24;
  g.clearRect(0, 0, w, h);
  g.strokeStyle = css('--line');
  g.lineWidth = 1;
  g.fillStyle = css('--dim');
  g.font = '10px system-ui';
  for (const y of [0, 0.5, 1]) {
    const py = h - pad - y * (h - 2 * pad);
    g.beginPath(); g.moveTo(pad, py); g.lineTo(w - 4, py); g.stroke();
    g.fillText(y.toFixed(1), 2, py + 3);
  }
  cv.dataset.points = String(history.length);
  if (history.length < 2) return;
  const t1 = history[history.length - 1][0], t0 = history[0][0], span = Math.max(t1 - t0, 1);
  for (const [key, colour] of [[1, css('--c')], [2, css('--a')]]) {
    g.strokeStyle = colour;
    g.lineWidth = 2;
    g.beginPath();
    history.forEach((p, i) => {
      const x = pad + ((p[0] - t0) / span) * (w - pad - 4), y = h - pad - p[key] * (h - 2 * pad);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  }
  g.fillStyle = css('--dim');
  const ago = Math.round(span / 1000);
  g.fillText(ago >= 60 ? `−${Math.round(ago / 60)} min` : `−${ago} s`, pad, h - 6);
  g.fillText('now', w - 26, h - 6);
}

function drawHistogram(s) {
  const cv = $('hist'), g = cv.getContext('2d');
  const w = cv.width, h = cv.height, pad = 22;
  g.clearRect(0, 0, w, h);
  const comp = s.schedule.compensated, naive = s.schedule.naive;
  const facts = [];
  if (comp) facts.push(`compensated: ${comp.hits} of ${comp.targets} within ±${comp.hit_ms} ms, p95 ${fmt(comp.p95_ms, 1)} ms`);
  if (naive) facts.push(`naive: p95 ${fmt(naive.p95_ms, 1)} ms`);
  $('sched-facts').textContent = facts.join(' · ') || 'none yet';
  const sets = [[comp, css('--c')], [naive, css('--a')]].filter(([r]) => r && r.errors_ms.length);
  g.fillStyle = css('--dim');
  g.font = '11px system-ui';
  if (!sets.length) { g.fillText('no scheduled command has run yet', pad, h / 2); return; }
  const all = sets.flatMap(([r]) => r.errors_ms.map(Math.abs)).sort((a, b) => a - b);
  const range = Math.max(20, Math.ceil(all[Math.floor(all.length * 0.98)] || 0));
  const bins = 40, width = (2 * range) / bins;
  const counted = sets.map(([r, colour]) => {
    const c = new Array(bins).fill(0);
    for (const e of r.errors_ms) c[Math.max(0, Math.min(bins - 1, Math.floor((e + range) / width)))]++;
    return [c, colour];
  });
  const top = Math.max(...counted.flatMap(([c]) => c), 1);
  const bw = (w - 2 * pad) / bins;
  g.globalAlpha = 0.75;
  for (const [c, colour] of counted) {
    g.fillStyle = colour;
    c.forEach((n, i) => { const bh = (n / top) * (h - 2 * pad); g.fillRect(pad + i * bw + 1, h - pad - bh, bw - 2, bh); });
  }
  g.globalAlpha = 1;
  g.strokeStyle = '#ffffff';
  g.beginPath(); g.moveTo(w / 2, pad - 6); g.lineTo(w / 2, h - pad); g.stroke();
  g.fillStyle = css('--dim');
  g.textAlign = 'center';
  g.fillText('T', w / 2, pad - 10);
  g.fillText(`−${range} ms`, pad + 16, h - 6);
  g.fillText(`+${range} ms`, w - pad - 16, h - 6);
  g.textAlign = 'left';
}

function drawTable(s) {
  const filter = $('filter').value.trim().toLowerCase();
  let rows = s.nodes;
  if (filter) rows = rows.filter((n) => [n[0], n[1], n[3]].some((v) => String(v).toLowerCase().includes(filter)));
  const k = sort.k, dir = sort.up ? 1 : -1;
  rows = rows.slice().sort((a, b) => {
    const x = a[k], y = b[k];
    if (x === y) return 0;
    if (x === null) return 1;
    if (y === null) return -1;
    return (x < y ? -1 : 1) * dir;
  });
  const shown = rows.slice(0, MAX_ROWS);
  $('nodes').querySelector('tbody').innerHTML = shown.map((n) =>
    `<tr data-id="${esc(n[0])}"><td>${esc(n[0])}</td><td>${esc(n[1])}</td><td>${esc(n[2])}</td>` +
    `<td class="st-${esc(n[3])}" data-state="${esc(n[3])}">${esc(n[3])}</td><td class="num">${n[5]}</td>` +
    `<td class="num">${fmt(n[6], 2)}</td><td class="num">${fmt(n[7], 3)}</td>` +
    `<td>${session && n[3] === 'QUARANTINED' ? `<button data-heal="${esc(n[0])}">heal</button>` : ''}</td></tr>`).join('');
  $('node-count').textContent = `${s.nodes.length} known, ${s.online} online` +
    (rows.length > MAX_ROWS ? ` (the first ${MAX_ROWS} of ${rows.length} shown)` : '');
  document.querySelectorAll('#nodes th').forEach((th) => {
    th.classList.toggle('sorted', Number(th.dataset.k) === sort.k);
    th.classList.toggle('up', sort.up);
  });
}

function drawConflicts(s) {
  $('conflicts').innerHTML = s.conflicts.map((c) =>
    `<div class="item"><span class="p${c.priority}">P${c.priority} ${esc(c.type)}</span> ${esc(c.node)} ` +
    `<span class="meta">${new Date(c.at_ms).toLocaleTimeString()} · task ${c.task} ${esc(c.task_state)}</span>` +
    (session && c.task && c.task_state === 'open' ? ` <button data-resolve="${c.task}">resolve</button>` : '') +
    `<div class="meta">${esc(c.detail)}</div></div>`).join('') || '<p class="hint">no conflicts logged</p>';
}

function drawLists(s) {
  $('breakers').innerHTML = s.breakers.map((b) =>
    `<div class="item">${esc(b.scope)} ${esc(b.name)}: <b>${esc(b.state)}</b> ` +
    `<span class="meta">${b.failures} failures, opened ${b.opened}×</span></div>`).join('') ||
    '<p class="hint">no breaker has tripped: every one is closed</p>';
  $('plays').innerHTML = s.plays.map((p) =>
    `<div class="item"><b>${esc(p.session)}</b> ${esc(p.ball)} ` +
    `<span class="meta">${p.closed ? 'TOUCHDOWN' : `held by <b>${esc(p.holder)}</b>`} · ${p.entries} entries · ` +
    `peers ${p.peers.map(esc).join(', ')}${p.broken ? ` · <span class="p0">broken: ${esc(p.broken)}</span>` : ''}</span>` +
    `<div class="lineage">${p.lineage.map((e) => `#${e.seq} ${esc(e.hash)} ${esc(e.kind)} by ${esc(e.author)}: ` +
      `${esc(e.text.slice(0, 80))}`).join('<br>')}</div></div>`).join('') || '<p class="hint">no plays</p>';
}

function drawHeader(s) {
  $('mesh').textContent = `${s.mesh} · gateway ${s.gateway}`;
  const mode = $('mode');
  mode.textContent = s.mode;
  mode.className = `pill ${s.mode === 'FULL' ? 'on' : s.mode === 'EMERGENCY' ? 'bad' : 'warn'}`;
  const u = $('unified');
  u.textContent = s.unified ? 'unified' : 'not unified';
  u.className = `pill ${s.unified ? 'on' : 'off'}`;
  $('counts').textContent = `${s.online}/${s.known} online · ${s.in_sync} in sync`;
  if (!s.sign_in) $('operator').hidden = true;
}

function draw() {
  requestAnimationFrame(draw);
  stats.ticks++;
  if (!snap || snap === drawn) return;
  const s = snap;
  drawn = s;
  try {
    drawHeader(s);
    drawCircle(s);
    drawGauge('gauge-c', 'coherence C', s.c, css('--c'));
    drawGauge('gauge-a', 'agreement A', s.a, css('--a'));
    drawPlot(s.history || []);
    drawHistogram(s);
    drawTable(s);
    drawConflicts(s);
    drawLists(s);
    stats.frames++;
  } catch (e) {
    stats.errors.push(String(e));
    throw e;
  }
}

function take(s) {
  snap = s;
  stats.snapshots++;
}

// ---- the WebSocket ----------------------------------------------------------

let backoff = 500;
function connect() {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  const link = $('link');
  ws.onopen = () => { backoff = 500; link.textContent = 'live'; link.className = 'pill on'; };
  ws.onmessage = (ev) => take(JSON.parse(ev.data));
  ws.onclose = () => {
    link.textContent = 'reconnecting';
    link.className = 'pill bad';
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  };
}

setInterval(() => {
  stats.fps = stats.frames - (stats.lastFrames || 0);
  stats.lastFrames = stats.frames;
  $('fps').textContent = `${stats.fps} frames/s`;
}, 1000);

$('signin').addEventListener('submit', signIn);
$('signout').addEventListener('click', signOut);
$('op-file').addEventListener('change', async (ev) => {
  const f = ev.target.files[0];
  if (f) $('op-key').value = (await f.text()).trim();
  ev.target.value = '';
});
$('freeze').addEventListener('click', () => {
  const scope = $('scope').value.trim() || 'all';
  act({ verb: 'freeze', scope, confirm: true }, `Freeze ${scope}? The nodes stop acting until thawed.`);
});
$('thaw').addEventListener('click', () => act({ verb: 'thaw', scope: $('scope').value.trim() || 'all', confirm: true }));
$('nodes').addEventListener('click', (ev) => {
  const th = ev.target.closest('th');
  if (th && th.dataset.k) {
    const k = Number(th.dataset.k);
    sort.up = sort.k === k ? !sort.up : true;
    sort.k = k;
    if (drawn) drawTable(drawn);
  }
  const heal = ev.target.dataset && ev.target.dataset.heal;
  if (heal) act({ verb: 'heal', node: heal }, `Heal ${heal}? Its quarantine is lifted.`);
});
$('conflicts').addEventListener('click', (ev) => {
  const task = ev.target.dataset && ev.target.dataset.resolve;
  if (!task) return;
  const note = window.prompt(`Resolve task ${task}: what was done?`);
  if (note !== null) act({ verb: 'resolve', task: Number(task), note });
});
$('filter').addEventListener('input', () => drawn && drawTable(drawn));

connect();
requestAnimationFrame(draw);
