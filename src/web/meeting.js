// The meeting page: join as a guest (meeting code, `as=guest`) or as staff (join token, `as=meeting`; `?token=`
// prefills it) with a display name; see up to four shared screens (four `recvonly` m-lines, mapped to tracks
// by TRACK_MID), each labelled with its presenter's name; draw on them (ANNOTATE), chat, see who is there.
// Renegotiation is not supported, so a presenter ticks "I will share my screen" before joining, which adds
// one `sendonly` m-line. `?synthetic=1` shares an animated canvas instead of the screen (tests), `?code=`
// and `?name=` prefill, `?autostart=1` joins at once.

import { $, params, flag, status, showError, logLine, chatForm, show, onResize } from './ui.js';
import * as P from './protocol.js';
import { Peer, captureScreen } from './rtc.js';
import { Board, attachPen, colorValue } from './board.js';

const RECEIVE = 4;
const board = new Board();
const chat = $('chat');
let peer = null;
let me = { participant: 0, role: '' };
const participants = new Map(); // id -> {name, role, state}
const tracks = new Map(); // room-wide track id -> {publisher, state, watching}
const tiles = []; // {mid, el, video, canvas, label, track, pending, local}
let share = null; // {stream, tile}

const nameOf = (id) => participants.get(id)?.name || `participant ${id}`;

// ---- tiles: one per receiving m-line, plus the local preview of one's own share ----

function makeTile(mid, local) {
  const el = document.createElement('figure');
  el.className = 'tile';
  el.hidden = true;
  const stage = document.createElement('div');
  stage.className = 'stage';
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true;
  const canvas = document.createElement('canvas');
  canvas.setAttribute('aria-hidden', 'true');
  const label = document.createElement('figcaption');
  label.className = 'label';
  stage.append(video, canvas, label);
  const tools = document.createElement('div');
  tools.className = 'tools';
  const clear = document.createElement('button');
  clear.type = 'button';
  clear.className = 'secondary';
  clear.textContent = 'Clear drawings';
  tools.append(clear);
  el.append(stage, tools);
  $('tiles').append(el);
  const tile = { mid, el, video, canvas, label, clear, track: null, pending: null, local };
  const redraw = () => board.draw(canvas, video, tile.track, tile.pending);
  tile.redraw = redraw;
  onResize(video, redraw);
  video.addEventListener('resize', redraw);
  attachPen(canvas, video, {
    enabled: () => peer !== null && tile.track !== null && $('draw').checked,
    onDraw: (points) => {
      tile.pending = points && points.length ? stroke(tile.track, points) : null;
      redraw();
    },
    onStroke: (points) => peer?.send(P.annotate(stroke(tile.track, points))),
  });
  clear.addEventListener('click', () => {
    if (tile.track !== null) peer?.send(P.annotate({ kind: 'clear', track: tile.track, color: 0, width: 0 }));
  });
  tiles.push(tile);
  return tile;
}

function stroke(track, points) {
  return { kind: 'stroke', track, color: colorValue($('color').value), width: 400, points };
}

function renderTiles() {
  let any = false;
  for (const t of tiles) {
    const info = t.track === null ? null : tracks.get(t.track);
    const on = t.track !== null && (t.local || info !== undefined);
    t.el.hidden = !on;
    any ||= on;
    if (!on) continue;
    const who = t.local ? 'Your screen' : `${nameOf(info.publisher)}'s screen`;
    const muted = info?.state === 'muted' ? ' (muted by the host)' : '';
    t.label.textContent = `${who}${muted}`;
    t.video.setAttribute('aria-label', `${who}${muted}, track ${t.track}`);
    t.clear.setAttribute('aria-label', `Clear drawings on ${who.toLowerCase()}`);
    t.redraw();
  }
  show($('no-screens'), !any);
}

// ---- participants and screens ----

function renderPeople() {
  const list = $('participants');
  list.replaceChildren();
  for (const [id, p] of participants) {
    const li = document.createElement('li');
    const you = id === me.participant ? ' (you)' : '';
    const away = p.state === 'away' ? ', away' : '';
    li.textContent = `${p.name}${you}: ${p.role}${away}`;
    for (const [track, t] of tracks) {
      if (t.publisher !== id || id === me.participant) continue;
      const label = document.createElement('label');
      label.className = 'inline';
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = t.watching;
      box.addEventListener('change', () => {
        t.watching = box.checked;
        peer?.send(P.subscribe(track, box.checked));
      });
      label.append(box, ` watch screen ${track}`);
      li.append(' ', label);
    }
    list.append(li);
  }
}

function onMessage(m) {
  switch (m.name) {
    case 'meeting_welcome':
      // The room's state follows: start afresh (section 7.2).
      me = { participant: m.participant, role: m.role };
      participants.clear();
      tracks.clear();
      board.reset();
      for (const t of tiles) if (!t.local) t.track = null;
      show($('recording'), m.recording);
      show($('end-meeting'), m.role === 'host');
      status(`You are in the meeting as ${m.role}.`, 'joined', 'ok');
      break;
    case 'participant':
      if (m.state === 'left' || m.state === 'removed') participants.delete(m.participant);
      else participants.set(m.participant, { name: m.displayName, role: m.role, state: m.state });
      if (m.participant === me.participant && m.state === 'role_changed') {
        me.role = m.role;
        show($('end-meeting'), m.role === 'host');
        logLine(chat, '', `You are now ${m.role}.`, 'notice');
      } else if (m.participant !== me.participant && m.state !== 'present' && m.state !== 'role_changed') {
        logLine(chat, '', `${m.displayName} ${m.state === 'back' ? 'is back' : `has ${m.state === 'away' ? 'gone away' : m.state}`}.`, 'notice');
      }
      break;
    case 'track':
      if (m.state === 'ended') {
        tracks.delete(m.track);
        board.dropTrack(m.track);
        for (const t of tiles) if (t.track === m.track) t.track = null;
      } else {
        const old = tracks.get(m.track);
        tracks.set(m.track, { publisher: m.publisher, state: m.state, watching: old ? old.watching : true });
        if (m.publisher === me.participant && share && share.tile.track === null) share.tile.track = m.track;
      }
      break;
    case 'track_mid':
      for (const t of tiles) {
        if (t.local) continue;
        if (t.mid === m.mid) t.track = m.mid ? m.track : null;
        else if (t.track === m.track) t.track = null;
      }
      break;
    case 'annotation':
      board.apply(m.annotation);
      break;
    case 'meeting_chat':
      logLine(chat, m.from === me.participant ? 'You' : nameOf(m.from), m.text);
      break;
    case 'recording':
      show($('recording'), m.active);
      logLine(chat, '', `Recording ${m.active ? 'started' : 'stopped'}: ${m.reason}.`, 'notice');
      break;
    case 'notice':
      logLine(chat, '', m.message, 'notice');
      break;
    case 'file_offer':
      peer.send(P.fileAnswer(m.transfer, false));
      logLine(chat, '', `${nameOf(m.from)} offered the file "${m.fileName}"; this page cannot receive files.`, 'notice');
      break;
    default:
      return;
  }
  renderTiles();
  renderPeople();
}

// ---- joining and leaving ----

function finished(text, kind) {
  status(text, 'ended', kind);
  peer = null;
  for (const t of share?.stream.getTracks() || []) t.stop();
  for (const id of ['leave', 'end-meeting', 'chat-text', 'draw']) $(id).disabled = true;
}

async function join() {
  const byToken = $('by-token').checked;
  const secret = (byToken ? $('token') : $('code')).value.trim();
  if (!secret) {
    status(byToken ? 'Enter your join token.' : 'Enter the meeting code.', 'idle', 'warn');
    $(byToken ? 'token' : 'code').focus();
    return;
  }
  $('join-button').disabled = true;
  const send = [];
  try {
    if ($('will-share').checked) {
      status('Choose the screen to share…', 'connecting');
      const stream = await captureScreen(flag('synthetic'));
      const tile = makeTile(null, true);
      tile.video.srcObject = stream;
      share = { stream, tile };
      send.push(stream.getVideoTracks()[0]);
    }
    status('Joining…', 'connecting');
    peer = new Peer({
      as: byToken ? 'meeting' : 'guest',
      secret,
      params: { name: $('name').value.trim() },
      send,
      receive: RECEIVE,
      onMessage,
      onTrack: (mid, stream) => {
        const tile = tiles.find((t) => t.mid === mid);
        if (tile) tile.video.srcObject = stream;
      },
      onClose: (reason) => finished(`You are no longer in the meeting: ${reason}.`, 'warn'),
    });
    await peer.connect();
  } catch (e) {
    peer = null;
    for (const t of share?.stream.getTracks() || []) t.stop();
    share?.tile.el.remove();
    tiles.length = 0;
    share = null;
    $('join-button').disabled = false;
    showError('Could not join', e);
    return;
  }
  for (const mid of peer.receiveMids) makeTile(mid, false);
  show($('join'), false);
  for (const id of ['screens', 'people', 'chat-box']) show($(id));
  renderTiles();
}

$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  join();
});
for (const id of ['by-code', 'by-token']) {
  $(id).addEventListener('change', () => {
    show($('code-field'), $('by-code').checked);
    show($('token-field'), $('by-token').checked);
  });
}
$('draw').addEventListener('change', (e) => {
  for (const t of tiles) t.canvas.classList.toggle('drawing', e.target.checked);
});
$('leave').addEventListener('click', async () => {
  const p = peer;
  if (!p) return;
  finished('You left the meeting.', '');
  // The host's END_SESSION would end the meeting for everyone: the host just disconnects.
  if (me.role === 'host') p.close();
  else await p.finish(P.endSession());
});
$('end-meeting').addEventListener('click', async () => {
  const p = peer;
  if (!p) return;
  finished('You ended the meeting for everyone.', '');
  await p.finish(P.endSession());
});
chatForm($('chat-form'), $('chat-text'), (text) => peer?.send(P.chat(text)) || false);
window.addEventListener('pagehide', () => peer?.close());

if (params.get('token')) {
  $('by-token').checked = true;
  $('token').value = params.get('token');
  show($('code-field'), false);
  show($('token-field'));
}
$('code').value = params.get('code') || '';
$('name').value = params.get('name') || '';
if (flag('share')) $('will-share').checked = true;
if (flag('autostart') && ($('token').value || $('code').value)) join();
