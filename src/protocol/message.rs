//! Control-stream messages and their codec.
//!
//! Every message is `u32 length | u8 type | body` (big-endian; `length` counts the type byte and the body and
//! must be between 1 and the configured maximum message size). Strings are `u16 length | UTF-8 bytes`.
//! Client and relay use separate type spaces: client → relay types are below 0x80 except that forwarded
//! messages (input, chat, clipboard, keyframe request) keep their number in both directions.

use bytes::{BufMut, BytesMut};

use crate::core::Role;

pub use super::collab::{
    Annotation, AnnotationKind, FileOffer, FileState, MeetingRole, MeetingWelcome,
    ParticipantState, TrackState,
};

/// Length of the message length prefix.
pub const LEN_PREFIX: usize = 4;

/// Why a control message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body ended before a field was complete.
    #[error("message truncated")]
    Truncated,
    /// Bytes were left over after the last field.
    #[error("{0} trailing bytes after message")]
    Trailing(usize),
    /// Unknown message type for this direction.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// A field had a value outside its documented range.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// A string was not UTF-8.
    #[error("string is not valid UTF-8")]
    Utf8,
    /// The length prefix was zero or above the limit.
    #[error("message length {len} outside 1..={max}")]
    Length { len: usize, max: usize },
}

/// How a client authenticates in HELLO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// A technician with the join token from the API.
    Technician { token: String },
    /// A customer with the authorization code and its consent.
    Customer { code: String, allow_control: bool },
    /// Either role coming back with the resume token from WELCOME (or a meeting participant with the token
    /// from MEETING_WELCOME).
    Resume { token: String },
    /// A meeting participant with a meeting join token from the API; `name` is shown to the others.
    Meeting { token: String, name: String },
    /// A meeting guest (customer, outside expert) with the meeting code; `name` is shown to the others.
    MeetingCode { code: String, name: String },
}

/// An input event, technician → customer. Coordinates are normalised to the shared screen: 0 is the left/top
/// edge, 65535 the right/bottom edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputEvent {
    MouseMove {
        x: u16,
        y: u16,
    },
    /// `button`: 0 left, 1 right, 2 middle, 3 back, 4 forward.
    MouseButton {
        button: u8,
        pressed: bool,
        x: u16,
        y: u16,
    },
    /// Wheel deltas in 1/120 notches (positive: right / down).
    MouseWheel {
        dx: i16,
        dy: i16,
    },
    /// `code` is a W3C UI Events `KeyboardEvent.code` value such as "KeyA" or "Enter"; `modifiers` bits:
    /// 1 shift, 2 control, 4 alt, 8 meta.
    Key {
        code: String,
        pressed: bool,
        modifiers: u8,
    },
    /// Committed text (e.g. from an input method).
    Text {
        text: String,
    },
}

/// Messages a client sends on its control stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMsg {
    /// 0x01: first message on the control stream, exactly once.
    Hello(Hello),
    /// 0x10: technician only.
    Input(InputEvent),
    /// 0x11
    Chat(String),
    /// 0x12
    Clipboard(String),
    /// 0x13: customer only; grants (true) or revokes (false) control.
    SetControl(bool),
    /// 0x14: technician only; ask the customer for a keyframe on `track`.
    KeyframeRequest { track: u32 },
    /// 0x15: end the session for both sides (in a meeting: the host ends it for all, anyone else leaves).
    EndSession,
    /// 0x16: meetings: start (true) or stop receiving a track.
    Subscribe { track: u32, on: bool },
    /// 0x17: draw on the shared whiteboard.
    Annotate(Annotation),
    /// 0x18: offer a file to participant `to` (ignored in a remote-assist session: the other side).
    FileOffer(FileOffer),
    /// 0x19: the recipient accepts (from `offset`, to resume) or declines a transfer.
    FileAnswer {
        transfer: u32,
        accept: bool,
        offset: u64,
    },
    /// 0x1A: the recipient checked the received file's SHA-256 (`ok`) or found it wrong.
    FileResult { transfer: u32, ok: bool },
    /// 0x1B: meetings, host only: stop (true) or allow again a track.
    MuteTrack { track: u32, muted: bool },
    /// 0x1C: meetings, host only: remove a participant for the rest of the meeting.
    RemoveParticipant { participant: u32 },
    /// 0x1D: meetings, host only: make a participant a presenter or a plain participant.
    SetRole { participant: u32, role: MeetingRole },
}

/// Messages the relay sends on a client's control stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMsg {
    /// 0x81: reply to HELLO.
    Welcome {
        session: [u8; 16],
        role: Role,
        resume_token: String,
        control_allowed: bool,
        peer_present: bool,
        resume_grace_ms: u32,
        max_frame_bytes: u32,
        max_message_bytes: u32,
    },
    /// 0x82: the other side's presence changed.
    Peer { role: Role, state: PeerState },
    /// 0x83: the customer granted or revoked control.
    Control { allowed: bool },
    /// 0x10: an input event from the technician (to the customer).
    Input(InputEvent),
    /// 0x11: chat from `from`.
    Chat { from: Role, text: String },
    /// 0x12: clipboard text from `from`.
    Clipboard { from: Role, text: String },
    /// 0x14: please send a keyframe on `track` (to the customer).
    KeyframeRequest { track: u32 },
    /// 0x84: a non-fatal notice, e.g. `count` input events dropped because the customer allows view only.
    Notice {
        code: super::ErrorCode,
        count: u32,
        message: String,
    },
    /// 0x85: reply to a meeting HELLO.
    MeetingWelcome(MeetingWelcome),
    /// 0x86: a participant joined, went away, came back, left or changed role.
    Participant {
        participant: u32,
        role: MeetingRole,
        state: ParticipantState,
        name: String,
    },
    /// 0x87: a track appeared, ended, or was muted / allowed again by the host.
    Track {
        track: u32,
        publisher: u32,
        state: TrackState,
    },
    /// 0x88: a whiteboard operation, numbered in the room's order.
    Annotation {
        seq: u64,
        from: u32,
        annotation: Annotation,
    },
    /// 0x89: meetings: a chat line, numbered in the room's order (history is replayed on join).
    MeetingChat { seq: u64, from: u32, text: String },
    /// 0x8A: recording started (true) or stopped, with the reason.
    Recording { active: bool, reason: String },
    /// 0x8B: a file offered to this client by participant `from`; `name` is already reduced to a safe base
    /// name.
    FileOffer {
        transfer: u32,
        from: u32,
        name: String,
        size: u64,
        sha256: [u8; 32],
    },
    /// 0x8C: the state of a transfer this client takes part in.
    FileState {
        transfer: u32,
        reference: u32,
        state: FileState,
        offset: u64,
    },
    /// 0xA0, WebRTC clients only: the m-line `mid` carries `track` (empty `mid`: the track has no m-line).
    TrackMid { track: u32, mid: String },
    /// 0xA1, WebRTC clients only: the relay closes this peer with `code`; the last message it sends.
    Close {
        code: super::ErrorCode,
        reason: String,
    },
}

/// Presence of the other side, in PEER messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// 1: joined (the session is paired when both have joined).
    Joined = 1,
    /// 2: connection lost; may resume within the grace period.
    Away = 2,
    /// 3: came back.
    Resumed = 3,
}

/// Bounds-checked reader over one message body.
pub(super) struct Body<'a>(pub(super) &'a [u8]);

impl<'a> Body<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub(super) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid("boolean")),
        }
    }
    pub(super) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    pub(super) fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(self.u16()? as i16)
    }
    pub(super) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    pub(super) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    pub(super) fn str(&mut self) -> Result<String, DecodeError> {
        let len = self.u16()? as usize;
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::Utf8)
    }
    pub(super) fn role(&mut self) -> Result<Role, DecodeError> {
        Role::from_wire(self.u8()?).ok_or(DecodeError::Invalid("role"))
    }
    pub(super) fn end(self) -> Result<(), DecodeError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// Writes one message: reserves the length prefix, lets `body` append, then patches the length.
pub(super) fn frame(buf: &mut BytesMut, ty: u8, body: impl FnOnce(&mut BytesMut)) {
    let start = buf.len();
    buf.put_u32(0);
    buf.put_u8(ty);
    body(buf);
    let len = (buf.len() - start - LEN_PREFIX) as u32;
    buf[start..start + LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
}

/// Strings longer than 65535 bytes cannot be encoded; callers bound them by the message size first.
pub(super) fn put_str(buf: &mut BytesMut, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    buf.put_u16(bytes.len() as u16);
    buf.put_slice(bytes);
}

/// Checks a length prefix against the limit.
pub fn check_len(len: u32, max: usize) -> Result<usize, DecodeError> {
    let len = len as usize;
    if len == 0 || len > max {
        return Err(DecodeError::Length { len, max });
    }
    Ok(len)
}

impl InputEvent {
    fn encode(&self, b: &mut BytesMut) {
        match self {
            InputEvent::MouseMove { x, y } => {
                b.put_u8(1);
                b.put_u16(*x);
                b.put_u16(*y);
            }
            InputEvent::MouseButton {
                button,
                pressed,
                x,
                y,
            } => {
                b.put_u8(2);
                b.put_u8(*button);
                b.put_u8(u8::from(*pressed));
                b.put_u16(*x);
                b.put_u16(*y);
            }
            InputEvent::MouseWheel { dx, dy } => {
                b.put_u8(3);
                b.put_i16(*dx);
                b.put_i16(*dy);
            }
            InputEvent::Key {
                code,
                pressed,
                modifiers,
            } => {
                b.put_u8(4);
                b.put_u8(u8::from(*pressed));
                b.put_u8(*modifiers);
                put_str(b, code);
            }
            InputEvent::Text { text } => {
                b.put_u8(5);
                put_str(b, text);
            }
        }
    }

    fn decode(r: &mut Body<'_>) -> Result<InputEvent, DecodeError> {
        Ok(match r.u8()? {
            1 => InputEvent::MouseMove {
                x: r.u16()?,
                y: r.u16()?,
            },
            2 => {
                let button = r.u8()?;
                if button > 4 {
                    return Err(DecodeError::Invalid("mouse button"));
                }
                InputEvent::MouseButton {
                    button,
                    pressed: r.bool()?,
                    x: r.u16()?,
                    y: r.u16()?,
                }
            }
            3 => InputEvent::MouseWheel {
                dx: r.i16()?,
                dy: r.i16()?,
            },
            4 => {
                let pressed = r.bool()?;
                let modifiers = r.u8()?;
                if modifiers > 0x0f {
                    return Err(DecodeError::Invalid("modifiers"));
                }
                let code = r.str()?;
                if code.is_empty() || code.len() > 64 {
                    return Err(DecodeError::Invalid("key code"));
                }
                InputEvent::Key {
                    code,
                    pressed,
                    modifiers,
                }
            }
            5 => InputEvent::Text { text: r.str()? },
            _ => return Err(DecodeError::Invalid("input event kind")),
        })
    }
}

impl ClientMsg {
    /// Appends the framed message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            ClientMsg::Hello(h) => frame(buf, 0x01, |b| {
                b.put_u8(super::VERSION);
                match h {
                    Hello::Technician { token } => {
                        b.put_u8(1);
                        put_str(b, token);
                    }
                    Hello::Customer {
                        code,
                        allow_control,
                    } => {
                        b.put_u8(2);
                        put_str(b, code);
                        b.put_u8(u8::from(*allow_control));
                    }
                    Hello::Resume { token } => {
                        b.put_u8(3);
                        put_str(b, token);
                    }
                    Hello::Meeting { token, name } => {
                        b.put_u8(4);
                        put_str(b, token);
                        put_str(b, name);
                    }
                    Hello::MeetingCode { code, name } => {
                        b.put_u8(5);
                        put_str(b, code);
                        put_str(b, name);
                    }
                }
            }),
            ClientMsg::Input(ev) => frame(buf, 0x10, |b| ev.encode(b)),
            ClientMsg::Chat(t) => frame(buf, 0x11, |b| put_str(b, t)),
            ClientMsg::Clipboard(t) => frame(buf, 0x12, |b| put_str(b, t)),
            ClientMsg::SetControl(allow) => frame(buf, 0x13, |b| b.put_u8(u8::from(*allow))),
            ClientMsg::KeyframeRequest { track } => frame(buf, 0x14, |b| b.put_u32(*track)),
            ClientMsg::EndSession => frame(buf, 0x15, |_| {}),
            ClientMsg::Subscribe { track, on } => frame(buf, 0x16, |b| {
                b.put_u32(*track);
                b.put_u8(u8::from(*on));
            }),
            ClientMsg::Annotate(a) => frame(buf, 0x17, |b| a.encode(b)),
            ClientMsg::FileOffer(o) => frame(buf, 0x18, |b| o.encode(b)),
            ClientMsg::FileAnswer {
                transfer,
                accept,
                offset,
            } => frame(buf, 0x19, |b| {
                b.put_u32(*transfer);
                b.put_u8(u8::from(*accept));
                b.put_u64(*offset);
            }),
            ClientMsg::FileResult { transfer, ok } => frame(buf, 0x1a, |b| {
                b.put_u32(*transfer);
                b.put_u8(u8::from(*ok));
            }),
            ClientMsg::MuteTrack { track, muted } => frame(buf, 0x1b, |b| {
                b.put_u32(*track);
                b.put_u8(u8::from(*muted));
            }),
            ClientMsg::RemoveParticipant { participant } => {
                frame(buf, 0x1c, |b| b.put_u32(*participant))
            }
            ClientMsg::SetRole { participant, role } => frame(buf, 0x1d, |b| {
                b.put_u32(*participant);
                b.put_u8(*role as u8);
            }),
        }
    }

    /// Decodes a message from its type byte and body. A HELLO with another version fails with
    /// `Invalid("version")`.
    pub fn decode(ty: u8, body: &[u8]) -> Result<ClientMsg, DecodeError> {
        let mut r = Body(body);
        let msg = match ty {
            0x01 => {
                if r.u8()? != super::VERSION {
                    return Err(DecodeError::Invalid("version"));
                }
                ClientMsg::Hello(match r.u8()? {
                    1 => Hello::Technician { token: r.str()? },
                    2 => Hello::Customer {
                        code: r.str()?,
                        allow_control: r.bool()?,
                    },
                    3 => Hello::Resume { token: r.str()? },
                    4 => Hello::Meeting {
                        token: r.str()?,
                        name: r.str()?,
                    },
                    5 => Hello::MeetingCode {
                        code: r.str()?,
                        name: r.str()?,
                    },
                    _ => return Err(DecodeError::Invalid("hello mode")),
                })
            }
            0x10 => ClientMsg::Input(InputEvent::decode(&mut r)?),
            0x11 => ClientMsg::Chat(r.str()?),
            0x12 => ClientMsg::Clipboard(r.str()?),
            0x13 => ClientMsg::SetControl(r.bool()?),
            0x14 => ClientMsg::KeyframeRequest { track: r.u32()? },
            0x15 => ClientMsg::EndSession,
            0x16 => ClientMsg::Subscribe {
                track: r.u32()?,
                on: r.bool()?,
            },
            0x17 => ClientMsg::Annotate(Annotation::decode(&mut r)?),
            0x18 => ClientMsg::FileOffer(FileOffer::decode(&mut r)?),
            0x19 => ClientMsg::FileAnswer {
                transfer: r.u32()?,
                accept: r.bool()?,
                offset: r.u64()?,
            },
            0x1a => ClientMsg::FileResult {
                transfer: r.u32()?,
                ok: r.bool()?,
            },
            0x1b => ClientMsg::MuteTrack {
                track: r.u32()?,
                muted: r.bool()?,
            },
            0x1c => ClientMsg::RemoveParticipant {
                participant: r.u32()?,
            },
            0x1d => ClientMsg::SetRole {
                participant: r.u32()?,
                role: MeetingRole::decode(&mut r)?,
            },
            other => return Err(DecodeError::UnknownType(other)),
        };
        r.end()?;
        Ok(msg)
    }
}

impl ServerMsg {
    /// Appends the framed message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            ServerMsg::Welcome {
                session,
                role,
                resume_token,
                control_allowed,
                peer_present,
                resume_grace_ms,
                max_frame_bytes,
                max_message_bytes,
            } => frame(buf, 0x81, |b| {
                b.put_slice(session);
                b.put_u8(role.to_wire());
                put_str(b, resume_token);
                b.put_u8(u8::from(*control_allowed));
                b.put_u8(u8::from(*peer_present));
                b.put_u32(*resume_grace_ms);
                b.put_u32(*max_frame_bytes);
                b.put_u32(*max_message_bytes);
            }),
            ServerMsg::Peer { role, state } => frame(buf, 0x82, |b| {
                b.put_u8(role.to_wire());
                b.put_u8(*state as u8);
            }),
            ServerMsg::Control { allowed } => frame(buf, 0x83, |b| b.put_u8(u8::from(*allowed))),
            ServerMsg::Input(ev) => frame(buf, 0x10, |b| ev.encode(b)),
            ServerMsg::Chat { from, text } => frame(buf, 0x11, |b| {
                b.put_u8(from.to_wire());
                put_str(b, text);
            }),
            ServerMsg::Clipboard { from, text } => frame(buf, 0x12, |b| {
                b.put_u8(from.to_wire());
                put_str(b, text);
            }),
            ServerMsg::KeyframeRequest { track } => frame(buf, 0x14, |b| b.put_u32(*track)),
            ServerMsg::Notice {
                code,
                count,
                message,
            } => frame(buf, 0x84, |b| {
                b.put_u32(*code as u32);
                b.put_u32(*count);
                put_str(b, message);
            }),
            ServerMsg::MeetingWelcome(w) => frame(buf, 0x85, |b| w.encode(b)),
            ServerMsg::Participant {
                participant,
                role,
                state,
                name,
            } => frame(buf, 0x86, |b| {
                b.put_u32(*participant);
                b.put_u8(*role as u8);
                b.put_u8(*state as u8);
                put_str(b, name);
            }),
            ServerMsg::Track {
                track,
                publisher,
                state,
            } => frame(buf, 0x87, |b| {
                b.put_u32(*track);
                b.put_u32(*publisher);
                b.put_u8(*state as u8);
            }),
            ServerMsg::Annotation {
                seq,
                from,
                annotation,
            } => frame(buf, 0x88, |b| {
                b.put_u64(*seq);
                b.put_u32(*from);
                annotation.encode(b);
            }),
            ServerMsg::MeetingChat { seq, from, text } => frame(buf, 0x89, |b| {
                b.put_u64(*seq);
                b.put_u32(*from);
                put_str(b, text);
            }),
            ServerMsg::Recording { active, reason } => frame(buf, 0x8a, |b| {
                b.put_u8(u8::from(*active));
                put_str(b, reason);
            }),
            ServerMsg::FileOffer {
                transfer,
                from,
                name,
                size,
                sha256,
            } => frame(buf, 0x8b, |b| {
                b.put_u32(*transfer);
                b.put_u32(*from);
                put_str(b, name);
                b.put_u64(*size);
                b.put_slice(sha256);
            }),
            ServerMsg::FileState {
                transfer,
                reference,
                state,
                offset,
            } => frame(buf, 0x8c, |b| {
                b.put_u32(*transfer);
                b.put_u32(*reference);
                b.put_u8(*state as u8);
                b.put_u64(*offset);
            }),
            ServerMsg::TrackMid { track, mid } => frame(buf, 0xa0, |b| {
                b.put_u32(*track);
                put_str(b, mid);
            }),
            ServerMsg::Close { code, reason } => frame(buf, 0xa1, |b| {
                b.put_u32(*code as u32);
                put_str(b, reason);
            }),
        }
    }

    pub fn decode(ty: u8, body: &[u8]) -> Result<ServerMsg, DecodeError> {
        let mut r = Body(body);
        let msg = match ty {
            0x81 => ServerMsg::Welcome {
                session: r.take(16)?.try_into().expect("16 bytes"),
                role: r.role()?,
                resume_token: r.str()?,
                control_allowed: r.bool()?,
                peer_present: r.bool()?,
                resume_grace_ms: r.u32()?,
                max_frame_bytes: r.u32()?,
                max_message_bytes: r.u32()?,
            },
            0x82 => ServerMsg::Peer {
                role: r.role()?,
                state: match r.u8()? {
                    1 => PeerState::Joined,
                    2 => PeerState::Away,
                    3 => PeerState::Resumed,
                    _ => return Err(DecodeError::Invalid("peer state")),
                },
            },
            0x83 => ServerMsg::Control { allowed: r.bool()? },
            0x10 => ServerMsg::Input(InputEvent::decode(&mut r)?),
            0x11 => ServerMsg::Chat {
                from: r.role()?,
                text: r.str()?,
            },
            0x12 => ServerMsg::Clipboard {
                from: r.role()?,
                text: r.str()?,
            },
            0x14 => ServerMsg::KeyframeRequest { track: r.u32()? },
            0x84 => ServerMsg::Notice {
                code: super::ErrorCode::from_u32(r.u32()?)
                    .ok_or(DecodeError::Invalid("error code"))?,
                count: r.u32()?,
                message: r.str()?,
            },
            0x85 => ServerMsg::MeetingWelcome(MeetingWelcome::decode(&mut r)?),
            0x86 => ServerMsg::Participant {
                participant: r.u32()?,
                role: MeetingRole::decode(&mut r)?,
                state: ParticipantState::decode(&mut r)?,
                name: r.str()?,
            },
            0x87 => ServerMsg::Track {
                track: r.u32()?,
                publisher: r.u32()?,
                state: TrackState::decode(&mut r)?,
            },
            0x88 => ServerMsg::Annotation {
                seq: r.u64()?,
                from: r.u32()?,
                annotation: Annotation::decode(&mut r)?,
            },
            0x89 => ServerMsg::MeetingChat {
                seq: r.u64()?,
                from: r.u32()?,
                text: r.str()?,
            },
            0x8a => ServerMsg::Recording {
                active: r.bool()?,
                reason: r.str()?,
            },
            0x8b => ServerMsg::FileOffer {
                transfer: r.u32()?,
                from: r.u32()?,
                name: r.str()?,
                size: r.u64()?,
                sha256: r.take(32)?.try_into().expect("32 bytes"),
            },
            0x8c => ServerMsg::FileState {
                transfer: r.u32()?,
                reference: r.u32()?,
                state: FileState::decode(&mut r)?,
                offset: r.u64()?,
            },
            0xa0 => ServerMsg::TrackMid {
                track: r.u32()?,
                mid: r.str()?,
            },
            0xa1 => ServerMsg::Close {
                code: super::ErrorCode::from_u32(r.u32()?)
                    .ok_or(DecodeError::Invalid("error code"))?,
                reason: r.str()?,
            },
            other => return Err(DecodeError::UnknownType(other)),
        };
        r.end()?;
        Ok(msg)
    }
}

/// Splits one complete framed message off the front of `buf`, if a whole one is there. Used by clients and
/// tests that read a byte stream; the relay reads with `read_exact` instead.
pub fn split_message(
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<(u8, bytes::Bytes)>, DecodeError> {
    if buf.len() < LEN_PREFIX {
        return Ok(None);
    }
    let len = check_len(
        u32::from_be_bytes(buf[..LEN_PREFIX].try_into().expect("4 bytes")),
        max,
    )?;
    if buf.len() < LEN_PREFIX + len {
        return Ok(None);
    }
    let mut msg = buf.split_to(LEN_PREFIX + len).split_off(LEN_PREFIX);
    let ty = msg[0];
    let body = msg.split_off(1).freeze();
    Ok(Some((ty, body)))
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
