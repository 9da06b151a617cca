// WebRTC signaling and peer-connection helpers (docs/PROTOCOL.md section 13): one offer POSTed to
// /api/v1/rtc with the HELLO's secret as the bearer, the answer set, the `control` data channel carrying the
// control messages of section 4 (protocol.js), and DELETE of the peer URL on the way out.

import { decode } from './protocol.js';

/** An error answered by the API (`{"error": {"code", "message"}}`) or raised on the way. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  toString() { return this.message; }
}

/** Turns a non-2xx fetch answer into an ApiError (falls back to the status text for a non-JSON body). */
export async function apiError(res) {
  let code = `http_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch { /* not JSON */ }
  return new ApiError(res.status, code, message);
}

/** A JSON API call; resolves to the parsed answer (null when empty), rejects with ApiError. */
export async function api(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, 'network', `the server cannot be reached: ${e.message}`);
  }
  if (!res.ok) throw await apiError(res);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/** Puts VP8, then H.264 (packetization-mode 1), first in the transceiver's codec preferences, if it can. */
export function preferVp8(transceiver) {
  if (!transceiver.setCodecPreferences || !window.RTCRtpReceiver?.getCapabilities) return;
  const caps = RTCRtpReceiver.getCapabilities('video');
  if (!caps) return;
  const rank = (c) => {
    const t = c.mimeType.toLowerCase();
    if (t === 'video/vp8') return 0;
    if (t === 'video/h264' && /packetization-mode=1/.test(c.sdpFmtpLine || '')) return 1;
    if (t === 'video/rtx' || t === 'video/red' || t === 'video/ulpfec') return 2;
    return 3;
  };
  const codecs = caps.codecs.filter((c) => rank(c) < 3).sort((a, b) => rank(a) - rank(b));
  try {
    transceiver.setCodecPreferences(codecs);
  } catch (e) {
    console.warn('codec preferences not set:', e.message);
  }
}

function iceGathered(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener('icegatheringstatechange', check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const timer = setTimeout(done, ms);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

/**
 * A peer of the relay. `opts`:
 * - `as`: customer | technician | meeting | guest | resume; `secret`: the bearer (code or token);
 * - `params`: more query parameters (`allow_control`, `name`);
 * - `send`: MediaStreamTracks to send, one `sendonly` m-line each (local track ids 0, 1, ...);
 * - `sendPaused`: offer the `send` m-lines but send nothing on them until `setSending(i, track)` (a meeting
 *   guest may only share once the host makes it a presenter);
 * - `receive`: how many `recvonly` video m-lines to offer;
 * - `onMessage(msg)`: each decoded control message; `onTrack(mid, stream, track)`: a receiving m-line's
 *   media; `onClose(reason, close)`: the peer is gone, `reason` in words from a CLOSE message or the
 *   connection state, `close` the CLOSE message if there was one (its `codeName` for support, not for show);
 *   `onOpen()`: the control channel is open.
 */
export class Peer {
  constructor(opts) {
    this.opts = opts;
    this.location = null;
    this.closed = false;
    this.closeMessage = null;
    this.pc = null;
    this.dc = null;
    this.senders = [];
  }

  async connect() {
    const o = this.opts;
    const pc = (this.pc = new RTCPeerConnection({ iceServers: [] }));
    const dc = (this.dc = pc.createDataChannel('control', { ordered: true }));
    dc.binaryType = 'arraybuffer';
    dc.onopen = () => o.onOpen?.();
    dc.onmessage = (e) => this.receive(e.data);
    dc.onclose = () => this.gone('the control channel closed');
    for (const track of o.send || []) {
      const streams = [new MediaStream([track])];
      // Paused: the m-line is negotiated with no track, so the encoder starts (with a keyframe) only when a
      // track is set.
      const t = pc.addTransceiver(o.sendPaused ? 'video' : track, { direction: 'sendonly', streams });
      preferVp8(t);
      this.senders.push(t.sender);
    }
    for (let i = 0; i < (o.receive || 0); i++) {
      pc.addTransceiver('video', { direction: 'recvonly' });
    }
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      o.onTrack?.(e.transceiver.mid, stream, e.track);
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') this.gone('the connection to the relay failed');
    };
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc, 1000);
    const query = new URLSearchParams({ as: o.as, ...(o.params || {}) });
    let res;
    try {
      res = await fetch(`/api/v1/rtc?${query}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${o.secret}`, 'Content-Type': 'application/sdp' },
        body: pc.localDescription.sdp,
      });
    } catch (e) {
      this.abandon();
      throw new ApiError(0, 'network', `the server cannot be reached: ${e.message}`);
    }
    if (res.status !== 201) {
      this.abandon();
      throw await apiError(res);
    }
    this.location = res.headers.get('Location');
    const sdp = await res.text();
    await pc.setRemoteDescription({ type: 'answer', sdp });
    // The mids of the receiving m-lines, in offer order (TRACK_MID names them).
    this.receiveMids = pc.getTransceivers().filter((t) => t.direction === 'recvonly').map((t) => t.mid);
    return this;
  }

  receive(data) {
    if (!(data instanceof ArrayBuffer)) return; // the relay sends binary only
    let msg;
    try {
      msg = decode(data);
    } catch (e) {
      const head = new Uint8Array(data, 0, Math.min(data.byteLength, 32));
      console.warn(`malformed control message ignored (${e.message}):`, Array.from(head, (b) => b.toString(16).padStart(2, '0')).join(' '));
      return;
    }
    if (!msg) return; // unknown type: ignored
    if (msg.name === 'close') this.closeMessage = msg;
    this.opts.onMessage?.(msg);
    // CLOSE is the relay's last message: the peer is gone, whenever the channel's own close follows.
    if (msg.name === 'close') this.gone('closed by the relay');
  }

  /** Starts (a track) or stops (null) sending on the `i`th sending m-line; no renegotiation. */
  async setSending(i, track) {
    const sender = this.senders[i];
    if (!sender || this.closed || sender.track === track) return;
    await sender.replaceTrack(track);
  }

  /** Sends one encoded control message; false if the channel is not open. */
  send(bytes) {
    if (!this.dc || this.dc.readyState !== 'open') return false;
    this.dc.send(bytes);
    return true;
  }

  gone(why) {
    if (this.closed) return;
    this.closed = true;
    this.location = null; // nothing left to DELETE
    const m = this.closeMessage;
    // The reason in words for the page; the code (e.g. `session_ended`) for the console and `data-code`.
    if (m) console.info(`closed by the relay (${m.codeName}): ${m.reason}`);
    if (!this.finishing) this.opts.onClose?.(m ? m.reason || 'the relay closed the connection' : why, m);
    this.shut();
  }

  /** Gives up before the relay accepted the peer: no onClose, the caller reports the error. */
  abandon() {
    this.closed = true;
    this.shut();
  }

  shut() {
    try { this.dc?.close(); } catch { /* already closed */ }
    try { this.pc?.close(); } catch { /* already closed */ }
  }

  /** Closes locally and tells the relay (DELETE of the peer URL), without waiting for it. */
  close() {
    this.finishing = true;
    const loc = this.location;
    this.location = null;
    this.closed = true;
    this.shut();
    if (loc) fetch(loc, { method: 'DELETE', keepalive: true }).catch(() => {});
  }

  /**
   * Sends `bytes` (END_SESSION) and waits a moment for the relay to close the peer; closes it (DELETE) if the
   * relay has not. No onClose: the caller knows why it ends.
   */
  async finish(bytes) {
    this.finishing = true;
    if (bytes && this.send(bytes)) {
      const until = Date.now() + 1500;
      while (!this.closed && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    }
    this.close();
  }
}

/**
 * A stand-in for a screen share in tests (`?synthetic=1`): a canvas animated with moving shapes and a frame
 * counter, captured at 30 fps. Needs no permission.
 */
export function syntheticScreen(width = 640, height = 360) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const g = canvas.getContext('2d');
  let n = 0;
  const draw = () => {
    n += 1;
    g.fillStyle = '#1d3557';
    g.fillRect(0, 0, width, height);
    g.fillStyle = '#a8dadc';
    for (let i = 0; i < 8; i++) g.fillRect(i * width / 8, height - 40, width / 16, 40);
    const x = (n * 4) % (width + 80) - 40;
    g.fillStyle = '#e63946';
    g.fillRect(x, height / 3, 80, 80);
    g.beginPath();
    g.fillStyle = '#f1faee';
    g.arc(width / 2 + Math.cos(n / 15) * 120, height / 2 + Math.sin(n / 15) * 80, 30, 0, 2 * Math.PI);
    g.fill();
    g.font = '28px sans-serif';
    g.fillText(`synthetic screen, frame ${n}`, 16, 40);
  };
  draw();
  const timer = setInterval(draw, 1000 / 30);
  const stream = canvas.captureStream(30);
  const [track] = stream.getVideoTracks();
  track.addEventListener('ended', () => clearInterval(timer));
  const stop = track.stop.bind(track);
  track.stop = () => { clearInterval(timer); stop(); };
  return stream;
}

/** The screen to share: synthetic with `?synthetic=1`, else the browser's picker (getDisplayMedia). */
export async function captureScreen(synthetic) {
  if (synthetic) return syntheticScreen();
  if (!navigator.mediaDevices?.getDisplayMedia) {
    throw new ApiError(0, 'unsupported', 'this browser cannot share its screen');
  }
  try {
    return await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch (e) {
    throw new ApiError(0, 'not_shared', `the screen was not shared: ${e.message}`);
  }
}
