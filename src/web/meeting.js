// The meeting page: join as a guest (meeting code, `as=guest`) or as staff (join token, `as=meeting`; `?token=`
// prefills it) with a display name; see up to four shared screens (four `recvonly` m-lines, mapped to tracks
// by TRACK_MID), each labelled with its presenter's name; draw on them (ANNOTATE), chat, see who is there;
// the host also makes others presenters or participants, mutes their shares and removes them.
// Renegotiation is not supported, so a presenter ticks "I will share my screen" before joining, which adds
// one `sendonly` m-line; the screen is sent on it only while the page's role presents (host, presenter): a
// guest who ticked it starts sharing when the host makes it a presenter, and stops when made a participant.
// `?synthetic=1` shares an animated canvas instead of the screen (tests), `?code=`, `?name=` and `?share=1`
// prefill, `?autostart=1` joins at once. For tests and tools the page keeps its state in data attributes:
// `<body data-state data-participant data-role data-sharing data-annotations>`, and on each tile
// `<figure data-track data-frames>` (frames shown of the tile's current track).

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
const tiles = []; // {mid, el, video, canvas, label, track, pending, local, frames}
const midTrack = new Map(); // receiving m-line -> the track it carries (TRACK_MID)
const streams = new Map(); // receiving m-line -> its MediaStream
let share = null; // {stream, track, tile}
let annotations = 0;

const nameOf = (id) => participants.get(id)?.name || `participant ${id}`;
const presents = (role) => role === 'host' || role === 'presenter';

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
  canvas.classList.toggle('drawing', $('draw').checked);
  const tile = { mid, el, video, canvas, label, clear, track: null, shown: null, pending: null, local, frames: 0 };
  const redraw = () => board.draw(canvas, video, tile.track, tile.pending);
  tile.redraw = redraw;
  onResize(video, redraw);
  video.addEventListener('resize', redraw);
  if (!local) {
    countFrames(tile);
    if (streams.has(mid)) video.srcObject = streams.get(mid);
  }
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

/** Counts the frames a tile shows (presented, or at least decoded) since its current track was mapped. */
function countFrames(tile) {
  const v = tile.video;
  let presented = 0;
  let base = 0;
  const decoded = () => {
    const q = v.getVideoPlaybackQuality?.();
    return q ? q.totalVideoFrames - q.droppedVideoFrames : 0;
  };
  const show = () => {
    if (tile.el.dataset.frames !== String(tile.frames)) tile.el.dataset.frames = String(tile.frames);
  };
  tile.resetFrames = () => {
    presented = 0;
    base = decoded();
    tile.frames = 0;
    show();
  };
  if ('requestVideoFrameCallback' in v) {
    const tick = () => {
      presented += 1;
      tile.frames = Math.max(tile.frames, presented);
      show();
      v.requestVideoFrameCallback(tick);
    };
    v.requestVideoFrameCallback(tick);
  }
  setInterval(() => {
    tile.frames = Math.max(tile.frames, decoded() - base);
    show();
  }, 250);
}

function stroke(track, points) {
  return { kind: 'stroke', track, color: colorValue($('color').value), width: 400, points };
}

function renderTiles() {
  let any = false;
  for (const t of tiles) {
    if (!t.local) {
      const track = midTrack.get(t.mid);
      t.track = track === undefined || !tracks.has(track) ? null : track;
      if (t.shown !== t.track) {
        t.shown = t.track;
        t.resetFrames();
      }
    }
    const info = t.track === null ? null : tracks.get(t.track);
    // One's own screen shows as soon as it is captured; another's once its m-line carries it.
    const on = t.local ? share !== null && !share.stopped : info !== undefined && info !== null;
    t.el.hidden = !on;
    any ||= on;
    if (t.track === null) delete t.el.dataset.track;
    else t.el.dataset.track = String(t.track);
    if (!on) continue;
    let who;
    let state = '';
    if (t.local) {
      who = 'Your screen';
      if (document.body.dataset.sharing === 'waiting') state = ' (not shared until the host makes you a presenter)';
    } else {
      who = `${nameOf(info.publisher)}'s screen`;
    }
    if (info?.state === 'muted') state = ' (muted by the host)';
    t.label.textContent = `${who}${state}`;
    t.video.setAttribute('aria-label', `${who}${state}${t.track === null ? '' : `, track ${t.track}`}`);
    t.clear.setAttribute('aria-label', `Clear drawings on ${who.toLowerCase()}`);
    t.clear.disabled = t.track === null;
    t.redraw();
  }
  show($('no-screens'), !any);
}

/** Sends one's screen while one's role presents, nothing otherwise (the relay drops a participant's frames). */
async function updateSending() {
  if (!share || !peer || !me.role) return;
  const on = presents(me.role) && !share.stopped;
  document.body.dataset.sharing = share.stopped ? 'stopped' : on ? 'sending' : 'waiting';
  try {
    await peer.setSending(0, on ? share.track : null);
  } catch (e) {
    logLine(chat, '', `Your screen could not be ${on ? 'shared' : 'stopped'}: ${e.message}`, 'notice');
  }
  renderTiles();
}

// ---- participants and screens ----

function button(text, aria, onClick, kind = 'secondary') {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = kind;
  b.textContent = text;
  b.setAttribute('aria-label', aria);
  b.addEventListener('click', onClick);
  return b;
}

function renderPeople() {
  const list = $('participants');
  list.replaceChildren();
  const host = me.role === 'host' && peer !== null;
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
      if (host) {
        const muted = t.state === 'muted';
        li.append(button(muted ? 'Allow' : 'Mute', `${muted ? 'Allow' : 'Mute'} ${p.name}'s screen ${track}`,
          () => peer?.send(P.muteTrack(track, !muted))));
      }
    }
    // The host's actions on the others (section 7.4): presenter or participant, remove.
    if (host && id !== me.participant && p.role !== 'host') {
      const to = p.role === 'presenter' ? 'participant' : 'presenter';
      const tools = document.createElement('span');
      tools.className = 'row';
      tools.append(
        button(`Make ${to}`, `Make ${p.name} a ${to}`, () => peer?.send(P.setRole(id, to))),
        button('Remove', `Remove ${p.name} from the meeting`, () => peer?.send(P.removeParticipant(id)), 'danger'),
      );
      li.append(tools);
    }
    list.append(li);
  }
}

function onMessage(m) {
  switch (m.name) {
    case 'meeting_welcome':
      // The room's state follows: start afresh (section 7.2).
      me = { participant: m.participant, role: m.role };
      document.body.dataset.participant = String(m.participant);
      document.body.dataset.role = m.role;
      participants.clear();
      tracks.clear();
      midTrack.clear();
      board.reset();
      annotations = 0;
      if (share) share.tile.track = null;
      show($('recording'), m.recording);
      show($('end-meeting'), m.role === 'host');
      status(`You are in the meeting as ${m.role}.`, 'joined', 'ok');
      if (share && !presents(m.role)) {
        logLine(chat, '', 'You joined as a participant: your screen is shared once the host makes you a presenter.', 'notice');
      }
      updateSending();
      break;
    case 'participant':
      if (m.state === 'left' || m.state === 'removed') participants.delete(m.participant);
      else participants.set(m.participant, { name: m.displayName, role: m.role, state: m.state });
      if (m.participant === me.participant && m.state === 'role_changed') {
        me.role = m.role;
        document.body.dataset.role = m.role;
        show($('end-meeting'), m.role === 'host');
        status(`You are in the meeting as ${m.role}.`, 'joined', 'ok');
        const screen = !share ? '' : presents(m.role) ? ': your screen is shared' : ': your screen is no longer shared';
        logLine(chat, '', `You are now ${m.role}${screen}.`, 'notice');
        updateSending();
      } else if (m.participant !== me.participant && m.state !== 'present' && m.state !== 'role_changed') {
        logLine(chat, '', `${m.displayName} ${m.state === 'back' ? 'is back' : `has ${m.state === 'away' ? 'gone away' : m.state}`}.`, 'notice');
      }
      break;
    case 'track':
      if (m.state === 'ended') {
        tracks.delete(m.track);
        board.dropTrack(m.track);
        for (const [mid, track] of midTrack) if (track === m.track) midTrack.delete(mid);
        if (share?.tile.track === m.track) share.tile.track = null;
      } else {
        const old = tracks.get(m.track);
        tracks.set(m.track, { publisher: m.publisher, state: m.state, watching: old ? old.watching : true });
        if (m.publisher === me.participant && share && share.tile.track === null) share.tile.track = m.track;
      }
      break;
    case 'track_mid':
      for (const [mid, track] of midTrack) if (track === m.track) midTrack.delete(mid);
      if (m.mid) midTrack.set(m.mid, m.track);
      break;
    case 'annotation':
      board.apply(m.annotation);
      annotations += 1;
      document.body.dataset.annotations = String(annotations);
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

function finished(text, kind, code = '') {
  status(text, 'ended', kind, code);
  peer = null;
  delete document.body.dataset.sharing;
  for (const t of share?.stream.getTracks() || []) t.stop();
  for (const id of ['leave', 'end-meeting', 'chat-text', 'draw']) $(id).disabled = true;
  renderPeople();
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
      const [track] = stream.getVideoTracks();
      const tile = makeTile(null, true);
      tile.video.srcObject = stream;
      share = { stream, track, tile };
      send.push(track);
      // The browser's "Stop sharing" ends the track: nothing more is sent. The protocol has no message to end
      // a share, so the others keep it listed, without new frames, until this page leaves.
      track.addEventListener('ended', () => {
        if (!peer) return;
        share.stopped = true;
        updateSending();
        logLine(chat, '', 'You stopped sharing your screen.', 'notice');
      });
    }
    status('Joining…', 'connecting');
    peer = new Peer({
      as: byToken ? 'meeting' : 'guest',
      secret,
      params: { name: $('name').value.trim() },
      send,
      // Nothing is sent until the welcome tells the role (updateSending).
      sendPaused: true,
      receive: RECEIVE,
      onMessage,
      // Fired while the answer is set, before the tiles exist: kept for makeTile.
      onTrack: (mid, stream) => {
        streams.set(mid, stream);
        const tile = tiles.find((t) => !t.local && t.mid === mid);
        if (tile) tile.video.srcObject = stream;
      },
      onClose: (reason, m) => finished(`You are no longer in the meeting: ${reason}.`, 'warn', m?.codeName),
    });
    await peer.connect();
  } catch (e) {
    peer = null;
    for (const t of share?.stream.getTracks() || []) t.stop();
    for (const t of tiles) t.el.remove();
    tiles.length = 0;
    streams.clear();
    share = null;
    $('join-button').disabled = false;
    showError('Could not join', e);
    return;
  }
  for (const mid of peer.receiveMids) makeTile(mid, false);
  show($('join'), false);
  for (const id of ['screens', 'people', 'chat-box']) show($(id));
  renderTiles();
  updateSending();
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
