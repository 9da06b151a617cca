// The control messages of docs/PROTOCOL.md section 4 as the WebRTC `control` data channel carries them
// (section 13.4): one message per data-channel message, `u8 type | body`, without the 4-byte length prefix.
// Integers are big-endian; a string is a u16 byte length and UTF-8. The Rust codec (src/protocol/message.rs,
// src/protocol/collab.rs) is the reference.

export const T = Object.freeze({
  INPUT: 0x10, CHAT: 0x11, CLIPBOARD: 0x12, SET_CONTROL: 0x13, KEYFRAME_REQUEST: 0x14, END_SESSION: 0x15,
  SUBSCRIBE: 0x16, ANNOTATE: 0x17, FILE_ANSWER: 0x19, MUTE_TRACK: 0x1b, REMOVE_PARTICIPANT: 0x1c, SET_ROLE: 0x1d,
  WELCOME: 0x81, PEER: 0x82, CONTROL: 0x83, NOTICE: 0x84, MEETING_WELCOME: 0x85, PARTICIPANT: 0x86,
  TRACK: 0x87, ANNOTATION: 0x88, MEETING_CHAT: 0x89, RECORDING: 0x8a, FILE_OFFER: 0x8b, FILE_STATE: 0x8c,
  TRACK_MID: 0xa0, CLOSE: 0xa1,
});

export const ROLE = Object.freeze({ 1: 'technician', 2: 'customer' });
export const MEETING_ROLE = Object.freeze({ 1: 'host', 2: 'presenter', 3: 'participant' });
export const PEER_STATE = Object.freeze({ 1: 'joined', 2: 'away', 3: 'resumed' });
export const PARTICIPANT_STATE = Object.freeze({
  1: 'present', 2: 'away', 3: 'back', 4: 'left', 5: 'removed', 6: 'role_changed',
});
export const TRACK_STATE = Object.freeze({ 1: 'live', 2: 'ended', 3: 'muted' });
export const ANNOTATION_KIND = Object.freeze({ stroke: 1, rect: 2, ellipse: 3, arrow: 4, text: 5, clear: 6 });
const KIND_NAME = Object.fromEntries(Object.entries(ANNOTATION_KIND).map(([k, v]) => [v, k]));

/** Error and close codes (section 9) by number. */
export const ERROR_CODE = Object.freeze({
  0x00: 'ok', 0x01: 'going_away', 0x02: 'session_ended', 0x03: 'idle_timeout', 0x04: 'max_duration',
  0x05: 'peer_gone', 0x06: 'replaced', 0x07: 'session_expired', 0x08: 'removed', 0x10: 'protocol_violation',
  0x11: 'message_too_large', 0x12: 'frame_too_large', 0x14: 'hello_timeout', 0x15: 'unexpected_message',
  0x16: 'unsupported_version', 0x20: 'code_unknown', 0x21: 'code_expired', 0x22: 'code_used',
  0x23: 'rate_limited', 0x24: 'token_invalid', 0x25: 'token_expired', 0x26: 'session_not_found',
  0x27: 'role_taken', 0x28: 'too_many_connections', 0x29: 'resume_refused', 0x2a: 'slow_consumer',
  0x2b: 'too_many_sessions', 0x2c: 'meeting_not_started', 0x2d: 'meeting_full', 0x30: 'input_view_only',
  0x31: 'input_rate_limited', 0x32: 'peer_away', 0x33: 'not_permitted', 0x34: 'whiteboard_full',
  0x35: 'file_too_large', 0x36: 'transfer_invalid', 0x37: 'track_muted', 0x38: 'not_found',
  0x39: 'too_many_transfers', 0x40: 'bad_request', 0x41: 'unauthorized', 0x42: 'payload_too_large',
  0x43: 'invalid_offer', 0x44: 'unsupported_codec', 0x50: 'busy', 0x51: 'internal',
});

/** Largest normalised coordinate: the right (bottom) edge of a share. */
export const COORD_MAX = 65535;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

class Writer {
  constructor(type) { this.bytes = [type]; }
  u8(v) { this.bytes.push(v & 0xff); return this; }
  bool(v) { return this.u8(v ? 1 : 0); }
  u16(v) { return this.u8(v >>> 8).u8(v); }
  i16(v) { return this.u16(v & 0xffff); }
  u32(v) { return this.u16(v >>> 16).u16(v & 0xffff); }
  u64(v) { return this.u32(Math.floor(v / 2 ** 32)).u32(v % 2 ** 32); }
  str(s) {
    let b = utf8.encode(s);
    if (b.length > 0xffff) b = b.subarray(0, 0xffff);
    this.u16(b.length);
    for (const x of b) this.bytes.push(x);
    return this;
  }
  done() { return Uint8Array.from(this.bytes); }
}

class Reader {
  constructor(bytes) { this.b = bytes; this.at = 0; }
  take(n) {
    if (this.at + n > this.b.length) throw new Error('message too short');
    const s = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return s;
  }
  u8() { return this.take(1)[0]; }
  bool() {
    const v = this.u8();
    if (v > 1) throw new Error('boolean out of range');
    return v === 1;
  }
  u16() { const s = this.take(2); return (s[0] << 8) | s[1]; }
  i16() { const v = this.u16(); return v >= 0x8000 ? v - 0x10000 : v; }
  u32() { const s = this.take(4); return ((s[0] << 24) >>> 0) + ((s[1] << 16) | (s[2] << 8) | s[3]); }
  /** A u64 as a Number: exact up to 2^53, far beyond any sequence number or file size seen here. */
  u64() { return this.u32() * 2 ** 32 + this.u32(); }
  str() { return fromUtf8.decode(this.take(this.u16())); }
  hex(n) { return Array.from(this.take(n), (x) => x.toString(16).padStart(2, '0')).join(''); }
  end() { if (this.at !== this.b.length) throw new Error('trailing bytes'); }
}

/** Clamps and rounds a normalised coordinate into 0..=65535. */
export function coord(v) {
  return Math.max(0, Math.min(COORD_MAX, Math.round(v)));
}

// ---- client -> relay ----

const BUTTONS = 4;

/**
 * INPUT (0x10). `ev` is one of {kind:'move', x, y}, {kind:'button', button (0 left, 1 right, 2 middle,
 * 3 back, 4 forward), pressed, x, y}, {kind:'wheel', dx, dy} (1/120 notch), {kind:'key', pressed, modifiers
 * (0x01 Shift, 0x02 Control, 0x04 Alt, 0x08 Meta), code (KeyboardEvent.code)}, {kind:'text', text}.
 */
export function input(ev) {
  const w = new Writer(T.INPUT);
  switch (ev.kind) {
    case 'move': return w.u8(1).u16(coord(ev.x)).u16(coord(ev.y)).done();
    case 'button':
      if (!(ev.button >= 0 && ev.button <= BUTTONS)) throw new RangeError('mouse button');
      return w.u8(2).u8(ev.button).bool(ev.pressed).u16(coord(ev.x)).u16(coord(ev.y)).done();
    case 'wheel': {
      const c = (v) => Math.max(-32768, Math.min(32767, Math.round(v)));
      return w.u8(3).i16(c(ev.dx)).i16(c(ev.dy)).done();
    }
    case 'key': {
      const len = utf8.encode(ev.code).length;
      if (len < 1 || len > 64) throw new RangeError('key code');
      return w.u8(4).bool(ev.pressed).u8(ev.modifiers & 0x0f).str(ev.code).done();
    }
    case 'text': return w.u8(5).str(ev.text).done();
    default: throw new RangeError(`input kind ${ev.kind}`);
  }
}

/** CHAT (0x11). */
export const chat = (text) => new Writer(T.CHAT).str(text).done();
/** SET_CONTROL (0x13), customer only. */
export const setControl = (allow) => new Writer(T.SET_CONTROL).bool(allow).done();
/** KEYFRAME_REQUEST (0x14): track 0 in a session, a room-wide track id in a meeting. */
export const keyframeRequest = (track = 0) => new Writer(T.KEYFRAME_REQUEST).u32(track).done();
/** END_SESSION (0x15): ends a session; in a meeting the host ends it, anyone else leaves. */
export const endSession = () => new Writer(T.END_SESSION).done();
/** SUBSCRIBE (0x16), meetings. */
export const subscribe = (track, on) => new Writer(T.SUBSCRIBE).u32(track).bool(on).done();
/** FILE_ANSWER (0x19): this page declines offered files (`accept` false). */
export const fileAnswer = (transfer, accept, offset = 0) =>
  new Writer(T.FILE_ANSWER).u32(transfer).bool(accept).u64(offset).done();

/** MUTE_TRACK (0x1B), meeting host only: mutes (true) or allows again (false) a share. */
export const muteTrack = (track, muted) => new Writer(T.MUTE_TRACK).u32(track).bool(muted).done();
/** REMOVE_PARTICIPANT (0x1C), meeting host only. */
export const removeParticipant = (participant) => new Writer(T.REMOVE_PARTICIPANT).u32(participant).done();
/** SET_ROLE (0x1D), meeting host only: `role` is 'presenter' or 'participant'. */
export function setRole(participant, role) {
  const n = Number(Object.keys(MEETING_ROLE).find((k) => MEETING_ROLE[k] === role));
  if (n !== 2 && n !== 3) throw new RangeError(`role ${role}`);
  return new Writer(T.SET_ROLE).u32(participant).u8(n).done();
}

/**
 * ANNOTATE (0x17). `a` = {kind: 'stroke'|'rect'|'ellipse'|'arrow'|'text'|'clear', track, color (0xRRGGBBAA),
 * width (normalised), points: [[x, y], ...] (normalised), text}.
 */
export function annotate(a) {
  const kind = ANNOTATION_KIND[a.kind];
  if (!kind) throw new RangeError(`annotation kind ${a.kind}`);
  const points = a.points || [];
  const w = new Writer(T.ANNOTATE).u8(kind).u32(a.track >>> 0).u32(a.color >>> 0).u16(coord(a.width || 0));
  w.u16(points.length);
  for (const [x, y] of points) w.u16(coord(x)).u16(coord(y));
  return w.str(a.text || '').done();
}

// ---- relay -> client ----

function inputEvent(r) {
  switch (r.u8()) {
    case 1: return { kind: 'move', x: r.u16(), y: r.u16() };
    case 2: return { kind: 'button', button: r.u8(), pressed: r.bool(), x: r.u16(), y: r.u16() };
    case 3: return { kind: 'wheel', dx: r.i16(), dy: r.i16() };
    case 4: return { kind: 'key', pressed: r.bool(), modifiers: r.u8(), code: r.str() };
    case 5: return { kind: 'text', text: r.str() };
    default: throw new Error('input kind');
  }
}

function annotation(r) {
  const kind = KIND_NAME[r.u8()];
  if (!kind) throw new Error('annotation kind');
  const track = r.u32();
  const color = r.u32();
  const width = r.u16();
  const n = r.u16();
  const points = [];
  for (let i = 0; i < n; i++) points.push([r.u16(), r.u16()]);
  return { kind, track, color, width, points, text: r.str() };
}

const DECODERS = {
  [T.WELCOME]: (r) => ({
    name: 'welcome', session: r.hex(16), role: ROLE[r.u8()], resumeToken: r.str(), controlAllowed: r.bool(),
    peerPresent: r.bool(), resumeGraceMs: r.u32(), maxFrameBytes: r.u32(), maxMessageBytes: r.u32(),
  }),
  [T.PEER]: (r) => ({ name: 'peer', role: ROLE[r.u8()], state: PEER_STATE[r.u8()] }),
  [T.CONTROL]: (r) => ({ name: 'control', allowed: r.bool() }),
  [T.INPUT]: (r) => ({ name: 'input', event: inputEvent(r) }),
  [T.CHAT]: (r) => ({ name: 'chat', from: ROLE[r.u8()], text: r.str() }),
  [T.CLIPBOARD]: (r) => ({ name: 'clipboard', from: ROLE[r.u8()], text: r.str() }),
  [T.KEYFRAME_REQUEST]: (r) => ({ name: 'keyframe_request', track: r.u32() }),
  [T.NOTICE]: (r) => {
    const code = r.u32();
    return { name: 'notice', code, codeName: ERROR_CODE[code] || `0x${code.toString(16)}`, count: r.u32(), message: r.str() };
  },
  [T.MEETING_WELCOME]: (r) => ({
    name: 'meeting_welcome', meeting: r.hex(16), participant: r.u32(), role: MEETING_ROLE[r.u8()],
    resumeToken: r.str(), recording: r.bool(), resumeGraceMs: r.u32(), maxFrameBytes: r.u32(),
    maxMessageBytes: r.u32(), maxFileBytes: r.u64(), maxTracks: r.u32(),
  }),
  [T.PARTICIPANT]: (r) => ({
    name: 'participant', participant: r.u32(), role: MEETING_ROLE[r.u8()], state: PARTICIPANT_STATE[r.u8()],
    displayName: r.str(),
  }),
  [T.TRACK]: (r) => ({ name: 'track', track: r.u32(), publisher: r.u32(), state: TRACK_STATE[r.u8()] }),
  [T.ANNOTATION]: (r) => ({ name: 'annotation', seq: r.u64(), from: r.u32(), annotation: annotation(r) }),
  [T.MEETING_CHAT]: (r) => ({ name: 'meeting_chat', seq: r.u64(), from: r.u32(), text: r.str() }),
  [T.RECORDING]: (r) => ({ name: 'recording', active: r.bool(), reason: r.str() }),
  [T.FILE_OFFER]: (r) => ({
    name: 'file_offer', transfer: r.u32(), from: r.u32(), fileName: r.str(), size: r.u64(), sha256: r.hex(32),
  }),
  [T.FILE_STATE]: (r) => ({
    name: 'file_state', transfer: r.u32(), reference: r.u32(), state: r.u8(), offset: r.u64(),
  }),
  [T.TRACK_MID]: (r) => ({ name: 'track_mid', track: r.u32(), mid: r.str() }),
  [T.CLOSE]: (r) => {
    const code = r.u32();
    return { name: 'close', code, codeName: ERROR_CODE[code] || `0x${code.toString(16)}`, reason: r.str() };
  },
};

/**
 * Decodes one relay message (an ArrayBuffer or a Uint8Array). Returns `{type, name, ...fields}`, or null for
 * a type this page does not know (ignored, as a newer relay may send more). Throws on a malformed body.
 */
export function decode(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (bytes.length < 1) throw new Error('empty message');
  const decoder = DECODERS[bytes[0]];
  if (!decoder) return null;
  const r = new Reader(bytes.subarray(1));
  const msg = decoder(r);
  r.end();
  msg.type = bytes[0];
  return msg;
}

/** Hex of some bytes (for logs and tests). */
export function hex(bytes) {
  return Array.from(bytes, (x) => x.toString(16).padStart(2, '0')).join(' ');
}
