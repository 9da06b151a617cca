// The technician's page: sign in and start remote assistance from an assigned ticket, or create a session
// with the service credential; read the code to the customer; see the customer's screen (one `recvonly`
// video m-line) and control it with mouse and keyboard while the customer allows it; chat, draw, end.
// `?token=<technician_token>&autostart=1` skips the sign-in and connects at once (tests). The number of
// video frames shown is kept in `<output id="frames">` and `<body data-frames>`.

import { $, params, flag, status, showError, logLine, chatForm, show, onResize } from './ui.js';
import * as P from './protocol.js';
import { Peer, api } from './rtc.js';
import { Board, normalise, attachPen, colorValue } from './board.js';

const video = $('remote');
const overlay = $('overlay');
const chat = $('chat');
const board = new Board();
let peer = null;
let control = false;
let present = false;
let login = null; // {token, user}
let pending = null;

// ---- the frame counter ----

let presented = 0;
let decoded = 0;
function showFrames() {
  const n = Math.max(presented, decoded);
  if (String(n) !== document.body.dataset.frames) {
    $('frames').value = String(n);
    document.body.dataset.frames = String(n);
  }
}
if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
  const tick = (_now, meta) => {
    presented = Math.max(presented + 1, meta.presentedFrames || 0);
    showFrames();
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
}
setInterval(() => {
  const q = video.getVideoPlaybackQuality?.();
  if (q) decoded = Math.max(decoded, q.totalVideoFrames - q.droppedVideoFrames);
  showFrames();
}, 250);

// ---- session state ----

const redraw = () => board.draw(overlay, video, 0, pending);
onResize(video, redraw);
video.addEventListener('resize', redraw);

function showControl() {
  const badge = $('control-state');
  document.body.dataset.control = !present ? 'absent' : control ? 'allowed' : 'view-only';
  if (!present) {
    badge.textContent = 'Waiting for the customer';
    badge.className = 'badge';
  } else if (control) {
    badge.textContent = 'Control allowed';
    badge.className = 'badge ok';
  } else {
    badge.textContent = 'View only: the customer has not allowed control';
    badge.className = 'badge warn';
  }
}

function onMessage(m) {
  switch (m.name) {
    case 'welcome':
      control = m.controlAllowed;
      present = m.peerPresent;
      board.reset();
      redraw();
      status(present ? 'The customer is connected.' : 'Waiting for the customer to enter the code…',
        present ? 'connected' : 'waiting', present ? 'ok' : '');
      break;
    case 'peer':
      present = m.state !== 'away';
      if (present) status(m.state === 'resumed' ? 'The customer is back.' : 'The customer is connected.', 'connected', 'ok');
      else status("The customer's connection was lost; they may come back.", 'away', 'warn');
      if (present) show($('code-box'), false);
      break;
    case 'control':
      control = m.allowed;
      logLine(chat, '', control ? 'The customer allows control.' : 'The customer allows view only.', 'notice');
      break;
    case 'chat':
      logLine(chat, 'Customer', m.text);
      break;
    case 'notice':
      logLine(chat, '', m.message, 'notice');
      break;
    case 'annotation':
      board.apply(m.annotation);
      redraw();
      break;
    case 'file_offer':
      peer.send(P.fileAnswer(m.transfer, false));
      logLine(chat, '', `The customer offered the file "${m.fileName}"; this page cannot receive files.`, 'notice');
      break;
    default:
      break;
  }
  showControl();
}

function finished(text, kind, code = '') {
  status(text, 'ended', kind, code);
  peer = null;
  present = false;
  releaseAll();
  for (const id of ['keyframe', 'draw', 'clear', 'end', 'chat-text']) $(id).disabled = true;
  showControl();
}

async function connect(token) {
  status('Connecting…', 'connecting');
  peer = new Peer({
    as: 'technician',
    secret: token,
    receive: 1,
    onMessage,
    onTrack: (_mid, stream) => {
      video.srcObject = stream;
      video.play().catch(() => {});
    },
    onClose: (reason, m) => finished(`The session has ended: ${reason}.`, 'warn', m?.codeName),
  });
  try {
    await peer.connect();
  } catch (e) {
    peer = null;
    showError('Could not connect', e);
    return;
  }
  show($('session'));
  show($('chat-box'));
  if (document.body.dataset.state === 'connecting') status('Connected; waiting for the customer…', 'waiting');
}

/** A session was created (from a ticket or with the service credential): show the code, connect. */
function began(s) {
  for (const id of ['signin', 'service', 'tickets']) show($(id), false);
  $('code').textContent = s.code_display;
  $('code').setAttribute('aria-label', `Code: ${s.code_display.split('').join(' ')}`);
  $('expires').textContent = new Date(s.code_expires_at).toLocaleTimeString();
  $('customer-link').href = `/customer?code=${encodeURIComponent(s.code)}`;
  show($('code-box'));
  connect(s.technician_token);
}

// ---- sign-in and tickets ----

async function loadTickets() {
  const list = $('ticket-list');
  list.replaceChildren();
  // Every open ticket, however many finished ones there are: one filtered, paged list per open status
  // (bounded: 50 pages of 100).
  const mine = async (status) => {
    const out = [];
    for (let p = 1; p <= 50; p++) {
      const q = `assignee_id=${login.user.id}&status=${status}&per_page=100&page=${p}`;
      const page = await api('GET', `/api/v1/tickets?${q}`, { token: login.token });
      out.push(...page.items);
      if (!page.items.length || out.length >= page.total) break;
    }
    return out;
  };
  let open;
  try {
    open = [...(await mine('assigned')), ...(await mine('in_progress'))];
  } catch (e) {
    showError('Could not list your tickets', e);
    return;
  }
  if (!open.length) {
    const li = document.createElement('li');
    li.textContent = 'No ticket is assigned to you (assigned or in progress).';
    list.append(li);
  }
  for (const t of open) {
    const li = document.createElement('li');
    const text = document.createElement('span');
    text.textContent = `${t.number}: ${t.title} (${t.status.replace('_', ' ')}) `;
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = 'Start remote assistance';
    b.setAttribute('aria-label', `Start remote assistance for ticket ${t.number}`);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        began(await api('POST', `/api/v1/tickets/${t.id}/assist`, { token: login.token }));
      } catch (e) {
        b.disabled = false;
        showError('Could not start remote assistance', e);
      }
    });
    li.append(text, b);
    list.append(li);
  }
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  status('Signing in…', 'signing-in');
  let r;
  try {
    r = await api('POST', '/api/v1/auth/login', { body: { login: $('login').value.trim(), password: $('password').value } });
  } catch (err) {
    showError('Could not sign in', err);
    return;
  }
  $('password').value = '';
  if (r.setup_required) {
    status(`This account must finish its first-login setup before it can be used here: ${r.setup_required}. ` +
      'Then sign in again.', 'setup-required', 'error');
    return;
  }
  login = r;
  show($('signin'), false);
  $('who').textContent = `Signed in as ${r.user.name} (${r.user.employee_id}, ${r.user.role}).`;
  show($('tickets'));
  status('Choose a ticket to start remote assistance.', 'signed-in');
  loadTickets();
});
$('refresh').addEventListener('click', loadTickets);

$('key-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  status('Creating a session…', 'creating');
  try {
    began(await api('POST', '/api/v1/assist-sessions', { token: $('operator-key').value.trim() }));
  } catch (err) {
    showError('Could not create a session', err);
  }
});

// ---- input: mouse and keyboard over the video ----

const canInput = () => peer !== null && control && present && !$('draw').checked;
const heldButtons = new Map(); // protocol button -> where it went down
const heldKeys = new Set();
let move = null;
let lastEscape = 0;
const BUTTON = { 0: 0, 1: 2, 2: 1, 3: 3, 4: 4 }; // DOM button -> protocol (0 left, 1 right, 2 middle)

function send(ev) {
  peer?.send(P.input(ev));
}

function flushMove() {
  if (move) send({ kind: 'move', ...move });
  move = null;
}

function modifiers(e) {
  return (e.shiftKey ? 1 : 0) | (e.ctrlKey ? 2 : 0) | (e.altKey ? 4 : 0) | (e.metaKey ? 8 : 0);
}

function releaseAll() {
  for (const code of heldKeys) send({ kind: 'key', pressed: false, modifiers: 0, code });
  heldKeys.clear();
  for (const [button, pos] of heldButtons) send({ kind: 'button', button, pressed: false, ...pos });
  heldButtons.clear();
}

video.addEventListener('mousemove', (e) => {
  if (!canInput()) return;
  const pos = normalise(video, e.clientX, e.clientY);
  if (!pos) return;
  if (!move) requestAnimationFrame(flushMove); // at most one move per frame
  move = pos;
});
video.addEventListener('mousedown', (e) => {
  video.focus();
  if (!canInput()) return;
  const pos = normalise(video, e.clientX, e.clientY);
  const button = BUTTON[e.button];
  if (!pos || button === undefined) return;
  e.preventDefault();
  flushMove();
  send({ kind: 'button', button, pressed: true, ...pos });
  heldButtons.set(button, pos);
});
window.addEventListener('mouseup', (e) => {
  const button = BUTTON[e.button];
  if (!heldButtons.has(button)) return;
  const pos = normalise(video, e.clientX, e.clientY, true) || heldButtons.get(button);
  flushMove();
  heldButtons.delete(button);
  send({ kind: 'button', button, pressed: false, ...pos });
});
video.addEventListener('contextmenu', (e) => e.preventDefault());
video.addEventListener('wheel', (e) => {
  if (!canInput()) return;
  e.preventDefault();
  const scale = [1.2, 40, 360][e.deltaMode] || 1.2; // pixels (about 100 a notch), lines, pages -> 1/120 notch
  send({ kind: 'wheel', dx: e.deltaX * scale, dy: e.deltaY * scale });
}, { passive: false });
video.addEventListener('keydown', (e) => {
  if (e.code === 'Escape' && !e.repeat) {
    const now = performance.now();
    if (now - lastEscape < 600) {
      video.blur(); // the second Escape gives the keyboard back to the page
      return;
    }
    lastEscape = now;
  }
  if (!canInput() || !e.code) return;
  e.preventDefault();
  send({ kind: 'key', pressed: true, modifiers: modifiers(e), code: e.code });
  heldKeys.add(e.code);
});
video.addEventListener('keyup', (e) => {
  if (!heldKeys.has(e.code)) return;
  e.preventDefault();
  heldKeys.delete(e.code);
  send({ kind: 'key', pressed: false, modifiers: modifiers(e), code: e.code });
});
video.addEventListener('blur', releaseAll);

// ---- drawing, buttons, chat ----

attachPen(overlay, video, {
  enabled: () => peer !== null && $('draw').checked,
  onDraw: (points) => {
    pending = points && points.length
      ? { kind: 'stroke', track: 0, color: colorValue($('color').value), width: 400, points }
      : null;
    redraw();
  },
  onStroke: (points) => {
    peer?.send(P.annotate({ kind: 'stroke', track: 0, color: colorValue($('color').value), width: 400, points }));
  },
});
$('draw').addEventListener('change', (e) => {
  overlay.classList.toggle('drawing', e.target.checked);
  releaseAll();
});
$('clear').addEventListener('click', () => peer?.send(P.annotate({ kind: 'clear', track: 0, color: 0, width: 0 })));
$('keyframe').addEventListener('click', () => {
  if (peer?.send(P.keyframeRequest(0))) logLine(chat, '', 'Keyframe requested.', 'notice');
});
$('end').addEventListener('click', async () => {
  const p = peer;
  if (!p) return;
  finished('You ended the session.', '');
  await p.finish(P.endSession());
});
chatForm($('chat-form'), $('chat-text'), (text) => {
  if (!peer?.send(P.chat(text))) return false;
  logLine(chat, 'You', text);
  return true;
});
window.addEventListener('pagehide', () => peer?.close());

if (params.get('token') && flag('autostart')) {
  for (const id of ['signin', 'service']) show($(id), false);
  connect(params.get('token'));
}
