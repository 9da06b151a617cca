// The customer's page: enter the code, choose allow control or view only, share the screen (one `sendonly`
// video m-line, VP8 preferred) and talk to the technician. `?code=` prefills the code, `?allow_control=0|1`
// the choice, `?synthetic=1` shares an animated canvas instead of the screen, `?autostart=1` starts at once.
// `<body data-inputs data-annotations>` count the technician's input events and whiteboard operations (tests).

import { $, params, flag, status, showError, logLine, chatForm, show, onResize } from './ui.js';
import * as P from './protocol.js';
import { Peer, captureScreen } from './rtc.js';
import { Board } from './board.js';

const board = new Board();
const chat = $('chat');
let peer = null;
let stream = null;
let inputs = 0;
let annotations = 0;

const redraw = () => board.draw($('overlay'), $('preview'), 0);
onResize($('preview'), redraw);
$('preview').addEventListener('resize', redraw);

function controlState(allowed) {
  $('control').checked = allowed;
  const badge = $('control-state');
  badge.textContent = allowed ? 'The technician may control your screen' : 'View only';
  badge.className = `badge ${allowed ? 'warn' : 'ok'}`;
}

function peerState(present, resumed) {
  if (present) {
    status(resumed ? 'The technician is back.' : 'Technician connected: they can see your screen.', 'connected', 'ok');
  } else {
    status('Waiting for the technician to connect…', 'waiting');
  }
}

function onMessage(m) {
  switch (m.name) {
    case 'welcome':
      controlState(m.controlAllowed);
      peerState(m.peerPresent, false);
      board.reset();
      annotations = 0;
      redraw();
      break;
    case 'peer':
      if (m.state === 'away') {
        status("The technician's connection was lost; they may come back.", 'away', 'warn');
      } else {
        peerState(true, m.state === 'resumed');
      }
      break;
    case 'control':
      controlState(m.allowed);
      break;
    case 'chat':
      logLine(chat, 'Technician', m.text);
      break;
    case 'notice':
      logLine(chat, '', m.message, 'notice');
      break;
    case 'annotation':
      board.apply(m.annotation);
      annotations += 1;
      document.body.dataset.annotations = String(annotations);
      redraw();
      break;
    case 'input':
      // The technician's input event: a browser page cannot move the real pointer; it is only counted.
      inputs += 1;
      document.body.dataset.inputs = String(inputs);
      break;
    case 'file_offer':
      peer.send(P.fileAnswer(m.transfer, false));
      logLine(chat, '', `The technician offered the file "${m.fileName}"; this page cannot receive files.`, 'notice');
      break;
    default:
      break; // keyframe requests are answered by the browser itself (RTCP PLI); the rest does not concern us
  }
}

function stopSharing() {
  for (const t of stream?.getTracks() || []) t.stop();
  stream = null;
}

function finished(text, kind, code = '') {
  status(text, 'ended', kind, code);
  stopSharing();
  for (const id of ['control', 'end', 'chat-text']) $(id).disabled = true;
  peer = null;
}

async function start() {
  const code = $('code').value.trim();
  if (!code) {
    status('Enter the code the technician read to you.', 'idle', 'warn');
    $('code').focus();
    return;
  }
  // A code is 6 to 18 digits (spaces and dashes allowed): anything else is a typo, told before the screen
  // picker and without spending one of this address's attempts.
  if (!/^[0-9]{6,18}$/.test(code.replace(/[\s-]/g, ''))) {
    status('That is not a code: it is the digits the technician read to you, e.g. 1234 5678 9012.', 'idle', 'warn');
    $('code').focus();
    return;
  }
  const allow = $('allow').checked;
  $('share').disabled = true;
  try {
    status('Choose the screen to share…', 'connecting');
    stream = await captureScreen(flag('synthetic'));
    const [track] = stream.getVideoTracks();
    track.addEventListener('ended', () => {
      if (peer) end('You stopped sharing your screen: the session has ended.');
    });
    $('preview').srcObject = stream;
    status('Connecting…', 'connecting');
    peer = new Peer({
      as: 'customer',
      secret: code,
      params: { allow_control: String(allow) },
      send: [track],
      onMessage,
      onClose: (reason, m) => finished(`The session has ended: ${reason}.`, 'warn', m?.codeName),
    });
    await peer.connect();
  } catch (e) {
    peer = null;
    stopSharing();
    $('share').disabled = false;
    showError('Could not start sharing', e);
    return;
  }
  show($('join'), false);
  show($('session'));
  show($('chat-box'));
  controlState(allow);
  if (document.body.dataset.state === 'connecting') status('Connected; waiting for the technician…', 'waiting');
}

async function end(text = 'You ended the session.') {
  const p = peer;
  if (!p) return;
  finished(text, '');
  await p.finish(P.endSession());
}

$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  start();
});
$('end').addEventListener('click', () => end());
$('control').addEventListener('change', (e) => {
  if (!peer?.send(P.setControl(e.target.checked))) e.target.checked = !e.target.checked;
});
chatForm($('chat-form'), $('chat-text'), (text) => {
  if (!peer?.send(P.chat(text))) return false;
  logLine(chat, 'You', text);
  return true;
});
window.addEventListener('pagehide', () => peer?.close());

$('code').value = params.get('code') || '';
if (params.has('allow_control')) {
  $(flag('allow_control') ? 'allow' : 'view-only').checked = true;
}
if (flag('autostart') && $('code').value) start();
